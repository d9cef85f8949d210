/*
 * The recorder rules of lib/recorder.c (custos/recorder.h), table by table:
 * file-name patterns checked, matching and not, with the fields they give;
 * a name's time in the recorders' zone; the clock offset at docking, behind,
 * ahead and decades off; sequence numbers too long to count; the gaps of
 * unsorted lists with duplicates; and the receipt body made of its parts.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "custos/recorder.h"
#include "tap.h"

#define DEFAULT_PATTERN "{device}_{officer}_{time}_{seq}.{ext}"
/* 2024-01-02T03:04:05Z */
#define T0 INT64_C(1704164645000)
#define DAY INT64_C(86400000)

static const struct {
	const char *pattern;
	int ok;
} checks[] = {
	{DEFAULT_PATTERN, 1},
	{"{device}-{seq}.mp4", 1},
	{"{any}_{time}.{ext}", 1},
	{"plain.mp4", 0},        /* no field */
	{"{device}{seq}.mp4", 0}, /* two fields side by side */
	{"{camera}_{seq}", 0},   /* unknown field */
	{"{device_{seq}", 0},    /* (reads as the unknown field "device_{seq") */
	{"{device}_{seq", 0},    /* unclosed */
};

static const struct {
	const char *pattern, *name;
	int match;
	const char *device, *officer, *time, *seq;
} matches[] = {
	{DEFAULT_PATTERN, "BWC01_P123_20240102030405_0007.mp4", 1, "BWC01", "P123",
	    "20240102030405", "0007"},
	/* a 13-digit time */
	{DEFAULT_PATTERN, "BWC01_P123_2024010203040_0007.mp4", 0, NULL, NULL, NULL, NULL},
	{DEFAULT_PATTERN, "BWC01_P123_2024010203040x_0007.mp4", 0, NULL, NULL, NULL, NULL},
	/* no sequence number */
	{DEFAULT_PATTERN, "BWC01_P123_20240102030405_.mp4", 0, NULL, NULL, NULL, NULL},
	{DEFAULT_PATTERN, "BWC01_P123_20240102030405_0007", 0, NULL, NULL, NULL,
	    NULL}, /* no extension */
	{DEFAULT_PATTERN, "notes.txt", 0, NULL, NULL, NULL, NULL},
	{DEFAULT_PATTERN, "", 0, NULL, NULL, NULL, NULL},
	{"{device}-{seq}.mp4", "A-12.mp4", 1, "A", "", "", "12"},
	{"{device}-{seq}.mp4", "A-12.mov", 0, NULL, NULL, NULL, NULL},
	{"{device}-{seq}.mp4", "A-12.mp4x", 0, NULL, NULL, NULL, NULL}, /* more after the pattern */
	{"{device}-{seq}.mp4", "-12.mp4", 0, NULL, NULL, NULL, NULL},   /* an empty field */
	{"{any}_{seq}.{ext}", "x_5.mp4", 1, "", "", "", "5"},
	{"{any}_{seq}.{ext}", "x_y_5.mp4", 0, NULL, NULL, NULL,
	    NULL}, /* {any} ends at the first '_' */
	{"{device}-{seq}.mp4", "D-123456789012345678901234567890.mp4", 1, "D", "", "",
	    "123456789012345678901234567890"},
	/* A device longer than its field is not taken, the name still matches. */
	{"{device}-{seq}.mp4",
	    "0123456789012345678901234567890123456789012345678901234567890123456789-1.mp4", 1, "",
	    "", "", "1"},
};

static const struct {
	const char *t;
	int offset_min;
	int rc;
	int64_t ms;
} times[] = {
	{"20240102030405", 0, 0, T0},
	{"20240102030405", 480, 0, T0 - 8 * 3600000},     /* UTC+8: earlier in UTC */
	{"20240102030405", -300, 0, T0 + 5 * 3600000},    /* UTC-5 */
	{"20240102030405", 345, 0, T0 - 345 * 60000},     /* UTC+5:45 */
	{"202401020304", 0, -1, 0},
	{"2024010203040x", 0, -1, 0},
	{"202401020304056", 0, -1, 0},
};

static const struct {
	const char *clock;
	int64_t docked_at;
	int rc;
	int64_t offset;
	int suspect;
} clocks[] = {
	{"2024-01-02T03:04:05Z", T0 + 1500, 0, 1500, 0},          /* recorder 1.5 s behind */
	{"2024-01-02T03:04:07Z", T0, 0, -2000, 0},                /* 2 s ahead: negative */
	{"2024-01-02T11:04:05+08:00", T0, 0, 0, 0},               /* its zone written */
	{"2024-01-01T22:04:05.250-05:00", T0, 0, 0, 0},           /* fractions are not counted */
	{"2023-01-02T03:04:05Z", T0, 0, 365 * DAY, 0},            /* a year exactly: not yet */
	{"2023-01-02T03:04:04.999Z", T0, 0, 365 * DAY + 1000, 1}, /* a year and 1 s behind */
	{"2000-01-01T00:00:00Z", T0, 0, T0 - INT64_C(946684800000), 1}, /* decades behind */
	{"2049-01-01T00:00:00Z", T0, 0, T0 - INT64_C(2493072000000), 1}, /* decades ahead */
	{"1970-01-01T00:00:00Z", T0, 0, T0, 1},                          /* reset to zero */
	{"yesterday", T0, -1, 0, 0},
	{"2024-01-02 03:04:05", T0, -1, 0, 0},
	{"2024-01-02T03:04:05", T0, -1, 0, 0},       /* no zone */
	{"2024-01-02T03:04:05+0800", T0, -1, 0, 0},  /* zone without ':' */
	{"2024-01-02T03:04:05Z trailing", T0, -1, 0, 0},
};

