/*
 * The catalog: one LMDB environment under <root>/catalog that indexes the
 * ledger. Every change to it is the application of ledger events by
 * cs__catalog_apply(), the one function used both when an event is first
 * written and when the ledger is replayed, so catalog == replay(ledger)
 * holds by construction and is checked by verify. lib-internal.
 */
#ifndef CS_CATALOG_H
#define CS_CATALOG_H

#include <jansson.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

enum {
	CS_DBI_ITEMS,       /* id -> record (canonical JSON) */
	CS_DBI_BY_SHA,      /* sha256 (32 bytes) -> id */
	CS_DBI_BY_CASE,     /* canonical case key -> member id (dupsort) */
	CS_DBI_BY_OFFICER,  /* officer id -> id (dupsort) */
	CS_DBI_BY_DEVICE,   /* device id -> id (dupsort) */
	CS_DBI_BY_TIME,     /* recorded start, RFC 3339 UTC -> id (dupsort) */
	CS_DBI_ITEM_EVENTS, /* id -> ledger index, 8 bytes big-endian (dupsort) */
	CS_DBI_LEAVES,      /* ledger index -> leaf hash(32) | data offset(8) | length(4) */
	CS_DBI_NODES,       /* level(1) | index(8) -> perfect subtree hash, levels >= 1 */
	CS_DBI_META,        /* "size", "journal_end", "last_ms", "schema", "replica_cp" -> u64 BE */
	CS_DBI_CASES,       /* canonical case key -> case record (canonical JSON) */
	CS_DBI_CASE_EVENTS, /* canonical case key -> ledger index, 8 bytes big-endian (dupsort) */
	CS_DBI_MEMBERS,     /* case key | 0x00 | id -> membership (canonical JSON) */
	CS_DBI_FIXITY_DUE,  /* last check (or ingest) ms, 8 bytes big-endian | id -> "" */
	CS_DBI_FIXITY,      /* "last" -> latest fixity check; "damaged:" id -> a check not ok */
	CS_DBI_MEDIA_TODO,  /* id -> "": the items that have no media record yet */
	CS_DBI_ACCESS,      /* "req:"/"reg:"/"qry:" seq (20 digits) -> request, entry, search */
	CS_DBI_BY_CATEGORY, /* enforcement category (of a sighting) -> id (dupsort) */
	CS_DBI_BY_STAGE,    /* stage (of a sighting or a case membership) -> id (dupsort) */
	CS_DBI_OFFICERS,    /* certificate number -> officer record (canonical JSON) */
	CS_DBI_LISTING,     /* id -> the item's listing (lib/listing.c), what find prints */
	CS_DBI_LIST_BY_CASE,    /* case key | 0x00 | id -> the item's listing */
	CS_DBI_LIST_BY_OFFICER, /* officer (of a sighting) | 0x00 | id -> the item's listing */
	/*
	 * id -> "": the items whose blob or a derivative made (since schema 8)
	 * has no replica at any remote, written with the
	 * record (cs__cat_put_item), so the upload queue needs no scan of every
	 * item (lib/replica.c)
	 */
	CS_DBI_UPLOAD_TODO,
	CS_DBI_REMOTES, /* remote name -> "": every remote a replica event named */
	CS_DBI_FP,          /* id -> the item's fingerprint {"video", "audio"} (fingerprint.c) */
	CS_DBI_FP_BANDS,    /* band(1) | band value(2) -> hash(8) | ms(4) | id (dupsort) */
	/*
	 * Holds (lib/retention.c, since schema 9): "h:" hold (20 digits) -> the
	 * hold; "c:" case key | 0x00 | hold and "i:" id | 0x00 | hold -> {"hold"}:
	 * the holds in force on a case and on an item
	 */
	CS_DBI_HOLDS,
	CS_DBI_DISCLOSURE,  /* case key | 0x00 | decision key -> publication record (since 9) */
	CS_DBI_PURGE_PLANS, /* plan number (20 digits) -> the plan with its state (lib/purge.c) */
	CS_DBI_DESTRUCTION, /* seq of a "purge" event (20 digits) -> the register's entry */
	CS_DBI_COUNT
};

