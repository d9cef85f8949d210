/*
 * The withdrawal date's calendar (custos/disclosure.h): N calendar years in
 * China Standard Time, the same date and time of day; a 29 February with no
 * 29 February in the target year gives the 28th (民法典 art. 202), the
 * century rule of leap years holds, and a date past 9999 is refused. Then
 * the records through lib: due exactly at the withdrawal date (not a
 * millisecond before), revoked due at once, exempt never due, and a schema 8
 * catalog (before the disclosure table) rebuilt on open with the same list.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "custos/case.h"
#include "custos/disclosure.h"
#include "custos/error.h"
#include "store_internal.h"
#include "schema8.h"
#include "tap.h"
#include "util.h"

/* from + years == want (RFC 3339 times), printed when not. */
static int
adds(const char *from, unsigned years, const char *want)
{
	int64_t f, w, got = 0;
	char buf[32];
	int rc;

	if (cs__time_parse(from, &f) < 0 || cs__time_parse(want, &w) < 0)
		return 0;
	rc = cs_disclosure_add_years(f, years, &got);
	if (rc == 0 && got == w)
		return 1;
	cs__time_format(got, buf, sizeof(buf));
	printf("#   %s + %uy: rc %d, got %s, want %s\n", from, years, rc, buf, want);
	return 0;
}

static int64_t
ms_of(const char *t)
{
	int64_t ms = -1;

	cs__time_parse(t, &ms);
	return ms;
}

/* The cases of the records due at time `t`, joined by spaces, in buf. */
static const char *
due_at(struct cs_store *st, const char *t, char *buf, size_t n)
{
	json_t *due = NULL, *e;
	size_t i, len = 0;

	buf[0] = '\0';
	if (cs_disclosure_due(st, ms_of(t), &due) < 0)
		return "error";
	json_array_foreach(due, i, e)
		len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? " " : "",
		    json_string_value(json_object_get(e, "case")));
	json_decref(due);
	return buf;
}

static void
records(void)
{
	struct cs_case_info person = {NULL, NULL, NULL, "person"}, org = {NULL, NULL, NULL,
	    "organisation"};
	struct cs_access_who legal = {1004, "li", "legal"}, arch = {1001, "wang", "archivist"};
	struct cs_disclosure_pub pub = {"E〔1〕", "D〔1〕", NULL, 0, NULL, NULL, NULL};
	struct cs_disclosure_policy pol;
	char base[256], store[300], buf[256], *before = NULL, *after = NULL;
	const char *rule, *why;
	struct cs_store *st = NULL;
	json_t *list = NULL;
	uint64_t seq;

	cs_disclosure_policy_default(&pol);
	snprintf(base, sizeof(base), "%s/custos-test-disclosure.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return;
	snprintf(store, sizeof(store), "%s/store", base);
	ok(cs_store_init(store, "U1") == 0 &&
	        cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "a store");
	if (st == NULL)
		return;
	ok(cs_case_open(st, "E〔1〕", &person, NULL) == 0 &&
	        cs_case_open(st, "E〔2〕", &org, NULL) == 0 &&
	        cs_case_open(st, "E〔3〕", &person, NULL) == 0,
	    "three cases, a person's, an organisation's, a person's");
	pub.at_ms = ms_of("2024-02-29T10:00:00+08:00");
	is_int(cs_disclosure_publish(st, &pol, &arch, &pub, &seq, &rule, &why), CS_EDENIED,
	    "an archivist does not publish");
	ok(rule != NULL && strcmp(rule, CS_RULE_PUBLISHER) == 0, "... by rule publisher-role");
	is_int(cs_disclosure_publish(st, &pol, &legal, &pub, &seq, &rule, &why), 0,
	    "published on 29 February 2024");
	pub.number = "E〔2〕";
	is_int(cs_disclosure_publish(st, &pol, &legal, &pub, &seq, &rule, &why), 0,
	    "an organisation's, the same day");
	pub.number = "E〔3〕";
	pub.exempt = "privacy";
	pub.at_ms = 0;
	is_int(cs_disclosure_publish(st, &pol, &legal, &pub, &seq, &rule, &why), 0,
	    "an exempt one");
	pub.exempt = NULL;
	pub.number = "E[1]";
	is_int(cs_disclosure_publish(st, &pol, &legal, &pub, &seq, &rule, &why), CS_EEXIST,
	    "the first again (another bracket) is refused");
	pub.decision = "D〔2〕";
	pub.at_ms = cs_now_ms() + 60000;
	is_int(cs_disclosure_publish(st, &pol, &legal, &pub, &seq, &rule, &why), CS_EFORMAT,
	    "a publication time to come is refused");
	ok(strcmp(due_at(st, "2026-02-28T01:59:59.999Z", buf, sizeof(buf)), "") == 0,
	    "not due a millisecond before 2026-02-28T10:00+08:00 (%s)", buf);
	ok(strcmp(due_at(st, "2026-02-28T02:00:00Z", buf, sizeof(buf)), "E〔1〕") == 0,
	    "due at it (%s)", buf);
	ok(strcmp(due_at(st, "2029-02-28T01:59:59.999Z", buf, sizeof(buf)), "E〔1〕") == 0 &&
	        strcmp(due_at(st, "2029-02-28T02:00:00Z", buf, sizeof(buf)), "E〔1〕 E〔2〕") == 0,
	    "the organisation's at 5 years, the oldest first (%s)", buf);
	is_int(cs_disclosure_revoke(st, &pol, &legal, "E〔2〕", "D〔1〕", "撤销",
	           ms_of("2025-01-01T00:00:00Z"), &seq, &rule, &why),
	    0, "the organisation's decision revoked on 2025-01-01");
	ok(strcmp(due_at(st, "2025-01-01T00:00:00Z", buf, sizeof(buf)), "E〔2〕") == 0,
	    "revoked: due at once (%s)", buf);
	is_int(cs_disclosure_withdraw(st, &pol, &legal, "E〔3〕", "D〔1〕", &seq, &rule, &why),
	    CS_EFORMAT, "an exempt decision is not withdrawn");
	is_int(cs_disclosure_withdraw(st, &pol, &legal, "E〔2〕", "D〔1〕", &seq, &rule, &why), 0,
	    "the revoked one withdrawn");
	ok(strcmp(due_at(st, "2099-01-01T00:00:00Z", buf, sizeof(buf)), "E〔1〕") == 0,
	    "withdrawn and exempt are never due (%s)", buf);
	if (cs_disclosure_list(st, NULL, &list) == 0)
		before = json_dumps(list, JSON_SORT_KEYS);
	json_decref(list);
	list = NULL;
	is_int(make_schema8(st, 1), 0, "the catalog made schema 8 (the tables of 9 dropped)");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0 &&
	        cs_disclosure_list(st, NULL, &list) == 0 &&
	        (after = json_dumps(list, JSON_SORT_KEYS)) != NULL && before != NULL &&
	        strcmp(before, after) == 0,
	    "a schema 8 catalog is rebuilt on open: the same records");
	json_decref(list);
	ok(st != NULL && make_schema8(st, 0) == 0, "schema 8 written beside the disclosure table");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) < 0,
	    "... is damage, not an old catalog: the open fails");
	cs_store_close(st);
	free(before);
	free(after);
	tap_rm_rf(base);
}

