/*
 * Fuzzes recorder file-name patterns: cs_pattern_check (lib/recorder.c) on
 * any pattern, and cs_recorder_match (lib/recorder.c) on the patterns it
 * accepts with any file name. A property check goes with it: a name built
 * from an accepted pattern, with field values that do not contain the
 * literal that ends their field, matches and gives the values back.
 *
 * Input: pattern, NUL, file name, NUL, bytes that pick the field values.
 */
#include <string.h>

#include "custos/recorder.h"
#include "fuzz.h"

struct seed {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
next(struct seed *s)
{
	return s->n == 0 ? 0 : s->p[s->i++ % s->n];
}

static int
all_digits(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Builds a name from `pat`; the last value of each field goes to want. 0 if ambiguous. */
static int
build(const char *pat, struct seed *sd, char *name, size_t cap, struct cs_name_fields *want)
{
	size_t n = 0;

	memset(want, 0, sizeof(*want));
	while (*pat != '\0') {
		const char *close;
		char field[16], val[80], stop;
		size_t vlen, flen;

		if (*pat != '{') {
			if (n + 1 >= cap)
				return 0;
			name[n++] = *pat++;
			continue;
		}
		close = strchr(pat, '}');
		flen = (size_t)(close - pat - 1);
		snprintf(field, sizeof(field), "%.*s", (int)flen, pat + 1);
		stop = close[1];
		pat = close + 1;
		if (strcmp(field, "time") == 0) {
			vlen = 14;
			for (size_t i = 0; i < vlen; i++)
				val[i] = (char)('0' + next(sd) % 10);
		} else if (strcmp(field, "seq") == 0) {
			if (stop >= '0' && stop <= '9')
				return 0; /* "{seq}7": the digits run on; no name matches */
			vlen = 1 + next(sd) % 8;
			for (size_t i = 0; i < vlen; i++)
				val[i] = (char)('0' + next(sd) % 10);
		} else {
			vlen = 1 + next(sd) % 70;
			for (size_t i = 0; i < vlen; i++) {
				char c = (char)(next(sd) % 255 + 1);
				val[i] = c == stop ? 'x' : c;
			}
			if (stop == 'x')
				memset(val, 'y', vlen);
		}
		val[vlen] = '\0';
		if (n + vlen >= cap)
			return 0;
		memcpy(name + n, val, vlen);
		n += vlen;
		/* A field too long for its buffer is not taken; a repeated one: the last. */
		if (strcmp(field, "device") == 0 && vlen < sizeof(want->device)) {
			memset(want->device, 0, sizeof(want->device));
			memcpy(want->device, val, vlen);
		} else if (strcmp(field, "officer") == 0 && vlen < sizeof(want->officer)) {
			memset(want->officer, 0, sizeof(want->officer));
			memcpy(want->officer, val, vlen);
		} else if (strcmp(field, "time") == 0) {
			memcpy(want->time, val, vlen + 1);
		} else if (strcmp(field, "seq") == 0) {
			memset(want->seq, 0, sizeof(want->seq));
			memcpy(want->seq, val, vlen);
		}
	}
	name[n] = '\0';
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[3], err[256] = "", name[4096];
	struct cs_name_fields nf, want;
	struct seed sd = {0};
	size_t n;
	int rc;

	n = fuzz_split(data, size, f, 3);
	rc = cs_pattern_check(f[0], err, sizeof(err));
	CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));
	if (rc == 0 && n >= 2) {
		if (cs_recorder_match(f[0], f[1], &nf)) {
			CHECK(memchr(nf.device, 0, sizeof(nf.device)) != NULL);
			CHECK(memchr(nf.officer, 0, sizeof(nf.officer)) != NULL);
			CHECK(memchr(nf.seq, 0, sizeof(nf.seq)) != NULL && all_digits(nf.seq));
			CHECK(memchr(nf.time, 0, sizeof(nf.time)) != NULL && all_digits(nf.time));
			CHECK(nf.time[0] == '\0' || strlen(nf.time) == 14);
		}
	}
	if (rc == 0) {
		if (n == 3) {
			sd.p = (const uint8_t *)f[2];
			sd.n = strlen(f[2]);
		}
		if (build(f[0], &sd, name, sizeof(name), &want)) {
			int same;
			CHECK(cs_recorder_match(f[0], name, &nf) == 1);
			same = strcmp(nf.device, want.device) == 0 &&
			    strcmp(nf.officer, want.officer) == 0 &&
			    strcmp(nf.time, want.time) == 0 && strcmp(nf.seq, want.seq) == 0;
			if (!same)
				fprintf(stderr, "name '%s': got '%s' '%s' '%s' '%s', want '%s' '%s' "
				    "'%s' '%s' (device officer time seq)\n", name, nf.device, nf.officer,
				    nf.time, nf.seq, want.device, want.officer, want.time, want.seq);
			CHECK(same);
		}
	}
	fuzz_free_fields(f, n);
	return 0;
}
