/*
 * Unit tests of evidence metadata (lib/record.c): the canonical JSON an
 * event carries for a struct cs_meta, byte for byte (keys in sorted order,
 * stages by their canonical name whatever alias came in, times normalised to
 * UTC milliseconds); each kind of bad metadata refused with CS_EFORMAT and
 * the offending field named; the stage, text and station rules; and the
 * sidecar reader keeping the good fields and naming the bad.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/store.h"
#include "record.h"
#include "tap.h"

static const char *const two[] = {"O2", "O1"};
static const char *const bad_officer[] = {"O1", "bad\nofficer"};
static const char *const empty_officer[] = {""};

static void
test_canonical(void)
{
	static const struct {
		struct cs_meta m;
		const char *want;
	} cases[] = {
		{{0}, "{}"},
		{{.stage = "取证"}, "{\"stage\":\"取证\"}"},
		{{.stage = "filing"}, "{\"stage\":\"立案\"}"},
		{{.stage = "INVESTIGATION"}, "{\"stage\":\"调查\"}"},
		{{.stage = "Review"}, "{\"stage\":\"审查\"}"},
		{{.stage = "decision"}, "{\"stage\":\"决定\"}"},
		{{.stage = "service"}, "{\"stage\":\"送达\"}"},
		{{.stage = "enforcement"}, "{\"stage\":\"执行\"}"},
		{{.recorded_start = "2026-11-28T08:30:00+08:00"},
		    "{\"recorded_start\":\"2026-11-28T00:30:00.000Z\"}"},
		{{.recorded_start = "2026-11-28 08:30:00.5-01:30",
		     .recorded_end = "2026-11-28T10:00:00.500Z"},
		    "{\"recorded_end\":\"2026-11-28T10:00:00.500Z\","
		    "\"recorded_start\":\"2026-11-28T10:00:00.500Z\"}"},
		/* every field: keys sorted, officers in the order given */
		{{.source = "cli", .stage = "collection", .device = "DEV-1",
		     .recorded_end = "2026-01-01T00:00:01Z",
		     .recorded_start = "2026-01-01T00:00:00Z", .officers = two, .n_officers = 2,
		     .category = "行政处罚",
		     .case_no = "平司罚〔2020〕1号"},
		    "{\"case\":\"平司罚〔2020〕1号\",\"category\":\"行政处罚\","
		    "\"device\":\"DEV-1\","
		    "\"officers\":[\"O2\",\"O1\"],\"recorded_end\":\"2026-01-01T00:00:01.000Z\","
		    "\"recorded_start\":\"2026-01-01T00:00:00.000Z\",\"source\":\"cli\","
		    "\"stage\":\"取证\"}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *field = "untouched";
		json_t *o = NULL;
		char *got = NULL;
		size_t len = 0;
		int rc = cs__meta_json(&cases[i].m, &o, &field);

		if (rc == 0)
			got = cs__json_canonical(o, &len);
		ok(rc == 0 && got != NULL && strlen(cases[i].want) == len &&
		    memcmp(got, cases[i].want, len) == 0, "canonical %s (got %s)", cases[i].want,
		    got != NULL ? got : "an error");
		ok(strcmp(field, "untouched") == 0, "... and no field named");
		free(got);
		json_decref(o);
	}
}

static void
test_extra(void)
{
	json_t *extra = json_pack("{s:i, s:s}", "z", 1, "a", "x"), *o = NULL;
	struct cs_meta m = {.extra = extra, .device = "D"};
	char *got = NULL;
	size_t len;

	if (cs__meta_json(&m, &o, NULL) == 0)
		got = cs__json_canonical(o, &len);
	ok(got != NULL && strcmp(got, "{\"device\":\"D\",\"extra\":{\"a\":\"x\",\"z\":1}}") == 0,
	    "extra is kept as an object, its keys sorted too (%s)", got ? got : "error");
	free(got);
	json_decref(o);
	json_decref(extra);
}

static void
test_refusals(void)
{
	static char long_text[258], officer_text[258];
	static const char *many[65];
	static const struct {
		struct cs_meta m;
		const char *field;
	} cases[] = {
		{{.case_no = ""}, "case"},
		{{.case_no = "C\x01"}, "case"},
		{{.case_no = "C1\x7f"}, "case"},
		{{.category = "\xff\xfe"}, "category"},
		{{.category = "\xe5\x8f"}, "category"},
		{{.device = long_text}, "device"},
		{{.source = "line\nbreak"}, "source"},
		{{.stage = "午饭"}, "stage"},
		{{.stage = ""}, "stage"},
		{{.stage = "collect"}, "stage"},
		{{.recorded_start = "2026-11-28T08:30:00"}, "recorded_start"},
		{{.recorded_start = "2026-02-29T00:00:00Z"}, "recorded_start"},
		{{.recorded_end = "yesterday"}, "recorded_end"},
		{{.recorded_start = "2026-01-02T00:00:00Z", .recorded_end = "2026-01-01T23:59:59Z"},
		    "recorded_end"},
		{{.recorded_start = "2026-01-01T08:00:00+08:00",
		     .recorded_end = "2026-01-01T00:00:00.000Z"}, NULL},
		{{.officers = bad_officer, .n_officers = 2}, "officers"},
		{{.officers = empty_officer, .n_officers = 1}, "officers"},
		{{.officers = many, .n_officers = 65}, "officers"},
		{{.officers = many, .n_officers = 64}, NULL},
		{{.case_no = "C1", .stage = "bad", .device = ""}, "device"},
	};
	json_t *arr = json_array();

	memset(long_text, 'x', 257);
	memset(officer_text, 'o', 256);
	for (size_t i = 0; i < 65; i++)
		many[i] = officer_text;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *field = NULL;
		json_t *o = NULL;
		int rc = cs__meta_json(&cases[i].m, &o, &field);

		if (cases[i].field == NULL) {
			ok(rc == 0 && o != NULL, "case %zu accepted", i);
			json_decref(o);
			continue;
		}
		ok(rc == CS_EFORMAT && o == NULL && field != NULL &&
		    strcmp(field, cases[i].field) == 0, "case %zu refused naming '%s' (got %s)", i,
		    cases[i].field, field != NULL ? field : "none");
		field = NULL;
		ok(cs_meta_check(&cases[i].m, &field) == CS_EFORMAT && field != NULL &&
		    strcmp(field, cases[i].field) == 0, "case %zu: cs_meta_check agrees", i);
	}
	{
		json_t *o = NULL;
		struct cs_meta m = {.extra = arr};
		const char *field = NULL;
		ok(cs__meta_json(&m, &o, &field) == CS_EFORMAT && strcmp(field, "extra") == 0,
		    "extra that is not an object: refused naming 'extra'");
	}
	json_decref(arr);
	long_text[256] = '\0';
	ok(cs__text_ok(long_text), "256 bytes of text are allowed");
	long_text[256] = 'x';
	ok(!cs__text_ok(long_text), "257 are not");
	ok(!cs__text_ok(NULL), "NULL is not text");
}

