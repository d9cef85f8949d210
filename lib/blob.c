/*
 * The blob store. A file's bytes are read once: each buffer is hashed and
 * written (by a helper thread, for files larger than a buffer; see "Copying"
 * below) to a temp file in <root>/tmp, which is fsynced, made read-only and
 * linked (never renamed over an intact blob) to objects/sha256/ab/cd/<hex>,
 * after which the directory is fsynced. Only then may a ledger event refer
 * to it (DESIGN invariant 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "custos/error.h"
#include "util.h"

#define BUF_SIZE (1u << 20)

void
cs__blob_path(const char *hex, char *buf, size_t n)
{
	snprintf(buf, n, "objects/sha256/%.2s/%.2s/%s", hex, hex + 2, hex);
}

int
cs__hash_fd(int fd, uint8_t digest[32], uint64_t *size)
{
	EVP_MD_CTX *md = NULL;
	uint8_t *buf = NULL;
	uint64_t total = 0;
	off_t off = 0;
	int rc;

	buf = malloc(BUF_SIZE);
	md = EVP_MD_CTX_new();
	if (buf == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t n = cs__pread_all(fd, buf, BUF_SIZE, off);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			goto out;
		}
		off += n;
		total += (uint64_t)n;
		if ((size_t)n < BUF_SIZE)
			break; /* a short read is the end: cs__pread_all read until it */
	}
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

int
cs__blob_check(int rootfd, const char *hex, uint64_t size)
{
	return cs__blob_check_in(rootfd, "objects", hex, size);
}

int
cs__blob_check_in(int rootfd, const char *tree, const char *hex, uint64_t size)
{
	char path[CS_BLOB_PATH_MAX];
	uint8_t digest[32], want[32];
	uint64_t got;
	int fd, rc;

	if (strlen(hex) != 64 || cs__unhex(hex, 64, want) < 0)
		return CS_EFORMAT;
	snprintf(path, sizeof(path), "%s/sha256/%.2s/%.2s/%s", tree, hex, hex + 2, hex);
	fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = cs__hash_fd(fd, digest, &got);
	close(fd);
	if (rc < 0)
		return rc;
	if (got != size || memcmp(digest, want, 32) != 0)
		return CS_EDIGEST;
	return 0;
}

/*
 * Copying. The source is read into private buffers; each buffer is hashed and
 * then written, unchanged, to the temp file, so the source is read once and
 * the digest is of exactly the bytes written. For a file larger than one
 * buffer, a helper thread does the writing, at most NBUF buffers behind the
 * reading and hashing: hashing (about 2 GB/s with SHA-NI) and writing cost
 * about the same, and on two cores they overlap. A buffer goes back to the
 * reader only once it has been written in full.
 *
 * Whole buffers are written with O_DIRECT where the filesystem accepts it.
 * Through the page cache, every byte of a video costs a second copy and a
 * page to hold it, pushes out what other readers have cached, and waits to be
 * written out until the fsync. Ordinary writes (small files, the tail of a
 * file, and filesystems that refuse O_DIRECT or its alignment) start their
 * writeback every FLUSH_SIZE bytes with sync_file_range(), so that the disk
 * works while the copy goes on. Neither changes the durability promise: it
 * still rests on the caller's fsync of the temp file alone.
 */
#define NBUF 4                /* buffers in flight between reader and writer */
#define DIRECT_ALIGN 4096     /* buffer alignment that O_DIRECT accepts */
#define FLUSH_SIZE (8u << 20) /* ordinary writes start writeback this often */

struct copy_writer {
	int fd;
	int direct;       /* fd has O_DIRECT set */
	uint64_t off;     /* bytes written */
	uint64_t flushed; /* bytes whose writeback has started (or that bypassed the cache) */
};

struct copy_pipe {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *mem;         /* the allocation that holds every buffer */
	uint8_t *buf[NBUF];   /* DIRECT_ALIGN-aligned, BUF_SIZE apart */
	size_t len[NBUF];
	uint64_t filled;      /* buffers handed to the writer */
	uint64_t written;     /* buffers written; filled - written <= NBUF */
	int eof;              /* the reader hands over no more buffers */
	int rc;               /* the first failure on either side, else 0 */
	struct copy_writer w; /* the writer thread's alone while it runs */
};

