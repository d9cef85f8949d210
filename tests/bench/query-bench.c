/*
 * The query benchmark's program (tests/bench/query runs it; bench-only, not
 * in the suite): N synthetic items (tests/unit/query-items.h) in a custos
 * catalog and the same items in an SQLite database (Debian's libsqlite3,
 * one table with an index on the case key and one on the officer), then
 * the same lookups on both in the same run, R rounds of random keys each:
 *
 *   records  custos: cs_store_find (the index, each record read and parsed,
 *            officer flags checked); SQLite: SELECT record WHERE case_key=?
 *            (or officer=?) through the index, each record parsed with the
 *            same JSON parser. The case number's canonical key is computed
 *            inside the timing on both sides.
 *   listing  custos: cs_store_list (the index, each item's listing read
 *            from LMDB and decoded, no JSON; officer flags checked): id,
 *            digest, name, size, recorded start, ingest time, device,
 *            category, officers, case files with stages; SQLite: SELECT of
 *            the same columns (id, case number, stage, recorded start,
 *            size, name, sha256, officers, device, category, ingest time)
 *            from the same table through the index, each column read.
 *   ids      the index alone: custos walks its LMDB index (a read
 *            transaction, the duplicates of one key); SQLite SELECT id
 *            WHERE case_key=? (a covering index).
 *
 *   query-bench ROOT N ROUNDS [KINDS]
 *
 * KINDS: the lookups to time, digits 0-5 in the order of the table printed
 * (0 case records, 1 officer records, 2 case ids, 3 officer ids, 4 case
 * listing, 5 officer listing); all by default.
 *
 * Prints p50 and p99 in microseconds per lookup, and the ratio SQLite/custos.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/query.h"
#include "custos/store.h"
#include "query-items.h"

#define LISTING_SQL                                                                     \
	"SELECT id, case_no, stage, recorded_start, size, name, sha256, officers, device, " \
	"category, ingested_at FROM items WHERE "

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), dcmp);
	return v[(size_t)(p * (double)(n - 1))];
}

static int
die(const char *what, const char *why)
{
	fprintf(stderr, "query-bench: %s: %s\n", what, why);
	return 1;
}

static int
make_sqlite(sqlite3 *db, struct cs_store *st, unsigned long n)
{
	sqlite3_stmt *ins = NULL;
	int rc = sqlite3_exec(db,
	    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-1048576;"
	    "CREATE TABLE items(id TEXT PRIMARY KEY, case_key TEXT, officer TEXT, record TEXT,"
	    " case_no TEXT, stage TEXT, recorded_start TEXT, size INTEGER, name TEXT,"
	    " sha256 TEXT, officers TEXT, device TEXT, category TEXT, ingested_at TEXT);"
	    "BEGIN;",
	    NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
		    "INSERT INTO items VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL);
	for (unsigned long i = 0; i < n && rc == SQLITE_OK; i++) {
		char id[32], cs[64], off[32], *key = NULL, *rec;
		json_t *ev = qi_event(i);
		qi_id(i, id, sizeof(id));
		qi_case(i, cs, sizeof(cs));
		qi_officer(i, off, sizeof(off));
		if (cs_case_key(cs, &key) < 0)
			return SQLITE_ERROR;
		json_t *cat = NULL;
		/* the record exactly as the catalog holds it, so both sides parse the same */
		if (cs_store_get(st, id, &cat) < 0)
			return SQLITE_ERROR;
		rec = json_dumps(cat, JSON_COMPACT | JSON_SORT_KEYS);
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 2, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 3, off, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 4, rec, -1, SQLITE_TRANSIENT);
		{
			/* the listing's columns, from the same record */
			json_t *m = json_array_get(json_object_get(cat, "cases"), 0);
			char *offs = json_dumps(json_object_get(cat, "officers"), JSON_COMPACT);
			static const char *const tf[] = {"recorded_start", NULL, "name", "sha256",
				NULL, "device", "category", "ingested_at"};
			sqlite3_bind_text(ins, 5, json_string_value(json_object_get(m, "case")), -1,
			    SQLITE_TRANSIENT);
			sqlite3_bind_text(ins, 6, json_string_value(json_object_get(m, "stage")), -1,
			    SQLITE_TRANSIENT);
			for (int j = 0; j < 8; j++)
				if (tf[j] != NULL)
					sqlite3_bind_text(ins, 7 + j,
					    json_string_value(json_object_get(cat, tf[j])), -1,
					    SQLITE_TRANSIENT);
			sqlite3_bind_int64(ins, 8, json_integer_value(json_object_get(cat, "size")));
			sqlite3_bind_text(ins, 11, offs, -1, SQLITE_TRANSIENT);
			free(offs);
		}
		json_decref(cat);
		rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_reset(ins);
		free(key);
		free(rec);
		json_decref(ev);
	}
	sqlite3_finalize(ins);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db,
		    "COMMIT; CREATE INDEX by_case ON items(case_key, id);"
		    "CREATE INDEX by_officer ON items(officer, id); ANALYZE;",
		    NULL, NULL, NULL);
	return rc;
}

