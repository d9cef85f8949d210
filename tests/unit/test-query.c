/*
 * Queries, the officer registry and the yearly figures through lib, on a
 * store of 100,000 items (tests/unit/query-items.h): every answer is
 * checked against a count made from the items' formulas, not from the
 * catalog. Also the RFC 4180 parser (custos/csv.h) case by case, the
 * officer import's refusals (line and field named, nothing imported), the
 * flags of recordings by unknown or expired officers, and paging. Every
 * query's listings (cs_store_list) are compared with its records, and the
 * listing table is checked after a rebuild, through verify, and on upgrade.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/csv.h"
#include "custos/custody.h"
#include "custos/error.h"
#include "custos/officer.h"
#include "custos/query.h"
#include "custos/store.h"
#include "custos/verify.h"
#include "query-items.h"
#include "tap.h"
#include "util.h"

#define N 100000UL

/* ---- CSV ---- */

struct rows {
	char buf[1024];
	size_t nrows;
	size_t lines[8];
};

/* Joins the fields of each record with '|' and records with '/' into r->buf. */
static int
join_row(void *ctx, size_t line, char *const *f, size_t n)
{
	struct rows *r = ctx;

	if (r->nrows < 8)
		r->lines[r->nrows] = line;
	r->nrows++;
	for (size_t i = 0; i < n; i++) {
		strncat(r->buf, f[i], sizeof(r->buf) - strlen(r->buf) - 1);
		strncat(r->buf, i + 1 < n ? "|" : "/", sizeof(r->buf) - strlen(r->buf) - 1);
	}
	return 0;
}

static void
test_csv(void)
{
	static const struct {
		const char *in, *want;
		size_t line, field; /* of the error, when want is NULL */
	} cases[] = {
	    {"a,b,c\r\n1,2,3\r\n", "a|b|c/1|2|3/", 0, 0},
	    {"a,b\n1,2", "a|b/1|2/", 0, 0},
	    {"\xEF\xBB\xBFname,x\n", "name|x/", 0, 0},
	    {"\"a,b\",\"say \"\"hi\"\"\"\n", "a,b|say \"hi\"/", 0, 0},
	    {"\"two\nlines\",x\ny,z\n", "two\nlines|x/y|z/", 0, 0},
	    {",,\n", "||/", 0, 0},
	    {"a\n\nb\n", "a/b/", 0, 0},
	    {"\"平司罚〔2020〕1号\",张三\n", "平司罚〔2020〕1号|张三/", 0, 0},
	    {"a,\"open\n", NULL, 1, 2},
	    {"a,b\nx,y\"z\n", NULL, 2, 2},
	    {"\"a\"b,c\n", NULL, 1, 1},
	    {"a\n\"x\ny\nz\",\"q\"w\n", NULL, 4, 2},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rows r = {.nrows = 0};
		struct cs_csv_error err = {0, 0, NULL};
		int rc = cs_csv_parse(cases[i].in, strlen(cases[i].in), join_row, &r, &err);
		if (cases[i].want != NULL) {
			ok(rc == 0 && strcmp(r.buf, cases[i].want) == 0, "csv case %zu parses", i);
		} else {
			ok(rc == CS_EFORMAT && err.line == cases[i].line &&
			        err.field == cases[i].field && err.why != NULL,
			    "csv case %zu refused at line %zu field %zu (got %zu, %zu: %s)", i,
			    cases[i].line, cases[i].field, err.line, err.field,
			    err.why ? err.why : "-");
		}
	}
}

/* ---- queries ---- */

static size_t
count_ids(json_t *arr, json_t *want_set)
{
	size_t n = 0, i;
	json_t *r;

	json_array_foreach(arr, i,
	    r) if (json_object_get(want_set, json_string_value(json_object_get(r, "id")))) n++;
	return n;
}

static int
same_str(const char *a, const json_t *b)
{
	const char *t = json_string_value(b);

	return (a == NULL && t == NULL) || (a != NULL && t != NULL && strcmp(a, t) == 0);
}