static int
set_direct(struct copy_writer *w, int on)
{
	int fl = fcntl(w->fd, F_GETFL);

	if (fl < 0 || fcntl(w->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
		return -errno;
	w->direct = on;
	return 0;
}

/* Appends one buffer of `n` bytes to the temp file. Returns 0 or a negative errno. */
static int
write_buf(struct copy_writer *w, const uint8_t *buf, size_t n)
{
	int rc;

	CS_FAILPOINT("blob-write");
	if (w->off == 0 && n == BUF_SIZE)
		(void)set_direct(w, 1); /* refused: ordinary writes throughout */
	else if (w->direct && n != BUF_SIZE && (rc = set_direct(w, 0)) < 0)
		return rc;
	while (n > 0) {
		ssize_t k = write(w->fd, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL && w->direct) {
			/* The filesystem took O_DIRECT but not this write's alignment. */
			if ((rc = set_direct(w, 0)) < 0)
				return rc;
			continue;
		}
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO;
		buf += k;
		n -= (size_t)k;
		w->off += (uint64_t)k;
		/* A short direct write leaves an unaligned rest. */
		if (n > 0 && w->direct && (rc = set_direct(w, 0)) < 0)
			return rc;
	}
	if (w->direct) {
		w->flushed = w->off;
	} else if (w->off - w->flushed >= FLUSH_SIZE) {
		/* Write-only: this neither waits nor consumes an error the fsync must see. */
		if (sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->off - w->flushed),
			SYNC_FILE_RANGE_WRITE) < 0 &&
		    errno != EINVAL && errno != ENOSYS && errno != ESPIPE)
			return -errno;
		w->flushed = w->off;
	}
	return 0;
}

static void *
writer_main(void *arg)
{
	struct copy_pipe *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->written == p->filled && !p->eof && p->rc == 0)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->rc != 0 || p->written == p->filled)
			break;
		unsigned i = (unsigned)(p->written % NBUF);
		pthread_mutex_unlock(&p->lock);

		int rc = write_buf(&p->w, p->buf[i], p->len[i]);

		pthread_mutex_lock(&p->lock);
		if (rc < 0 && p->rc == 0)
			p->rc = rc;
		p->written++;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Starts the writer thread; on failure nothing is left to clean up. */
static int
start_writer(struct copy_pipe *p, pthread_t *t)
{
	int rc;

	if ((rc = pthread_mutex_init(&p->lock, NULL)) != 0)
		return -rc;
	if ((rc = pthread_cond_init(&p->cond, NULL)) != 0) {
		pthread_mutex_destroy(&p->lock);
		return -rc;
	}
	if ((rc = pthread_create(t, NULL, writer_main, p)) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		return -rc;
	}
	return 0;
}

/*
 * Lets the writer finish the buffers handed over (or stop at once if `rc`, the
 * reader's result, is a failure), joins it, and returns the first failure of
 * either side, else 0.
 */
