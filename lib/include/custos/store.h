/*
 * The evidence store: content-addressed blobs, the ledger journal (the
 * source of truth: an RFC 9162 Merkle log of canonical JSON events), the
 * LMDB catalog that indexes it, and signed checkpoints. One process at a
 * time may write a store (an exclusive lock on <root>/lock); any number may
 * read it. See docs/formats.md for the on-disk layout.
 *
 * Every function returns 0 (or a count) on success, or a negative code
 * (cs_strerror() describes it). Records and events are handed out as jansson
 * objects owned by the caller (json_decref them).
 */
#ifndef CUSTOS_STORE_H
#define CUSTOS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct cs_store;

/* Metadata that comes with a file; every field may be NULL / 0. */
struct cs_meta {
	const char *case_no;  /* UTF-8, e.g. "平司罚〔2020〕1号" */
	const char *category; /* enforcement category, e.g. "行政处罚" */
	const char *stage;    /* one of 立案 调查 取证 审查 决定 送达 执行 (or English alias) */
	const char *const *officers;
	size_t n_officers;
	const char *device;
	const char *recorded_start; /* RFC 3339 */
	const char *recorded_end;   /* RFC 3339 */
	const char *source;         /* how it arrived: "cli", "inbox", "dock" */
	json_t *extra;              /* optional object merged as "extra" (borrowed) */
	/*
	 * The daemon's job for the source file, recorded in the event as
	 * "job": {"key": job_key, ...job_ident} and made "ingested" with it.
	 */
	const char *job_key;
	json_t *job_ident; /* {"ino", "size", "mtime_ns"} (borrowed) */
};

struct cs_ingest_result {
	char id[80];          /* evidence id: "<station>-<20 hex of sha256>" */
	char sha256[65];      /* hex */
	uint64_t size;
	uint64_t seq;         /* ledger index of the event written */
	int duplicate;        /* 1 if the bytes were already stored (a sighting) */
};

enum cs_open_flags {
	CS_OPEN_READ = 0,
	CS_OPEN_WRITE = 1, /* take the writer lock, recover a crashed writer */
	/*
	 * With CS_OPEN_READ only: do not open the catalog in this process. A
	 * damaged catalog can crash LMDB; a handle opened so serves
	 * cs_store_verify() and cs_store_verify_checkpoint(), which read the
	 * catalog only in a child process or not at all. Every other call that
	 * needs the catalog fails with CS_ESTORE on it.
	 */
	CS_OPEN_NOCATALOG = 2,
};

/* Optional log sink for lib/ (warnings during recovery, for example). */
typedef void (*cs_log_fn)(void *ctx, int level, const char *msg);
enum { CS_LOG_ERROR = 0, CS_LOG_WARN = 1, CS_LOG_INFO = 2, CS_LOG_DEBUG = 3 };

/*
 * Creates a new store at `root` (created if missing; must be empty) for
 * station `station` ([A-Za-z0-9._-], 1..32 chars): layout, catalog, and
 * an Ed25519 signing key (mode 0400). Returns CS_EEXIST if a store is there.
 */
int cs_store_init(const char *root, const char *station);

/*
 * Opens the store at `root`. With CS_OPEN_WRITE it takes the writer lock
 * (CS_EBUSY if held), removes stale temp files, cuts a torn ledger tail,
 * brings the catalog up to the ledger, and (after a crash) handles orphan
 * blobs. `log` may be NULL. *out is set only on success. CS_ESTORE if
 * catalog/data.mdb is missing (also with CS_OPEN_NOCATALOG), its header is
 * damaged (checked before LMDB, which trusts it, maps it or reads past the
 * end of the file) or LMDB cannot open it; never -ENOMEM for a damaged
 * header; -EINVAL for CS_OPEN_WRITE | CS_OPEN_NOCATALOG.
 */
int cs_store_open(struct cs_store **out, const char *root, int flags, cs_log_fn log, void *logctx);
void cs_store_close(struct cs_store *st); /* NULL is a no-op */

const char *cs_store_station(const struct cs_store *st);
const char *cs_store_origin(const struct cs_store *st);
/*
 * 0 while the writer handle takes work; after a failure that stopped it
 * (the failed state: every later write returns CS_EFAILED), the code of that
 * failure: -EIO, -ENOSPC, ..., or -ENOMEM / CS_ECRYPTO when the catalog could
 * not index an event already in the journal for lack of memory. Opening the
 * store again recovers from any of them.
 */
int cs_store_failure(const struct cs_store *st);

/*
 * json_loadb() for input from outside (a sidecar, DEVICE.json, a request),
 * telling a lack of memory from bad input: jansson's parser can lose a
 * character when an allocation fails and still return a (wrong) value, or
 * report the loss as a syntax error. Returns 0 with *out set, -ENOMEM if
 * any allocation failed during the parse, or CS_EFORMAT with `err` filled.
 */
