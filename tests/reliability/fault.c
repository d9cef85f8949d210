/*
 * csfault: an LD_PRELOAD interposer for the I/O reliability tests
 * (tests/reliability/io-errors.sh, disk-full.sh, power-loss.sh). It sees the
 * file operations a process makes on files under one directory (the store)
 * and can fail them, trace them, journal them for a simulated power loss, or
 * end the process at the k-th of them.
 *
 *   CSFAULT_ROOT=DIR     the directory watched (an absolute path without
 *                        symbolic links); nothing outside it is touched.
 *                        Unset: the interposer does nothing at all.
 *
 * Operations (the names used below), each counted per process:
 *   write      write, writev                     (data at the file offset)
 *   pwrite     pwrite, pwrite64, pwritev, pwritev64
 *   fsync      fsync                             (of a file or a directory)
 *   fdatasync  fdatasync
 *   sync_file_range
 *   create     open/openat/creat with O_CREAT that makes a new file
 *   mkdir      mkdir, mkdirat
 *   link       link, linkat                      (path: the new name)
 *   rename     rename, renameat, renameat2       (path: the new name)
 *   unlink     unlink, unlinkat, rmdir
 *   truncate   ftruncate, ftruncate64, truncate, O_TRUNC
 *   chmod      fchmod, fchmodat, chmod
 *
 * Failing operations:
 *   CSFAULT_OP=op[,op...]  the operations to fail (counted together)
 *   CSFAULT_AT=N           the N-th such call (1-based) is hit
 *   CSFAULT_MODE=once      only the N-th call fails (default)
 *   CSFAULT_MODE=persist   the N-th and every later call fails
 *   CSFAULT_MODE=short     the N-th call (write/pwrite only) writes half of
 *                          its bytes and returns that count (a short write)
 *   CSFAULT_MODE=eintr     the N-th call fails with EINTR, doing nothing
 *   CSFAULT_ERRNO=EIO      the error of once/persist: EIO, ENOSPC, EDQUOT,
 *                          EROFS, EFBIG or a number (default EIO)
 *   CSFAULT_PATH=TEXT      only calls on paths (relative to the root)
 *                          containing TEXT are counted and failed
 *   CSFAULT_ARM=FILE       calls are counted and failed only once FILE exists
 * A failed call does nothing and returns -1 with errno set.
 *
 * Tracing: CSFAULT_TRACE=FILE appends one line per operation under the root:
 *   op <TAB> n <TAB> path <TAB> inode <TAB> result
 * where n counts that operation in this process and result is "ok" (and, in
 * a sixth column, what the call returned: a write's byte count), "-ERRNO"
 * (the real call failed) or "INJECT:<what>". Each line is written once the
 * call has returned, so the trace holds the calls as made, in order (a test
 * checks the order of custos's durable steps by it: syscall-order.py). For a
 * link or rename that succeeded, the inode is the file's (the one its writes
 * and fsyncs name); otherwise 0 for both.
 *
 * Power loss: CSFAULT_JOURNAL=FILE writes a journal of every change made
 * under the root, from which tests/reliability/durable-image.py builds the
 * store as a power loss would leave it (data written to FILE.data):
 *   C ino type mode          a new inode (type f or d)
 *   W ino off len dataoff s  a write (s = 1 on an O_SYNC/O_DSYNC descriptor)
 *   T ino size               a truncation
 *   F ino                    a file's fsync or fdatasync returned 0
 *   D ino n                  a directory's fsync returned 0; then n lines
 *   E ino type name          of its entries at that moment
 *   M ino mode               a chmod
 *   # k op path              the k-th changing operation (a comment)
 * CSFAULT_CRASH_OP=k ends the process with _exit(99) just before its k-th
 * changing operation (every operation above except sync_file_range counts).
 *
 * CSFAULT_LINEBUF=1 makes stdout line-buffered, so that what a crashed
 * process printed (its acknowledgements) is not lost in the stdio buffer.
 *
 * A source that grows while it is read: CSFAULT_GROW=PATH (absolute, without
 * symbolic links) appends CSFAULT_GROW_BYTES bytes (default 4096) to PATH,
 * once, right after the process's first read (read, pread, pread64) from
 * PATH that returned data: a writer appending while the file is read, at a
 * moment fixed by the reader rather than by luck. It works without
 * CSFAULT_ROOT.
 *
 * Calls made by libc on its own behalf (fclose, closedir) are not seen; none
 * of them changes a file.
 */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* glibc's fortified entry points, which have no public prototypes. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