struct cs__catalog {
	MDB_env *env;
	MDB_dbi dbi[CS_DBI_COUNT];
	/*
	 * Operational state that is not evidence and not in the ledger: the
	 * daemon's per-source-file jobs. Not compared by verify, not rebuilt.
	 */
	MDB_dbi jobs;
	/*
	 * The jobs per "state" (state -> count, 8 bytes big-endian; no zero
	 * counts), changed in the transaction of every job write, so that a
	 * count needs no scan. Not compared by verify. 0 in a reader of a
	 * catalog that no writer has opened since it was made without it.
	 */
	MDB_dbi job_counts;
};

struct cs__catalog_state {
	uint64_t size;        /* events applied = Merkle tree size */
	uint64_t journal_end; /* journal offset just past the last applied entry */
	int64_t last_ms;      /* time of the last event, ms since the epoch */
};

/* One event to apply: its index, exact bytes and place in the journal. */
struct cs__applied {
	uint64_t seq;
	const char *ev;
	uint32_t len;
	uint64_t data_off;
	uint64_t next;
	uint8_t leaf[32];
};

/*
 * The catalog's layout version ("schema" in meta). A catalog made by an
 * older custos (no "schema", events in it) opens with CS__EOLDCATALOG: its
 * projection is not this version's, and the store rebuilds it from the
 * ledger (cs__store_upgrade).
 */
#define CS__CATALOG_SCHEMA 9
#define CS__EOLDCATALOG (-20900)

/*
 * Opens (creating when `create`) the environment in directory `dir`.
 * `scratch` is for throw-away catalogs (verify's replay): no fsync there.
 */
int cs__catalog_open(struct cs__catalog *c, const char *dir, int create, int scratch);
void cs__catalog_close(struct cs__catalog *c);

/* Begins a read transaction (handles a map grown by another process); CS_ESTORE if not open. */
int cs__catalog_rtxn(struct cs__catalog *c, MDB_txn **txn);
int cs__catalog_state(struct cs__catalog *c, MDB_txn *txn, struct cs__catalog_state *s);

/*
 * Applies `n` events in one write transaction, growing the map and retrying
 * when it is full. Each event's "seq" must equal its index. Returns 0 or
 * CS_ELEDGER (an event that does not fit the catalog), CS_ESTORE, -errno.
 */
int cs__catalog_apply(struct cs__catalog *c, const struct cs__applied *evs, size_t n);

int cs__catalog_get_item(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t **rec);
int cs__catalog_id_by_sha(struct cs__catalog *c, MDB_txn *txn, const uint8_t sha[32],
    char *id, size_t idn);
int cs__catalog_leaf(struct cs__catalog *c, MDB_txn *txn, uint64_t seq, uint8_t leaf[32],
    uint64_t *off, uint32_t *len);
/* Ledger indexes of the item's events, ascending; *seqs malloc'd. */
int cs__catalog_item_seqs(struct cs__catalog *c, MDB_txn *txn, const char *id, uint64_t **seqs,
    size_t *n);
/* Iterates every item id in order; stops if cb returns nonzero. */
int cs__catalog_each_item(struct cs__catalog *c, MDB_txn *txn,
    int (*cb)(void *ctx, const char *id, json_t *rec), void *ctx);

/*
 * Puts the job `d` under `k` (d NULL: deletes it) in write transaction
 * `txn`, moving its count from the state it had to the state it has. The
 * one way a job is written. Returns an LMDB code (MDB_NOTFOUND: nothing to
 * delete).
 */
int cs__catalog_job_write(struct cs__catalog *c, MDB_txn *txn, MDB_val *k, MDB_val *d);
/*
 * Adds the jobs per state to `counts` (an empty JSON object): from the kept
 * counts, or with `recount` (or without kept counts) by reading every job.
 * 0, -ENOMEM or CS_ESTORE.
 */