static int
finish_writer(struct copy_pipe *p, pthread_t t, int rc)
{
	pthread_mutex_lock(&p->lock);
	p->eof = 1;
	if (rc < 0 && p->rc == 0)
		p->rc = rc;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(t, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	return p->rc;
}

/* Waits until buffer number `k` may be filled: 0, or the writer's failure. */
static int
wait_free(struct copy_pipe *p, uint64_t k)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	while (k - p->written >= NBUF && p->rc == 0)
		pthread_cond_wait(&p->cond, &p->lock);
	rc = p->rc;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void
hand_over(struct copy_pipe *p, unsigned i, size_t n)
{
	pthread_mutex_lock(&p->lock);
	p->len[i] = n;
	p->filled++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static int
copy_and_hash(int srcfd, int dstfd, uint8_t digest[32], uint64_t *size)
{
	struct copy_pipe p = {.w = {.fd = dstfd}};
	EVP_MD_CTX *md = NULL;
	struct stat sb;
	uint64_t total = 0;
	pthread_t writer;
	unsigned nbuf;
	int rc;

	/* A file that fits in one buffer is not worth a thread. */
	nbuf = fstat(srcfd, &sb) == 0 && sb.st_size <= BUF_SIZE ? 1 : NBUF;
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/*
	 * One malloc rather than aligned_alloc: glibc serves a repeated malloc of
	 * this size from its heap, so ingesting many files reuses the same pages
	 * instead of mapping and faulting in fresh ones for every file.
	 */
	p.mem = malloc((size_t)nbuf * BUF_SIZE + DIRECT_ALIGN);
	if (p.mem == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < nbuf; i++)
		p.buf[i] = p.mem + (-(uintptr_t)p.mem & (DIRECT_ALIGN - 1)) + (size_t)i * BUF_SIZE;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	if (nbuf > 1 && (rc = start_writer(&p, &writer)) < 0)
		goto out;

	for (uint64_t k = 0;; k++) {
		unsigned i = (unsigned)(k % nbuf);
		if (nbuf > 1 && (rc = wait_free(&p, k)) < 0)
			break;
		ssize_t n = cs__pread_all(srcfd, p.buf[i], BUF_SIZE, (off_t)total);
		if (n <= 0) {
			/* A source that cannot be read is the source's fault, not the store's. */
			rc = n < 0 ? CS_ESOURCE : 0;
			break;
		}
		if (EVP_DigestUpdate(md, p.buf[i], (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			break;
		}
		total += (uint64_t)n;
		if (nbuf > 1)
			hand_over(&p, i, (size_t)n);
		else if ((rc = write_buf(&p.w, p.buf[i], (size_t)n)) < 0)
			break;
		if ((size_t)n < BUF_SIZE)
			break; /* a short read is the end: cs__pread_all read until it */
	}
	if (nbuf > 1)
		rc = finish_writer(&p, writer, rc);
	if (rc < 0)
		goto out;

	if (EVP_DigestFinal_ex(md, digest, NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(p.mem);
	return rc;
}

int
cs__blob_stage(int rootfd, int srcfd, struct cs__blob_tmp *t)
{
	static atomic_uint counter;
	struct stat before, after;
	int rc;

	t->fd = -1;
	t->path[0] = '\0';
	if (fstat(srcfd, &before) < 0)
		return -errno;
	if (!S_ISREG(before.st_mode))
		return CS_ENOTREG;
	(void)posix_fadvise(srcfd, 0, 0, POSIX_FADV_SEQUENTIAL);

	snprintf(t->path, sizeof(t->path), "tmp/blob-%ld-%u", (long)getpid(),
	    atomic_fetch_add(&counter, 1));
	t->fd = openat(rootfd, t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (t->fd < 0) {
		rc = -errno;
		t->path[0] = '\0';
		return rc;
	}
	rc = copy_and_hash(srcfd, t->fd, t->digest, &t->size);
	if (rc < 0)
		goto out;
	if (fstat(srcfd, &after) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)after.st_size != t->size || after.st_size != before.st_size ||
	    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
		rc = CS_ECHANGED;
		goto out;
	}
	if (fchmod(t->fd, 0444) < 0) {
		rc = -errno;
		goto out;
	}
	/*
	 * Start writing back what is still cached, so that the disk works while
	 * the next file is copied; the fsync (cs__blob_sync) still decides.
	 */
	if (sync_file_range(t->fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0 && errno != EINVAL &&
	    errno != ENOSYS && errno != ESPIPE) {
		rc = -errno;
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		cs__blob_discard(rootfd, t);
	return rc;
}

int
cs__blob_sync(struct cs__blob_tmp *t)
{
	CS_FAILPOINT("blob-fsync");
	return cs__fsync(t->fd, 0) < 0 ? -errno : 0;
}

/* mkdir that reports whether it made the directory: 1 made, 0 there, or -errno. */
static int
make_dir(int rootfd, const char *dir)
{
	if (mkdirat(rootfd, dir, 0755) == 0)
		return 1;
	return errno == EEXIST ? 0 : -errno;
}

/* The bit of digest's directory objects/sha256/ab/cd in a fresh-directory map. */
static atomic_uchar *
fresh_byte(atomic_uchar *fresh, const uint8_t digest[32], unsigned char *bit)
{
	unsigned l = (unsigned)digest[0] << 8 | digest[1];

	*bit = (unsigned char)(1u << (l % 8));
	return &fresh[l / 8];
}

void
cs__blob_fresh_done(atomic_uchar *fresh, const uint8_t digest[32])
{
	unsigned char bit;
	atomic_uchar *b = fresh_byte(fresh, digest, &bit);

	(void)atomic_fetch_and(b, (unsigned char)~bit);
}

int
cs__blob_link(int rootfd, struct cs__blob_tmp *t, int intact, atomic_uchar *fresh,
    struct cs__blob_put *out, unsigned *dirs)
{
	unsigned char bit;
	atomic_uchar *fb = fresh_byte(fresh, t->digest, &bit);
	char path[CS_BLOB_PATH_MAX], hex[65], dir[64];
	int r, rc;

	memset(out, 0, sizeof(*out));
	memcpy(out->digest, t->digest, 32);
	out->size = t->size;
	*dirs = 0;
	cs__hex(t->digest, 32, hex);
	cs__blob_path(hex, path, sizeof(path));
	CS_FAILPOINT("blob-link");
	r = linkat(rootfd, t->path, rootfd, path, 0);
	if (r < 0 && errno == ENOENT) {
		/*
		 * Its fan-out directory is not there yet (the store makes only the
		 * first level ahead): made here, and the caller fsyncs each parent
		 * made along with the directory it links into.
		 */
		snprintf(dir, sizeof(dir), "objects/sha256/%.2s", hex);
		if ((rc = make_dir(rootfd, dir)) < 0)
			return rc;
		if (rc == 1)
			*dirs |= CS__BLOB_DIR_TOP;
		snprintf(dir, sizeof(dir), "objects/sha256/%.2s/%.2s", hex, hex + 2);
		(void)atomic_fetch_or(fb, bit); /* before it can exist */
		if ((rc = make_dir(rootfd, dir)) < 0)
			return rc;
		r = linkat(rootfd, t->path, rootfd, path, 0);
	}
	/* Made by this link or not, its entry in the parent may not be durable yet. */
	if ((r == 0 || errno == EEXIST) && (atomic_load(fb) & bit))
		*dirs |= CS__BLOB_DIR_MID;
	if (r == 0) {
		*dirs |= CS__BLOB_DIR_LEAF;
		return 0;
	}
	if (errno != EEXIST)
		return -errno;
	/* Linked by someone else: perhaps by a commit that has not made it durable yet. */
	if (!intact)
		*dirs |= CS__BLOB_DIR_LEAF;
	/*
	 * Same bytes stored before. Check the stored copy (unless the caller
	 * knows it intact: it linked it itself): if it was damaged, these
	 * verified bytes take its place, since the name is the digest of
	 * exactly these bytes.
	 */
	out->existed = 1;
	rc = intact ? 0 : cs__blob_check(rootfd, hex, t->size);
	if (rc == CS_EDIGEST) {
		CS_FAILPOINT("blob-repair");
		if (renameat(rootfd, t->path, rootfd, path) < 0)
			return -errno;
		out->repaired = 1;
		*dirs |= CS__BLOB_DIR_LEAF;
		rc = 0;
	}
	return rc;
}

int
cs__blob_there(int rootfd, const uint8_t digest[32])
{
	char path[CS_BLOB_PATH_MAX], hex[65];
	struct stat sb;

	cs__hex(digest, 32, hex);
	cs__blob_path(hex, path, sizeof(path));
	if (fstatat(rootfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	return errno == ENOENT ? CS_EPURGED : -errno;
}

int
cs__blob_fsync_dirs(int rootfd, const char *hex, unsigned dirs)
{
	char dir[64];
	int rc = 0;

	if (dirs & CS__BLOB_DIR_LEAF) {
		snprintf(dir, sizeof(dir), "objects/sha256/%.2s/%.2s", hex, hex + 2);
		rc = cs__fsync_dir(rootfd, dir);
	}
	if (rc == 0 && (dirs & CS__BLOB_DIR_MID)) {
		snprintf(dir, sizeof(dir), "objects/sha256/%.2s", hex);
		rc = cs__fsync_dir(rootfd, dir);
	}
	if (rc == 0 && (dirs & CS__BLOB_DIR_TOP))
		rc = cs__fsync_dir(rootfd, "objects/sha256");
	return rc;
}

void
cs__blob_discard(int rootfd, struct cs__blob_tmp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->path[0] != '\0')
		(void)unlinkat(rootfd, t->path, 0);
	t->path[0] = '\0';
}

int
cs__blob_put(int rootfd, int srcfd, atomic_uchar *fresh, struct cs__blob_put *out)
{
	struct cs__blob_tmp t;
	char hex[65];
	unsigned dirs;
	int rc;

	rc = cs__blob_stage(rootfd, srcfd, &t);
	if (rc < 0)
		return rc;
	rc = cs__blob_sync(&t);
	if (rc == 0)
		rc = cs__blob_link(rootfd, &t, 0, fresh, out, &dirs);
	cs__hex(t.digest, 32, hex);
	if (rc == 0)
		rc = cs__blob_fsync_dirs(rootfd, hex, dirs);
	if (rc == 0 && (dirs & CS__BLOB_DIR_MID))
		cs__blob_fresh_done(fresh, t.digest);
	cs__blob_discard(rootfd, &t);
	return rc;
}
