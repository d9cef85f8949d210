/*
 * Retention policy in lib (custos/retention.h): a class line of the config
 * parsed or refused with the problem named; and cs_retention_compute on a
 * small store: a sealed case counts from its seal, an item in two cases
 * waits for the open one, a use in a decision blocks until it is undone, a
 * hold until it is released, and an item in no case falls under a class
 * counting from recording only. A catalog of schema 8 (no holds table) is
 * rebuilt on open, its holds remade from the ledger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/retention.h"
#include "custos/store.h"
#include "store_internal.h"
#include "schema8.h"
#include "tap.h"

#define DAY (86400LL * 1000)

static int
parse(const char *v, struct cs_retention_class *c, char *why)
{
	int rc;

	c->category = NULL;
	why[0] = '\0';
	rc = cs_retention_class_parse(v, c, why, 200);
	return rc;
}

static void
bad(const char *v, const char *want)
{
	struct cs_retention_class c;
	char why[200];
	int rc = parse(v, &c, why);

	is_int(rc, CS_EFORMAT, "refused: '%s'", v);
	ok(strstr(why, want) != NULL, "... saying '%s' (%s)", want, why);
	if (rc == 0)
		free((char *)c.category);
}

static int
ingest(struct cs_store *st, const char *dir, const char *name, const char *case_no, char id[80])
{
	char path[512];
	struct cs_meta m = {0};
	struct cs_ingest_result r;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "bytes of %s\n", name);
	fclose(f);
	m.case_no = case_no;
	rc = cs_store_ingest_path(st, path, &m, &r);
	if (rc == 0)
		memcpy(id, r.id, 80);
	return rc;
}

/* "due", "blocked" ids of a compute at `now`, as "id,id," strings; the blocked whys. */
static void
compute(struct cs_store *st, const struct cs_retention_policy *p, int64_t now, char *due,
    char *blocked, char *why)
{
	json_t *out = NULL, *it;
	size_t i;

	due[0] = blocked[0] = why[0] = '\0';
	if (cs_retention_compute(st, p, now, &out) < 0) {
		strcpy(due, "error");
		return;
	}
	json_array_foreach(json_object_get(out, "due"), i, it)
		strcat(strcat(due, json_string_value(json_object_get(it, "id"))), ",");
	json_array_foreach(json_object_get(out, "blocked"), i, it)
	{
		strcat(strcat(blocked, json_string_value(json_object_get(it, "id"))), ",");
		strcat(strcat(why, json_string_value(json_object_get(it, "why"))), "|");
	}
	json_decref(out);
}

