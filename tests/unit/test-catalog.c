/*
 * Unit tests of cs__catalog_apply (lib/catalog.c), the one function that
 * writes the catalog. A real ledger is made through the store's API
 * (ingests, a sighting, case-open, case-add, case-remove, amends, a seal);
 * its events, read from the journal, are applied to fresh catalogs one by
 * one and all at once, and must give the expected records and indexes and,
 * both times, the same bytes as the store's own catalog (replay). Events out
 * of order, applied twice, malformed, or adding to a sealed case are refused
 * and leave the catalog as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "catalog.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/store.h"
#include "journal.h"
#include "tap.h"
#include "util.h"

#define MAXEV 64

static char base[256];
static struct cs__applied evs[MAXEV];
static char *evbuf[MAXEV];
static size_t nev;

static void
bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
ingest(struct cs_store *st, const char *name, const char *body, const char *case_no,
    char id[80])
{
	char path[512];
	struct cs_meta m = {.case_no = case_no, .stage = "取证", .device = "D1"};
	struct cs_ingest_result r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(body, f) < 0 || fclose(f) != 0)
		bail(path);
	if (cs_store_ingest_path(st, path, &m, &r) != 0)
		bail("ingest");
	memcpy(id, r.id, 80);
}

/* Reads every event of the store's journal into evs[]. */
static void
read_ledger(const char *store)
{
	struct cs__journal j;
	uint64_t off = CS_JOURNAL_HDR;
	int root = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (root < 0 || cs__journal_open(&j, root, 0, 0) != 0)
		bail("journal");
	for (;;) {
		struct cs__jentry e;
		char *buf = NULL;
		int rc = cs__journal_read(&j, off, &e, &buf, NULL);
		if (rc == 0)
			break;
		if (rc != 1 || nev == MAXEV)
			bail("journal entry");
		evbuf[nev] = buf;
		evs[nev] = (struct cs__applied){.seq = nev, .ev = buf, .len = e.len,
			.data_off = e.data, .next = e.next};
		memcpy(evs[nev].leaf, e.leaf, 32);
		nev++;
		off = e.next;
	}
	cs__journal_close(&j);
	close(root);
}

/* Index of the first event of type `type` (and id `id` if not NULL) from `from`. */
static size_t
find_event(size_t from, const char *type, const char *id)
{
	for (size_t i = from; i < nev; i++) {
		json_t *ev = json_loadb(evs[i].ev, evs[i].len, 0, NULL);
		const char *t = json_string_value(json_object_get(ev, "event"));
		const char *eid = json_string_value(json_object_get(ev, "id"));
		int hit = t != NULL && strcmp(t, type) == 0 &&
		    (id == NULL || (eid != NULL && strcmp(eid, id) == 0));
		json_decref(ev);
		if (hit)
			return i;
	}
	return nev;
}

static void
cat_open(struct cs__catalog *c, const char *name)
{
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if (mkdir(dir, 0700) < 0 || cs__catalog_open(c, dir, 1, 0) != 0)
		bail(dir);
}

static uint64_t
cat_size(struct cs__catalog *c)
{
	struct cs__catalog_state s = {0};
	MDB_txn *txn;

	if (cs__catalog_rtxn(c, &txn) != 0 || cs__catalog_state(c, txn, &s) != 0)
		bail("state");
	mdb_txn_abort(txn);
	return s.size;
}

static int
count_diffs(struct cs__catalog *a, struct cs__catalog *b)
{
	return cs__catalog_compare(a, NULL, b, NULL, NULL);
}

/* The ids under `key` in a dupsort index, joined with ',' into buf. */
static void
dup_ids(struct cs__catalog *c, MDB_txn *txn, int dbi, const char *key, char *buf, size_t n)
{
	MDB_val k = {strlen(key), (void *)key}, d;
	MDB_cursor *cur;
	int rc;

	buf[0] = '\0';
	if (mdb_cursor_open(txn, c->dbi[dbi], &cur) != 0)
		bail("cursor");
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP))
		snprintf(buf + strlen(buf), n - strlen(buf), "%s%.*s", buf[0] ? "," : "",
		    (int)d.mv_size, (const char *)d.mv_data);
	mdb_cursor_close(cur);
}

