/*
 * failmalloc: an LD_PRELOAD interposer that makes the Nth memory allocation of
 * a process fail, for the out-of-memory sweep (tests/reliability/oom.sh).
 *
 *   FAILMALLOC_AT=N        fail the Nth counted allocation (1-based); unset or
 *                          0: count only, never fail
 *   FAILMALLOC_SIZE=S      count only allocations of exactly S bytes (so that
 *                          FAILMALLOC_AT=N fails the Nth of those): aims at
 *                          one allocation of a known size deep in a long run
 *   FAILMALLOC_MODE=once   fail only the Nth call (default)
 *   FAILMALLOC_MODE=persist  fail the Nth call and every later one
 *   FAILMALLOC_REPORT=FILE when the Nth call is reached, "hit N" is written to
 *                          FILE (created; written with write(2), no malloc), so
 *                          the caller knows the failure was injected; a run
 *                          that leaves no FILE completed with fewer than N
 *                          allocations, which ends the sweep
 *   FAILMALLOC_COUNT=FILE  at exit, the number of counted calls is written
 *                          to FILE (only if the process exits normally)
 *   FAILMALLOC_TRACE=1     print a backtrace on stderr at the Nth call
 *   FAILMALLOC_SIGTRACE=1  on SIGABRT, SIGSEGV or SIGBUS print "failmalloc:
 *                          signal N" and a backtrace on stderr before dying
 *                          of it: tells whose abort() it was (libuv aborts
 *                          on some allocation failures); the backtrace
 *                          machinery is loaded before main(), uncounted
 *   FAILMALLOC_NEXT=1      forward to the next malloc in the lookup order
 *                          (dlsym(RTLD_NEXT)) instead of glibc's __libc_*
 *                          functions: for the sanitizer build, where the
 *                          interposer is preloaded ahead of libasan so that
 *                          LeakSanitizer still sees every allocation
 *
 * Counted: malloc, calloc, realloc (not realloc(p, 0), which frees),
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * strdup, strndup. glibc calls malloc through the interposable symbol, so
 * allocations inside libc (fopen, opendir, getline, ...) and inside every
 * library (jansson, LMDB, OpenSSL) are counted and can fail too. Counting
 * starts with the first call after the library is loaded, i.e. it includes
 * the few allocations made by the dynamic loader's initialisers and by the
 * libraries' constructors before main().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
void *memalign(size_t, size_t);
void *pvalloc(size_t);

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void *(*next_memalign)(size_t, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void (*next_free)(void *);

static atomic_ulong calls;
static unsigned long fail_at;
static size_t only_size; /* FAILMALLOC_SIZE: count only allocations of this size (0: all) */
static int persist, trace, initialised, use_next;
static const char *report_path, *count_path;

/* While dlsym() resolves the next allocator it may itself allocate: those
 * requests are served from this buffer and never freed. */
static _Alignas(64) char boot_buf[64 << 10];
static atomic_size_t boot_used;
static int in_init; /* no TLS: the loader may call malloc before TLS works */
static int quiet;   /* while the constructor primes backtrace(): not counted */

static int
in_boot(const void *p)
{
	return (const char *)p >= boot_buf && (const char *)p < boot_buf + sizeof(boot_buf);
}

static void *
boot_alloc(size_t n)
{
	size_t off = atomic_fetch_add(&boot_used, (n + 63) & ~(size_t)63);

	if (off + n > sizeof(boot_buf))
		return NULL;
	return boot_buf + off;
}

static void
next_sym(const char *name, void *fnp, size_t size)
{
	void *p = dlsym(RTLD_NEXT, name);

	memcpy(fnp, &p, size);
}

/*
 * The first allocation can come from the dynamic loader or a library's
 * initialiser, before libc has set up environ: read the settings from
 * /proc/self/environ instead (with read(2), into static memory).
 */
static char env_buf[64 << 10];
static size_t env_len;

static const char *
env(const char *name)
{
	size_t n = strlen(name);

	if (env_len == 0) {
		int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
		ssize_t r;
		if (fd < 0)
			return NULL;
		while (env_len < sizeof(env_buf) - 1 &&
		    (r = read(fd, env_buf + env_len, sizeof(env_buf) - 1 - env_len)) > 0)
			env_len += (size_t)r;
		close(fd);
		env_buf[env_len] = '\0';
	}
	for (size_t i = 0; i < env_len; i += strlen(env_buf + i) + 1)
		if (strncmp(env_buf + i, name, n) == 0 && env_buf[i + n] == '=')
			return env_buf + i + n + 1;
	return NULL;
}

static void
init(void)
{
	const char *s;

	if (initialised || in_init)
		return;
	in_init = 1;
	s = env("FAILMALLOC_NEXT");
	use_next = s != NULL && *s == '1';
	if (use_next) {
		/* ISO C has no object-to-function pointer cast: copy the bits */
		next_sym("malloc", &next_malloc, sizeof(next_malloc));
		next_sym("calloc", &next_calloc, sizeof(next_calloc));
		next_sym("realloc", &next_realloc, sizeof(next_realloc));
		next_sym("memalign", &next_memalign, sizeof(next_memalign));
		next_sym("posix_memalign", &next_posix_memalign, sizeof(next_posix_memalign));
		next_sym("free", &next_free, sizeof(next_free));
	}
	if (next_malloc == NULL || next_calloc == NULL || next_realloc == NULL ||
	    next_memalign == NULL || next_free == NULL) {
		use_next = 0;
		next_malloc = __libc_malloc;
		next_calloc = __libc_calloc;
		next_realloc = __libc_realloc;
		next_memalign = __libc_memalign;
		next_posix_memalign = NULL;
		next_free = __libc_free;
	}
	s = env("FAILMALLOC_AT");
	fail_at = s != NULL ? strtoul(s, NULL, 10) : 0;
	s = env("FAILMALLOC_SIZE");
	only_size = s != NULL ? (size_t)strtoul(s, NULL, 10) : 0;
	s = env("FAILMALLOC_MODE");
	persist = s != NULL && strcmp(s, "persist") == 0;
	s = env("FAILMALLOC_TRACE");
	trace = s != NULL && *s == '1';
	report_path = env("FAILMALLOC_REPORT");
	count_path = env("FAILMALLOC_COUNT");
	initialised = 1;
	in_init = 0;
}

