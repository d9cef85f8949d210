/*
 * The LMDB catalog. It holds nothing that the ledger does not say:
 * cs__catalog_apply() turns events into records, indexes, Merkle leaves and
 * nodes, in one write transaction per batch. LMDB runs with its default,
 * fully synchronous commits (no NOSYNC, NOMETASYNC or WRITEMAP flags) except
 * for throw-away scratch catalogs. When the map is full the transaction is
 * aborted, the map doubled and the batch retried, so MDB_MAP_FULL never
 * reaches a caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/name.h"
#include "custos/store.h"
#include "listing.h"
#include "record.h"
#include "util.h"

static const char *const dbi_names[CS_DBI_COUNT] = {
	"items", "by_sha", "by_case", "by_officer", "by_device", "by_time", "item_events",
	"leaves", "nodes", "meta", "cases", "case_events", "members", "fixity_due", "fixity",
	"media_todo",
	"access",
	"by_category", "by_stage", "officers", "listing", "listing_by_case", "listing_by_officer",
	"upload_todo", "remotes", "fingerprints", "fp_bands", "holds", "disclosure",
	"purge_plans", "destruction",
};

static int
is_dupsort(int dbi)
{
	return dbi == CS_DBI_BY_CASE || dbi == CS_DBI_BY_OFFICER || dbi == CS_DBI_BY_DEVICE ||
	    dbi == CS_DBI_BY_TIME || dbi == CS_DBI_ITEM_EVENTS || dbi == CS_DBI_CASE_EVENTS ||
	    dbi == CS_DBI_BY_CATEGORY || dbi == CS_DBI_BY_STAGE || dbi == CS_DBI_FP_BANDS;
}

static int
from_mdb(int rc)
{
	if (rc == MDB_SUCCESS)
		return 0;
	if (rc > 0)
		return -rc;
	if (rc == MDB_NOTFOUND)
		return CS_ENOTFOUND;
	return CS_ESTORE;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Not json_dumps(): jansson (2.14) ignores a failure to write an object key,
 * so one failed allocation inside json_dumps() can yield malformed JSON
 * (`{"case:"C-1"}`) instead of NULL. Here the first failed write makes every
 * later write fail too, so the dump as a whole fails.
 */
struct dumpbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static int
dump_cb(const char *buf, size_t size, void *data)
{
	struct dumpbuf *d = data;

	if (d->failed)
		return -1;
	if (size >= d->cap - d->len) {
		size_t nc = d->cap * 2 > d->len + size + 1 ? d->cap * 2 : d->len + size + 1;
		char *np = realloc(d->p, nc);
		if (np == NULL) {
			d->failed = 1;
			return -1;
		}
		d->p = np;
		d->cap = nc;
	}
	memcpy(d->p + d->len, buf, size);
	d->len += size;
	d->p[d->len] = '\0';
	return 0;
}

/*
 * jansson's allocations go through json_alloc(), which notes (per thread)
 * that one failed: jansson's parser ignores a failure to grow its token
 * buffer and parses on without the character (json_loadb() then returns a
 * wrong value, not NULL). The hook is set for the whole process, once.
 */
static _Thread_local int json_alloc_failed;
static pthread_once_t json_hook_once = PTHREAD_ONCE_INIT;

static void *
json_alloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		json_alloc_failed = 1;
	return p;
}

static void
json_hook(void)
{
	json_set_alloc_funcs(json_alloc, free);
}