/*
 * SQLite: the rows of one key; records parsed (`parse` 1), every column
 * read (2) or ids only (0). Returns the count.
 */
static long
sqlite_lookup(sqlite3_stmt *s, const char *key, int parse)
{
	long n = 0;

	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (parse == 2) {
			size_t len = 0;
			for (int j = 1; j < sqlite3_column_count(s); j++) {
				if (j == 4)
					len += (size_t)sqlite3_column_int64(s, j) > 0;
				else if (sqlite3_column_text(s, j) != NULL)
					len += (size_t)sqlite3_column_bytes(s, j);
			}
			n += t != NULL && len > 0;
		} else if (parse) {
			json_t *r = json_loads(t, 0, NULL);
			n += r != NULL;
			json_decref(r);
		} else {
			n += t != NULL;
		}
	}
	sqlite3_reset(s);
	return n;
}

/* custos: the ids under one key of a dupsort index (the index alone). */
static long
custos_ids(struct cs_store *st, int dbi, const char *key)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {strlen(key), (void *)key}, d;
	long n = 0;
	int rc;

	if (cs__catalog_rtxn(&st->cat, &txn) < 0)
		return -1;
	rc = mdb_cursor_open(txn, st->cat.dbi[dbi], &cur);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
	while (rc == 0) {
		n += d.mv_size > 0;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return n;
}

/*
 * Lookup kind k (0 case records, 1 officer records, 2 case ids, 3 officer
 * ids, 4 case listing, 5 officer listing) in custos.
 */
static long
custos_lookup(struct cs_store *st, int k, const char *cs, const char *off)
{
	struct cs_query qq = {0};
	struct cs_list *l = NULL;
	json_t *res = NULL;
	char *key = NULL;
	long got;

	if (k == 4 || k == 5) {
		if (k == 4)
			qq.case_no = cs;
		else
			qq.officer = off;
		got = -1;
		if (cs_store_list(st, &qq, &l) == 0) {
			got = 0;
			for (size_t i = 0; i < l->n; i++)
				got += l->items[i].id != NULL && l->items[i].size > 0;
		}
		cs_list_free(l);
	} else if (k == 0 || k == 1) {
		if (k == 0)
			qq.case_no = cs;
		else
			qq.officer = off;
		got = cs_store_find(st, &qq, &res) == 0 ? (long)json_array_size(res) : -1;
		json_decref(res);
	} else if (k == 2) {
		got = cs_case_key(cs, &key) == 0 ? custos_ids(st, CS_DBI_BY_CASE, key) : -1;
		free(key);
	} else {
		got = custos_ids(st, CS_DBI_BY_OFFICER, off);
	}
	return got;
}

/* The same in SQLite. */
static long
sqlite_side(sqlite3_stmt *q, int k, const char *cs, const char *off)
{
	char *key = NULL;
	long got;

	if (k == 0 || k == 2 || k == 4) {
		got = cs_case_key(cs, &key) == 0 ? sqlite_lookup(q, key, k == 4 ? 2 : k == 0) : -1;
		free(key);
	} else {
		got = sqlite_lookup(q, off, k == 5 ? 2 : k == 1);
	}
	return got;
}

static void
report(const char *what, double *c, double *s, size_t r, long rows)
{
	double c50 = pct(c, r, 0.5), c99 = pct(c, r, 0.99);
	double s50 = pct(s, r, 0.5), s99 = pct(s, r, 0.99);

	printf("%-22s %7ld %10.1f %10.1f %10.1f %10.1f %7.2f %7.2f\n", what, rows, c50, c99, s50,
	    s99, s50 / c50, s99 / c99);
}