static void
write_file(const char *path, const char *what, unsigned long n)
{
	char buf[64], tmp[24];
	size_t len = strlen(what), k = 0;
	int fd;

	if (path == NULL)
		return;
	memcpy(buf, what, len);
	do {
		tmp[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	while (k > 0)
		buf[len++] = tmp[--k];
	buf[len++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, buf, len);
		(void)w;
		close(fd);
	}
}

/* Counts one allocation of `size` bytes; returns 1 if it is to fail. */
static int
should_fail(size_t size)
{
	unsigned long n;

	if (in_init || quiet || (only_size != 0 && size != only_size))
		return 0;
	n = atomic_fetch_add(&calls, 1) + 1;
	if (fail_at == 0 || n < fail_at)
		return 0;
	if (n == fail_at) {
		write_file(report_path, "hit ", n);
		if (trace) {
			void *bt[64];
			int k;
			static const char msg[] = "failmalloc: failing this allocation:\n";
			ssize_t w = write(2, msg, sizeof(msg) - 1);
			(void)w;
			/* backtrace() may allocate on its first call: it is past N now */
			k = backtrace(bt, 64);
			backtrace_symbols_fd(bt, k, 2);
		}
		return 1;
	}
	return persist;
}

static void
on_fatal_signal(int sig)
{
	static const char msg[] = "failmalloc: signal ";
	char num[4] = {(char)('0' + sig / 10), (char)('0' + sig % 10), '\n', 0};
	void *bt[64];
	int k;
	ssize_t w;

	w = write(2, msg, sizeof(msg) - 1);
	w = write(2, num, 3);
	(void)w;
	k = backtrace(bt, 64);
	backtrace_symbols_fd(bt, k, 2);
	raise(sig); /* SA_RESETHAND: the default action now */
}

/* Before main(), single-threaded: prime backtrace() (it loads libgcc_s, allocating). */
__attribute__((constructor)) static void
sigtrace_setup(void)
{
	static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS};
	struct sigaction sa;
	const char *s = env("FAILMALLOC_SIGTRACE");
	void *bt[4];

	if (s == NULL || *s != '1')
		return;
	quiet = 1;
	(void)backtrace(bt, 4);
	quiet = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;
		/* not over a handler of the sanitizers' own */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
		    !(old.sa_flags & SA_SIGINFO))
			sigaction(sigs[i], &sa, NULL);
	}
}

__attribute__((destructor)) static void
at_exit_count(void)
{
	if (initialised)
		write_file(count_path, "", atomic_load(&calls));
}

void *
malloc(size_t n)
{
	if (!initialised) {
		init();
		if (!initialised)
			return boot_alloc(n);
	}
	if (should_fail(n)) {
		errno = ENOMEM;
		return NULL;
	}
	return next_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	if (!initialised) {
		init();
		if (!initialised) {
			size_t n;
			if (__builtin_mul_overflow(a, b, &n))
				return NULL;
			return boot_alloc(n); /* static memory is zeroed */
		}
	}
	if (should_fail(a * b)) {
		errno = ENOMEM;
		return NULL;
	}
	return next_calloc(a, b);
}

void
free(void *p)
{
	if (p == NULL || in_boot(p))
		return;
	if (!initialised)
		init();
	next_free(p);
}

void *
realloc(void *p, size_t n)
{
	if (!initialised)
		init();
	if (p != NULL && in_boot(p)) {
		size_t room = (size_t)(boot_buf + sizeof(boot_buf) - (char *)p);
		void *q = malloc(n);
		if (q != NULL) /* the old size is unknown: copy what can have been used */
			memcpy(q, p, n < room ? n : room);
		return q;
	}
	if (p != NULL && n == 0)
		return next_realloc(p, 0);
	if (should_fail(n)) {
		errno = ENOMEM;
		return NULL;
	}
	return next_realloc(p, n);
}

void *
reallocarray(void *p, size_t a, size_t b)
{
	size_t n;

	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

static void *
aligned(size_t al, size_t n)
{
	if (!initialised)
		init();
	if (should_fail(n))
		return NULL;
	return next_memalign(al, n);
}

int
posix_memalign(void **out, size_t al, size_t n)
{
	void *p;

	if (al < sizeof(void *) || (al & (al - 1)) != 0)
		return EINVAL;
	if (!initialised)
		init();
	if (use_next && next_posix_memalign != NULL) {
		if (should_fail(n))
			return ENOMEM;
		return next_posix_memalign(out, al, n);
	}
	p = aligned(al, n);
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

void *
aligned_alloc(size_t al, size_t n)
{
	void *p = aligned(al, n);

	if (p == NULL)
		errno = ENOMEM;
	return p;
}

void *
memalign(size_t al, size_t n)
{
	void *p = aligned(al, n);

	if (p == NULL)
		errno = ENOMEM;
	return p;
}

void *
valloc(size_t n)
{
	return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *
pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return memalign(pg, (n + pg - 1) & ~(pg - 1));
}

char *
strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *
strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}
