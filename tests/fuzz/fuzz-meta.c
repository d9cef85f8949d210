/*
 * Fuzzes evidence metadata validation (cs_meta_check, cs__meta_json), the
 * RFC 3339 parser, the UTF-8 check and the form of names in records, all of
 * which see bytes from sidecars, recorders and the command line.
 *
 * Input: one flags byte (bit i set: field i is absent), then NUL-separated
 * fields: case, category, stage, device, recorded_start, recorded_end,
 * source, then up to 70 officers.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/store.h"
#include "fuzz.h"
#include "record.h"
#include "util.h"

#define NFIELDS 7
#define MAX_OFFICERS 70

/*
 * An independent reading of "clean text": well-formed UTF-8 by the table
 * of the Unicode Standard (3.9, table 3-7), no C0 or C1 control, no DEL.
 */
static int
ref_clean(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = s[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t n;
		uint32_t cp;

		if (b < 0x80) {
			if (b < 0x20 || b == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			n = 1;
		else if (b >= 0xe0 && b <= 0xef)
			n = 2;
		else if (b >= 0xf0 && b <= 0xf4)
			n = 3;
		else
			return 0;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		cp = n == 1 ? (uint32_t)(b & 0x1f) << 6 | (s[i + 1] & 0x3f) : 0x800;
		if (cp >= 0x80 && cp < 0xa0)
			return 0;
		i += n + 1;
	}
	return 1;
}

static void
check_time(const char *s)
{
	char buf[32], again[32];
	int64_t ms, ms2;

	if (cs__time_parse(s, &ms) < 0)
		return;
	/* Accepted times lie in 1970..9999 UTC, so their stored form parses again. */
	CHECK(ms >= 0 && ms <= INT64_C(253402300799999));
	cs__time_format(ms, buf, sizeof(buf));
	CHECK(strlen(buf) == 24);
	CHECK(cs__time_parse(buf, &ms2) == 0 && ms2 == ms);
	cs__time_format(ms2, again, sizeof(again));
	CHECK(strcmp(buf, again) == 0);
}

static void
check_name(const char *s)
{
	json_t *j = json_object();
	const char *v;
	char *got = NULL;
	size_t len = 0;

	CHECK(j != NULL && cs_name_json_set(j, "name", s, strlen(s)) == 0);
	v = json_string_value(json_object_get(j, "name"));
	CHECK(v != NULL && strlen(v) <= 4 * strlen(s));
	CHECK(cs__utf8_clean(v, strlen(v)));
	CHECK(cs_name_json_get(j, "name", &got, &len) == 0 && len == strlen(s) &&
	    memcmp(got, s, len) == 0);
	free(got);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[NFIELDS + MAX_OFFICERS];
	const char *field = NULL, *v[NFIELDS];
	struct cs_meta m;
	json_t *o = NULL;
	size_t n;
	unsigned flags;
	int rc;

	CHECK(cs__utf8_clean((const char *)data, size) == ref_clean(data, size));
	if (size == 0)
		return 0;
	flags = data[0];
	n = fuzz_split(data + 1, size - 1, f, NFIELDS + MAX_OFFICERS);
	for (size_t i = 0; i < NFIELDS; i++)
		v[i] = i < n && !(flags & 1u << i) ? f[i] : NULL;
	memset(&m, 0, sizeof(m));
	m.case_no = v[0];
	m.category = v[1];
	m.stage = v[2];
	m.device = v[3];
	m.recorded_start = v[4];
	m.recorded_end = v[5];
	m.source = v[6];
	m.officers = (const char *const *)(f + NFIELDS);
	m.n_officers = n > NFIELDS ? n - NFIELDS : 0;

	rc = cs_meta_check(&m, &field);
	CHECK(rc == 0 || rc == CS_EFORMAT || rc == -ENOMEM);
	if (rc == CS_EFORMAT)
		CHECK(field != NULL);
	rc = cs__meta_json(&m, &o, &field);
	if (rc == 0) {
		char *dump = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		const char *t = json_string_value(json_object_get(o, "recorded_start"));
		const char *u = json_string_value(json_object_get(o, "recorded_end"));
		int64_t ms;
		CHECK(dump != NULL);
		free(dump);
		/* Stored times are normalised: they parse again, and end >= start. */
		CHECK(t == NULL || cs__time_parse(t, &ms) == 0);
		CHECK(u == NULL || cs__time_parse(u, &ms) == 0);
		CHECK(t == NULL || u == NULL || strcmp(t, u) <= 0);
		json_decref(o);
	}

	for (size_t i = 0; i < n; i++) {
		check_time(f[i]);
		check_name(f[i]);
		CHECK(cs__utf8_clean(f[i], strlen(f[i])) ==
		    ref_clean((const unsigned char *)f[i], strlen(f[i])));
	}
	fuzz_free_fields(f, n);
	return 0;
}