/* 1 if listing l has record rec's fields (as find prints them), flags included. */
static int
listing_is_record(const struct cs_listing *l, json_t *rec)
{
	static const char *const f[] = {"id", "sha256", "name", "recorded_start", "ingested_at",
		"device", "category"};
	const char *v[] = {l->id, l->sha256, l->name, l->recorded_start, l->ingested_at,
		l->device, l->category};
	json_t *offs = json_object_get(rec, "officers"), *cases = json_object_get(rec, "cases");
	json_t *flags = json_object_get(rec, "flags");

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!same_str(v[i], json_object_get(rec, f[i])))
			return 0;
	if (l->size != json_integer_value(json_object_get(rec, "size")) ||
	    l->n_officers != json_array_size(offs) || l->n_cases != json_array_size(cases) ||
	    l->n_flags != json_array_size(flags))
		return 0;
	for (size_t i = 0; i < l->n_officers; i++)
		if (!same_str(l->officers[i], json_array_get(offs, i)))
			return 0;
	for (size_t i = 0; i < l->n_cases; i++) {
		json_t *m = json_array_get(cases, i);
		if (!same_str(l->cases[i].key, json_object_get(m, "key")) ||
		    !same_str(l->cases[i].number, json_object_get(m, "case")) ||
		    !same_str(l->cases[i].stage, json_object_get(m, "stage")))
			return 0;
	}
	for (size_t i = 0; i < l->n_flags; i++)
		if (!same_str(l->flags[i], json_object_get(json_array_get(flags, i), "flag")))
			return 0;
	return 1;
}

/* 1 if q's listings are its records' fields, item by item in the same order. */
static int
listings_are_records(struct cs_store *st, const struct cs_query *q, size_t *n)
{
	struct cs_list *l = NULL;
	json_t *page = NULL, *items;
	int same = cs_store_list(st, q, &l) == 0 && cs_store_find_page(st, q, &page) == 0;

	items = json_object_get(page, "items");
	same = same && l->n == json_array_size(items) &&
	    l->total == (uint64_t)json_integer_value(json_object_get(page, "total"));
	for (size_t i = 0; same && i < l->n; i++)
		same = listing_is_record(&l->items[i], json_array_get(items, i));
	*n = l != NULL ? l->n : 0;
	cs_list_free(l);
	json_decref(page);
	return same;
}

/* Runs q; checks the answer is exactly the ids i < N for which want(i) holds. */
static void
check_query(struct cs_store *st, const struct cs_query *q, int (*want)(unsigned long, void *),
    void *arg, const char *what)
{
	json_t *res = NULL, *set = json_object();
	size_t expect = 0;
	int rc = cs_store_find(st, q, &res);

	for (unsigned long i = 0; i < N; i++)
		if (want(i, arg)) {
			char id[32];
			qi_id(i, id, sizeof(id));
			json_object_set_new(set, id, json_true());
			expect++;
		}
	ok(rc == 0 && json_array_size(res) == expect && count_ids(res, set) == expect,
	    "%s: %zu items, each one wanted (want %zu)", what, json_array_size(res), expect);
	ok(listings_are_records(st, q, &expect), "%s: the %zu listings are the records' fields",
	    what, expect);
	json_decref(res);
	json_decref(set);
}

struct casew {
	int year;
	int family;         /* 0 平司罚, 1 宁司检 */
	const char *prefix; /* digits the number starts with, or NULL for exact */
	unsigned long num;
};

static int
want_case(unsigned long i, void *arg)
{
	const struct casew *w = arg;
	char digits[24];

	if (2020 + (int)(i % 2) != w->year || (i % 3 == 2) != w->family)
		return 0;
	if (w->prefix == NULL)
		return qi_case_num(i) == w->num;
	snprintf(digits, sizeof(digits), "%lu", qi_case_num(i));
	return strncmp(digits, w->prefix, strlen(w->prefix)) == 0;
}