int
main(int argc, char **argv)
{
	struct cs_store *st = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *q[6] = {NULL};
	unsigned long n, r;
	char path[512];
	double t0, *c[6], *s[6];
	long rows[6] = {0};
	int rc;

	if (argc != 4 && argc != 5)
		return die("usage", "query-bench ROOT N ROUNDS [KINDS]");
	n = strtoul(argv[2], NULL, 10);
	r = strtoul(argv[3], NULL, 10);
	if (n < 3000 || r < 10)
		return die("usage", "N at least 3000, ROUNDS at least 10");
	snprintf(path, sizeof(path), "%s/store", argv[1]);
	rc = cs_store_init(path, "Q");
	if (rc == 0)
		rc = cs_store_open(&st, path, CS_OPEN_WRITE, NULL, NULL);
	if (rc < 0)
		return die(path, cs_strerror(rc));
	t0 = now_us();
	rc = qi_make(st, 0, n);
	if (rc < 0)
		return die("making the catalog", cs_strerror(rc));
	fprintf(stderr, "custos catalog: %lu items in %.1f s\n", n, (now_us() - t0) / 1e6);
	snprintf(path, sizeof(path), "%s/items.sqlite", argv[1]);
	t0 = now_us();
	if (sqlite3_open(path, &db) != SQLITE_OK || make_sqlite(db, st, n) != SQLITE_OK)
		return die("making the SQLite database", sqlite3_errmsg(db));
	fprintf(stderr, "SQLite database: %lu items in %.1f s\n", n, (now_us() - t0) / 1e6);
	if (sqlite3_prepare_v2(db, "SELECT record FROM items WHERE case_key=?", -1, &q[0], NULL) ||
	    sqlite3_prepare_v2(db, "SELECT record FROM items WHERE officer=?", -1, &q[1], NULL) ||
	    sqlite3_prepare_v2(db, "SELECT id FROM items WHERE case_key=?", -1, &q[2], NULL) ||
	    sqlite3_prepare_v2(db, "SELECT id FROM items WHERE officer=?", -1, &q[3], NULL) ||
	    sqlite3_prepare_v2(db, LISTING_SQL "case_key=?", -1, &q[4], NULL) ||
	    sqlite3_prepare_v2(db, LISTING_SQL "officer=?", -1, &q[5], NULL))
		return die("SQLite", sqlite3_errmsg(db));
	for (int k = 0; k < 6; k++) {
		c[k] = calloc(r, sizeof(double));
		s[k] = calloc(r, sizeof(double));
		if (c[k] == NULL || s[k] == NULL)
			return die("memory", strerror(ENOMEM));
	}
	for (int k = 0; k < 6; k++) {
		if (argc == 5 && strchr(argv[4], '0' + k) == NULL)
			continue;
		srand(12345); /* the same random keys for every kind of lookup */
		for (unsigned long i = 0; i < r; i++) {
			/* one random item's case number or officer on both sides, alternately first */
			unsigned long it = (unsigned long)rand() % n;
			char cs[64], off[32];
			qi_case(it, cs, sizeof(cs));
			qi_officer(it, off, sizeof(off));
			for (int side = 0; side < 2; side++) {
				int custos = (int)((i + (unsigned long)side) % 2) == 0;
				double a = now_us();
				long got = custos ? custos_lookup(st, k, cs, off) :
				                    sqlite_side(q[k], k, cs, off);
				*(custos ? &c[k][i] : &s[k][i]) = now_us() - a;
				if (got <= 0)
					return die("lookup", "found nothing");
				rows[k] = got;
			}
		}
	}
	printf("%lu items, %lu lookups each (random keys)\n", n, r);
	printf("%-22s %7s %10s %10s %10s %10s %7s %7s\n", "lookup", "rows", "custos p50",
	    "custos p99", "sqlite p50", "sqlite p99", "x p50", "x p99");
	{
		static const char *const what[] = {"case number, records", "officer, records",
			"case number, ids", "officer, ids", "case number, listing",
			"officer, listing"};
		for (int k = 0; k < 6; k++)
			if (argc != 5 || strchr(argv[4], '0' + k) != NULL)
				report(what[k], c[k], s[k], r, rows[k]);
	}
	for (int k = 0; k < 6; k++) {
		sqlite3_finalize(q[k]);
		free(c[k]);
		free(s[k]);
	}
	sqlite3_close(db);
	cs_store_close(st);
	return 0;
}