int cs__catalog_job_counts(struct cs__catalog *c, MDB_txn *txn, int recount, json_t *counts);

/* A cs_merkle_get_fn over a read transaction: ctx is a struct cs__merkle_ctx. */
struct cs__merkle_ctx {
	struct cs__catalog *c;
	MDB_txn *txn;
};
int cs__catalog_merkle_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);

struct cs_query;
struct cs_list;
/*
 * Appends the listings of the items matching q to `out`, with their officer
 * flags, in the order of the index they come from.
 */
int cs__catalog_find(struct cs__catalog *c, MDB_txn *txn, const struct cs_query *q,
    struct cs_list *out);

/*
 * Compares every table of two catalogs entry by entry. Calls `diff` with
 * the table name and a key (as text) for each difference; returns the
 * number of differences. `a_txn`: a read transaction of `a` to compare in
 * (one snapshot), or NULL for a new one.
 */
int cs__catalog_compare(struct cs__catalog *a, MDB_txn *a_txn, struct cs__catalog *b,
    void (*diff)(void *ctx, const char *table, const char *key, const char *what), void *ctx);

/*
 * Helpers for the evidence model's projection (lib/project.c), which
 * cs__catalog_apply() calls inside its write transaction. They return LMDB
 * codes (0, MDB_NOTFOUND, MDB_MAP_FULL, ENOMEM, ...), as apply does.
 */
int cs__cat_get(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t keylen, json_t **val);
int cs__cat_put(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t keylen, const json_t *val);
/*
 * Stores item `id`'s record `rec` and its listing (the one way an item's
 * record is written, so that the listing always follows the record).
 */
int cs__cat_put_item(struct cs__catalog *c, MDB_txn *txn, const char *id, const json_t *rec);
int cs__cat_put_seq(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t seq);
/* Makes the secondary indexes of item `id` go from record `old` (NULL: none) to `rec`. */
int cs__cat_reindex(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *old,
    json_t *rec);
/*
 * Applies one event of the evidence model (case-*, amend) or the model's part
 * of an ingest or sighting (`rec`: the item's new record, changed in place
 * before it is stored). -1 with *why set when the event does not fit.
 */
int cs__project_event(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, json_t *rec, const char **why);
/*
 * The fixity part of the projection (lib/fixity.c), in apply's write
 * transaction, returning LMDB codes: cs__fixity_index puts a new item
 * (`rec`, its record) in the fixity_due index at its ingest time;
 * cs__fixity_project applies a "fixity" event to item `id`, whose record
 * `rec` it changes in place (the caller stores it); -1 with *why set when
 * the event does not fit.
 */
/*
 * Applies a "replica" event of kind "blob" or "derivative" to the item's
 * record `rec` (replica.c): 0, ENOMEM, or -1 with *why when it does not fit
 * the item. cs__replica_todo: 1 when the item's blob or a derivative it made
 * has no replica at `remote` (NULL: at any remote; the upload_todo index).
 */
int cs__replica_project(json_t *ev, uint64_t seq, json_t *rec, const char **why);
int cs__replica_todo(json_t *rec, const char *remote);
/* The tree size of the latest checkpoint a replica event confirmed (meta "replica_cp"). */
int cs__catalog_replica_cp(struct cs__catalog *c, MDB_txn *txn, uint64_t *size);
int cs__fixity_index(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec);
/* Takes item `id` (record `rec`) out of the fixity schedule (a purged item). */
int cs__fixity_unindex(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec);
int cs__fixity_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why);
/*
 * The media part of the projection (lib/media.c), in apply's write
 * transaction, returning LMDB codes: cs__media_index puts a new item in the
 * media_todo index; cs__media_project applies a "media" event to item `id`
 * (its record `rec` changed in place, stored by the caller) and takes it out
 * of media_todo once its media work is done (the record, and each derivative
 * its "normalisation" plans made or failed); -1 with *why set when the event
 * does not fit.
 */