static int
want_none(unsigned long i, void *arg)
{
	(void)i;
	(void)arg;
	return 0;
}

static int
want_officer_stage(unsigned long i, void *arg)
{
	(void)arg;
	return i % 500 == 123 && strcmp(qi_stage(i), "审查") == 0;
}

static int
want_category_device(unsigned long i, void *arg)
{
	(void)arg;
	return strcmp(qi_category(i), "行政检查") == 0 && (i / 7) % 100 == 42;
}

static int
want_stage(unsigned long i, void *arg)
{
	(void)arg;
	return strcmp(qi_stage(i), "送达") == 0;
}

static void
test_queries(struct cs_store *st)
{
	struct casew w = {2020, 0, NULL, 7};
	struct cs_query q = {.case_no = "平司罚〔2020〕7号"};

	check_query(st, &q, want_case, &w, "case 平司罚〔2020〕7号 exact");
	q.case_exact = 1;
	check_query(st, &q, want_case, &w, "case 平司罚〔2020〕7号 --exact, as first written");
	q = (struct cs_query){.case_no = "平司罚［２０２０］７号"};
	check_query(st, &q, want_case, &w, "case 平司罚［２０２０］７号 (canonical)");
	q.case_exact = 1;
	check_query(st, &q, want_none, NULL, "--exact with another spelling finds none");
	w = (struct casew){2021, 1, NULL, 999};
	q = (struct cs_query){.case_no = "宁司检〔2021〕999号"};
	check_query(st, &q, want_case, &w, "case 宁司检〔2021〕999号 (written [2021])");
	q = (struct cs_query){.case_no = "宁司检〔2021〕1000号"};
	check_query(st, &q, want_none, NULL, "a number no item has finds none");
	w = (struct casew){2020, 0, "7", 0};
	q = (struct cs_query){.case_prefix = "平司罚〔2020〕7"};
	check_query(st, &q, want_case, &w, "prefix 平司罚〔2020〕7 (7, 70-79, 700-799)");
	w = (struct casew){2021, 1, "", 0};
	q = (struct cs_query){.case_prefix = "宁司检【2021】"};
	check_query(st, &q, want_case, &w, "prefix 宁司检【2021】 (every number)");
	w = (struct casew){2021, 0, "12", 0};
	q = (struct cs_query){.case_prefix = "平司罚[2021]12"};
	check_query(st, &q, want_case, &w, "prefix 平司罚[2021]12");
	q = (struct cs_query){.officer = "3301-0123", .stage = "review"};
	check_query(st, &q, want_officer_stage, NULL, "officer 3301-0123 at stage review (审查)");
	q = (struct cs_query){.category = "行政检查", .device = "BWC-042"};
	check_query(st, &q, want_category_device, NULL, "category 行政检查 and device BWC-042");
	q = (struct cs_query){.stage = "送达"};
	check_query(st, &q, want_stage, NULL, "stage 送达 alone (its index)");
	q = (struct cs_query){.stage = "no-such-stage"};
	{
		json_t *res = NULL;
		is_int(cs_store_find(st, &q, &res), CS_EFORMAT, "an unknown stage is refused");
	}
}