int
main(void)
{
	struct cs_retention_class c, cls[2];
	struct cs_retention_policy p;
	struct cs_access_who legal = {1004, "li", "legal"}, arch = {1001, "arch", "archivist"};
	char why[200], base[256], store[300], a[80], b[80], n[80], due[512], blk[512], whys[1024];
	char want[256];
	const char *rule, *what;
	uint64_t seq, hold;
	struct cs_store *st = NULL;
	json_t *ids = NULL, *holds = NULL;
	int64_t now;

	ok(parse("period=5y from=closure category=行政处罚", &c, why) == 0 &&
	        c.period_ms == 5 * 365 * DAY && c.from == CS_FROM_CLOSURE &&
	        c.category != NULL && strcmp(c.category, "行政处罚") == 0,
	    "5 years from closure, of a category");
	free((char *)c.category);
	ok(parse("  from=recording   period=90d ", &c, why) == 0 && c.period_ms == 90 * DAY &&
	        c.from == CS_FROM_RECORDING && c.category == NULL,
	    "90 days from recording, any category, in any order");
	ok(parse("period=permanent from=closure", &c, why) == 0 && c.period_ms < 0,
	    "permanent: kept for ever");
	bad("period=5 from=closure", "period must be");
	bad("period=0y from=closure", "period must be");
	bad("period=y from=closure", "period must be");
	bad("period=1001y from=closure", "period must be");
	bad("period=5m from=closure", "period must be");
	bad("period=5y", "needs from=");
	bad("from=closure", "needs period=");
	bad("", "needs period=");
	bad("period=5y from=opening", "from must be closure or recording");
	bad("period=5y from=closure period=1y", "given twice");
	bad("period=5y from=closure colour=red", "'colour' is not a class setting");
	bad("period=5y from=closure category", "not key=value");
	bad("period=5y from=closure category=", "not key=value");

	/* ---- compute ---- */
	cs_retention_policy_default(&p);
	cls[0] = (struct cs_retention_class){"penalty", NULL, 365 * DAY, CS_FROM_CLOSURE};
	cls[1] = (struct cs_retention_class){"raw", NULL, 730 * DAY, CS_FROM_RECORDING};
	snprintf(base, sizeof(base), "%s/custos-test-retention.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return 2;
	snprintf(store, sizeof(store), "%s/store", base);
	ok(cs_store_init(store, "U1") == 0, "init");
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0, "open writer");
	ok(ingest(st, base, "a", "E1", a) == 0 && ingest(st, base, "b", "E1", b) == 0 &&
	        ingest(st, base, "n", NULL, n) == 0,
	    "a and b in E1, n in no case");
	ok(cs_case_add(st, "E2", b, "取证", NULL, &seq, &what) != 0, "E2 is not open yet");
	ok(cs_case_open(st, "E2", NULL, &seq) == 0 &&
	        cs_case_add(st, "E2", b, "取证", NULL, &seq, &what) == 0,
	    "b also in E2");
	now = cs_now_ms();
	p.classes = cls;
	p.n_classes = 1;
	compute(st, &p, now + 3650 * DAY, due, blk, whys);
	snprintf(want, sizeof(want), "%s,", n);
	ok(strcmp(due, "") == 0 && strcmp(blk, want) == 0 &&
	        strstr(whys, "no retention class counting from recording") != NULL,
	    "open cases: nothing due; the item in no case has no class (%s | %s | %s)", due,
	    blk, whys);
	ok(cs_case_seal(st, "E1", "archived", &seq) == 0, "E1 sealed without a close");
	compute(st, &p, now + 366 * DAY, due, blk, whys);
	snprintf(want, sizeof(want), "%s,", a);
	ok(strcmp(due, want) == 0, "a year after its seal a is due (%s)", due);
	snprintf(want, sizeof(want), "%s,%s,", b, n);
	ok(strcmp(blk, want) == 0 && strstr(whys, "case E2 is open") != NULL,
	    "b waits for open E2 (%s | %s)", blk, whys);
	compute(st, &p, now + 364 * DAY, due, blk, whys);
	ok(strcmp(due, "") == 0, "a day before, nothing (%s)", due);
	p.n_classes = 2;
	compute(st, &p, now + 366 * DAY, due, blk, whys);
	ok(strcmp(due, "") == 0, "with a longer class counting from recording, a waits (%s)", due);
	compute(st, &p, now + 731 * DAY, due, blk, whys);
	snprintf(want, sizeof(want), "%s,%s,", a, n);
	ok(strcmp(due, want) == 0, "... until it is over; n too, under it (%s)", due);

	is_int(cs_retention_mark_used(st, &p, &arch, a, "E1", 1, "decision", &seq, &rule, &what),
	    CS_EDENIED, "an archivist does not mark evidence used");
	ok(rule != NULL && strcmp(rule, CS_RULE_HOLDER) == 0, "... rule %s", CS_RULE_HOLDER);
	is_int(cs_retention_mark_used(st, &p, &legal, a, "E2", 1, "decision", &seq, &rule, &what),
	    CS_ENOTFOUND, "a is not in E2: not marked used there");
	ok(cs_retention_mark_used(st, &p, &legal, a, "E1", 1, "decision", &seq, &rule, &what) == 0,
	    "legal marks a used in E1's decision");
	compute(st, &p, now + 731 * DAY, due, blk, whys);
	ok(strstr(blk, a) != NULL && strstr(whys, "used as evidence in a decision of case E1"),
	    "a is blocked, used (%s)", whys);
	ok(cs_retention_mark_used(st, &p, &legal, a, "E1", 0, "entered by mistake", &seq, &rule,
	       &what) == 0,
	    "the mark undone");
	compute(st, &p, now + 731 * DAY, due, blk, whys);
	ok(strstr(due, a) != NULL, "a is due again (%s)", due);

	is_int(cs_hold_add(st, &p, &arch, "E1", NULL, "x", &hold, &rule, &what), CS_EDENIED,
	    "an archivist does not hold");
	is_int(cs_hold_add(st, &p, &legal, "E1", NULL, "", &hold, &rule, &what), CS_EFORMAT,
	    "a hold without a reason");
	is_int(cs_hold_add(st, &p, &legal, NULL, "U1-nosuch", "x", &hold, &rule, &what),
	    CS_ENOTFOUND, "a hold on an unknown item");
	ok(what != NULL && strcmp(what, "item") == 0, "... names the item");
	ok(cs_hold_add(st, &p, &legal, "E1", NULL, "court order", &hold, &rule, &what) == 0,
	    "E1 held");
	ok(cs_hold_items(st, hold, &ids) == 0 && json_array_size(ids) == 2, "the hold covers 2");
	json_decref(ids);
	compute(st, &p, now + 731 * DAY, due, blk, whys);
	snprintf(want, sizeof(want), "%s,", n);
	ok(strcmp(due, want) == 0 && strstr(whys, "held by hold") != NULL &&
	        strstr(whys, "court order") != NULL,
	    "a is held (%s | %s)", due, whys);
	ok(cs_hold_release(st, &p, &legal, hold, "order lifted", &seq, &rule, &what) == 0,
	    "released");
	is_int(cs_hold_release(st, &p, &legal, hold, "again", &seq, &rule, &what), CS_EEXIST,
	    "released once only");
	ok(cs_hold_items(st, hold, &ids) == 0 && json_array_size(ids) == 0,
	    "a released hold covers nothing");
	json_decref(ids);
	ok(cs_hold_list(st, 0, &holds) == 0 && json_array_size(holds) == 0, "none in force");
	json_decref(holds);
	ok(cs_hold_list(st, 1, &holds) == 0 && json_array_size(holds) == 1 &&
	        json_object_get(json_array_get(holds, 0), "released") != NULL,
	    "--all: the released one");
	json_decref(holds);
	compute(st, &p, now + 731 * DAY, due, blk, whys);
	ok(strstr(due, a) != NULL, "a is due after the release (%s)", due);
	ok(cs_hold_add(st, &p, &legal, NULL, b, "appeal", &hold, &rule, &what) == 0, "b held");

	is_int(make_schema8(st, 1), 0, "the catalog made schema 8 (the tables of 9 dropped)");
	cs_store_close(st);
	st = NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0, "a schema 8 catalog opens");
	ok(st != NULL && cs_hold_list(st, 1, &holds) == 0 && json_array_size(holds) == 2,
	    "... rebuilt: both holds are back");
	json_decref(holds);
	holds = NULL;
	ok(st != NULL && cs_hold_list(st, 0, &holds) == 0 && json_array_size(holds) == 1,
	    "... the one in force too");
	json_decref(holds);
	if (st != NULL)
		compute(st, &p, now + 731 * DAY, due, blk, whys);
	ok(st != NULL && strstr(blk, b) != NULL && strstr(whys, "held by hold") != NULL &&
	        strstr(due, a) != NULL,
	    "... and b is held, a due (%s | %s)", due, whys);
	ok(st != NULL && cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL) == 0,
	    "verify (a replay compared with the catalog) finds no problem");

	cs_store_close(st);
	tap_rm_rf(base);
	return tap_done();
}