enum op {
	OP_WRITE,
	OP_PWRITE,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_SFR,
	OP_CREATE,
	OP_MKDIR,
	OP_LINK,
	OP_RENAME,
	OP_UNLINK,
	OP_TRUNCATE,
	OP_CHMOD,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {"write", "pwrite", "fsync", "fdatasync",
	"sync_file_range", "create", "mkdir", "link", "rename", "unlink", "truncate", "chmod"};

enum mode { MODE_ONCE, MODE_PERSIST, MODE_SHORT, MODE_EINTR };

/* What pre_op() decided for one call. */
enum verdict { GO, FAIL, SHORT };

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sfr)(int, off_t, off_t, unsigned int);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_truncate)(const char *, off_t);
static int (*real_fchmod)(int, mode_t);
static int (*real_fchmodat)(int, const char *, mode_t, int);
static int (*real_close)(int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);

#define RESOLVE(var, name)                                  \
	do {                                                    \
		if ((var) == NULL) {                                \
			void *p_ = dlsym(RTLD_NEXT, (name));            \
			memcpy(&(var), &p_, sizeof(p_));                \
		}                                                   \
	} while (0)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int active;
static char root[PATH_MAX];
static size_t rootlen;
static int trace_fd = -1, journal_fd = -1, data_fd = -1;
static uint64_t data_off;
static unsigned fault_ops; /* bit per enum op */
static long fault_at, fault_count;
static int fault_errno = EIO;
static enum mode fault_mode = MODE_ONCE;
static const char *fault_path, *arm_path;
static int armed;
static long crash_at, change_count;
static long op_count[OP_COUNT];
static char grow_path[PATH_MAX];
static long grow_bytes = 4096;
static int grow_done;

struct fdinfo {
	int known, tracked, sync, isdir;
	dev_t dev;
	ino_t ino;
	char rel[256];
};
#define MAX_FD 4096
static struct fdinfo fds[MAX_FD];

static void
resolve_all(void)
{
	RESOLVE(real_write, "write");
	RESOLVE(real_writev, "writev");
	RESOLVE(real_pwrite, "pwrite");
	RESOLVE(real_pwritev, "pwritev");
	RESOLVE(real_fsync, "fsync");
	RESOLVE(real_fdatasync, "fdatasync");
	RESOLVE(real_sfr, "sync_file_range");
	RESOLVE(real_openat, "openat");
	RESOLVE(real_mkdirat, "mkdirat");
	RESOLVE(real_linkat, "linkat");
	RESOLVE(real_renameat2, "renameat2");
	RESOLVE(real_unlinkat, "unlinkat");
	RESOLVE(real_ftruncate, "ftruncate");
	RESOLVE(real_truncate, "truncate");
	RESOLVE(real_fchmod, "fchmod");
	RESOLVE(real_fchmodat, "fchmodat");
	RESOLVE(real_close, "close");
	RESOLVE(real_read, "read");
	RESOLVE(real_pread, "pread");
}