/* Pages through a prefix query (374 items) 7 at a time, by -time: all of it, in order, once. */
static void
test_paging(struct cs_store *st)
{
	struct cs_query q = {.case_prefix = "平司罚〔2021〕12", .sort = "-time", .limit = 7};
	json_t *all = NULL, *seen = json_object();
	char *after = NULL, last[64] = "~";
	size_t total = 0, pages = 0;
	int rc, in_order = 1, dup = 0;

	rc = cs_store_find(st, &(struct cs_query){.case_prefix = "平司罚〔2021〕12"}, &all);
	for (;;) {
		json_t *page = NULL, *r;
		size_t i;
		q.after = after;
		rc = cs_store_find_page(st, &q, &page);
		if (rc != 0)
			break;
		pages++;
		json_array_foreach(json_object_get(page, "items"), i, r)
		{
			const char *id = json_string_value(json_object_get(r, "id"));
			const char *t = json_string_value(json_object_get(r, "recorded_start"));
			if (json_object_get(seen, id) != NULL)
				dup = 1;
			json_object_set_new(seen, id, json_true());
			if (strcmp(t, last) > 0)
				in_order = 0;
			snprintf(last, sizeof(last), "%s", t);
			total++;
		}
		free(after);
		after = json_object_get(page, "next") != NULL
		    ? strdup(json_string_value(json_object_get(page, "next")))
		    : NULL;
		json_decref(page);
		if (after == NULL)
			break;
	}
	ok(rc == 0 && total == json_array_size(all) && !dup && in_order,
	    "paging 7 at a time by -time: %zu of %zu items in %zu pages, each once, in order",
	    total, json_array_size(all), pages);
	{
		json_t *page = NULL;
		q.after = "zz";
		is_int(cs_store_find_page(st, &q, &page), CS_EFORMAT, "a malformed cursor refused");
		q.after = NULL;
		q.sort = "colour";
		is_int(cs_store_find_page(st, &q, &page), CS_EFORMAT, "an unknown sort refused");
	}
	free(after);
	json_decref(all);
	json_decref(seen);
}

/* ---- officers and flags ---- */

static void
test_import_errors(struct cs_store *st)
{
	static const struct {
		const char *csv;
		size_t line;
		const char *field;
	} bad[] = {
	    {"name,certificate,valid_from,valid_to\nA,1,2020-01-01,2030-01-01\nB,2,2020-13-01,\n",
	        3, "valid_from"},
	    {"name,certificate,valid_from\nA,1,2020-01-01\n", 1, "valid_to"},
	    {"name,certificate,valid_from,valid_to\n,1,2020-01-01,\n", 2, "name"},
	    {"name,certificate,valid_from,valid_to\nA,1,2020-01-01,\nB,1,2021-01-01,\n", 3,
	        "certificate"},
	    {"name,certificate,valid_from,valid_to\nA,1,2020-01-01,2019-12-31\n", 2, "valid_to"},
	    {"name,certificate,valid_from,valid_to\nA,1,2020-01-01\n", 2, "valid_to"},
	    {"name,certificate,valid_from,valid_to,colour\n", 1, NULL},
	    {"name,certificate,valid_from,valid_to\n\"A,1,2020-01-01,\n", 2, NULL},
	    {"name,certificate,valid_from,valid_to\n", 0, NULL},
	};
	json_t *list = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cs_officer_error err;
		size_t count = 99;
		int rc = cs_officers_import(st, bad[i].csv, strlen(bad[i].csv), &count, &err);
		ok(rc == CS_EFORMAT && count == 0 && err.line == bad[i].line && err.why != NULL &&
		        (bad[i].field == NULL
		                ? err.field == NULL
		                : err.field != NULL && strcmp(err.field, bad[i].field) == 0),
		    "bad officer file %zu refused at line %zu field %s (got line %zu field %s: %s)",
		    i, bad[i].line, bad[i].field ? bad[i].field : "-", err.line,
		    err.field ? err.field : "-", err.why ? err.why : "-");
	}
	ok(cs_store_officers(st, &list) == 0 && json_array_size(list) == 0,
	    "nothing imported from the refused files");
	json_decref(list);
}

/* Officers 3301-0000 … 0449 (0450 … 0499 unknown); those i % 50 == 7 expired end of 2023. */
static int
officer_flagged(unsigned long i)
{
	unsigned long o = i % 500;

	return o >= 450 || (o % 50 == 7 && qi_year(i) == 2024);
}