int cs_json_parse(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *err);

/*
 * Ingests the open file `fd` (read from its current offset 0) named `name`
 * (the original file name, kept as metadata only). Reads it once, hashing
 * and writing the blob in the same pass; then appends the ledger event and
 * indexes it. On return 0 the file is durable and recorded. A failed write
 * or fsync on the blob or ledger returns an error and puts the store in the
 * failed state (CS_EFAILED for every later write).
 */
int cs_store_ingest_fd(struct cs_store *st, int fd, const char *name, const struct cs_meta *meta,
    struct cs_ingest_result *res);
/*
 * Brings a writer in the failed state back, as closing it and opening it
 * again would (the lock is kept): the journal and the catalog are opened
 * afresh and the recovery of cs_store_open runs (a torn tail cut, the
 * catalog caught up, blobs without an event moved to orphans/). Meant for a
 * failure that has gone away, such as a full disk with space freed; the
 * caller makes sure no other thread uses the store meanwhile. Returns 0 (the
 * store takes work again; also when it had not failed) or a negative error,
 * the store still failed (CS_EFAILED at once after a failed fsync).
 */
int cs_store_recover(struct cs_store *st);
/*
 * 0: the store takes work; 1: it failed (a write failed) and may recover in
 * place (cs_store_recover) once the cause is gone; 2: it failed and an fsync
 * failed in this process: only a restart after checking the storage.
 * *cause (if not NULL): the error that failed it (0 if none).
 */
int cs_store_failed(const struct cs_store *st, int *cause);
/*
 * Opens `path` safely (no symlinks, no FIFOs, devices or directories:
 * CS_ENOTREG / -ELOOP) and ingests it.
 */
int cs_store_ingest_path(struct cs_store *st, const char *path, const struct cs_meta *meta,
    struct cs_ingest_result *res);

/* Validates metadata without ingesting; on error *field names the bad field. */
int cs_meta_check(const struct cs_meta *meta, const char **field);

/*
 * Metadata from an upload's sidecar, a JSON object from outside: sets the
 * text fields of *m from its "case", "category", "stage", "device",
 * "recorded_start" and "recorded_end" (strings) and m->officers (pointed at
 * `officers`, room for 64) from "officers" (an array of at most 64 strings);
 * the strings stay owned by `side`. Every other member of *m is left as it
 * is. The good fields are kept; a field of the wrong type or whose value
 * breaks the metadata rules is left out, an unknown key is ignored, and each
 * is named in `problems` (n bytes; "" if there is none, clauses separated by
 * "; "). Returns 0, or -ENOMEM (then *m is unchanged).
 */
int cs_meta_from_sidecar(const json_t *side, struct cs_meta *m, const char **officers,
    char *problems, size_t n);

/*
 * Signs a checkpoint for the current tree if it grew since the last one
 * (refusing with CS_ECONFLICT if the last one is not a prefix of this tree).
 * If `note` is not NULL, returns the latest checkpoint note (malloc'd).
 */
int cs_store_checkpoint(struct cs_store *st, char **note);
/* The latest signed checkpoint note (malloc'd) or CS_ENOTFOUND. */
int cs_store_latest_checkpoint(struct cs_store *st, char **note);
/* The verifier key (malloc'd). */
int cs_store_verifier_key(struct cs_store *st, char **vkey);

struct cs_query {
	const char *case_no;     /* matched on its canonical key (cs_case_key) */
	const char *officer;
	const char *device;
	const char *sha256; /* hex */
	const char *from;   /* RFC 3339, recorded_start >= from */
	const char *to;     /* RFC 3339, recorded_start <= to */
	const char *case_prefix; /* case keys starting with this one's key */
};
/* Matching records as a JSON array (new reference in *out). */
int cs_store_find(struct cs_store *st, const struct cs_query *q, json_t **out);
/* The item's record (CS_ENOTFOUND if no such id). */
int cs_store_get(struct cs_store *st, const char *id, json_t **out);
/* The item's ledger events: array of {"seq": n, "event": {...}}. */
int cs_store_item_events(struct cs_store *st, const char *id, json_t **out);
/* Number of events in the ledger (the tree size). */
uint64_t cs_store_size(struct cs_store *st);
/* Event `seq` as parsed JSON, and optionally its exact bytes (malloc'd). */
int cs_store_event(struct cs_store *st, uint64_t seq, json_t **event, char **raw, size_t *rawlen);

/*
 * The tlog-proof@v1 text proving the item's ingest event is included in the
 * latest checkpoint. CS_ENOTFOUND if the id is unknown; -EAGAIN if the
 * latest checkpoint does not cover the event yet.
 */
int cs_store_prove(struct cs_store *st, const char *id, char **out);