int
main(void)
{
	int64_t ms, out;

	ok(adds("2024-03-01T00:00:00+08:00", 2, "2026-03-01T00:00:00+08:00"),
	    "a natural person's 2 years: the same date and time");
	ok(adds("2024-03-01T00:00:00+08:00", 5, "2029-03-01T00:00:00+08:00"),
	    "an organisation's 5 years");
	ok(adds("2024-02-29T00:00:00+08:00", 2, "2026-02-28T00:00:00+08:00"),
	    "published 2024-02-29 + 2y: 2026-02-28 (no 29 February in 2026)");
	ok(adds("2024-02-29T09:30:15.250+08:00", 5, "2029-02-28T09:30:15.250+08:00"),
	    "2024-02-29 + 5y: 2029-02-28, the time of day kept to the millisecond");
	ok(adds("2024-02-29T12:00:00+08:00", 4, "2028-02-29T12:00:00+08:00"),
	    "2024-02-29 + 4y: 2028-02-29 (a leap year)");
	ok(adds("2024-02-28T20:00:00Z", 2, "2026-02-27T20:00:00Z"),
	    "the date is China's: 2024-02-28T20:00Z is 29 February in UTC+08:00");
	ok(adds("2024-02-29T20:00:00Z", 2, "2026-02-28T20:00:00Z"),
	    "2024-02-29T20:00Z is 1 March in UTC+08:00: 1 March again");
	ok(adds("2023-12-31T23:59:59.999+08:00", 2, "2025-12-31T23:59:59.999+08:00"),
	    "the last millisecond of a year");
	ok(adds("2000-02-29T00:00:00+08:00", 100, "2100-02-28T00:00:00+08:00"),
	    "2100 is not a leap year");
	ok(adds("2000-02-29T00:00:00+08:00", 400, "2400-02-29T00:00:00+08:00"),
	    "2400 is one");
	ok(adds("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"), "0 years: the same time");
	ok(cs__time_parse("9998-06-01T00:00:00Z", &ms) == 0 &&
	        cs_disclosure_add_years(ms, 2, &out) == CS_EFORMAT,
	    "a date past the year 9999 is refused");
	records();
	return tap_done();
}