static void
import_officers(struct cs_store *st)
{
	size_t cap = 450 * 80 + 64, off = 0, count = 0;
	char *csv = malloc(cap);
	struct cs_officer_error err;
	int rc;

	off += (size_t)snprintf(csv + off, cap - off, "姓名,单位,执法证号,有效期起,有效期止\r\n");
	for (unsigned long o = 0; o < 450; o++)
		off += (size_t)snprintf(csv + off, cap - off,
		    "\"Officer %lu\",一队,3301-%04lu,"
		    "2020-01-01,%s\r\n",
		    o, o, o % 50 == 7 ? "2023-12-31" : "");
	rc = cs_officers_import(st, csv, off, &count, &err);
	ok(rc == 0 && count == 450, "450 officers imported (rc %d, %s)", rc, rc ? err.why : "-");
	free(csv);
}

/* The first flag of a record, "" if it has none. */
static const char *
first_flag(json_t *rec)
{
	const char *f = json_string_value(
	    json_object_get(json_array_get(json_object_get(rec, "flags"), 0), "flag"));

	return f != NULL ? f : "";
}

static void
test_flags_and_stats(struct cs_store *st)
{
	json_t *s = NULL, *rec = NULL;
	long long items = 0, bytes = 0, flagged = 0, insp = 0, insp_bytes = 0, stage = 0;
	long long off123 = 0, dev42 = 0;
	int rc;

	/* the flags of single items */
	ok(cs_store_get(st, "Q-00000057", &rec) == 0 &&
	        json_array_size(json_object_get(rec, "flags")) == 1 &&
	        strcmp(first_flag(rec), "certificate-not-valid") == 0,
	    "item 57 (officer 0057, expired 2023-12-31, recorded 2024) flagged");
	json_decref(rec);
	rec = NULL;
	ok(cs_store_get(st, "Q-00000003", &rec) == 0 && json_object_get(rec, "flags") == NULL,
	    "item 3 (officer 0003, valid) not flagged");
	json_decref(rec);
	rec = NULL;
	ok(cs_store_get(st, "Q-00000460", &rec) == 0 &&
	        strcmp(first_flag(rec), "officer-unknown") == 0,
	    "item 460 (officer 0460, not in the registry) flagged unknown");
	json_decref(rec);

	/* the figures of 2024, counted independently */
	for (unsigned long i = 0; i < N; i++) {
		if (qi_year(i) != 2024)
			continue;
		items++;
		bytes += qi_size(i);
		flagged += officer_flagged(i);
		if (strcmp(qi_category(i), "行政检查") == 0) {
			insp++;
			insp_bytes += qi_size(i);
		}
		stage += strcmp(qi_stage(i), "执行") == 0;
		off123 += i % 500 == 123;
		dev42 += (i / 7) % 100 == 42;
	}
	rc = cs_store_stats(st, 2024, &s);
	ok(rc == 0, "stats 2024");
	is_int(json_integer_value(json_object_get(s, "items")), items, "2024: items");
	is_int(json_integer_value(json_object_get(s, "bytes")), bytes, "2024: bytes");
	is_int(json_integer_value(json_object_get(s, "flagged")), flagged, "2024: flagged");
	is_int(json_integer_value(
	           json_object_get(json_object_get(json_object_get(s, "by_category"), "行政检查"),
	               "items")),
	    insp, "2024: category 行政检查 items");
	is_int(json_integer_value(
	           json_object_get(json_object_get(json_object_get(s, "by_category"), "行政检查"),
	               "bytes")),
	    insp_bytes, "2024: category 行政检查 bytes");
	is_int(json_integer_value(
	           json_object_get(json_object_get(json_object_get(s, "by_stage"), "执行"),
	               "items")),
	    stage, "2024: stage 执行 items");
	is_int(json_integer_value(
	           json_object_get(json_object_get(json_object_get(s, "by_officer"), "3301-0123"),
	               "items")),
	    off123, "2024: officer 3301-0123 items");
	is_int(json_integer_value(
	           json_object_get(json_object_get(json_object_get(s, "by_device"), "BWC-042"),
	               "items")),
	    dev42, "2024: device BWC-042 items");
	ok(json_is_object(json_object_get(s, "accesses_by_requester_kind")) &&
	        json_object_size(json_object_get(s, "accesses_by_requester_kind")) == 0,
	    "2024: no accesses in the register: none by requester kind");
	json_decref(s);
}

