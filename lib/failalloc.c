/*
 * Allocation failures injected into one library (OpenSSL or libuv) for the
 * out-of-memory sweep: the counting shared by every hook, and OpenSSL's hook.
 * Test builds only (see custos/failpoint.h); nothing here allocates, so that a
 * hook may run while every allocation fails.
 */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/failpoint.h"

static char which[16];       /* CUSTOS_OOM_LIB */
static unsigned long fail_at; /* CUSTOS_OOM_AT */
static int persist;
static const char *report_path, *count_path;
static atomic_ulong calls;

/* Writes "<what><n>\n" to `path` with open(2) and write(2): no allocation. */
static void
write_number(const char *path, const char *what, unsigned long n)
{
	char buf[64];
	int len, fd;

	if (path == NULL)
		return;
	len = snprintf(buf, sizeof(buf), "%s%lu\n", what, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, buf, (size_t)len);
		(void)w;
		close(fd);
	}
}

int
cs__failalloc_fail(void)
{
	unsigned long n = atomic_fetch_add(&calls, 1) + 1;

	if (fail_at == 0 || n < fail_at)
		return 0;
	if (n == fail_at) {
		write_number(report_path, "hit ", n);
		return 1;
	}
	return persist;
}

int
cs__failalloc_wanted(const char *lib)
{
	return which[0] != '\0' && strcmp(which, lib) == 0;
}

__attribute__((destructor)) static void
write_count(void)
{
	if (which[0] != '\0')
		write_number(count_path, "", atomic_load(&calls));
}

/* OpenSSL's hooks: its file and line are not needed. */
static void *
crypto_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	if (n == 0) /* what OPENSSL_malloc(0) gives without a hook */
		return NULL;
	return cs__failalloc_fail() ? NULL : malloc(n);
}

static void *
crypto_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	if (n == 0) { /* OPENSSL_realloc(p, 0) frees p */
		free(p);
		return NULL;
	}
	return cs__failalloc_fail() ? NULL : realloc(p, n);
}

static void
crypto_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

int
cs__failalloc_init(void)
{
	const char *lib = getenv("CUSTOS_OOM_LIB"), *s;

	if (lib == NULL || lib[0] == '\0')
		return 0;
	if (strcmp(lib, "uv") != 0 && strcmp(lib, "crypto") != 0) {
		fprintf(stderr, "CUSTOS_OOM_LIB=%s: not uv or crypto\n", lib);
		return -1;
	}
	snprintf(which, sizeof(which), "%s", lib);
	s = getenv("CUSTOS_OOM_AT");
	fail_at = s != NULL ? strtoul(s, NULL, 10) : 0;
	s = getenv("CUSTOS_OOM_MODE");
	persist = s != NULL && strcmp(s, "persist") == 0;
	report_path = getenv("CUSTOS_OOM_REPORT");
	count_path = getenv("CUSTOS_OOM_COUNT");
	if (strcmp(lib, "crypto") == 0 &&
	    !CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free)) {
		fprintf(stderr, "CUSTOS_OOM_LIB=crypto: OpenSSL allocated before its hook was "
		                "installed\n");
		return -1;
	}
	return 0;
}