static int
parse_errno(const char *s)
{
	static const struct {
		const char *name;
		int e;
	} names[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
		{"EFBIG", EFBIG}, {"EINTR", EINTR}, {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].e;
	return (int)strtol(s, NULL, 10);
}

static int
open_out(const char *path)
{
	return real_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

__attribute__((constructor)) static void
csfault_init(void)
{
	const char *v;

	resolve_all();
	if (getenv("CSFAULT_LINEBUF") != NULL)
		setvbuf(stdout, NULL, _IOLBF, 0);
	if ((v = getenv("CSFAULT_GROW")) != NULL && strlen(v) < sizeof(grow_path)) {
		snprintf(grow_path, sizeof(grow_path), "%s", v);
		if ((v = getenv("CSFAULT_GROW_BYTES")) != NULL)
			grow_bytes = strtol(v, NULL, 10);
	}
	v = getenv("CSFAULT_ROOT");
	if (v == NULL || *v == '\0' || strlen(v) >= sizeof(root))
		return;
	snprintf(root, sizeof(root), "%s", v);
	rootlen = strlen(root);
	while (rootlen > 1 && root[rootlen - 1] == '/')
		root[--rootlen] = '\0';
	if ((v = getenv("CSFAULT_OP")) != NULL) {
		char buf[256], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", v);
		for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
			for (int i = 0; i < OP_COUNT; i++)
				if (strcmp(t, op_names[i]) == 0)
					fault_ops |= 1u << i;
	}
	if ((v = getenv("CSFAULT_AT")) != NULL)
		fault_at = strtol(v, NULL, 10);
	if ((v = getenv("CSFAULT_ERRNO")) != NULL)
		fault_errno = parse_errno(v);
	if ((v = getenv("CSFAULT_MODE")) != NULL)
		fault_mode = strcmp(v, "persist") == 0 ? MODE_PERSIST :
		    strcmp(v, "short") == 0            ? MODE_SHORT :
		    strcmp(v, "eintr") == 0            ? MODE_EINTR :
		                                         MODE_ONCE;
	fault_path = getenv("CSFAULT_PATH");
	arm_path = getenv("CSFAULT_ARM");
	armed = arm_path == NULL;
	if ((v = getenv("CSFAULT_CRASH_OP")) != NULL)
		crash_at = strtol(v, NULL, 10);
	if ((v = getenv("CSFAULT_TRACE")) != NULL)
		trace_fd = open_out(v);
	if ((v = getenv("CSFAULT_JOURNAL")) != NULL) {
		char dpath[PATH_MAX];
		journal_fd = open_out(v);
		snprintf(dpath, sizeof(dpath), "%s.data", v);
		data_fd = open_out(dpath);
		if (data_fd >= 0) {
			struct stat sb;
			if (fstat(data_fd, &sb) == 0)
				data_off = (uint64_t)sb.st_size;
		}
	}
	active = 1;
}

/* Writes all of buf to one of our own files (never through the wrappers). */
static void
out_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (fd >= 0 && n > 0) {
		ssize_t k = real_write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

__attribute__((format(printf, 2, 3))) static void
outf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_all(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Relative name under the root of an absolute path, or NULL when outside. */
static const char *
under_root(const char *abs)
{
	if (strncmp(abs, root, rootlen) != 0)
		return NULL;
	if (abs[rootlen] == '\0')
		return ".";
	if (abs[rootlen] != '/')
		return NULL;
	return abs + rootlen + 1;
}

/* The absolute path of dirfd/path (no normalisation of "..": the store has none). */
static int
abs_path(int dirfd, const char *path, char *out, size_t n)
{
	char base[PATH_MAX];
	ssize_t k;

	if (path[0] == '/')
		return snprintf(out, n, "%s", path) < (int)n ? 0 : -1;
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return -1;
	} else {
		char link[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		k = readlink(link, base, sizeof(base) - 1);
		if (k < 0)
			return -1;
		base[k] = '\0';
	}
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (strcmp(path, ".") == 0 || path[0] == '\0')
		return snprintf(out, n, "%s", base) < (int)n ? 0 : -1;
	return snprintf(out, n, "%s/%s", base, path) < (int)n ? 0 : -1;
}

/* Fills *fi for an open descriptor; 0 if it is not a file or directory under the root. */
static int
lookup(int fd, struct fdinfo *fi)
{
	char link[64], path[PATH_MAX];
	const char *rel;
	struct stat sb;
	ssize_t k;
	int fl;

	if (!active || fd < 0 || fstat(fd, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
		return 0;
	pthread_mutex_lock(&lock);
	if (fd < MAX_FD && fds[fd].known && fds[fd].dev == sb.st_dev && fds[fd].ino == sb.st_ino) {
		*fi = fds[fd];
		pthread_mutex_unlock(&lock);
		return fi->tracked;
	}
	pthread_mutex_unlock(&lock);
	memset(fi, 0, sizeof(*fi));
	fi->known = 1;
	fi->dev = sb.st_dev;
	fi->ino = sb.st_ino;
	fi->isdir = S_ISDIR(sb.st_mode);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, path, sizeof(path) - 1);
	if (k > 0) {
		path[k] = '\0';
		if (k > 10 && strcmp(path + k - 10, " (deleted)") == 0)
			path[k - 10] = '\0';
		rel = under_root(path);
		if (rel != NULL) {
			fi->tracked = 1;
			snprintf(fi->rel, sizeof(fi->rel), "%s", rel);
		}
	}
	fl = fcntl(fd, F_GETFL);
	fi->sync = fl >= 0 && (fl & O_DSYNC) != 0;
	if (fd < MAX_FD) {
		pthread_mutex_lock(&lock);
		fds[fd] = *fi;
		pthread_mutex_unlock(&lock);
	}
	return fi->tracked;
}

static void
forget(int fd)
{
	if (fd >= 0 && fd < MAX_FD) {
		pthread_mutex_lock(&lock);
		fds[fd].known = 0;
		pthread_mutex_unlock(&lock);
	}
}

/*
 * Called before a changing operation under the root: counts it, ends the
 * process at the crash point, and decides whether the call fails. *n gets
 * the operation's own count (for the trace).
 */
static enum verdict
pre_op(enum op op, const char *rel, long *n)
{
	enum verdict v = GO;

	pthread_mutex_lock(&lock);
	*n = ++op_count[op];
	if (op != OP_SFR) {
		change_count++;
		outf(journal_fd, "# %ld %s %s\n", change_count, op_names[op], rel);
		if (crash_at > 0 && change_count == crash_at) {
			outf(trace_fd, "CRASH\t%ld\t%s\t%s\n", change_count, op_names[op], rel);
			_exit(99);
		}
	}
	if (!armed && arm_path != NULL && access(arm_path, F_OK) == 0)
		armed = 1;
	if (armed && (fault_ops & (1u << op)) != 0 && fault_at > 0 &&
	    (fault_path == NULL || strstr(rel, fault_path) != NULL)) {
		fault_count++;
		if (fault_count == fault_at || (fault_mode == MODE_PERSIST && fault_count > fault_at)) {
			if (fault_mode == MODE_SHORT)
				v = (op == OP_WRITE || op == OP_PWRITE) ? SHORT : GO;
			else
				v = FAIL;
		}
	}
	pthread_mutex_unlock(&lock);
	return v;
}

static int
fail_errno(void)
{
	return fault_mode == MODE_EINTR ? EINTR : fault_errno;
}

static void
trace(enum op op, long n, const char *rel, ino_t ino, long rc, int err, enum verdict v)
{
	if (trace_fd < 0)
		return;
	if (v == FAIL)
		outf(trace_fd, "%s\t%ld\t%s\t%llu\tINJECT:%s\n", op_names[op], n, rel,
		    (unsigned long long)ino, fault_mode == MODE_EINTR ? "EINTR" : strerrorname_np(fault_errno));
	else if (v == SHORT)
		outf(trace_fd, "%s\t%ld\t%s\t%llu\tINJECT:short:%ld\n", op_names[op], n, rel,
		    (unsigned long long)ino, rc);
	else if (rc < 0)
		outf(trace_fd, "%s\t%ld\t%s\t%llu\t-%s\n", op_names[op], n, rel, (unsigned long long)ino,
		    strerrorname_np(err) != NULL ? strerrorname_np(err) : "?");
	else
		outf(trace_fd, "%s\t%ld\t%s\t%llu\tok\t%ld\n", op_names[op], n, rel,
		    (unsigned long long)ino, rc);
}

/* The answer to a call that pre_op() decided to fail: traced, errno set, -1. */
static int
injected(enum op op, long n, const char *rel, ino_t ino)
{
	trace(op, n, rel, ino, -1, 0, FAIL);
	errno = fail_errno();
	return -1;
}

/* The answer to a call that was let through: r (and the errno err it left), traced. */
static int
passed(enum op op, long n, const char *rel, ino_t ino, int r, int err)
{
	trace(op, n, rel, ino, r, err, GO);
	errno = err;
	return r;
}

/* Journals a write of the bytes in iov (total `len`) at `off`. */
static void
journal_write(const struct fdinfo *fi, off_t off, const struct iovec *iov, int iovcnt, size_t len)
{
	if (journal_fd < 0 || len == 0)
		return;
	pthread_mutex_lock(&lock);
	outf(journal_fd, "W\t%llu\t%lld\t%zu\t%llu\t%d\n", (unsigned long long)fi->ino,
	    (long long)off, len, (unsigned long long)data_off, fi->sync);
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
		out_all(data_fd, iov[i].iov_base, k);
		data_off += k;
		len -= k;
	}
	pthread_mutex_unlock(&lock);
}

/* Journals the entries of directory `fd` after its fsync. */
static void
journal_dir(int fd, ino_t ino)
{
	struct dirent *de;
	size_t cap = 4096, len = 0;
	char *buf;
	int count = 0, dfd;
	DIR *d;

	if (journal_fd < 0)
		return;
	dfd = real_openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	buf = malloc(cap);
	if (d == NULL || buf == NULL) {
		if (d != NULL)
			closedir(d);
		else
			real_close(dfd);
		free(buf);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char line[512];
		int n;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = snprintf(line, sizeof(line), "E\t%llu\t%c\t%s\n", (unsigned long long)de->d_ino,
		    de->d_type == DT_DIR ? 'd' : de->d_type == DT_REG ? 'f' : 'o', de->d_name);
		if (n <= 0 || (size_t)n >= sizeof(line))
			continue;
		if (len + (size_t)n > cap) {
			char *nb = realloc(buf, cap * 2 + (size_t)n);
			if (nb == NULL)
				break;
			buf = nb;
			cap = cap * 2 + (size_t)n;
		}
		memcpy(buf + len, line, (size_t)n);
		len += (size_t)n;
		count++;
	}
	closedir(d);
	pthread_mutex_lock(&lock);
	outf(journal_fd, "D\t%llu\t%d\n", (unsigned long long)ino, count);
	out_all(journal_fd, buf, len);
	pthread_mutex_unlock(&lock);
	free(buf);
}

__attribute__((format(printf, 1, 2))) static void
journal_line(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	if (journal_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return;
	pthread_mutex_lock(&lock);
	out_all(journal_fd, buf, (size_t)n);
	pthread_mutex_unlock(&lock);
}

/* ---- writes ---- */

static ssize_t
do_write(int fd, const struct iovec *iov, int iovcnt, off_t off, int positioned)
{
	struct iovec small[64], *use = (struct iovec *)iov;
	struct fdinfo fi;
	size_t total = 0;
	enum op op = positioned ? OP_PWRITE : OP_WRITE;
	enum verdict v;
	ssize_t r;
	long n;
	int err;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total == 0 || !lookup(fd, &fi) || fi.isdir)
		goto plain;
	if (!positioned && journal_fd >= 0) {
		int fl = fcntl(fd, F_GETFL);
		struct stat sb;
		if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &sb) == 0)
			off = sb.st_size;
		else
			off = lseek(fd, 0, SEEK_CUR);
	}
	v = pre_op(op, fi.rel, &n);
	if (v == FAIL)
		return injected(op, n, fi.rel, fi.ino);
	if (v == SHORT && total > 1 && iovcnt <= 64) {
		size_t want = total / 2;
		int k = 0;
		for (; k < iovcnt && want > 0; k++) {
			small[k] = iov[k];
			if (small[k].iov_len > want)
				small[k].iov_len = want;
			want -= small[k].iov_len;
		}
		use = small;
		iovcnt = k;
	} else {
		v = GO;
	}
	r = positioned ? (iovcnt == 1 ? real_pwrite(fd, use[0].iov_base, use[0].iov_len, off) :
	                                real_pwritev(fd, use, iovcnt, off)) :
	                 (iovcnt == 1 ? real_write(fd, use[0].iov_base, use[0].iov_len) :
	                                real_writev(fd, use, iovcnt));
	err = errno;
	if (r > 0)
		journal_write(&fi, off, use, iovcnt, (size_t)r);
	trace(op, n, fi.rel, fi.ino, r, err, v);
	errno = err;
	return r;
plain:
	if (positioned)
		return iovcnt == 1 ? real_pwrite(fd, iov[0].iov_base, iov[0].iov_len, off) :
		                     real_pwritev(fd, iov, iovcnt, off);
	return iovcnt == 1 ? real_write(fd, iov[0].iov_base, iov[0].iov_len) :
	                     real_writev(fd, iov, iovcnt);
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	struct iovec iov = {(void *)buf, n};

	resolve_all();
	if (!active)
		return real_write(fd, buf, n);
	return do_write(fd, &iov, 1, 0, 0);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	resolve_all();
	if (!active || iovcnt <= 0)
		return real_writev(fd, iov, iovcnt);
	return do_write(fd, iov, iovcnt, 0, 0);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec iov = {(void *)buf, n};

	resolve_all();
	if (!active)
		return real_pwrite(fd, buf, n, off);
	return do_write(fd, &iov, 1, off, 1);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	return pwrite(fd, buf, n, (off_t)off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	resolve_all();
	if (!active || iovcnt <= 0)
		return real_pwritev(fd, iov, iovcnt, off);
	return do_write(fd, iov, iovcnt, off, 1);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off)
{
	return pwritev(fd, iov, iovcnt, (off_t)off);
}

/* ---- reads: only for CSFAULT_GROW ---- */

/* After a read of `r` bytes from fd: the one append to CSFAULT_GROW, if fd is that file. */
static void
after_read(int fd, ssize_t r)
{
	char link[64], path[PATH_MAX], buf[4096];
	ssize_t k;
	long left;
	int gfd, mine;

	if (grow_path[0] == '\0' || grow_done || r <= 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	k = readlink(link, path, sizeof(path) - 1);
	if (k <= 0)
		return;
	path[k] = '\0';
	if (strcmp(path, grow_path) != 0)
		return;
	pthread_mutex_lock(&lock);
	mine = !grow_done;
	grow_done = 1;
	pthread_mutex_unlock(&lock);
	if (!mine)
		return;
	gfd = real_openat(AT_FDCWD, grow_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (gfd < 0)
		return;
	memset(buf, 'g', sizeof(buf));
	for (left = grow_bytes; left > 0;) {
		size_t n = (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf);
		if (real_write(gfd, buf, n) != (ssize_t)n)
			break;
		left -= (long)n;
	}
	real_close(gfd);
}

ssize_t
read(int fd, void *buf, size_t n)
{
	ssize_t r;
	int err;

	resolve_all();
	r = real_read(fd, buf, n);
	err = errno;
	after_read(fd, r);
	errno = err;
	return r;
}

ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	ssize_t r;
	int err;

	resolve_all();
	r = real_pread(fd, buf, n, off);
	err = errno;
	after_read(fd, r);
	errno = err;
	return r;
}

ssize_t
pread64(int fd, void *buf, size_t n, off64_t off)
{
	return pread(fd, buf, n, (off_t)off);
}

/* ---- syncs ---- */

static int
do_sync(int fd, enum op op)
{
	struct fdinfo fi;
	long n;
	int r, err;

	if (!lookup(fd, &fi))
		return op == OP_FSYNC ? real_fsync(fd) : real_fdatasync(fd);
	if (pre_op(op, fi.rel, &n) == FAIL)
		return injected(op, n, fi.rel, fi.ino);
	r = op == OP_FSYNC ? real_fsync(fd) : real_fdatasync(fd);
	err = errno;
	if (r == 0) {
		if (fi.isdir)
			journal_dir(fd, fi.ino);
		else
			journal_line("F\t%llu\n", (unsigned long long)fi.ino);
	}
	return passed(op, n, fi.rel, fi.ino, r, err);
}

int
fsync(int fd)
{
	resolve_all();
	return do_sync(fd, OP_FSYNC);
}

int
fdatasync(int fd)
{
	resolve_all();
	return do_sync(fd, OP_FDATASYNC);
}

int
sync_file_range(int fd, off64_t off, off64_t nbytes, unsigned int flags)
{
	struct fdinfo fi;
	long n;
	int r;

	resolve_all();
	if (!lookup(fd, &fi))
		return real_sfr(fd, off, nbytes, flags);
	if (pre_op(OP_SFR, fi.rel, &n) == FAIL)
		return injected(OP_SFR, n, fi.rel, fi.ino);
	r = real_sfr(fd, off, nbytes, flags);
	return passed(OP_SFR, n, fi.rel, fi.ino, r, errno);
}

/* ---- opens that create or truncate ---- */

static int
do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	char abs[PATH_MAX];
	const char *rel;
	struct stat sb;
	enum op op;
	int existed, fd, err;
	long n = 0;

	if (!active || !(flags & (O_CREAT | O_TRUNC)) || abs_path(dirfd, path, abs, sizeof(abs)) < 0 ||
	    (rel = under_root(abs)) == NULL)
		return real_openat(dirfd, path, flags, mode);
	existed = fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if ((flags & O_CREAT) && !existed)
		op = OP_CREATE;
	else if ((flags & O_TRUNC) && existed && (flags & O_ACCMODE) != O_RDONLY)
		op = OP_TRUNCATE;
	else
		return real_openat(dirfd, path, flags, mode);
	if (pre_op(op, rel, &n) == FAIL)
		return injected(op, n, rel, 0);
	fd = real_openat(dirfd, path, flags, mode);
	err = errno;
	if (fd >= 0) {
		forget(fd);
		if (fstat(fd, &sb) == 0) {
			if (op == OP_CREATE)
				journal_line("C\t%llu\tf\t%o\n", (unsigned long long)sb.st_ino,
				    (unsigned)(sb.st_mode & 07777));
			else
				journal_line("T\t%llu\t0\n", (unsigned long long)sb.st_ino);
		}
	}
	return passed(op, n, rel, fd >= 0 ? sb.st_ino : 0, fd, err);
}

static mode_t
va_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	resolve_all();
	return do_open(AT_FDCWD, path, flags, mode);
}


int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	resolve_all();
	return do_open(dirfd, path, flags, mode);
}


int
__open_2(const char *path, int flags)
{
	resolve_all();
	return do_open(AT_FDCWD, path, flags, 0);
}


int
__openat_2(int dirfd, const char *path, int flags)
{
	resolve_all();
	return do_open(dirfd, path, flags, 0);
}

/* The *64 names of the opens take the same arguments: the same wrappers. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

int
creat(const char *path, mode_t mode)
{
	resolve_all();
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int
creat64(const char *path, mode_t mode)
{
	return creat(path, mode);
}

int
close(int fd)
{
	resolve_all();
	forget(fd);
	return real_close(fd);
}

/* ---- directory operations ---- */

/* The path under the root of dirfd/path, or NULL. */
static const char *
rel_of(int dirfd, const char *path, char *abs, size_t n)
{
	if (!active || abs_path(dirfd, path, abs, n) < 0)
		return NULL;
	return under_root(abs);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	char abs[PATH_MAX];
	const char *rel;
	struct stat sb;
	long n;
	int r, err;

	resolve_all();
	if ((rel = rel_of(dirfd, path, abs, sizeof(abs))) == NULL)
		return real_mkdirat(dirfd, path, mode);
	if (pre_op(OP_MKDIR, rel, &n) == FAIL)
		return injected(OP_MKDIR, n, rel, 0);
	r = real_mkdirat(dirfd, path, mode);
	err = errno;
	sb.st_ino = 0;
	if (r == 0 && fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		journal_line("C\t%llu\td\t%o\n", (unsigned long long)sb.st_ino,
		    (unsigned)(sb.st_mode & 07777));
	return passed(OP_MKDIR, n, rel, sb.st_ino, r, err);
}

int
mkdir(const char *path, mode_t mode)
{
	return mkdirat(AT_FDCWD, path, mode);
}

/* link, rename and unlink change only a directory: the path is the (new) name. */

/* The inode now at dirfd/path (0 if none): the file a link or rename placed. */
static ino_t
placed_ino(int dirfd, const char *path, int r)
{
	struct stat sb;

	if (r != 0 || fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return sb.st_ino;
}

int
linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	char abs[PATH_MAX];
	const char *rel;
	long n;
	int r, err;

	resolve_all();
	if ((rel = rel_of(newdirfd, newpath, abs, sizeof(abs))) == NULL)
		return real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
	if (pre_op(OP_LINK, rel, &n) == FAIL)
		return injected(OP_LINK, n, rel, 0);
	r = real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
	err = errno;
	return passed(OP_LINK, n, rel, placed_ino(newdirfd, newpath, r), r, err);
}

int
link(const char *oldpath, const char *newpath)
{
	return linkat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int
renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags)
{
	char abs[PATH_MAX];
	const char *rel;
	long n;
	int r, err;

	resolve_all();
	if ((rel = rel_of(newdirfd, newpath, abs, sizeof(abs))) == NULL)
		return real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
	if (pre_op(OP_RENAME, rel, &n) == FAIL)
		return injected(OP_RENAME, n, rel, 0);
	r = real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
	err = errno;
	return passed(OP_RENAME, n, rel, placed_ino(newdirfd, newpath, r), r, err);
}

int
renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	return renameat2(olddirfd, oldpath, newdirfd, newpath, 0);
}

int
rename(const char *oldpath, const char *newpath)
{
	return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	char abs[PATH_MAX];
	const char *rel;
	long n;
	int r;

	resolve_all();
	if ((rel = rel_of(dirfd, path, abs, sizeof(abs))) == NULL)
		return real_unlinkat(dirfd, path, flags);
	if (pre_op(OP_UNLINK, rel, &n) == FAIL)
		return injected(OP_UNLINK, n, rel, 0);
	r = real_unlinkat(dirfd, path, flags);
	return passed(OP_UNLINK, n, rel, 0, r, errno);
}

int
unlink(const char *path)
{
	return unlinkat(AT_FDCWD, path, 0);
}

int
rmdir(const char *path)
{
	return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

/* ---- truncation and modes ---- */

int
ftruncate(int fd, off_t size)
{
	struct fdinfo fi;
	long n;
	int r, err;

	resolve_all();
	if (!lookup(fd, &fi))
		return real_ftruncate(fd, size);
	if (pre_op(OP_TRUNCATE, fi.rel, &n) == FAIL)
		return injected(OP_TRUNCATE, n, fi.rel, fi.ino);
	r = real_ftruncate(fd, size);
	err = errno;
	if (r == 0)
		journal_line("T\t%llu\t%lld\n", (unsigned long long)fi.ino, (long long)size);
	return passed(OP_TRUNCATE, n, fi.rel, fi.ino, r, err);
}

int
ftruncate64(int fd, off64_t size)
{
	return ftruncate(fd, (off_t)size);
}

int
truncate(const char *path, off_t size)
{
	struct stat sb;
	char abs[PATH_MAX];
	const char *rel;
	long n;
	int r, err;

	resolve_all();
	if ((rel = rel_of(AT_FDCWD, path, abs, sizeof(abs))) == NULL || stat(path, &sb) < 0)
		return real_truncate(path, size);
	if (pre_op(OP_TRUNCATE, rel, &n) == FAIL)
		return injected(OP_TRUNCATE, n, rel, sb.st_ino);
	r = real_truncate(path, size);
	err = errno;
	if (r == 0)
		journal_line("T\t%llu\t%lld\n", (unsigned long long)sb.st_ino, (long long)size);
	return passed(OP_TRUNCATE, n, rel, sb.st_ino, r, err);
}

int
truncate64(const char *path, off64_t size)
{
	return truncate(path, (off_t)size);
}

int
fchmod(int fd, mode_t mode)
{
	struct fdinfo fi;
	long n;
	int r, err;

	resolve_all();
	if (!lookup(fd, &fi))
		return real_fchmod(fd, mode);
	if (pre_op(OP_CHMOD, fi.rel, &n) == FAIL)
		return injected(OP_CHMOD, n, fi.rel, fi.ino);
	r = real_fchmod(fd, mode);
	err = errno;
	if (r == 0)
		journal_line("M\t%llu\t%o\n", (unsigned long long)fi.ino, (unsigned)(mode & 07777));
	return passed(OP_CHMOD, n, fi.rel, fi.ino, r, err);
}

int
fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	struct stat sb;
	char abs[PATH_MAX];
	const char *rel;
	long n;
	int r, err;

	resolve_all();
	if ((rel = rel_of(dirfd, path, abs, sizeof(abs))) == NULL ||
	    fstatat(dirfd, path, &sb, flags & AT_SYMLINK_NOFOLLOW) < 0)
		return real_fchmodat(dirfd, path, mode, flags);
	if (pre_op(OP_CHMOD, rel, &n) == FAIL)
		return injected(OP_CHMOD, n, rel, sb.st_ino);
	r = real_fchmodat(dirfd, path, mode, flags);
	err = errno;
	if (r == 0)
		journal_line("M\t%llu\t%o\n", (unsigned long long)sb.st_ino, (unsigned)(mode & 07777));
	return passed(OP_CHMOD, n, rel, sb.st_ino, r, err);
}

int
chmod(const char *path, mode_t mode)
{
	return fchmodat(AT_FDCWD, path, mode, 0);
}
