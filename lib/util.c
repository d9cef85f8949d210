/*
 * Durable file operations, hex, time and UTF-8 helpers for lib/. Every
 * function returns 0 or a negative errno / CS_E* code and never prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/store.h"
#include "util.h"

int
cs__write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
cs__pread_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Set for good by the first failed fsync of the process (cs__fsync_failed). */
static atomic_int fsync_failed;

int
cs__fsync(int fd, int data_only)
{
	int r = data_only ? fdatasync(fd) : fsync(fd);

	if (r < 0 && errno != EINTR && errno != EINVAL && errno != EROFS) {
		int e = errno;
		atomic_store(&fsync_failed, 1);
		errno = e;
	}
	return r;
}

int
cs__fsync_failed(void)
{
	return atomic_load(&fsync_failed);
}

int
cs__fsync_dir(int dirfd, const char *path)
{
	int fd = dirfd;
	int rc = 0;

	if (path != NULL) {
		fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	CS_FAILPOINT("fsync-dir");
	if (cs__fsync(fd, 0) < 0)
		rc = -errno;
	if (path != NULL)
		close(fd);
	return rc;
}

int
cs__mkdir_durable(int dirfd, const char *path, mode_t mode)
{
	char parent[4096];
	const char *slash;

	if (mkdirat(dirfd, path, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	slash = strrchr(path, '/');
	if (slash == NULL)
		return cs__fsync_dir(dirfd, NULL);
	if ((size_t)(slash - path) >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	return cs__fsync_dir(dirfd, parent[0] ? parent : "/");
}

int
cs__read_file(int dirfd, const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	ssize_t n;
	int fd, rc;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = CS_ENOTREG;
		goto out;
	}
	if ((uint64_t)sb.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n = cs__pread_all(fd, buf, (size_t)sb.st_size, 0);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	if (len != NULL)
		*len = (size_t)n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* fsyncs the directory that holds `name` (relative to dirfd). */
static int
fsync_parent(int dirfd, const char *name)
{
	const char *slash = strrchr(name, '/');
	char dir[512];

	if (slash == NULL)
		return cs__fsync_dir(dirfd, NULL);
	if ((size_t)(slash - name) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, name, (size_t)(slash - name));
	dir[slash - name] = '\0';
	return cs__fsync_dir(dirfd, dir[0] ? dir : "/");
}

static int
write_temp(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, char *tmp,
    size_t tmpn)
{
	int fd, rc;

	const char *slash = strrchr(name, '/');
	int dirlen = slash != NULL ? (int)(slash - name + 1) : 0;

	/* The temp file sits in the final name's directory: same filesystem. */
	snprintf(tmp, tmpn, "%.*s.%s.tmp-%ld", dirlen, name, name + dirlen, (long)getpid());
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	CS_FAILPOINT("write");
	rc = cs__write_all(fd, buf, len);
	if (rc == 0 && fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc == 0) {
		CS_FAILPOINT("fsync");
		if (cs__fsync(fd, 0) < 0)
			rc = -errno;
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		(void)unlinkat(dirfd, tmp, 0);
	return rc;
}

int
cs__write_file_new(int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	char tmp[512];
	int rc;

	rc = write_temp(dirfd, name, buf, len, mode, tmp, sizeof(tmp));
	if (rc < 0)
		return rc;
	CS_FAILPOINT("link");
	if (linkat(dirfd, tmp, dirfd, name, 0) < 0) {
		rc = errno == EEXIST ? CS_EEXIST : -errno;
		(void)unlinkat(dirfd, tmp, 0);
		return rc;
	}
	(void)unlinkat(dirfd, tmp, 0);
	return fsync_parent(dirfd, name);
}

int
cs__write_file_replace(int dirfd, const char *name, const void *buf, size_t len, mode_t mode)
{
	char tmp[512];
	int rc;

	rc = write_temp(dirfd, name, buf, len, mode, tmp, sizeof(tmp));
	if (rc < 0)
		return rc;
	CS_FAILPOINT("rename");
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		(void)unlinkat(dirfd, tmp, 0);
		return rc;
	}
	return fsync_parent(dirfd, name);
}

void
cs__hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
cs__unhex(const char *in, size_t len, uint8_t *out)
{
	if (len % 2 != 0)
		return CS_EFORMAT;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return CS_EFORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

#ifdef CS_FAILPOINTS
/*
 * The test clock, in the test builds only (custos-failpoint,
 * custosd-failpoint; never installed): $CUSTOS_TEST_CLOCK names a file that
 * holds an RFC 3339 time T; the clock reads T at the moment the file was
 * last written and runs on from there at real speed, so retention tests
 * travel years by rewriting the file, without sleeping. Read on every call.
 */
static int64_t
test_clock(int64_t real)
{
	const char *path = getenv("CUSTOS_TEST_CLOCK");
	static int warned;
	char buf[64];
	struct stat sb;
	int64_t t;
	ssize_t n;
	int fd;

	if (path == NULL || path[0] == '\0')
		return real;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 && fstat(fd, &sb) == 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	if (n > 0)
		buf[n] = '\0';
	if (n <= 0 || cs__time_parse(buf, &t) != 0) {
		if (!warned++)
			fprintf(stderr, "custos: CUSTOS_TEST_CLOCK=%s holds no RFC 3339 time; "
			    "using the real clock\n", path);
		return real;
	}
	return t + (real - ((int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000));
}
#endif

int64_t
cs__now_ms(void)
{
	struct timespec ts;
	int64_t real;

	clock_gettime(CLOCK_REALTIME, &ts);
	real = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#ifdef CS_FAILPOINTS
	real = test_clock(real);
#endif
	return real;
}

int64_t
cs_now_ms(void)
{
	return cs__now_ms();
}

void
cs__time_format(int64_t ms, char *buf, size_t n)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int
digits(const char **p, int count, int *val)
{
	int v = 0;

	for (int i = 0; i < count; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += count;
	*val = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 ? 28 + leap : mdays[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
cs__time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0, sign = 0;
	const char *p = s;
	int64_t t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return CS_EFORMAT;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return CS_EFORMAT;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return CS_EFORMAT;
	if (*p == '.') {
		int n = 0;
		p++;
		if (*p < '0' || *p > '9')
			return CS_EFORMAT;
		while (*p >= '0' && *p <= '9') {
			if (n < 3)
				frac = frac * 10 + (*p - '0');
			n++;
			p++;
		}
		for (; n < 3; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return CS_EFORMAT;
	} else {
		return CS_EFORMAT;
	}
	if (*p != '\0')
		return CS_EFORMAT;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return CS_EFORMAT;
	if (sec == 60)
		sec = 59; /* a leap second is kept inside its minute */
	t = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
	        sign * (oh * 3600 + om * 60)) * 1000 + frac;
	/* In UTC too, 1970 to 9999: cs__time_format's form of it must parse again. */
	if (t < 0 || t > INT64_C(253402300799999)) /* 9999-12-31T23:59:59.999Z */
		return CS_EFORMAT;
	*ms = t;
	return 0;
}

int
cs__utf8_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return 0;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(end - p) <= n)
			return 0;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
			return 0;
		p += n + 1;
	}
	return 1;
}

#ifdef CS_FAILPOINTS
/* custosd reaches its crash points from several threads. */
static pthread_once_t failpoint_once = PTHREAD_ONCE_INIT;
static long failpoint_crash_at;
static int failpoint_trace;

static void
failpoint_init(void)
{
	const char *v = getenv("CUSTOS_CRASH_AT");

	failpoint_crash_at = v != NULL ? strtol(v, NULL, 10) : 0;
	failpoint_trace = getenv("CUSTOS_CRASH_TRACE") != NULL;
}

void
cs__failpoint(const char *name)
{
	static atomic_long counter;
	long n;

	pthread_once(&failpoint_once, failpoint_init);
	n = atomic_fetch_add(&counter, 1) + 1;
	if (failpoint_trace)
		fprintf(stderr, "failpoint %ld %s\n", n, name);
	if (failpoint_crash_at > 0 && n == failpoint_crash_at)
		_exit(99);
}

void
cs__failpark(const char *name)
{
	const char *at = getenv("CUSTOS_PARK_AT"), *f = getenv("CUSTOS_PARK_FILE");
	char parked[4096];
	int fd;

	if (at == NULL || f == NULL || strcmp(at, name) != 0)
		return;
	snprintf(parked, sizeof(parked), "%s.parked", f);
	fd = open(parked, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	while (access(f, F_OK) < 0)
		usleep(20000);
}

void
cs__failnote(const char *name, long n)
{
	pthread_once(&failpoint_once, failpoint_init);
	if (failpoint_trace)
		fprintf(stderr, "failnote %ld %s\n", n, name);
}
#endif