int cs__media_index(struct cs__catalog *c, MDB_txn *txn, const char *id);
int cs__media_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why);
/* The same for a "derivative" event: listed in the item's "derivatives". */
int cs__media_project_derivative(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why);
/* Takes item `id` (record `rec`) out of media_todo once its media work is done. */
int cs__media_settle(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec);
/*
 * The same for a "fingerprint" event (lib/fingerprint.c): its summary into
 * the record as "fingerprint", its hashes into the fingerprints table and
 * the band index (replacing the item's fingerprint before).
 */
int cs__fp_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why);
/*
 * The access part of the projection (lib/access.c): access-request,
 * access-approve, access-deny, access and search events into the access
 * table. LMDB codes; -1 with *why set when the event does not fit.
 */
int cs__access_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why);
/*
 * The retention part of the projection (lib/retention.c): hold and
 * hold-release into the holds table, evidence-use into the item's record
 * ("evidence_use"). LMDB codes; -1 with *why set when the event does not fit.
 */
int cs__retention_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why);
/*
 * The officer registry (lib/officer.c): cs__officer_project applies an
 * "officer" event in apply's write transaction (LMDB codes; -1 with *why
 * when it does not fit); cs__officer_flags gives an item record's flags in
 * a read transaction (0 or a negative code; *out an array, maybe empty).
 */
int cs__officer_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char **why);
int cs__officer_flags(struct cs__catalog *c, MDB_txn *txn, const json_t *rec, json_t **out);
/*
 * The disclosure part of the projection (lib/disclosure.c): disclosure-*
 * events into the disclosure table. LMDB codes; -1 with *why set when the
 * event does not fit.
 */
int cs__disclosure_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why);
/*
 * The rule behind the flags, for one sighting recorded at `t` (RFC 3339,
 * NULL: unknown) naming `n` officers (NULL entries skipped): calls
 * add(ctx, officer or NULL, flag, why) for each flag, and returns 0, the
 * first nonzero add result, or a negative code. `memo` (NULL: none) keeps
 * the last officer's registry entry across calls in one transaction. The
 * caller checks first that the registry is not empty.
 */
struct cs__officer_memo {
	char id[260];
	int found, has_to;
	int64_t from, to;
};
int cs__officer_sighting(struct cs__catalog *c, MDB_txn *txn, const char **officers, size_t n,
    const char *t, struct cs__officer_memo *memo,
    int (*add)(void *ctx, const char *officer, const char *flag, const char *why), void *ctx);
/*
 * The retention part of the projection (lib/purge.c): purge-plan,
 * purge-approve, purge-cancel, purge, purge-remote and purge-done events into
 * the purge_plans and destruction tables and the items' records. LMDB
 * codes; -1 with *why set when the event does not fit.
 */
int cs__purge_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why);
/* A sighting of a purged item: its bytes are evidence again (lib/purge.c). */
int cs__purge_revive(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec);
/* Reads members / case records in key order: cb(ctx, key, value); stops if cb != 0. */
int cs__cat_each(MDB_txn *txn, MDB_dbi dbi, const char *prefix, size_t prefixlen,
    int (*cb)(void *ctx, const char *key, size_t keylen, json_t *val), void *ctx);
/* Ledger indexes under `key` in a dupsort seq table, ascending; *seqs malloc'd. */
int cs__cat_seqs(struct cs__catalog *c, MDB_txn *txn, MDB_dbi dbi, const char *key,
    uint64_t **seqs, size_t *n);

/* Canonical JSON bytes of `v` (sorted keys, compact, UTF-8), malloc'd. */
char *cs__json_canonical(const json_t *v, size_t *len);

/*
 * json_loadb(), but NULL with *oom set if any allocation failed while parsing
 * (jansson can drop a character of a string on a failed allocation and still
 * return a value).
 */
json_t *cs__json_load(const void *buf, size_t len, size_t flags, int *oom);

#endif
