/*
 * Helpers shared by the libFuzzer targets in tests/fuzz/: an invariant check
 * that aborts (so libFuzzer records the input), and splitting of one fuzz
 * input into NUL-terminated fields. Every target includes this header only.
 */
#ifndef CUSTOS_FUZZ_H
#define CUSTOS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant the code under test promises; a violation is a finding. */
#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			    #cond);                                                          \
			abort();                                                             \
		}                                                                            \
	} while (0)

/*
 * Splits data at NUL bytes into at most `max` malloc'd NUL-terminated
 * strings (the last one keeps any further NULs cut off at the first).
 * Returns the number of fields; free them with fuzz_free_fields.
 */
static inline size_t
fuzz_split(const uint8_t *data, size_t size, char **fields, size_t max)
{
	size_t n = 0, start = 0;

	while (n < max) {
		const uint8_t *nul = memchr(data + start, 0, size - start);
		size_t end = nul != NULL && n + 1 < max ? (size_t)(nul - data) : size;
		size_t len = end - start;
		char *f = malloc(len + 1);

		if (f == NULL)
			abort();
		memcpy(f, data + start, len);
		f[len] = '\0';
		fields[n++] = f;
		if (end >= size)
			break;
		start = end + 1;
	}
	return n;
}

static inline void
fuzz_free_fields(char **fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fields[i]);
}

#endif
