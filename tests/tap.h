/*
 * A minimal TAP producer for custos's unit tests: ok(), is_int(), done().
 * Each test program prints "1..N" at the end (plan at the end is valid TAP).
 */
#ifndef CS_TEST_TAP_H
#define CS_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                               \
	do {                                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);                     \
		if (!tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                      \
			printf("#   got %lld, want %lld\n", g_, w_);                             \
	} while (0)

__attribute__((format(printf, 4, 5), unused)) static int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!pass)
		tap_failed++;
	printf("%sok %d - ", pass ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass)
		printf("#   at %s:%d\n", file, line);
	return pass;
}

/* Removes a test's scratch directory; one that cannot be removed is said. */
__attribute__((unused)) static void
tap_rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

__attribute__((unused)) static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