/*
 * A catalog of schema 3 (before the category, stage and officer tables) is
 * rebuilt from the ledger when the store is opened: find by category works
 * and the catalog says schema 4.
 */
static void
test_upgrade(const char *root)
{
	char path[128], cat[160];
	struct cs_store *st = NULL;
	struct cs__catalog c;
	struct cs_query q = {.category = "行政检查"};
	json_t *res = NULL;
	MDB_txn *txn;
	uint64_t seq;
	int rc;

	snprintf(path, sizeof(path), "%s/old", root);
	ok(cs_store_init(path, "Q") == 0 &&
	        cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "upgrade: store made");
	rc = 0;
	pthread_mutex_lock(&st->wlock);
	for (unsigned long i = 0; i < 40 && rc == 0; i++) {
		json_t *ev = qi_event(i);
		rc = cs__store_commit(st, &ev, 1, &seq);
		json_decref(ev);
	}
	pthread_mutex_unlock(&st->wlock);
	ok(rc == 0, "upgrade: 40 items ingested through the commit path");
	cs_store_close(st);
	st = NULL;
	/* make it what custos wrote before schema 4 */
	snprintf(cat, sizeof(cat), "%s/catalog", path);
	rc = cs__catalog_open(&c, cat, 1, 0);
	if (rc == 0 && (rc = mdb_txn_begin(c.env, NULL, 0, &txn)) == 0) {
		uint8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 3};
		MDB_val k = {6, (void *)"schema"}, d = {8, b};
		rc = mdb_drop(txn, c.dbi[CS_DBI_BY_CATEGORY], 1);
		if (rc == 0)
			rc = mdb_drop(txn, c.dbi[CS_DBI_BY_STAGE], 1);
		if (rc == 0)
			rc = mdb_drop(txn, c.dbi[CS_DBI_OFFICERS], 1);
		if (rc == 0)
			rc = mdb_drop(txn, c.dbi[CS_DBI_MEDIA_TODO], 1);
		if (rc == 0)
			rc = mdb_drop(txn, c.dbi[CS_DBI_ACCESS], 1);
		if (rc == 0)
			rc = mdb_put(txn, c.dbi[CS_DBI_META], &k, &d, 0);
		rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	}
	cs__catalog_close(&c);
	ok(rc == 0, "upgrade: the catalog made schema 3 (tables dropped, number set)");
	rc = cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL);
	ok(rc == 0, "upgrade: the store opens (%s)", cs_strerror(rc));
	rc = rc == 0 ? cs_store_find(st, &q, &res) : rc;
	is_int(json_array_size(res), 8, "upgrade: find by category after the rebuild");
	json_decref(res);
	cs_store_close(st);
	st = NULL;
	/* schema 4: no listing table */
	rc = cs__catalog_open(&c, cat, 1, 0);
	if (rc == 0 && (rc = mdb_txn_begin(c.env, NULL, 0, &txn)) == 0) {
		uint8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 4};
		MDB_val k = {6, (void *)"schema"}, d = {8, b};
		rc = mdb_drop(txn, c.dbi[CS_DBI_LISTING], 1);
		if (rc == 0)
			rc = mdb_put(txn, c.dbi[CS_DBI_META], &k, &d, 0);
		rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	}
	cs__catalog_close(&c);
	ok(rc == 0, "upgrade: the catalog made schema 4 (no listing table)");
	rc = cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL);
	ok(rc == 0, "upgrade: the store of schema 4 opens (%s)", cs_strerror(rc));
	{
		struct cs_list *l = NULL;
		size_t n = 0;
		ok(rc == 0 && cs_store_list(st, &q, &l) == 0 && l->n == 8,
		    "upgrade: listed by category after the rebuild");
		cs_list_free(l);
		ok(rc == 0 && listings_are_records(st, &q, &n) && n == 8,
		    "upgrade: the rebuilt listings are the records' fields");
	}
	cs_store_close(st);
}