static void
test_stages(void)
{
	static const struct {
		const char *in, *canon;
		int rank;
	} cases[] = {
		{"立案", "立案", 0},
		{"Filing", "立案", 0},
		{"调查", "调查", 1},
		{"取证", "取证", 2},
		{"COLLECTION", "取证", 2},
		{"审查", "审查", 3},
		{"决定", "决定", 4},
		{"送达", "送达", 5},
		{"执行", "执行", 6},
		{"enforcement", "执行", 6},
		{"执行 ", NULL, 7},
		{"collection2", NULL, 7},
		{NULL, NULL, 7},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *c = cs__stage_canon(cases[i].in);
		const char *in = cases[i].in != NULL ? cases[i].in : "(null)";
		int same = cases[i].canon == NULL ? c == NULL :
		    (c != NULL && strcmp(c, cases[i].canon) == 0);
		ok(same, "stage '%s' -> %s", in, cases[i].canon != NULL ? cases[i].canon : "none");
		is_int(cs__stage_rank(c), cases[i].rank, "rank of '%s'", in);
		if (c != NULL)
			ok(strcmp(cs_stage_name(cases[i].rank), c) == 0, "cs_stage_name(%d)",
			    cases[i].rank);
	}
	ok(cs_stage_name(7) == NULL && cs_stage_name(-1) == NULL, "no stage 7 or -1");
}

static void
test_station(void)
{
	static const struct {
		const char *s;
		int valid;
	} cases[] = {
		{"U1", 1},
		{"a.b_c-D9", 1},
		{"12345678901234567890123456789012", 1},
		{"123456789012345678901234567890123", 0},
		{"", 0},
		{"a b", 0},
		{"a/b", 0},
		{"站", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(cs__station_valid(cases[i].s), cases[i].valid, "station '%s'", cases[i].s);
}

static void
test_sidecar(void)
{
	static const struct {
		const char *json;
		const char *want;     /* canonical metadata kept */
		const char *problems; /* substring of the problems, "" for none */
	} cases[] = {
		{"{\"case\":\"C1\",\"stage\":\"review\"}",
		    "{\"case\":\"C1\",\"stage\":\"审查\"}", ""},
		{"{\"case\":\"C1\",\"stage\":\"lunch\"}", "{\"case\":\"C1\"}",
		    "field 'stage' is invalid and was left out"},
		{"{\"device\":7,\"case\":\"C1\"}", "{\"case\":\"C1\"}",
		    "field 'device' is a number, not a string"},
		{"{\"colour\":\"red\"}", "{}", "unknown field 'colour' was ignored"},
		{"{\"officers\":[\"A\",\"B\"]}", "{\"officers\":[\"A\",\"B\"]}", ""},
		{"{\"officers\":[\"A\",1]}", "{}", "field 'officers' holds a number"},
		{"{\"recorded_start\":\"2026-01-02T00:00:00Z\","
		 "\"recorded_end\":\"2026-01-01T00:00:00Z\"}",
		    "{\"recorded_start\":\"2026-01-02T00:00:00.000Z\"}",
		    "field 'recorded_end' is invalid"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *officers[64];
		struct cs_meta m = {0};
		char problems[512];
		json_t *side = json_loads(cases[i].json, 0, NULL), *o = NULL;
		char *got = NULL;
		size_t len;
		int rc = cs_meta_from_sidecar(side, &m, officers, problems, sizeof(problems));

		if (rc == 0 && cs__meta_json(&m, &o, NULL) == 0)
			got = cs__json_canonical(o, &len);
		ok(got != NULL && strcmp(got, cases[i].want) == 0, "sidecar %s keeps %s (got %s)",
		    cases[i].json, cases[i].want, got != NULL ? got : "an error");
		ok(cases[i].problems[0] == '\0' ? problems[0] == '\0' :
		    strstr(problems, cases[i].problems) != NULL, "... problems: '%s'", problems);
		free(got);
		json_decref(o);
		json_decref(side);
	}
}

int
main(void)
{
	test_canonical();
	test_extra();
	test_refusals();
	test_stages();
	test_station();
	test_sidecar();
	return tap_done();
}