/* One problem found by verify. */
struct cs_problem {
	const char *kind;   /* "blob-missing", "blob-damaged", "ledger-damaged", ... */
	const char *id;     /* evidence id or NULL */
	int64_t position;   /* ledger index or -1 */
	const char *detail; /* a sentence */
};
typedef void (*cs_problem_fn)(void *ctx, const struct cs_problem *p);
/* Progress: phase name, done, total (total 0 when unknown). */
typedef void (*cs_progress_fn)(void *ctx, const char *phase, uint64_t done, uint64_t total);

/*
 * Checks the store: re-hashes the blobs of `ids` (all items when n == 0),
 * re-reads and re-hashes the whole ledger journal, compares it with the
 * catalog's leaves and with a fresh replay, recomputes the Merkle root at
 * every checkpoint and checks their signatures. Calls `report` for every
 * problem; returns the number of problems (0: all good) or < 0 if the
 * check itself could not run.
 *
 * The catalog, which LMDB reads without checking its pages, is read only
 * in a child process (fork()): its problems and progress reach `report`
 * and `progress` in this process, on the calling thread, in order. If
 * reading the catalog crashes that process, or LMDB cannot read the
 * catalog, the problem is reported with kind "catalog", and the journal,
 * the checkpoints and the blobs named by the journal's events are still
 * checked without the catalog. `st` may be opened with CS_OPEN_NOCATALOG
 * (or be the writer: the child takes no lock). Call it with no other thread
 * of this process inside lib/. `size` (may be NULL) receives the ledger's
 * size as found: the catalog's, or the number of intact journal entries
 * when the catalog could not be read.
 */
int cs_store_verify(struct cs_store *st, const char *const *ids, size_t n, cs_problem_fn report,
    cs_progress_fn progress, void *ctx, uint64_t *size);

/*
 * Checks the store against a signed checkpoint kept outside it (`note`, the
 * `len` bytes of a checkpoints/<size> file saved elsewhere; `name` names it
 * in the problems): it must be signed by this store's key for this store's
 * origin ("checkpoint-foreign" if not), and the store's ledger journal must
 * hold at least its size ("ledger-rolled-back"; "ledger-damaged" if an entry
 * before that is unreadable) with the signed root at that size
 * ("checkpoint-mismatch"), recomputed from the journal's leaf hashes (the
 * catalog is not read). A store rolled back to an older copy passes
 * cs_store_verify(), since its own checkpoints are older too; only a
 * checkpoint held elsewhere shows the rollback. Returns the number of
 * problems (0 or 1) or < 0 if the check could not run.
 */
int cs_store_verify_checkpoint(struct cs_store *st, const char *name, const char *note,
    size_t len, cs_problem_fn report, void *ctx);

/*
 * Rebuilds the catalog of the store at `root` from its ledger journal
 * alone. Takes the writer lock. Returns the number of events replayed.
 */
int64_t cs_store_rebuild(const char *root, cs_progress_fn progress, void *ctx);

/* Iterates events [from, from + count) in order; stops early if cb returns nonzero. */
typedef int (*cs_event_fn)(void *ctx, uint64_t seq, json_t *event);
int cs_store_log(struct cs_store *st, uint64_t from, uint64_t count, cs_event_fn cb, void *ctx);

#endif

/*
 * Jobs: the daemon's persistent state per source file (discovered,
 * secured, released, refused), kept in the catalog environment but outside
 * the ledger: it is operational state, not evidence. `key` names the source
 * (for example "inbox/0/path/in/inbox"); `job` is a JSON object.
 */
int cs_store_job_put(struct cs_store *st, const char *key, const json_t *job);
/* CS_ENOTFOUND if there is no job under key. */
int cs_store_job_get(struct cs_store *st, const char *key, json_t **job);
int cs_store_job_del(struct cs_store *st, const char *key);
/* Counts of jobs per "state" value, as a JSON object (new reference). */
int cs_store_job_counts(struct cs_store *st, json_t **out);

/* SHA-256 of everything readable from `fd` (from offset 0): hex digest and size. */
int cs_hash_fd(int fd, char hex[65], uint64_t *size);

/* Calls cb for every job whose key starts with `prefix`, in key order. */
int cs_store_jobs_each(struct cs_store *st, const char *prefix,
    int (*cb)(void *ctx, const char *key, json_t *job), void *ctx);

/*
 * Writes a signed receipt as "CUSTOS-RECEIPT.json" into directory `dirfd`
 * (a recorder's folder): signs a checkpoint covering every event so far,
 * adds it to `body` as "checkpoint", and signs the canonical JSON of body as
 * a C2SP signed note with the store's key. The file is written durably
 * (temp, fsync, rename, directory fsync). Writer only.
 */
int cs_receipt_write(struct cs_store *st, int dirfd, json_t *body);