static const struct {
	const char *seq;
	int ok;
	long long v;
} seqs[] = {
	{"0007", 1, 7},
	{"0", 1, 0},
	{"999999999999999999", 1, 999999999999999999LL}, /* 18 digits */
	{"0000000000000000000000001", 1, 1},               /* leading zeros do not count */
	{"1000000000000000000", 0, 0},                     /* 19 digits */
	{"123456789012345678901234567890", 0, 0},
};

static const struct {
	const char *in, *all, *gaps; /* JSON */
} gaps[] = {
	{"[]", "[]", "[]"},
	{"[5]", "[5]", "[]"},
	{"[1, 2, 3]", "[1, 2, 3]", "[]"},
	{"[5, 1, 3, 3, 2]", "[1, 2, 3, 5]", "[[4, 4]]"},
	{"[10, 1]", "[1, 10]", "[[2, 9]]"},
	{"[7, 7, 7]", "[7]", "[]"},
	{"[9, 4, 1, 4, 20, 2]", "[1, 2, 4, 9, 20]", "[[3, 3], [5, 8], [10, 19]]"},
	{"[0, 999999999999999999]", "[0, 999999999999999999]", "[[1, 999999999999999998]]"},
};

static int
same_json(const json_t *got, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	int eq = w != NULL && json_equal(got, w);

	json_decref(w);
	return eq;
}

int
main(void)
{
	char err[256];

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		err[0] = '\0';
		int rc = cs_pattern_check(checks[i].pattern, err, sizeof(err));
		is_int(rc, checks[i].ok ? 0 : -1, "pattern check %s", checks[i].pattern);
		if (!checks[i].ok)
			ok(err[0] != '\0', "a refused pattern is named: %s", err);
	}

	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		struct cs_name_fields f;
		int m = cs_recorder_match(matches[i].pattern, matches[i].name, &f);
		is_int(m, matches[i].match, "%s %s %s", matches[i].pattern,
		    matches[i].match ? "matches" : "does not match", matches[i].name);
		if (!m || !matches[i].match)
			continue;
		ok(strcmp(f.device, matches[i].device) == 0, "device '%s'", f.device);
		ok(strcmp(f.officer, matches[i].officer) == 0, "officer '%s'", f.officer);
		ok(strcmp(f.time, matches[i].time) == 0, "time '%s'", f.time);
		ok(strcmp(f.seq, matches[i].seq) == 0, "seq '%s'", f.seq);
	}

	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		int64_t ms = -1;
		int rc = cs_recorder_name_time(times[i].t, times[i].offset_min, &ms);
		is_int(rc, times[i].rc, "name time %s at %+d min", times[i].t, times[i].offset_min);
		if (rc == 0)
			is_int(ms, times[i].ms, "  is %lld ms", (long long)times[i].ms);
	}

	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		int64_t off = 12345;
		int suspect = -1;
		int rc = cs_recorder_clock_offset(clocks[i].clock, clocks[i].docked_at, &off,
		    &suspect);
		is_int(rc, clocks[i].rc, "clock '%s'", clocks[i].clock);
		if (rc != 0)
			continue;
		is_int(off, clocks[i].offset, "  offset %lld ms", (long long)clocks[i].offset);
		is_int(suspect, clocks[i].suspect, "  %s",
		    clocks[i].suspect ? "suspect" : "trusted");
	}

	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		long long v = -1;
		int r = cs_recorder_seq_value(seqs[i].seq, &v);
		is_int(r, seqs[i].ok, "sequence number %s %s", seqs[i].seq,
		    seqs[i].ok ? "counted" : "kept as text");
		if (r)
			is_int(v, seqs[i].v, "  value %lld", seqs[i].v);
	}

	for (size_t i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		json_t *all = json_loads(gaps[i].in, 0, NULL), *g = json_array();
		int rc = cs_recorder_gaps(all, g);
		is_int(rc, 0, "gaps of %s", gaps[i].in);
		ok(same_json(all, gaps[i].all), "  numbers %s", gaps[i].all);
		ok(same_json(g, gaps[i].gaps), "  gaps %s", gaps[i].gaps);
		json_decref(all);
		json_decref(g);
	}

	{
		json_t *files = json_loads("[{\"path\": \"a.mp4\"}]", 0, NULL);
		json_t *g = json_loads("[[4, 4]]", 0, NULL);
		struct cs_receipt_parts p = {.session = "BWC01-20240102T030405.000Z",
		    .device = "BWC01", .model = "M1", .officer = "P123",
		    .docked_at = "2024-01-02T03:04:05.000Z",
		    .recorder_clock = "2000-01-01T00:00:00Z",
		    .clock_offset_ms = -42, .clock_suspect = 1, .files = files,
		    .sequence_gaps = g};
		json_t *r = cs_recorder_receipt(&p);
		ok(same_json(r, "{\"receipt\": \"custos dock receipt v1\", "
		                "\"session\": \"BWC01-20240102T030405.000Z\", \"device\": "
		                "\"BWC01\", \"model\": \"M1\", \"officer\": \"P123\", "
		                "\"docked_at\": \"2024-01-02T03:04:05.000Z\", "
		                "\"recorder_clock_at_docking\": \"2000-01-01T00:00:00Z\", "
		                "\"clock_offset_ms\": -42, \"clock_suspect\": true, "
		                "\"files\": [{\"path\": \"a.mp4\"}], \"release_policy\": "
		                "\"local\", \"sequence_gaps\": [[4, 4]]}"),
		    "receipt body from its parts");
		ok(r != NULL && json_object_get(r, "files") == files, "  the file list is shared");
		json_decref(r);
		json_decref(files);
		json_decref(g);
	}
	return tap_done();
}