json_t *
cs__json_load(const void *buf, size_t len, size_t flags, int *oom)
{
	json_error_t jerr;
	json_t *v;

	pthread_once(&json_hook_once, json_hook);
	json_alloc_failed = 0;
	v = json_loadb(buf, len, flags, &jerr);
	*oom = json_alloc_failed ||
	    (v == NULL && json_error_code(&jerr) == json_error_out_of_memory);
	if (*oom) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

int
cs_json_parse(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *err)
{
	json_t *v;

	pthread_once(&json_hook_once, json_hook);
	json_alloc_failed = 0;
	v = json_loadb(buf, len, flags, err);
	if (json_alloc_failed || (v == NULL && json_error_code(err) == json_error_out_of_memory)) {
		json_decref(v);
		return -ENOMEM;
	}
	if (v == NULL)
		return CS_EFORMAT;
	*out = v;
	return 0;
}

char *
cs__json_canonical(const json_t *v, size_t *len)
{
	struct dumpbuf d = {NULL, 0, 0, 0};

	if (json_dump_callback(v, dump_cb, &d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) <
	        0 ||
	    d.failed || d.p == NULL) {
		free(d.p);
		return NULL;
	}
	if (len != NULL)
		*len = d.len;
	return d.p;
}

/*
 * MDB_CORRUPTED when the main table names table `name` ("cases" since schema
 * 2, "fixity_due" since 3, "media_todo", "access" and "officers" since 4):
 * a catalog with it has the schema number that made it. 0 when there is no
 * such table.
 */
static int
has_table(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;
	int rc = mdb_dbi_open(txn, name, 0, &dbi);

	if (rc == MDB_NOTFOUND)
		return 0;
	return rc == 0 ? MDB_CORRUPTED : rc;
}

/*
 * -1 if the catalog was made by an older custos: events in it, no "schema"
 * key and none of this version's tables (custos 0.1.0 wrote no schema
 * number), schema 2 without the fixity tables (0.2.0 before them), or
 * schema 3 without the media, access and officer tables (0.2.0 before
 * them), schema 4 without the listing table, schema 5 without the
 * upload_todo table, schema 6 without the fingerprint tables, schema 7
 * (its upload_todo did not hold the items whose derivatives were unsent), or
 * schema 8 without the holds, disclosure and purge tables. Any
 * other schema number than this version's, or a missing one beside this
 * version's tables, is damage (a
 * flipped bit must not pass for an old catalog, which would be silently
 * rebuilt). A new catalog gets this version's schema. LMDB code otherwise.
 */
static int
check_schema(MDB_txn *txn, int create, uint64_t *found)
{
	static const char skey[] = "schema", zkey[] = "size";
	MDB_val k = {sizeof(skey) - 1, (void *)skey}, d;
	uint8_t b[8];
	uint64_t schema = 0, size = 0;
	MDB_dbi meta;
	int rc;

	rc = mdb_dbi_open(txn, "meta", create ? MDB_CREATE : 0, &meta);
	if (rc != 0)
		return rc;
	rc = mdb_get(txn, meta, &k, &d);
	if (rc == 0 && d.mv_size != 8)
		return MDB_CORRUPTED;
	if (rc == 0 && (schema = get_be64(d.mv_data)) == 0)
		return MDB_CORRUPTED; /* a "schema" key always has a number: damage */
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (rc != 0 && (rc = has_table(txn, "cases")) != 0)
		return rc; /* no "schema" beside this version's tables: damage */
	k.mv_size = sizeof(zkey) - 1;
	k.mv_data = (void *)zkey;
	rc = mdb_get(txn, meta, &k, &d);
	if (rc == 0 && d.mv_size == 8)
		size = get_be64(d.mv_data);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*found = schema;
	if (schema == CS__CATALOG_SCHEMA)
		return 0;
	if (schema != 0 && (schema < 2 || schema > 8))
		return MDB_CORRUPTED; /* no custos wrote this number: damage, or a newer custos */
	if (schema == 2 && (rc = has_table(txn, "fixity_due")) != 0)
		return rc; /* schema 2 beside this version's tables: damage */
	if (schema == 3 &&
	    ((rc = has_table(txn, "media_todo")) != 0 || (rc = has_table(txn, "access")) != 0 ||
	        (rc = has_table(txn, "officers")) != 0))
		return rc; /* schema 3 beside this version's tables: damage */
	if (schema == 4 && (rc = has_table(txn, "listing")) != 0)
		return rc; /* schema 4 beside this version's tables: damage */
	if (schema == 5 &&
	    ((rc = has_table(txn, "upload_todo")) != 0 ||
	        (rc = has_table(txn, "fingerprints")) != 0))
		return rc; /* schema 5 beside this version's tables: damage */
	if (schema == 6 && (rc = has_table(txn, "fingerprints")) != 0)
		return rc; /* schema 6 beside this version's tables: damage */
	if (schema == 8 &&
	    ((rc = has_table(txn, "holds")) != 0 || (rc = has_table(txn, "disclosure")) != 0 ||
	        (rc = has_table(txn, "purge_plans")) != 0))
		return rc; /* schema 8 beside this version's tables: damage */
	if (size > 0)
		return -1;
	if (!create)
		return 0; /* an empty catalog: nothing in it to read differently */
	put_be64(b, CS__CATALOG_SCHEMA);
	k.mv_size = sizeof(skey) - 1;
	k.mv_data = (void *)skey;
	d.mv_size = 8;
	d.mv_data = b;
	return mdb_put(txn, meta, &k, &d, 0);
}

static uint64_t
get_ne(const uint8_t *p, size_t n)
{
	uint64_t v64 = 0;
	uint32_t v32 = 0;
	uint16_t v16 = 0;

	if (n == 8) {
		memcpy(&v64, p, 8);
		return v64;
	}
	if (n == 4) {
		memcpy(&v32, p, 4);
		return v32;
	}
	memcpy(&v16, p, 2);
	return v16;
}

/*
 * LMDB 0.9's file header, which it trusts: two meta pages, each a page
 * header (pgno, pad, flags, lower, upper) followed by MDB_meta (magic,
 * version, address, mapsize, two MDB_db, last page, txnid). pgno_t and
 * txnid_t are size_t wide. LMDB maps as much as the newer meta asks for and
 * reads any page it names, so a damaged header shows up as ENOMEM (a map of
 * garbage size), EINVAL, SIGBUS (a page past the end of a truncated file) or
 * a crash, which would all be taken for something other than damage.
 */
#define MDB_HDR_MAGIC 0xBEEFC0DEu
#define MDB_HDR_VERSION 1u
#define MDB_HDR_P_META 0x08u
#define MDB_HDR_MAXMAP ((uint64_t)1 << 46)
#define SZ sizeof(size_t)
#define META_OFF (SZ + 8)                   /* after the page header */
#define DB_SIZE (8 + 5 * SZ)                /* one MDB_db */
#define DBS_OFF (META_OFF + 8 + 2 * SZ)     /* mm_dbs[0]; its md_pad is the page size */
#define LAST_OFF (DBS_OFF + 2 * DB_SIZE)    /* mm_last_pg, then mm_txnid */

struct mdb_hdr {
	uint64_t psize, mapsize, last, txnid, root[2];
};

/* Reads the meta page at `off`; 1 if it is one, 0 if not, -errno. */
static int
read_meta(int fd, off_t off, uint64_t pgno, struct mdb_hdr *h)
{
	uint8_t b[LAST_OFF + 2 * SZ];
	ssize_t r = cs__pread_all(fd, b, sizeof(b), off);

	if (r < 0)
		return (int)r;
	if ((size_t)r < sizeof(b) || get_ne(b, SZ) != pgno ||
	    !(get_ne(b + SZ + 2, 2) & MDB_HDR_P_META) ||
	    get_ne(b + META_OFF, 4) != MDB_HDR_MAGIC ||
	    get_ne(b + META_OFF + 4, 4) != MDB_HDR_VERSION)
		return 0;
	h->mapsize = get_ne(b + META_OFF + 8 + SZ, SZ);
	h->psize = get_ne(b + DBS_OFF, 4);
	for (int i = 0; i < 2; i++)
		h->root[i] = get_ne(b + DBS_OFF + (size_t)i * DB_SIZE + 8 + 4 * SZ, SZ);
	h->last = get_ne(b + LAST_OFF, SZ);
	h->txnid = get_ne(b + LAST_OFF + SZ, SZ);
	return 1;
}

/*
 * Before LMDB opens an existing catalog: are its meta pages whole, and does
 * the newer one (the one LMDB uses) describe a file that is there? 0 if
 * so (or if the file is empty or absent: LMDB makes or refuses that
 * itself), CS_ESTORE if the header is damaged, -errno if it cannot be read.
 */
static int
check_header(const char *dir)
{
	struct mdb_hdr h[2];
	struct stat sb;
	char *path;
	int fd, rc, n;

	path = malloc(strlen(dir) + sizeof("/data.mdb"));
	if (path == NULL)
		return -ENOMEM;
	snprintf(path, strlen(dir) + sizeof("/data.mdb"), "%s/data.mdb", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = read_meta(fd, 0, 0, &h[0]);
	if (rc == 1 && (h[0].psize < 512 || h[0].psize > 65536 || (h[0].psize & (h[0].psize - 1))))
		rc = 0;
	if (rc == 1)
		rc = read_meta(fd, (off_t)h[0].psize, 1, &h[1]);
	/* The size after the metas: a writer extends the file before it writes a meta. */
	if (rc >= 0 && fstat(fd, &sb) < 0)
		rc = -errno;
	if (rc == 0 && sb.st_size == 0)
		rc = 2; /* empty: a catalog that was never written */
	if (rc == 1) {
		const struct mdb_hdr *m = &h[h[1].txnid > h[0].txnid];
		uint64_t pages = (uint64_t)sb.st_size / h[0].psize;

		n = m->psize == h[0].psize && m->last < pages && m->mapsize <= MDB_HDR_MAXMAP;
		for (int i = 0; i < 2; i++)
			n = n && (m->root[i] == (uint64_t)(size_t)-1 || m->root[i] <= m->last);
		rc = n ? 1 : 0;
	}
	close(fd);
	return rc < 0 ? rc : rc == 0 ? CS_ESTORE : 0;
}

/* ---- jobs and their counts per state ---- */

/* A counted job's "state" in *state (malloc'd), or NULL: none (not a string, empty). */
static int
job_state(const MDB_val *d, char **state)
{
	const char *v;
	json_t *job;
	int oom;

	*state = NULL;
	job = cs__json_load(d->mv_data, d->mv_size, 0, &oom);
	if (job == NULL)
		return oom ? ENOMEM : 0;
	v = json_string_value(json_object_get(job, "state"));
	if (v != NULL && v[0] != '\0' && strlen(v) <= 480 && (*state = strdup(v)) == NULL) {
		json_decref(job);
		return ENOMEM;
	}
	json_decref(job);
	return 0;
}

/* Adds `delta` (+1 or -1) to the count of `state`; a count that reaches 0 is removed. */
static int
count_add(struct cs__catalog *c, MDB_txn *txn, const char *state, int delta)
{
	MDB_val k = {strlen(state), (void *)state}, d;
	uint64_t n = 0;
	uint8_t b[8];
	int rc;

	rc = mdb_get(txn, c->job_counts, &k, &d);
	if (rc == 0 && d.mv_size != 8)
		return MDB_CORRUPTED;
	if (rc == 0)
		n = get_be64(d.mv_data);
	else if (rc != MDB_NOTFOUND)
		return rc;
	/* Never below zero, whatever an older custos that kept no counts did meanwhile. */
	n = delta > 0 ? n + 1 : n > 0 ? n - 1 : 0;
	if (n == 0)
		return rc == 0 ? mdb_del(txn, c->job_counts, &k, NULL) : 0;
	put_be64(b, n);
	d.mv_size = 8;
	d.mv_data = b;
	return mdb_put(txn, c->job_counts, &k, &d, 0);
}

int
cs__catalog_job_write(struct cs__catalog *c, MDB_txn *txn, MDB_val *k, MDB_val *d)
{
	char *was = NULL, *now = NULL;
	MDB_val old;
	int rc = 0;

	if (c->job_counts != 0) {
		rc = mdb_get(txn, c->jobs, k, &old);
		if (rc == 0)
			rc = job_state(&old, &was);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
		if (rc == 0 && d != NULL)
			rc = job_state(d, &now);
		if (rc == 0 && was != NULL && (now == NULL || strcmp(was, now) != 0))
			rc = count_add(c, txn, was, -1);
		if (rc == 0 && now != NULL && (was == NULL || strcmp(was, now) != 0))
			rc = count_add(c, txn, now, 1);
	}
	if (rc == 0)
		rc = d != NULL ? mdb_put(txn, c->jobs, k, d, 0) : mdb_del(txn, c->jobs, k, NULL);
	free(was);
	free(now);
	return rc;
}

/* Counts every job into job_counts (empty): a catalog made before the counts. */
static int
count_all(struct cs__catalog *c, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc;

	rc = mdb_cursor_open(txn, c->jobs, &cur);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0) {
		char *state;
		rc = job_state(&d, &state);
		if (rc == 0 && state != NULL)
			rc = count_add(c, txn, state, 1);
		free(state);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Opens job_counts; a writer makes it (counting the jobs once) for a catalog without it. */
static int
open_job_counts(struct cs__catalog *c, MDB_txn *txn, int create)
{
	int rc = mdb_dbi_open(txn, "job_counts", 0, &c->job_counts);

	if (rc != MDB_NOTFOUND)
		return rc;
	c->job_counts = 0;
	if (!create || c->jobs == 0)
		return 0; /* a reader counts by reading the jobs */
	rc = mdb_dbi_open(txn, "job_counts", MDB_CREATE, &c->job_counts);
	if (rc == 0)
		rc = count_all(c, txn);
	return rc;
}

int
cs__catalog_job_counts(struct cs__catalog *c, MDB_txn *txn, int recount, json_t *counts)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc;

	if (c->jobs == 0)
		return 0;
	rc = mdb_cursor_open(txn, recount || c->job_counts == 0 ? c->jobs : c->job_counts, &cur);
	if (rc != 0)
		return CS_ESTORE;
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0) {
		char *state = NULL, key[481];
		json_int_t n = 1;

		if (recount || c->job_counts == 0) {
			rc = job_state(&d, &state);
		} else if (k.mv_size < sizeof(key) && d.mv_size == 8) {
			memcpy(key, k.mv_data, k.mv_size);
			key[k.mv_size] = '\0';
			n = (json_int_t)get_be64(d.mv_data);
		} else {
			rc = MDB_CORRUPTED;
		}
		if (rc == 0 && (state != NULL || !(recount || c->job_counts == 0))) {
			const char *s = state != NULL ? state : key;
			json_int_t had = json_integer_value(json_object_get(counts, s));
			if (json_object_set_new(counts, s, json_integer(had + n)) < 0)
				rc = ENOMEM;
		}
		free(state);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

int
cs__catalog_open(struct cs__catalog *c, const char *dir, int create, int scratch)
{
	const char *env_map = getenv("CUSTOS_MAP_SIZE");
	size_t mapsize = (size_t)64 << 20;
	unsigned flags = MDB_NOTLS;
	MDB_txn *txn = NULL;
	uint64_t schema = 0;
	int dead, rc;

	memset(c, 0, sizeof(*c));
	if (env_map != NULL && *env_map != '\0')
		mapsize = (size_t)strtoull(env_map, NULL, 10);
	if (scratch)
		/*
		 * A scratch catalog is deleted after use, and has one user: no
		 * lock file, which LMDB writes through a shared map (SIGBUS, not
		 * an error, when the file system is full).
		 */
		flags |= MDB_NOSYNC | MDB_NOLOCK;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (!scratch) {
		rc = check_header(dir);
		if (rc < 0)
			return rc;
	}
	rc = mdb_env_create(&c->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(c->env, CS_DBI_COUNT + 4);
	if (rc == 0)
		rc = mdb_env_set_mapsize(c->env, mapsize);
	if (rc == 0)
		rc = mdb_env_open(c->env, dir, flags, 0600);
	if (rc != 0)
		goto fail;
	(void)mdb_reader_check(c->env, &dead);
	rc = mdb_txn_begin(c->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(c->env, 0);
		rc = mdb_txn_begin(c->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	}
	if (rc != 0)
		goto fail;
	rc = check_schema(txn, create, &schema);
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	for (int i = 0; i < CS_DBI_COUNT; i++) {
		unsigned f = create ? MDB_CREATE : 0;
		if (is_dupsort(i))
			f |= MDB_DUPSORT;
		rc = mdb_dbi_open(txn, dbi_names[i], f, &c->dbi[i]);
		if (rc == MDB_NOTFOUND && i >= CS_DBI_CASES && schema < CS__CATALOG_SCHEMA)
			rc = -1; /* an empty catalog of an older custos */
		if (rc != 0) {
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	rc = mdb_dbi_open(txn, "jobs", create ? MDB_CREATE : 0, &c->jobs);
	if (rc == MDB_NOTFOUND && !create)
		c->jobs = 0; /* a store written before jobs existed; read-only use */
	else if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = open_job_counts(c, txn, create);
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(c->env);
	c->env = NULL;
	if (rc == -1)
		return CS__EOLDCATALOG;
	return rc == MDB_NOTFOUND ? CS_ESTORE : from_mdb(rc);
}

void
cs__catalog_close(struct cs__catalog *c)
{
	if (c->env != NULL)
		mdb_env_close(c->env);
	c->env = NULL;
}

int
cs__catalog_rtxn(struct cs__catalog *c, MDB_txn **txn)
{
	int rc;

	if (c->env == NULL)
		return CS_ESTORE; /* closed: CS_OPEN_NOCATALOG, or a failed cs_store_recover */
	rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(c->env, 0);
		rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, txn);
	}
	return from_mdb(rc);
}

static int
meta_get(struct cs__catalog *c, MDB_txn *txn, const char *key, uint64_t *v)
{
	MDB_val k = {strlen(key), (void *)key}, d;
	int rc = mdb_get(txn, c->dbi[CS_DBI_META], &k, &d);

	if (rc == MDB_NOTFOUND) {
		*v = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (d.mv_size != 8)
		return MDB_CORRUPTED;
	*v = get_be64(d.mv_data);
	return 0;
}

static int
meta_put(struct cs__catalog *c, MDB_txn *txn, const char *key, uint64_t v)
{
	uint8_t b[8];
	MDB_val k = {strlen(key), (void *)key}, d = {8, b};

	put_be64(b, v);
	return mdb_put(txn, c->dbi[CS_DBI_META], &k, &d, 0);
}

int
cs__catalog_replica_cp(struct cs__catalog *c, MDB_txn *txn, uint64_t *size)
{
	return from_mdb(meta_get(c, txn, "replica_cp", size));
}

int
cs__catalog_state(struct cs__catalog *c, MDB_txn *txn, struct cs__catalog_state *s)
{
	uint64_t size, end, last;
	int rc;

	rc = meta_get(c, txn, "size", &size);
	if (rc == 0)
		rc = meta_get(c, txn, "journal_end", &end);
	if (rc == 0)
		rc = meta_get(c, txn, "last_ms", &last);
	if (rc != 0)
		return from_mdb(rc);
	s->size = size;
	s->journal_end = end;
	s->last_ms = (int64_t)last;
	return 0;
}

/* Merkle node access inside a write transaction. */
struct wctx {
	struct cs__catalog *c;
	MDB_txn *txn;
	int mdb_rc; /* the raw LMDB code of the first failure, for MAP_FULL */
};

static int
node_get(struct cs__catalog *c, MDB_txn *txn, unsigned level, uint64_t index, uint8_t out[32],
    int *mdb_rc)
{
	uint8_t kb[9];
	MDB_val k, d;
	int rc;

	if (level == 0) {
		put_be64(kb, index);
		k.mv_size = 8;
		k.mv_data = kb;
		rc = mdb_get(txn, c->dbi[CS_DBI_LEAVES], &k, &d);
		if (rc == 0 && d.mv_size != 44)
			rc = MDB_CORRUPTED;
	} else {
		kb[0] = (uint8_t)level;
		put_be64(kb + 1, index);
		k.mv_size = 9;
		k.mv_data = kb;
		rc = mdb_get(txn, c->dbi[CS_DBI_NODES], &k, &d);
		if (rc == 0 && d.mv_size != 32)
			rc = MDB_CORRUPTED;
	}
	if (rc != 0) {
		if (mdb_rc != NULL)
			*mdb_rc = rc;
		return rc == MDB_NOTFOUND ? CS_ELEDGER : from_mdb(rc);
	}
	memcpy(out, d.mv_data, 32);
	return 0;
}

static int
w_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	struct wctx *w = ctx;

	return node_get(w->c, w->txn, level, index, out, &w->mdb_rc);
}

static int
w_put(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
	struct wctx *w = ctx;
	uint8_t kb[9];
	MDB_val k = {9, kb}, d = {32, (void *)h};
	int rc;

	if (level == 0)
		return 0; /* leaves are stored in their own table */
	kb[0] = (uint8_t)level;
	put_be64(kb + 1, index);
	rc = mdb_put(w->txn, w->c->dbi[CS_DBI_NODES], &k, &d, 0);
	if (rc != 0) {
		w->mdb_rc = rc;
		return from_mdb(rc);
	}
	return 0;
}

int
cs__catalog_merkle_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	struct cs__merkle_ctx *m = ctx;

	return node_get(m->c, m->txn, level, index, out, NULL);
}

static int
put_str(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val, unsigned flags)
{
	MDB_val k = {strlen(key), (void *)key}, d = {strlen(val), (void *)val};
	int rc;

	if (k.mv_size == 0 || k.mv_size > 480)
		return MDB_BAD_VALSIZE;
	rc = mdb_put(txn, dbi, &k, &d, flags);
	return rc == MDB_KEYEXIST ? 0 : rc;
}

/* One secondary-index entry of an item: table and key. */
struct ixent {
	int dbi;
	const char *key;
};

static int
ix_add(struct ixent **v, size_t *n, int dbi, const char *key)
{
	struct ixent *nv;

	if (key == NULL || *key == '\0')
		return 0;
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].dbi == dbi && strcmp((*v)[i].key, key) == 0)
			return 0;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL)
		return ENOMEM;
	*v = nv;
	nv[(*n)++] = (struct ixent){dbi, key};
	return 0;
}

/*
 * The device, time, officer, category and stage index entries of every
 * sighting in `rec` ("seen"), and the stage of every case membership ("cases").
 */
static int
ix_collect(json_t *rec, struct ixent **v, size_t *n)
{
	json_t *s, *o;
	size_t i, j;
	int rc = 0;

	json_array_foreach(json_object_get(rec, "cases"), i, s)
	{
		if (rc == 0)
			rc = ix_add(v, n, CS_DBI_BY_STAGE,
			    json_string_value(json_object_get(s, "stage")));
	}
	json_array_foreach(json_object_get(rec, "seen"), i, s)
	{
		if (rc == 0)
			rc = ix_add(v, n, CS_DBI_BY_DEVICE,
			    json_string_value(json_object_get(s, "device")));
		if (rc == 0)
			rc = ix_add(v, n, CS_DBI_BY_TIME,
			    json_string_value(json_object_get(s, "recorded_start")));
		if (rc == 0)
			rc = ix_add(v, n, CS_DBI_BY_CATEGORY,
			    json_string_value(json_object_get(s, "category")));
		if (rc == 0)
			rc = ix_add(v, n, CS_DBI_BY_STAGE,
			    json_string_value(json_object_get(s, "stage")));
		json_array_foreach(json_object_get(s, "officers"), j, o)
		{
			if (rc == 0)
				rc = ix_add(v, n, CS_DBI_BY_OFFICER, json_string_value(o));
		}
	}
	return rc;
}

int
cs__cat_reindex(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *old, json_t *rec)
{
	struct ixent *ov = NULL, *nv = NULL;
	size_t on = 0, nn = 0;
	int rc;

	rc = old != NULL ? ix_collect(old, &ov, &on) : 0;
	if (rc == 0)
		rc = ix_collect(rec, &nv, &nn);
	for (size_t i = 0; rc == 0 && i < on; i++) {
		int kept = 0;
		for (size_t j = 0; j < nn && !kept; j++)
			kept = nv[j].dbi == ov[i].dbi && strcmp(nv[j].key, ov[i].key) == 0;
		if (!kept) {
			MDB_val k = {strlen(ov[i].key), (void *)ov[i].key};
			MDB_val d = {strlen(id), (void *)id};
			if (k.mv_size > 0 && k.mv_size <= 480) {
				rc = mdb_del(txn, c->dbi[ov[i].dbi], &k, &d);
				if (rc == MDB_NOTFOUND)
					rc = 0;
			}
		}
	}
	for (size_t i = 0; rc == 0 && i < nn; i++)
		rc = put_str(txn, c->dbi[nv[i].dbi], nv[i].key, id, MDB_NODUPDATA);
	free(ov);
	free(nv);
	return rc;
}

/*
 * The longest case key or officer whose listings are kept under key | 0x00 |
 * id (an id is at most 79 bytes, LMDB's keys 480): a longer one (no custos
 * writes one) is looked up through its index and the listing by id.
 */
#define LIST_KEY_MAX (480 - 1 - 79)

/* Puts `val` (NULL: deletes the entry) under key | 0x00 | id in `dbi`. */
static int
list_entry(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *id, MDB_val *val)
{
	size_t kl = key != NULL ? strlen(key) : 0, il = strlen(id);
	char b[481];
	MDB_val k = {kl + 1 + il, b};
	int rc;

	if (kl == 0 || kl > LIST_KEY_MAX || il > 79)
		return 0;
	memcpy(b, key, kl);
	b[kl] = '\0';
	memcpy(b + kl + 1, id, il);
	if (val != NULL)
		return mdb_put(txn, dbi, &k, val, 0);
	rc = mdb_del(txn, dbi, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Puts (val not NULL) or deletes the entries of a listing by its case keys and officers. */
static int
list_entries(struct cs__catalog *c, MDB_txn *txn, const char *id, const MDB_val *listing,
    MDB_val *val)
{
	struct cs__arena *a = NULL;
	struct cs__lseen *seen = NULL;
	struct cs_listing l;
	size_t nseen = 0;
	int rc = cs__listing_decode(listing->mv_data, listing->mv_size, &a, &l, &seen, &nseen);

	if (rc < 0)
		rc = rc == -ENOMEM ? ENOMEM : MDB_CORRUPTED;
	for (size_t i = 0; rc == 0 && i < l.n_cases; i++)
		rc = list_entry(txn, c->dbi[CS_DBI_LIST_BY_CASE], l.cases[i].key, id, val);
	for (size_t i = 0; rc == 0 && i < nseen; i++)
		for (size_t j = 0; rc == 0 && j < seen[i].n_officers; j++)
			rc = list_entry(txn, c->dbi[CS_DBI_LIST_BY_OFFICER], seen[i].officers[j],
			    id, val);
	cs__arena_free(a);
	return rc;
}

int
cs__cat_put_item(struct cs__catalog *c, MDB_txn *txn, const char *id, const json_t *rec)
{
	MDB_val k = {strlen(id), (void *)id}, old, d;
	unsigned char *buf = NULL;
	int rc = cs__cat_put(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), rec);

	/* the old listing's entries by case and officer go, the new one's come */
	if (rc == 0) {
		rc = mdb_get(txn, c->dbi[CS_DBI_LISTING], &k, &old);
		if (rc == 0)
			rc = list_entries(c, txn, id, &old, NULL);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		rc = cs__listing_encode(rec, &buf, &d.mv_size);
	d.mv_data = buf;
	if (rc == 0)
		rc = mdb_put(txn, c->dbi[CS_DBI_LISTING], &k, &d, 0);
	if (rc == 0)
		rc = list_entries(c, txn, id, &d, &d);
	free(buf);
	/* the upload queue: an item whose blob or a derivative has no replica anywhere */
	if (rc == 0 && json_object_get(rec, "purged") == NULL &&
	    cs__replica_todo((json_t *)rec, NULL))
		rc = mdb_put(txn, c->dbi[CS_DBI_UPLOAD_TODO], &k, &(MDB_val){0, ""}, 0);
	else if (rc == 0 && (rc = mdb_del(txn, c->dbi[CS_DBI_UPLOAD_TODO], &k, NULL)) ==
	    MDB_NOTFOUND)
		rc = 0;
	return rc;
}

/* Notes a remote that a replica event named (the upload queue's index holds for one). */
static int
put_remote(struct cs__catalog *c, MDB_txn *txn, const char *remote)
{
	MDB_val k = {remote != NULL ? strlen(remote) : 0, (void *)remote};

	if (k.mv_size == 0)
		return 0;
	if (k.mv_size > 480) /* named by no configuration here: the index never holds */
		k = (MDB_val){1, "\001"};
	return mdb_put(txn, c->dbi[CS_DBI_REMOTES], &k, &(MDB_val){0, ""}, 0);
}

static int
put_item(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	return cs__cat_put_item(c, txn, id, rec);
}

static int
get_item_raw(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t **rec)
{
	MDB_val k = {strlen(id), (void *)id}, d;
	int rc, oom;

	if (k.mv_size == 0 || k.mv_size > 480)
		return MDB_NOTFOUND;
	rc = mdb_get(txn, c->dbi[CS_DBI_ITEMS], &k, &d);
	if (rc != 0)
		return rc;
	*rec = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
	if (*rec == NULL)
		return oom ? ENOMEM : MDB_CORRUPTED;
	return 0;
}

/*
 * The item an event about an existing item names ("id"): *id and its record
 * *rec. 0, ENOMEM, or -1 with *why = `unknown` when there is no such item.
 */
static int
event_item(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *unknown,
    const char **id, json_t **rec, const char **why)
{
	int rc;

	*id = json_string_value(json_object_get(ev, "id"));
	rc = *id != NULL ? get_item_raw(c, txn, *id, rec) : MDB_NOTFOUND;
	if (rc == ENOMEM)
		return rc;
	if (rc != 0) {
		*why = unknown;
		return -1;
	}
	return 0;
}

/*
 * An event that secured a file from a watched source names the source's job
 * ("job": {"key", "ino", "size", "mtime_ns"}). Its job becomes "ingested" in
 * the same transaction, so that a daemon killed after the event (even before
 * this commit: replay does the same) finishes that file without taking it
 * again.
 */
static int
put_job(struct cs__catalog *c, MDB_txn *txn, json_t *job, const char *id, const char *sha)
{
	json_t *v;
	char *s, *key = NULL;
	size_t len, klen;
	MDB_val k, d;
	int rc;

	if (c->jobs == 0 || sha == NULL)
		return 0;
	/* The key is a name: its exact bytes, from "key_hex" when it is not text. */
	rc = cs_name_json_get(job, "key", &key, &klen);
	if (rc == -ENOMEM)
		return ENOMEM;
	if (rc < 0 || klen == 0 || klen > 480) {
		free(key);
		return 0;
	}
	v = json_pack("{s:s, s:s, s:s, s:O*, s:O*, s:O*}", "state", "ingested", "id", id, "sha256",
	    sha, "ino", json_object_get(job, "ino"), "size", json_object_get(job, "size"),
	    "mtime_ns", json_object_get(job, "mtime_ns"));
	s = v != NULL ? cs__json_canonical(v, &len) : NULL;
	json_decref(v);
	if (s == NULL) {
		free(key);
		return ENOMEM;
	}
	k.mv_size = klen;
	k.mv_data = key;
	d.mv_size = len;
	d.mv_data = s;
	rc = cs__catalog_job_write(c, txn, &k, &d);
	free(s);
	free(key);
	return rc;
}

/*
 * Applies one event. Returns an LMDB code (0, MDB_MAP_FULL, ...) or -1 with
 * *why set when the event does not fit the catalog (a ledger problem).
 */
static int
apply_one(struct cs__catalog *c, MDB_txn *txn, const struct cs__applied *a, const char **why,
    int64_t *last_ms)
{
	uint8_t seqb[8], leafv[44], shab[32];
	json_t *ev = NULL, *item, *rec = NULL, *old = NULL;
	struct wctx w = {c, txn, 0};
	const char *type, *id, *t;
	MDB_val k, d;
	int64_t ms;
	int rc, oom;

	ev = cs__json_load(a->ev, a->len, JSON_REJECT_DUPLICATES, &oom);
	if (ev == NULL && oom) {
		rc = ENOMEM; /* not a ledger problem */
		goto out;
	}
	if (ev == NULL || !json_is_object(ev)) {
		*why = "event is not a JSON object";
		rc = -1;
		goto out;
	}
	if (!json_is_integer(json_object_get(ev, "seq")) ||
	    (uint64_t)json_integer_value(json_object_get(ev, "seq")) != a->seq) {
		*why = "event's seq does not match its place in the ledger";
		rc = -1;
		goto out;
	}
	t = json_string_value(json_object_get(ev, "time"));
	if (t == NULL || cs__time_parse(t, &ms) < 0) {
		*why = "event has no valid time";
		rc = -1;
		goto out;
	}
	if (ms > *last_ms)
		*last_ms = ms;
	type = json_string_value(json_object_get(ev, "event"));
	if (type == NULL) {
		*why = "event has no type";
		rc = -1;
		goto out;
	}
	put_be64(seqb, a->seq);
	if (strcmp(type, "ingest") == 0) {
		const char *sha;
		item = json_object_get(ev, "item");
		id = json_string_value(json_object_get(item, "id"));
		sha = json_string_value(json_object_get(item, "sha256"));
		if (id == NULL || sha == NULL || strlen(sha) != 64 ||
		    cs__unhex(sha, 64, shab) < 0) {
			*why = "ingest event lacks a valid id or sha256";
			rc = -1;
			goto out;
		}
		rc = get_item_raw(c, txn, id, &rec);
		if (rc == 0) {
			*why = "ingest event repeats an existing evidence id";
			rc = -1;
			goto out;
		}
		if (rc != MDB_NOTFOUND)
			goto out;
		json_decref(rec);
		rec = json_deep_copy(item);
		if (rec == NULL || json_object_set_new(rec, "sightings", json_integer(1)) < 0) {
			rc = ENOMEM;
			goto out;
		}
		rc = cs__project_event(c, txn, ev, type, a->seq, rec, why);
		if (rc == 0)
			rc = cs__fixity_index(c, txn, id, rec);
		if (rc == 0)
			rc = cs__media_index(c, txn, id);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
		if (rc == 0) {
			k.mv_size = 32;
			k.mv_data = shab;
			d.mv_size = strlen(id);
			d.mv_data = (void *)id;
			rc = mdb_put(txn, c->dbi[CS_DBI_BY_SHA], &k, &d, MDB_NOOVERWRITE);
			if (rc == MDB_KEYEXIST) {
				*why = "ingest event repeats a stored digest as a new item";
				rc = -1;
				goto out;
			}
		}
		if (rc == 0)
			rc = cs__cat_reindex(c, txn, id, NULL, rec);
	} else if (strcmp(type, "sighting") == 0) {
		rc = event_item(c, txn, ev, "sighting event names an unknown evidence id", &id,
		    &rec, why);
		if (rc != 0)
			goto out;
		old = json_deep_copy(rec);
		if (old == NULL ||
		    json_object_set_new(rec, "sightings",
		        json_integer(json_integer_value(json_object_get(rec, "sightings")) + 1)) <
		        0) {
			rc = ENOMEM;
			goto out;
		}
		rc = cs__project_event(c, txn, ev, type, a->seq, rec, why);
		if (rc == 0)
			rc = cs__purge_revive(c, txn, id, rec);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
		if (rc == 0)
			rc = cs__cat_reindex(c, txn, id, old, rec);
	} else if (strncmp(type, "case-", 5) == 0 || strcmp(type, "amend") == 0) {
		id = json_string_value(json_object_get(ev, "id"));
		rc = cs__project_event(c, txn, ev, type, a->seq, NULL, why);
	} else if (strcmp(type, "fixity") == 0) {
		rc = event_item(c, txn, ev, "fixity event names an unknown evidence id", &id, &rec,
		    why);
		if (rc != 0)
			goto out;
		rc = cs__fixity_project(c, txn, ev, a->seq, id, rec, why);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strcmp(type, "replica") == 0) {
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		json_t *ts = json_object_get(ev, "tree_size");
		uint64_t old_cp = 0;

		id = json_string_value(json_object_get(ev, "id"));
		if (kind != NULL && strcmp(kind, "checkpoint") == 0) {
			if (!json_is_integer(ts) || json_integer_value(ts) < 1 ||
			    (uint64_t)json_integer_value(ts) > a->seq) {
				*why = "replica event of a checkpoint has no valid tree_size";
				rc = -1;
				goto out;
			}
			rc = meta_get(c, txn, "replica_cp", &old_cp);
			if (rc == 0 && (uint64_t)json_integer_value(ts) > old_cp)
				rc = meta_put(c, txn, "replica_cp",
				    (uint64_t)json_integer_value(ts));
		} else if (kind != NULL &&
		    (strcmp(kind, "blob") == 0 || strcmp(kind, "derivative") == 0)) {
			rc = event_item(c, txn, ev, "replica event names an unknown evidence id",
			    &id, &rec, why);
			if (rc != 0)
				goto out;
			rc = cs__replica_project(ev, a->seq, rec, why);
			if (rc == 0)
				rc = put_item(c, txn, id, rec);
			if (rc == 0)
				rc = put_remote(c, txn,
				    json_string_value(json_object_get(ev, "remote")));
		} else {
			rc = 0; /* a kind of replica from a later version: kept */
		}
	} else if (strcmp(type, "media") == 0) {
		rc = event_item(c, txn, ev, "media event names an unknown evidence id", &id, &rec,
		    why);
		if (rc != 0)
			goto out;
		rc = cs__media_project(c, txn, ev, a->seq, id, rec, why);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strcmp(type, "derivative") == 0) {
		rc = event_item(c, txn, ev, "derivative event names an unknown evidence id", &id,
		    &rec, why);
		if (rc != 0)
			goto out;
		rc = cs__media_project_derivative(c, txn, ev, a->seq, id, rec, why);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strcmp(type, "fingerprint") == 0) {
		rc = event_item(c, txn, ev, "fingerprint event names an unknown evidence id", &id,
		    &rec, why);
		if (rc != 0)
			goto out;
		rc = cs__fp_project(c, txn, ev, a->seq, id, rec, why);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strcmp(type, "conclusive") == 0) {
		/* the item's mark: may a party or lawyer receive it (custos/access.h) */
		json_t *o;
		rc = event_item(c, txn, ev, "conclusive event names an unknown evidence id", &id,
		    &rec, why);
		if (rc != 0)
			goto out;
		o = json_pack("{s:O, s:I, s:O*, s:O*}", "value", json_object_get(ev, "conclusive"),
		    "seq", (json_int_t)a->seq, "time", json_object_get(ev, "time"), "actor",
		    json_object_get(ev, "actor"));
		rc = o == NULL || json_object_set_new(rec, "conclusive", o) < 0 ? ENOMEM : 0;
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strncmp(type, "access", 6) == 0 || strcmp(type, "search") == 0) {
		id = NULL;
		rc = cs__access_project(c, txn, ev, type, a->seq, why);
	} else if (strcmp(type, "officer") == 0) {
		id = NULL;
		rc = cs__officer_project(c, txn, ev, a->seq, why);
	} else if (strcmp(type, "hold") == 0 || strcmp(type, "hold-release") == 0 ||
	    strcmp(type, "evidence-use") == 0) {
		/* an item's hold, its release and its use are in the item's history */
		id = json_string_value(json_object_get(ev, "id"));
		rc = cs__retention_project(c, txn, ev, type, a->seq, why);
	} else if (strncmp(type, "disclosure-", 11) == 0) {
		id = NULL;
		rc = cs__disclosure_project(c, txn, ev, type, a->seq, why);
	} else if (strncmp(type, "purge", 5) == 0) {
		/* the item's own events (purge, purge-remote) are in its history */
		id = json_string_value(json_object_get(ev, "id"));
		rc = cs__purge_project(c, txn, ev, type, a->seq, why);
	} else {
		/* Event types from later versions are kept in the ledger and tree. */
		id = json_string_value(json_object_get(ev, "id"));
		rc = 0;
	}
	if (rc == 0 && id != NULL) {
		k.mv_size = strlen(id);
		k.mv_data = (void *)id;
		d.mv_size = 8;
		d.mv_data = seqb;
		rc = k.mv_size > 0 && k.mv_size <= 480 ?
		    mdb_put(txn, c->dbi[CS_DBI_ITEM_EVENTS], &k, &d, 0) : 0;
	}
	if (rc == 0 && id != NULL && rec != NULL && json_is_object(json_object_get(ev, "job")))
		rc = put_job(c, txn, json_object_get(ev, "job"), id,
		    json_string_value(json_object_get(rec, "sha256")));
	if (rc != 0)
		goto out;

	memcpy(leafv, a->leaf, 32);
	put_be64(leafv + 32, a->data_off);
	leafv[40] = (uint8_t)(a->len >> 24);
	leafv[41] = (uint8_t)(a->len >> 16);
	leafv[42] = (uint8_t)(a->len >> 8);
	leafv[43] = (uint8_t)a->len;
	k.mv_size = 8;
	k.mv_data = seqb;
	d.mv_size = 44;
	d.mv_data = leafv;
	rc = mdb_put(txn, c->dbi[CS_DBI_LEAVES], &k, &d, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		*why = "ledger index applied twice";
		rc = -1;
		goto out;
	}
	if (rc == 0) {
		int mrc = cs_merkle_append(w_get, w_put, &w, a->seq, a->leaf);
		/* A hash not computed is out of memory (OpenSSL's, maybe), not damage. */
		if (mrc < 0)
			rc = w.mdb_rc != 0 ? w.mdb_rc :
			    mrc == -ENOMEM || mrc == CS_ECRYPTO ? ENOMEM : MDB_CORRUPTED;
	}
	if (rc == 0)
		rc = meta_put(c, txn, "size", a->seq + 1);
	if (rc == 0)
		rc = meta_put(c, txn, "journal_end", a->next);
	if (rc == 0)
		rc = meta_put(c, txn, "last_ms", (uint64_t)*last_ms);
out:
	json_decref(old);
	json_decref(rec);
	json_decref(ev);
	return rc;
}

int
cs__catalog_apply(struct cs__catalog *c, const struct cs__applied *evs, size_t n)
{
	for (int attempt = 0; attempt < 40; attempt++) {
		struct cs__catalog_state st;
		const char *why = NULL;
		MDB_txn *txn = NULL;
		int64_t last_ms;
		int rc;

		rc = mdb_txn_begin(c->env, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED) {
			mdb_env_set_mapsize(c->env, 0);
			continue;
		}
		if (rc != 0)
			return from_mdb(rc);
		rc = cs__catalog_state(c, txn, &st);
		if (rc < 0) {
			mdb_txn_abort(txn);
			return rc;
		}
		last_ms = st.last_ms;
		for (size_t i = 0; i < n && rc == 0; i++) {
			if (evs[i].seq != st.size + i) {
				mdb_txn_abort(txn);
				return CS_ELEDGER;
			}
			rc = apply_one(c, txn, &evs[i], &why, &last_ms);
		}
		if (rc == 0) {
			CS_FAILPOINT("lmdb-commit");
			rc = mdb_txn_commit(txn);
			txn = NULL;
		}
		if (txn != NULL)
			mdb_txn_abort(txn);
		if (rc == MDB_MAP_FULL) {
			MDB_envinfo info;
			mdb_env_info(c->env, &info);
			rc = mdb_env_set_mapsize(c->env, info.me_mapsize * 2);
			if (rc != 0)
				return from_mdb(rc);
			continue;
		}
		if (rc == -1)
			return CS_ELEDGER;
		return from_mdb(rc);
	}
	return CS_ESTORE;
}

int
cs__catalog_get_item(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t **rec)
{
	return from_mdb(get_item_raw(c, txn, id, rec));
}

int
cs__catalog_id_by_sha(struct cs__catalog *c, MDB_txn *txn, const uint8_t sha[32], char *id,
    size_t idn)
{
	MDB_val k = {32, (void *)sha}, d;
	int rc = mdb_get(txn, c->dbi[CS_DBI_BY_SHA], &k, &d);

	if (rc != 0)
		return from_mdb(rc);
	if (d.mv_size >= idn)
		return CS_ESTORE;
	memcpy(id, d.mv_data, d.mv_size);
	id[d.mv_size] = '\0';
	return 0;
}

int
cs__catalog_leaf(struct cs__catalog *c, MDB_txn *txn, uint64_t seq, uint8_t leaf[32],
    uint64_t *off, uint32_t *len)
{
	uint8_t kb[8];
	MDB_val k = {8, kb}, d;
	const uint8_t *p;
	int rc;

	put_be64(kb, seq);
	rc = mdb_get(txn, c->dbi[CS_DBI_LEAVES], &k, &d);
	if (rc != 0)
		return from_mdb(rc);
	if (d.mv_size != 44)
		return CS_ESTORE;
	p = d.mv_data;
	if (leaf != NULL)
		memcpy(leaf, p, 32);
	if (off != NULL)
		*off = get_be64(p + 32);
	if (len != NULL)
		*len = (uint32_t)p[40] << 24 | (uint32_t)p[41] << 16 | (uint32_t)p[42] << 8 | p[43];
	return 0;
}

/* Collects the dupsort values (ids) stored under `key` in table `dbi`. */
static int
dup_values(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t keylen,
    int (*cb)(void *ctx, MDB_val *v), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k = {keylen, (void *)key}, d;
	int rc;

	if (keylen == 0 || keylen > 480)
		return 0;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
	while (rc == 0) {
		int r = cb(ctx, &d);
		if (r != 0) {
			mdb_cursor_close(cur);
			return r < 0 ? r : 0;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : from_mdb(rc);
}

struct seqs {
	uint64_t *v;
	size_t n, cap;
};

static int
collect_seq(void *ctx, MDB_val *v)
{
	struct seqs *s = ctx;

	if (v->mv_size != 8)
		return CS_ESTORE;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = get_be64(v->mv_data);
	return 0;
}

int
cs__catalog_item_seqs(struct cs__catalog *c, MDB_txn *txn, const char *id, uint64_t **seqs,
    size_t *n)
{
	struct seqs s = {0};
	int rc = dup_values(txn, c->dbi[CS_DBI_ITEM_EVENTS], id, strlen(id), collect_seq, &s);

	if (rc < 0) {
		free(s.v);
		return rc;
	}
	*seqs = s.v;
	*n = s.n;
	return 0;
}

int
cs__catalog_each_item(struct cs__catalog *c, MDB_txn *txn,
    int (*cb)(void *ctx, const char *id, json_t *rec), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc;

	rc = mdb_cursor_open(txn, c->dbi[CS_DBI_ITEMS], &cur);
	if (rc != 0)
		return from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0) {
		char id[512];
		json_t *rec;
		int r, oom;

		if (k.mv_size >= sizeof(id)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(id, k.mv_data, k.mv_size);
		id[k.mv_size] = '\0';
		rec = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
		if (rec == NULL && oom) {
			mdb_cursor_close(cur);
			return -ENOMEM; /* not an unreadable record */
		}
		r = cb(ctx, id, rec);
		json_decref(rec);
		if (r != 0) {
			mdb_cursor_close(cur);
			return r < 0 ? r : 0;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : from_mdb(rc);
}

/* find: candidates come from one index, then every other criterion filters. */
struct find_ctx {
	struct cs__catalog *c;
	MDB_txn *txn;
	const struct cs_query *q;
	char from[32], to[32];
	struct cs_list *out;
	char *key; /* canonical key of q->case_no */
	char *prefix; /* canonical key of q->case_prefix */
	json_t *seen; /* ids already in `out`, as keys: a match is added once */
	const char *stage; /* canonical name of q->stage */
	/*
	 * The dupsort index the candidates come from when they are the values
	 * of one key (each id once, every one under that key): neither checked
	 * again nor remembered in `seen`. -1 otherwise.
	 */
	int src;
	int registry; /* officers in the registry: the matches' flags are looked up */
	struct cs__officer_memo memo;
	MDB_cursor *lcur; /* on the listing table */
};

/* 1 if `id` is under `key`, 0 if not, negative if that cannot be told. */
static int
has_dup(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *id)
{
	MDB_cursor *cur;
	MDB_val k = {strlen(key), (void *)key}, d = {strlen(id), (void *)id};
	int rc;

	if (k.mv_size == 0 || k.mv_size > 480)
		return 0;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH);
	mdb_cursor_close(cur);
	return rc == 0;
}

/* 1 if the item (its listing and sightings) matches the query, 0 if not, negative on an error. */
static int
matches(struct find_ctx *f, const char *id, const struct cs_listing *l,
    const struct cs__lseen *seen, size_t nseen)
{
	const struct cs_query *q = f->q;
	struct cs__catalog *c = f->c;
	int r;

	if (f->key && f->src != CS_DBI_BY_CASE &&
	    (r = has_dup(f->txn, c->dbi[CS_DBI_BY_CASE], f->key, id)) <= 0)
		return r;
	if (f->prefix) {
		r = 0;
		for (size_t i = 0; i < l->n_cases; i++) {
			const char *k = l->cases[i].key;
			if (k != NULL && strncmp(k, f->prefix, strlen(f->prefix)) == 0)
				r = 1;
		}
		if (r == 0)
			return 0;
	}
	if (f->key && q->case_exact) {
		/* the number exactly as written in one of the item's case files */
		r = 0;
		for (size_t i = 0; i < l->n_cases; i++) {
			const char *n = l->cases[i].number;
			if (n != NULL && strcmp(n, q->case_no) == 0)
				r = 1;
		}
		if (r == 0)
			return 0;
	}
	if (q->officer && f->src != CS_DBI_BY_OFFICER &&
	    (r = has_dup(f->txn, c->dbi[CS_DBI_BY_OFFICER], q->officer, id)) <= 0)
		return r;
	if (q->category && f->src != CS_DBI_BY_CATEGORY &&
	    (r = has_dup(f->txn, c->dbi[CS_DBI_BY_CATEGORY], q->category, id)) <= 0)
		return r;
	if (f->stage && f->src != CS_DBI_BY_STAGE &&
	    (r = has_dup(f->txn, c->dbi[CS_DBI_BY_STAGE], f->stage, id)) <= 0)
		return r;
	if (q->device && f->src != CS_DBI_BY_DEVICE &&
	    (r = has_dup(f->txn, c->dbi[CS_DBI_BY_DEVICE], q->device, id)) <= 0)
		return r;
	if (q->sha256) {
		if (l->sha256 == NULL || strcasecmp(l->sha256, q->sha256) != 0)
			return 0;
	}
	if (f->from[0] || f->to[0]) {
		/* any sighting's recording start (as corrected) */
		r = 0;
		for (size_t i = 0; i < nseen; i++) {
			const char *t = seen[i].start;
			if (t != NULL && !(f->from[0] && strcmp(t, f->from) < 0) &&
			    !(f->to[0] && strcmp(t, f->to) > 0))
				r = 1;
		}
		return r;
	}
	return 1;
}

static int
add_flag_name(void *ctx, const char *officer, const char *flag, const char *why)
{
	struct cs_listing *l = ctx;

	(void)officer;
	(void)why;
	l->flags[l->n_flags++] = flag;
	return 0;
}

/* Adds item v (an id) if its listing `ld` (NULL: read by id) matches. */
static int
find_one(struct find_ctx *f, MDB_val *v, MDB_val *ld)
{
	struct cs_list *out = f->out;
	struct cs__lseen *seen = NULL;
	struct cs_listing l;
	size_t nseen = 0;
	char id[512];
	MDB_val d;
	int rc;

	if (v->mv_size >= sizeof(id))
		return CS_ESTORE;
	memcpy(id, v->mv_data, v->mv_size);
	id[v->mv_size] = '\0';
	/* (a set, not a scan of the answer: a lookup stays linear in its matches) */
	if (f->src < 0 && json_object_get(f->seen, id) != NULL)
		return 0;
	/* (one cursor: the ids of one index key come in order, often on the page before) */
	rc = ld != NULL ? 0 : mdb_cursor_get(f->lcur, v, &d, MDB_SET);
	if (rc != 0)
		return rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	if (ld != NULL)
		d = *ld;
	rc = cs__listing_decode(d.mv_data, d.mv_size, &out->arena, &l, &seen, &nseen);
	/* a match left out of the answer (out of memory) must not go unnoticed */
	if (rc == 0)
		rc = matches(f, id, &l, seen, nseen);
	for (size_t i = 0; rc > 0 && f->registry && i < nseen; i++) {
		int r = cs__officer_sighting(f->c, f->txn, seen[i].officers, seen[i].n_officers,
		    seen[i].start != NULL ? seen[i].start : seen[i].time, &f->memo, add_flag_name,
		    &l);
		if (r < 0)
			rc = r;
	}
	if (rc > 0 && out->n == out->cap) {
		size_t cap = out->cap > 0 ? out->cap * 2 : 64;
		struct cs_listing *nv = realloc(out->items, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		out->items = nv;
		out->cap = cap;
	}
	if (rc > 0) {
		out->items[out->n++] = l;
		rc = f->src < 0 && json_object_set_new(f->seen, id, json_true()) < 0 ? -ENOMEM : 0;
	}
	return rc;
}

static int
find_add(void *ctx, MDB_val *v)
{
	return find_one(ctx, v, NULL);
}

/* Adds the matches among the listings under key | 0x00 in `dbi` (in id order). */
static int
find_listed(struct find_ctx *f, int dbi, const char *key)
{
	size_t kl = strlen(key) + 1;
	MDB_val k = {kl, (void *)key}, d, id;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(f->txn, f->c->dbi[dbi], &cur);

	if (rc != 0)
		return from_mdb(rc);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size > kl && memcmp(k.mv_data, key, kl) == 0) {
		id.mv_data = (char *)k.mv_data + kl;
		id.mv_size = k.mv_size - kl;
		rc = find_one(f, &id, &d);
		if (rc < 0)
			break;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : (rc < 0 ? rc : from_mdb(rc));
}

static int find_in(struct find_ctx *f);

int
cs__catalog_find(struct cs__catalog *c, MDB_txn *txn, const struct cs_query *q,
    struct cs_list *out)
{
	struct find_ctx f = {c, txn, q, "", "", out, NULL, NULL, json_object(), NULL, -1, 0,
		{.id = ""}, NULL};
	MDB_stat ms;
	int rc = f.seen != NULL ? 0 : -ENOMEM;

	if (rc == 0 && mdb_cursor_open(txn, c->dbi[CS_DBI_LISTING], &f.lcur) != 0)
		rc = CS_ESTORE;
	if (rc == 0 && mdb_stat(txn, c->dbi[CS_DBI_OFFICERS], &ms) != 0)
		rc = CS_ESTORE;
	f.registry = rc == 0 && ms.ms_entries > 0;
	if (rc == 0 && q->stage != NULL && (f.stage = cs__stage_canon(q->stage)) == NULL)
		rc = CS_EFORMAT;
	if (rc == 0 && q->category != NULL && !cs__text_ok(q->category))
		rc = CS_EFORMAT;

	if (rc == 0 && q->case_no != NULL)
		rc = cs_case_key(q->case_no, &f.key);
	if (rc == 0 && q->case_prefix != NULL) {
		/* a prefix keeps its trailing space: "X " is not "X" */
		rc = cs_case_key(q->case_prefix, &f.prefix);
	}
	if (rc == 0)
		rc = find_in(&f);
	if (f.lcur != NULL)
		mdb_cursor_close(f.lcur);
	free(f.key);
	free(f.prefix);
	json_decref(f.seen);
	return rc;
}

static int
find_in(struct find_ctx *f0)
{
	struct find_ctx f = *f0;
	const struct cs_query *q = f.q;
	struct cs__catalog *c = f.c;
	MDB_txn *txn = f.txn;
	int64_t ms;

	if (q->from != NULL) {
		if (cs__time_parse(q->from, &ms) < 0)
			return CS_EFORMAT;
		cs__time_format(ms, f.from, sizeof(f.from));
	}
	if (q->to != NULL) {
		if (cs__time_parse(q->to, &ms) < 0)
			return CS_EFORMAT;
		cs__time_format(ms, f.to, sizeof(f.to));
	}
	if (f.key && strlen(f.key) <= LIST_KEY_MAX) {
		f.src = CS_DBI_BY_CASE;
		return find_listed(&f, CS_DBI_LIST_BY_CASE, f.key);
	}
	if (f.key) {
		f.src = CS_DBI_BY_CASE;
		return dup_values(txn, c->dbi[CS_DBI_BY_CASE], f.key, strlen(f.key), find_add, &f);
	}
	if (f.prefix) {
		MDB_cursor *cur;
		MDB_val k = {strlen(f.prefix), f.prefix}, d;
		int rc = mdb_cursor_open(txn, c->dbi[CS_DBI_BY_CASE], &cur);
		if (rc != 0)
			return from_mdb(rc);
		rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
		while (rc == 0 && k.mv_size >= strlen(f.prefix) &&
		    memcmp(k.mv_data, f.prefix, strlen(f.prefix)) == 0) {
			rc = find_add(&f, &d);
			if (rc < 0)
				break;
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		return rc == MDB_NOTFOUND || rc == 0 ? 0 : (rc < 0 ? rc : from_mdb(rc));
	}
	if (q->officer && strlen(q->officer) <= LIST_KEY_MAX) {
		f.src = CS_DBI_BY_OFFICER;
		return find_listed(&f, CS_DBI_LIST_BY_OFFICER, q->officer);
	}
	if (q->officer) {
		f.src = CS_DBI_BY_OFFICER;
		return dup_values(txn, c->dbi[CS_DBI_BY_OFFICER], q->officer, strlen(q->officer),
		    find_add, &f);
	}
	if (q->device) {
		f.src = CS_DBI_BY_DEVICE;
		return dup_values(txn, c->dbi[CS_DBI_BY_DEVICE], q->device, strlen(q->device),
		    find_add, &f);
	}
	if (q->category) {
		f.src = CS_DBI_BY_CATEGORY;
		return dup_values(txn, c->dbi[CS_DBI_BY_CATEGORY], q->category,
		    strlen(q->category), find_add, &f);
	}
	if (q->sha256) {
		uint8_t sha[32];
		MDB_val k = {32, sha}, d;
		int rc;
		if (strlen(q->sha256) != 64 || cs__unhex(q->sha256, 64, sha) < 0)
			return CS_EFORMAT;
		rc = mdb_get(txn, c->dbi[CS_DBI_BY_SHA], &k, &d);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc != 0)
			return from_mdb(rc);
		return find_add(&f, &d);
	}
	if (f.from[0] || f.to[0]) {
		MDB_cursor *cur;
		MDB_val k, d;
		int rc = mdb_cursor_open(txn, c->dbi[CS_DBI_BY_TIME], &cur);
		if (rc != 0)
			return from_mdb(rc);
		k.mv_size = strlen(f.from);
		k.mv_data = f.from;
		rc = f.from[0] ? mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE) :
		                 mdb_cursor_get(cur, &k, &d, MDB_FIRST);
		while (rc == 0) {
			if (f.to[0] &&
			    (k.mv_size != strlen(f.to) || memcmp(k.mv_data, f.to, k.mv_size) > 0))
				break;
			rc = find_add(&f, &d);
			if (rc < 0)
				break;
			rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		return rc == MDB_NOTFOUND || rc == 0 ? 0 : (rc < 0 ? rc : from_mdb(rc));
	}
	if (f.stage) {
		f.src = CS_DBI_BY_STAGE;
		return dup_values(txn, c->dbi[CS_DBI_BY_STAGE], f.stage, strlen(f.stage),
		    find_add, &f);
	}
	return -EINVAL;
}

static void
key_text(const MDB_val *k, char *buf, size_t n)
{
	const uint8_t *p = k->mv_data;
	int printable = cs__utf8_clean(k->mv_data, k->mv_size);

	if (printable && k->mv_size < n) {
		memcpy(buf, p, k->mv_size);
		buf[k->mv_size] = '\0';
	} else if (k->mv_size * 2 < n) {
		cs__hex(p, k->mv_size, buf);
	} else {
		snprintf(buf, n, "(%zu-byte key)", k->mv_size);
	}
}

int
cs__catalog_compare(struct cs__catalog *a, MDB_txn *a_txn, struct cs__catalog *b,
    void (*diff)(void *ctx, const char *table, const char *key, const char *what), void *ctx)
{
	MDB_txn *ta = a_txn, *tb = NULL;
	int ndiff = 0, rc = 0;

	if (ta == NULL)
		rc = cs__catalog_rtxn(a, &ta);
	if (rc == 0)
		rc = cs__catalog_rtxn(b, &tb);
	if (rc < 0)
		goto out;
	for (int i = 0; i < CS_DBI_COUNT; i++) {
		MDB_cursor *ca = NULL, *cb = NULL;
		MDB_val ka, da, kb, db;
		int ra, rb;
		char key[160];

		if (mdb_cursor_open(ta, a->dbi[i], &ca) != 0 ||
		    mdb_cursor_open(tb, b->dbi[i], &cb) != 0) {
			mdb_cursor_close(ca);
			rc = CS_ESTORE;
			goto out;
		}
		ra = mdb_cursor_get(ca, &ka, &da, MDB_FIRST);
		rb = mdb_cursor_get(cb, &kb, &db, MDB_FIRST);
		while (ra == 0 || rb == 0) {
			int cmp;
			if (ra != 0)
				cmp = 1;
			else if (rb != 0)
				cmp = -1;
			else {
				cmp = mdb_cmp(ta, a->dbi[i], &ka, &kb);
				if (cmp == 0 && is_dupsort(i))
					cmp = mdb_dcmp(ta, a->dbi[i], &da, &db);
			}
			if (cmp == 0 && ra == 0 && rb == 0) {
				/* Same key (and, for dupsort, same value): compare values. */
				if (da.mv_size != db.mv_size ||
				    memcmp(da.mv_data, db.mv_data, da.mv_size) != 0) {
					key_text(&ka, key, sizeof(key));
					diff(ctx, dbi_names[i], key,
					    "differs from the ledger's replay");
					ndiff++;
				}
				ra = mdb_cursor_get(ca, &ka, &da, MDB_NEXT);
				rb = mdb_cursor_get(cb, &kb, &db, MDB_NEXT);
			} else if (cmp < 0) {
				key_text(&ka, key, sizeof(key));
				diff(ctx, dbi_names[i], key,
				    "is in the catalog but not in the ledger");
				ndiff++;
				ra = mdb_cursor_get(ca, &ka, &da, MDB_NEXT);
			} else {
				key_text(&kb, key, sizeof(key));
				diff(ctx, dbi_names[i], key,
				    "is in the ledger but missing from the catalog");
				ndiff++;
				rb = mdb_cursor_get(cb, &kb, &db, MDB_NEXT);
			}
		}
		mdb_cursor_close(ca);
		mdb_cursor_close(cb);
	}
	rc = ndiff;
out:
	if (ta != NULL && ta != a_txn)
		mdb_txn_abort(ta);
	if (tb != NULL)
		mdb_txn_abort(tb);
	return rc;
}

/* ---- helpers for the evidence model's projection (lib/project.c) ---- */

int
cs__cat_get(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t keylen, json_t **val)
{
	MDB_val k = {keylen, (void *)key}, d;
	int rc, oom;

	if (keylen == 0 || keylen > 480)
		return MDB_NOTFOUND;
	rc = mdb_get(txn, dbi, &k, &d);
	if (rc != 0)
		return rc;
	*val = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
	if (*val == NULL)
		return oom ? ENOMEM : MDB_CORRUPTED;
	return 0;
}

int
cs__cat_put(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t keylen, const json_t *val)
{
	size_t len;
	char *s;
	MDB_val k = {keylen, (void *)key}, d;
	int rc;

	if (keylen == 0 || keylen > 480)
		return MDB_BAD_VALSIZE;
	s = cs__json_canonical(val, &len);
	if (s == NULL)
		return ENOMEM;
	d.mv_size = len;
	d.mv_data = s;
	rc = mdb_put(txn, dbi, &k, &d, 0);
	free(s);
	return rc;
}

int
cs__cat_put_seq(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t seq)
{
	uint8_t b[8];
	MDB_val k = {strlen(key), (void *)key}, d = {8, b};

	if (k.mv_size == 0 || k.mv_size > 480)
		return MDB_BAD_VALSIZE;
	put_be64(b, seq);
	return mdb_put(txn, dbi, &k, &d, 0);
}

int
cs__cat_each(MDB_txn *txn, MDB_dbi dbi, const char *prefix, size_t prefixlen,
    int (*cb)(void *ctx, const char *key, size_t keylen, json_t *val), void *ctx)
{
	MDB_cursor *cur;
	MDB_val k = {prefixlen, (void *)prefix}, d;
	int rc;

	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		return from_mdb(rc);
	rc = prefixlen > 0 ? mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE) :
	                     mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0 && k.mv_size >= prefixlen && memcmp(k.mv_data, prefix, prefixlen) == 0) {
		json_t *v;
		int r, oom;
		v = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
		if (v == NULL) {
			mdb_cursor_close(cur);
			return oom ? -ENOMEM : CS_ESTORE;
		}
		r = cb(ctx, k.mv_data, k.mv_size, v);
		json_decref(v);
		if (r != 0) {
			mdb_cursor_close(cur);
			return r < 0 ? r : 0;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : from_mdb(rc);
}

int
cs__cat_seqs(struct cs__catalog *c, MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t **seqs,
    size_t *n)
{
	struct seqs s = {0};
	int rc;

	(void)c;
	rc = dup_values(txn, dbi, key, strlen(key), collect_seq, &s);
	if (rc < 0) {
		free(s.v);
		return rc;
	}
	*seqs = s.v;
	*n = s.n;
	return 0;
}