/* The listing table as {id: hex of its bytes}. */
static json_t *
listing_table(struct cs_store *st)
{
	json_t *t = json_object();
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, d;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return t;
	if (mdb_cursor_open(txn, st->cat.dbi[CS_DBI_LISTING], &cur) != 0) {
		mdb_txn_abort(txn);
		return t;
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		char id[64], *hex = malloc(2 * d.mv_size + 1);
		snprintf(id, sizeof(id), "%.*s", (int)k.mv_size, (const char *)k.mv_data);
		if (hex == NULL)
			break;
		cs__hex(d.mv_data, d.mv_size, hex);
		json_object_set_new(t, id, json_string(hex));
		free(hex);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return t;
}

struct seen_problem {
	int listing; /* catalog-mismatch problems in the listing table naming the item */
	int other;   /* other problems with the catalog (the items have no blobs) */
	const char *id;
};

static void
on_problem(void *ctx, const struct cs_problem *p)
{
	struct seen_problem *s = ctx;

	if (strcmp(p->kind, "catalog-mismatch") == 0 && strstr(p->detail, "listing") != NULL &&
	    p->id != NULL && strcmp(p->id, s->id) == 0)
		s->listing++;
	else if (strncmp(p->kind, "blob-", 5) != 0)
		s->other++;
}

/*
 * The listing through the commit path, case files and a correction: it
 * follows them, a rebuild from the ledger makes the same table, verify
 * passes, and a changed listing is caught by verify, naming the item.
 */
static void
test_listing_rebuild(const char *root)
{
	char path[128], cat[160];
	struct cs_store *st = NULL;
	struct cs__catalog c;
	struct cs_list *l = NULL;
	struct seen_problem sp = {0, 0, "Q-00000003"};
	struct cs_query q = {.case_no = "平司罚〔2025〕1号"};
	const char *what = NULL, *fld[] = {"officers"}, *val[] = {"3301-9999"};
	json_t *before = NULL, *after = NULL;
	MDB_txn *txn;
	uint64_t seq;
	size_t n = 0;
	int rc = 0, good;

	snprintf(path, sizeof(path), "%s/rebuild", root);
	ok(cs_store_init(path, "Q") == 0 &&
	        cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "listing: store made");
	pthread_mutex_lock(&st->wlock);
	for (unsigned long i = 0; i < 30 && rc == 0; i++) {
		json_t *ev = qi_event(i);
		rc = cs__store_commit(st, &ev, 1, &seq);
		json_decref(ev);
	}
	pthread_mutex_unlock(&st->wlock);
	ok(rc == 0, "listing: 30 items ingested through the commit path");
	rc = cs_case_open(st, q.case_no, &(struct cs_case_info){.category = "行政处罚"}, &seq);
	for (unsigned long i = 0; i < 5 && rc == 0; i++) {
		char id[32];
		qi_id(i, id, sizeof(id));
		rc = cs_case_add(st, q.case_no, id, "decision", NULL, &seq, &what);
	}
	if (rc == 0)
		rc = cs_amend(st, "Q-00000007", -1, NULL, fld, val, 1, "wrong badge", &seq, &what);
	ok(rc == 0, "listing: a case file of 5 and a correction (%s)", cs_strerror(rc));
	good = cs_store_list(st, &q, &l) == 0 && l->n == 5;
	for (size_t i = 0; good && i < l->n; i++) {
		good = 0;
		for (size_t j = 0; j < l->items[i].n_cases; j++)
			good |= l->items[i].cases[j].number != NULL &&
			    l->items[i].cases[j].stage != NULL &&
			    strcmp(l->items[i].cases[j].number, q.case_no) == 0 &&
			    strcmp(l->items[i].cases[j].stage, "决定") == 0;
	}
	cs_list_free(l);
	ok(good, "listing: the case file's items are listed in it at stage 决定");
	q = (struct cs_query){.officer = "3301-9999"};
	ok(cs_store_list(st, &q, &l) == 0 && l->n == 1 &&
	        strcmp(l->items[0].id, "Q-00000007") == 0 && l->items[0].n_officers == 1 &&
	        strcmp(l->items[0].officers[0], "3301-9999") == 0,
	    "listing: the corrected officer is listed");
	cs_list_free(l);
	q = (struct cs_query){.officer = "3301-0007"};
	ok(cs_store_list(st, &q, &l) == 0 && l->n == 0,
	    "listing: the officer it replaced lists nothing");
	cs_list_free(l);
	q = (struct cs_query){.device = "BWC-000"};
	ok(listings_are_records(st, &q, &n) && n == 7,
	    "listing: %zu listings are the records' fields", n);
	before = listing_table(st);
	cs_store_verify(st, NULL, 0, on_problem, NULL, &sp, NULL);
	ok(sp.listing == 0 && sp.other == 0, "listing: verify finds no problem with the catalog");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_rebuild(path, NULL, NULL) > 0, "listing: the catalog rebuilt from the ledger");
	ok(cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL) == 0, "listing: reopened");
	after = listing_table(st);
	ok(json_object_size(before) == 30 && json_equal(before, after),
	    "listing: the rebuild made the same listing table (%zu entries)",
	    json_object_size(after));
	cs_store_close(st);
	st = NULL;
	/* one byte of one item's listing changed (its size) */
	snprintf(cat, sizeof(cat), "%s/catalog", path);
	rc = cs__catalog_open(&c, cat, 0, 0);
	if (rc == 0 && (rc = mdb_txn_begin(c.env, NULL, 0, &txn)) == 0) {
		MDB_val k = {10, (void *)sp.id}, d;
		unsigned char b[4096];
		rc = mdb_get(txn, c.dbi[CS_DBI_LISTING], &k, &d);
		if (rc == 0 && d.mv_size <= sizeof(b)) {
			memcpy(b, d.mv_data, d.mv_size);
			b[8] ^= 1;
			d.mv_data = b;
			rc = mdb_put(txn, c.dbi[CS_DBI_LISTING], &k, &d, 0);
		}
		rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	}
	cs__catalog_close(&c);
	ok(rc == 0, "listing: one byte of %s's listing changed", sp.id);
	ok(cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL) == 0 &&
	        cs_store_verify(st, NULL, 0, on_problem, NULL, &sp, NULL) > 0 && sp.listing == 1 &&
	        sp.other == 0,
	    "listing: verify reports the changed listing, naming the item (%d, %d)", sp.listing,
	    sp.other);
	cs_store_close(st);
	json_decref(before);
	json_decref(after);
}

int
main(void)
{
	char root[64], path[80], cmd[200];
	struct cs_store *st = NULL;
	int rc;

	/* tmpfs when there is one */
	snprintf(root, sizeof(root), "%s/cs-query-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	test_csv();
	if (mkdtemp(root) == NULL) {
		ok(0, "temp dir %s: %s", root, strerror(errno));
		return tap_done();
	}
	snprintf(path, sizeof(path), "%s/s", root);
	ok(cs_store_init(path, "Q") == 0, "store created");
	ok(cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL) == 0, "opened for writing");
	test_import_errors(st);
	import_officers(st);
	rc = qi_make(st, 0, N);
	ok(rc == 0, "100000 items committed (%s)", cs_strerror(rc));
	test_queries(st);
	test_paging(st);
	test_flags_and_stats(st);
	cs_store_close(st);
	test_upgrade(root);
	test_listing_rebuild(root);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		ok(0, "temp store removed");
	return tap_done();
}