/* The string field `f` of a JSON record in table `dbi` under `key` ("" if none). */
static const char *
field_of(MDB_txn *txn, struct cs__catalog *c, int dbi, const char *key, const char *f,
    char *buf, size_t n)
{
	json_t *v = NULL;
	const char *s;

	buf[0] = '\0';
	if (cs__cat_get(txn, c->dbi[dbi], key, strlen(key), &v) == 0 &&
	    (s = json_string_value(json_object_get(v, f))) != NULL)
		snprintf(buf, n, "%s", s);
	json_decref(v);
	return buf;
}

static int
count_member(void *ctx, const char *key, size_t keylen, json_t *val)
{
	(void)key;
	(void)keylen;
	(void)val;
	(*(int *)ctx)++;
	return 0;
}

/* A copy of event `i` with "seq" set to `seq` and field `f` set to `val` (if f != NULL). */
static struct cs__applied
remade(size_t i, uint64_t seq, const char *f, const char *val, char **owned)
{
	json_t *ev = json_loadb(evs[i].ev, evs[i].len, 0, NULL);
	struct cs__applied a = evs[i];
	size_t len;

	if (ev == NULL || json_object_set_new(ev, "seq", json_integer((json_int_t)seq)) < 0 ||
	    (f != NULL && json_object_set_new(ev, f, json_string(val)) < 0))
		bail("remade");
	*owned = cs__json_canonical(ev, &len);
	json_decref(ev);
	if (*owned == NULL || cs_merkle_leaf_hash(*owned, len, a.leaf) != 0)
		bail("canonical");
	a.seq = seq;
	a.ev = *owned;
	a.len = (uint32_t)len;
	return a;
}

/* A hand-made event: raw bytes `ev` at index `seq`. */
static struct cs__applied
raw(const char *ev, uint64_t seq)
{
	struct cs__applied a = {.seq = seq, .ev = ev, .len = (uint32_t)strlen(ev)};

	if (cs_merkle_leaf_hash(ev, a.len, a.leaf) != 0)
		bail("leaf");
	return a;
}

int
main(void)
{
	const char *sfields[] = {"device"}, *svalues[] = {"D9"};
	const char *cfields[] = {"title"}, *cvalues[] = {"second title"};
	struct cs_case_info info = {.title = "first title"};
	char store[300], dir[320], ida[80], idb[80], idc[80], buf[512], shahex[65];
	struct cs__catalog one, all, own, bad;
	struct cs_store *st = NULL;
	const char *what = NULL;
	uint64_t seq;
	MDB_txn *txn;
	json_t *rec = NULL;

	snprintf(base, sizeof(base), "%s/custos-test-catalog.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		bail("mkdtemp");
	snprintf(store, sizeof(store), "%s/store", base);

	/* The ledger: every kind of event the catalog applies. */
	if (cs_store_init(store, "U1") != 0 ||
	    cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) != 0 ||
	    cs_store_set_actor(st, "user", "tester", 1000) != 0)
		bail("store");
	ingest(st, "a", "alpha\n", "K1", ida);
	ingest(st, "b", "bravo\n", NULL, idb);
	ingest(st, "c", "charlie\n", NULL, idc);
	ingest(st, "a2", "alpha\n", NULL, ida); /* the same bytes again: a sighting */
	if (cs_case_open(st, "K2", &info, &seq) != 0 ||
	    cs_case_add(st, "K2", idb, "review", NULL, &seq, &what) != 0 ||
	    cs_case_add(st, "K1", idb, "collection", "found later", &seq, &what) != 0 ||
	    cs_case_remove(st, "K2", idb, "wrong case", &seq, &what) != 0 ||
	    cs_amend(st, NULL, -1, "K2", cfields, cvalues, 1, "typo", &seq, &what) != 0 ||
	    cs_amend(st, idc, -1, NULL, sfields, svalues, 1, "misread", &seq, &what) != 0 ||
	    cs_case_seal(st, "K1", NULL, &seq) != 0)
		bail("case events");
	cs_store_close(st);
	read_ledger(store);
	ok(nev >= 11, "the ledger holds %zu events", nev);
	{
		static const char *const types[] = {"ingest", "sighting", "case-open", "case-add",
			"case-remove", "amend", "case-seal"};
		int all_there = 1;
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (find_event(0, types[i], NULL) == nev)
				all_there = 0;
		ok(all_there,
		    "it has ingest, sighting, case-open/add/remove, amend, case-seal events");
	}

	/* One event per call into a fresh catalog. */
	cat_open(&one, "one");
	{
		int rc = 0;
		for (size_t i = 0; i < nev && rc == 0; i++)
			rc = cs__catalog_apply(&one, &evs[i], 1);
		is_int(rc, 0, "every event applied one by one");
	}
	is_int(cat_size(&one), nev, "size is the number of events");
	if (cs__catalog_rtxn(&one, &txn) != 0)
		bail("rtxn");
	ok(cs__catalog_get_item(&one, txn, ida, &rec) == 0 &&
	    json_integer_value(json_object_get(rec, "sightings")) == 2 &&
	    json_integer_value(json_object_get(rec, "size")) == 6,
	    "item a: its record, two sightings, size 6");
	json_decref(rec);
	rec = NULL;
	ok(cs__catalog_get_item(&one, txn, idc, &rec) == 0 &&
	    strcmp(json_string_value(json_object_get(rec, "device")), "D9") == 0,
	    "item c: the amend set its device");
	json_decref(rec);
	rec = NULL;
	{
		uint8_t md[32];
		char id[80] = "";
		if (EVP_Digest("bravo\n", 6, md, NULL, EVP_sha256(), NULL) != 1)
			bail("sha");
		cs__hex(md, 32, shahex);
		ok(cs__catalog_id_by_sha(&one, txn, md, id, sizeof(id)) == 0 &&
		    strcmp(id, idb) == 0, "by_sha: b's digest gives b");
	}
	{
		uint64_t *seqs = NULL;
		size_t n = 0, ing = find_event(0, "ingest", NULL);
		size_t sig = find_event(0, "sighting", ida);
		ok(cs__catalog_item_seqs(&one, txn, ida, &seqs, &n) == 0 && n >= 2 &&
		    seqs[0] == ing && seqs[n - 1] >= sig, "item_events: a's ingest and sighting");
		free(seqs);
	}
	dup_ids(&one, txn, CS_DBI_BY_CASE, "K1", buf, sizeof(buf));
	{
		char want[200];
		/* dupsort: the ids in byte order */
		if (strcmp(ida, idb) < 0)
			snprintf(want, sizeof(want), "%s,%s", ida, idb);
		else
			snprintf(want, sizeof(want), "%s,%s", idb, ida);
		ok(strcmp(buf, want) == 0, "by_case K1: a and b (%s)", buf);
	}
	dup_ids(&one, txn, CS_DBI_BY_CASE, "K2", buf, sizeof(buf));
	ok(buf[0] == '\0', "by_case K2: none after the removal (%s)", buf);
	dup_ids(&one, txn, CS_DBI_BY_DEVICE, "D9", buf, sizeof(buf));
	ok(strcmp(buf, idc) == 0, "by_device D9: c, after the amend (%s)", buf);
	ok(strcmp(field_of(txn, &one, CS_DBI_CASES, "K1", "state", buf, sizeof(buf)), "sealed") ==
	    0, "case K1 is sealed");
	ok(strcmp(field_of(txn, &one, CS_DBI_CASES, "K2", "title", buf, sizeof(buf)),
	    "second title") == 0, "case K2: the amend set its title");
	{
		int n1 = 0, n2 = 0, rc;
		/* member keys are case key, 0x00, id: the prefix takes the 0x00 */
		rc = cs__cat_each(txn, one.dbi[CS_DBI_MEMBERS], "K1", 3, count_member, &n1);
		if (rc == 0)
			rc = cs__cat_each(txn, one.dbi[CS_DBI_MEMBERS], "K2", 3, count_member, &n2);
		ok(rc == 0 && n1 == 2 && n2 == 0, "members: K1 two, K2 none (%d, %d)", n1, n2);
	}
	mdb_txn_abort(txn);

	/* All at once into another fresh catalog: the same bytes, and the store's own. */
	cat_open(&all, "all");
	is_int(cs__catalog_apply(&all, evs, nev), 0, "every event applied in one call");
	is_int(count_diffs(&one, &all), 0, "one by one and all at once: identical catalogs");
	snprintf(dir, sizeof(dir), "%s/catalog", store);
	if (cs__catalog_open(&own, dir, 0, 0) != 0)
		bail(dir);
	is_int(count_diffs(&own, &all), 0, "replay equals the store's own catalog");
	cs__catalog_close(&own);

	/* Refusals leave the catalog as it was. */
	cat_open(&bad, "bad");
	is_int(cs__catalog_apply(&bad, &evs[1], 1), CS_ELEDGER, "event 1 before event 0: refused");
	is_int(cs__catalog_apply(&bad, evs, 2), 0, "events 0 and 1");
	is_int(cs__catalog_apply(&bad, &evs[1], 1), CS_ELEDGER, "event 1 again: refused");
	is_int(cs__catalog_apply(&bad, &evs[3], 1), CS_ELEDGER, "event 3 before 2: refused");
	{
		char *owned = NULL;
		struct cs__applied a = remade(2, 3, NULL, NULL, &owned);
		a.seq = 2;
		is_int(cs__catalog_apply(&bad, &a, 1), CS_ELEDGER,
		    "an event whose seq field is not its place: refused");
		free(owned);
		a = remade(0, 2, NULL, NULL, &owned);
		is_int(cs__catalog_apply(&bad, &a, 1), CS_ELEDGER,
		    "an ingest that repeats an evidence id: refused");
		free(owned);
	}
	{
		static const char *const malformed[] = {
			"not json",
			"[2]",
			"{\"seq\":2}",
			"{\"event\":\"ingest\",\"seq\":2}",
			"{\"event\":\"ingest\",\"item\":{\"id\":\"U1-x\",\"sha256\":\"00\"},"
			"\"seq\":2,\"time\":\"2026-12-01T00:00:00.000Z\"}",
			"{\"event\":\"sighting\",\"id\":\"U1-none\",\"seq\":2,"
			"\"time\":\"2026-12-01T00:00:00.000Z\"}",
			"{\"event\":\"case-add\",\"case\":\"K9\",\"key\":\"K9\",\"id\":\"U1-x\","
			"\"seq\":2,\"time\":\"2026-12-01T00:00:00.000Z\"}",
			"{\"seq\":2,\"seq\":2,\"event\":\"x\","
			"\"time\":\"2026-12-01T00:00:00.000Z\"}",
		};
		for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
			struct cs__applied a = raw(malformed[i], 2);
			is_int(cs__catalog_apply(&bad, &a, 1), CS_ELEDGER, "malformed: %s",
			    malformed[i]);
		}
	}
	is_int(cat_size(&bad), 2, "after the refusals the catalog still holds 2 events");
	cs__catalog_close(&bad);

	/* A case-add to the sealed case: refused after the seal, applied before it. */
	{
		size_t add = find_event(0, "case-add", idb);
		size_t seal = find_event(0, "case-seal", NULL);
		char *owned = NULL;
		struct cs__applied a;

		/* the case-add that put b into K1, remade to add c */
		while (add < nev) {
			json_t *ev = json_loadb(evs[add].ev, evs[add].len, 0, NULL);
			int k1 = strcmp(json_string_value(json_object_get(ev, "key")), "K1") == 0;
			json_decref(ev);
			if (k1)
				break;
			add = find_event(add + 1, "case-add", idb);
		}
		ok(add < seal && seal == nev - 1, "the ledger's case-add to K1 precedes its seal");
		a = remade(add, nev, "id", idc, &owned);
		is_int(cs__catalog_apply(&all, &a, 1), CS_ELEDGER,
		    "a case-add to the sealed case: refused");
		is_int(cat_size(&all), nev, "the sealed catalog did not change");
		free(owned);

		cat_open(&bad, "unsealed");
		is_int(cs__catalog_apply(&bad, evs, seal), 0, "the events up to the seal");
		a = remade(add, seal, "id", idc, &owned);
		is_int(cs__catalog_apply(&bad, &a, 1), 0,
		    "the same case-add before the seal: applied");
		if (cs__catalog_rtxn(&bad, &txn) != 0)
			bail("rtxn");
		dup_ids(&bad, txn, CS_DBI_BY_CASE, "K1", buf, sizeof(buf));
		ok(strstr(buf, idc) != NULL, "by_case K1 then holds c (%s)", buf);
		mdb_txn_abort(txn);
		free(owned);
		cs__catalog_close(&bad);
	}

	cs__catalog_close(&one);
	cs__catalog_close(&all);
	for (size_t i = 0; i < nev; i++)
		free(evbuf[i]);
	tap_rm_rf(base);
	return tap_done();
}
