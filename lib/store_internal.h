/*
 * The store's private state, shared by the files of the store: store.c
 * (open, recovery, commit), ingest.c, checkpoint.c, query.c, jobs.c,
 * receipt.c, case.c and verify.c (verify, rebuild). lib-internal.
 */
#ifndef CS_STORE_INTERNAL_H
#define CS_STORE_INTERNAL_H

#include <pthread.h>

#include "blob.h"
#include "catalog.h"
#include "custos/note.h"
#include "custos/ingest.h"
#include "custos/store.h"
#include "journal.h"

struct cs_store {
	char *root;
	int rootfd;
	int lockfd; /* >= 0 when this handle is the writer */
	int flags;
	char station[40];
	char origin[80];
	struct cs__catalog cat;
	struct cs__journal j;
	struct cs_signer *signer; /* writer only */
	pthread_mutex_t wlock;    /* serialises ledger appends and catalog writes */
	uint64_t size;            /* writer: events in the ledger */
	int64_t last_ms;          /* writer: time of the last event */
	atomic_int failed;        /* a durability failure (its error, < 0): refuse all writes */
	int orphan;               /* a blob was placed but its event failed: scan at next start */
	cs_log_fn log;
	void *logctx;
	json_t *actor;            /* "actor" of every event written (NULL: none) */
	/* Second-level fan-out directories not known durable in their parent (blob.h). */
	atomic_uchar dir_fresh[CS__BLOB_FRESH_BYTES];
};

/* Version of the events written ("v"); new kinds are new "event" values (formats.md 5). */
#define CS__EVENT_VERSION 1
#define CS__COMMIT_MAX 8   /* events committed without an allocation */
#define CS__BATCH_MAX 4096 /* events in one commit (a group commit, batch.c) */

/*
 * Appends n events (at most CS__BATCH_MAX) that belong together in one
 * journal write and applies them in one catalog transaction; *seq_out: the first one's index. wlock
 * held; the caller checked st->failed.
 */
int cs__store_commit(struct cs_store *st, json_t *const *evs, size_t n, uint64_t *seq_out);
/* One event, committed under wlock: CS_EFAILED once the store has failed. */
int cs__store_commit_locked(struct cs_store *st, json_t *ev, uint64_t *seq_out);
/* n events (at most CS__BATCH_MAX) the same way, in one commit. */
int cs__store_commit_locked_n(struct cs_store *st, json_t *const *evs, size_t n, uint64_t *seq_out);

/*
 * An ingest or sighting event with a case number makes the item a member of
 * that case (opening it if new) when it is applied, in the same event. This
 * logs when the case is sealed (the bytes are secured, not added to it).
 * wlock held; `txn` a read transaction of the catalog.
 */
int cs__case_ingest_check(struct cs_store *st, MDB_txn *txn, const char *id, json_t *meta);

/*
 * A writing call's frame (lib/case.c): cs__write_begin takes the write lock
 * and a read transaction for the rules; cs__write_end ends the transaction,
 * commits `ev` (consumed) if rc == 0 and drops the lock. An event that has
 * an "actor" keeps it (custosd writes for the users of its socket).
 */
int cs__write_begin(struct cs_store *st, MDB_txn **txn);
/* 0 if item `id` is a member of the case with key `key`, CS_ENOTFOUND if not (lib/access.c). */
int cs__case_member(struct cs_store *st, MDB_txn *txn, const char *key, const char *id);
int cs__write_end(struct cs_store *st, MDB_txn *txn, json_t *ev, int rc, uint64_t *seq);

/*
 * The ingest (or sighting) event for bytes already durable as a blob, with
 * the file's metadata `mj` (cs__meta_json; "name" is set in it) and the
 * event's "job" (cs__ingest_job; NULL: none). The bytes are a sighting of
 * the item the catalog holds for them, or of an item `seen` holds (a file
 * earlier in the same commit, not yet in the catalog); else a new item with
 * an id taken neither in the catalog nor in `seen`. *res is filled but for
 * its seq. wlock held; `txn` a read transaction of the catalog.
 */
struct cs__ingest_seen {
	uint8_t digest[32];
	const char *id;
};
int cs__ingest_event(struct cs_store *st, MDB_txn *txn, const uint8_t digest[32], uint64_t size,
    const char *name, json_t *mj, json_t *job, const struct cs__ingest_seen *seen,
    size_t nseen, struct cs_ingest_result *res, json_t **out);
struct cs_meta;
int cs__ingest_job(const struct cs_meta *meta, json_t **out);
/* A blob could not be written: a fault of the storage fails the store (and is logged). */
void cs__ingest_blob_failed(struct cs_store *st, int rc);

/* 1 if `rc` is a fault of the storage (-EIO, -ENOSPC, ...), which fails the store. */
int cs__store_fault(int rc);

/* The store's verifier (keys/ledger.pub); cs_verifier_free() it. */
int cs__store_verifier_load(struct cs_store *st, struct cs_verifier **v);

/* cs_store_orphans_prune() for a caller that holds the write lock (or the only user). */
struct cs_orphan_limits;
struct cs_orphans;
int cs__orphans_prune_locked(struct cs_store *st, const struct cs_orphan_limits *lim,
    struct cs_orphans *out);

/* Brings a catalog made by an older custos up to this version (rebuilds it). */
int cs__store_upgrade(struct cs_store *st);

/* Rebuilds <root>/catalog from the journal; the caller holds the writer lock. */
int64_t cs__rebuild_locked(int rootfd, const char *root, cs_progress_fn progress, void *ctx);

void cs__store_log(struct cs_store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Applies journal entries from `off` on into `cat`, in batches, stopping
 * before the first entry that starts at or after `stop` (UINT64_MAX: the
 * end of the journal); sets *end, *count.
 */
int cs__replay(struct cs__journal *j, struct cs__catalog *cat, uint64_t off, uint64_t stop,
    uint64_t first_seq, uint64_t *end, uint64_t *count, int *torn, cs_progress_fn progress,
    void *ctx);

/*
 * Loads all checkpoints, sorted by size (ascending): every entry of
 * checkpoints/journal, checkpoints/latest, and the files of the older layout
 * (checkpoints/<20-digit size>) still there. Notes malloc'd. *dmg says where
 * the journal is damaged: an invalid entry (`damaged` set, no note) for each
 * damaged place, read past when its framing holds.
 */
struct cs__cp {
	uint64_t size;
	uint8_t root[32];
	char *note;
	size_t len;
	char file[96]; /* what to call it: "checkpoints/journal entry K (offset O)", ... */
	int valid;     /* parsed and the signature verifies */
	int damaged;   /* a CS__CP_* below: the journal's bytes are damaged here */
};
#define CS__CP_DAMAGED 1 /* an entry whose bytes do not match their checksum */
#define CS__CP_TORN 2    /* an entry cut short by the end of the file */
#define CS__CP_LOST 3    /* an entry whose length is damaged: what follows is unreadable */
#define CS__CP_HEADER 4  /* the journal does not begin with its header */
int cs__checkpoints_load(struct cs_store *st, struct cs__cp **out, size_t *n);
/*
 * The writer's opening: moves checkpoints of the older layout into the
 * journal, cuts a torn tail off the journal, writes checkpoints/latest again
 * if it is one behind. Reads a bounded amount when there is nothing to move.
 */
int cs__checkpoints_open(struct cs_store *st);
void cs__checkpoints_free(struct cs__cp *cps, size_t n);
/*
 * The newest validly signed checkpoint into *out (out->note malloc'd, the
 * caller's), checking files from the largest size down: older files are not
 * read. CS_ENOTFOUND if none is valid; -ENOMEM or CS_ECRYPTO if a check
 * could not be made.
 */
int cs__checkpoint_newest(struct cs_store *st, struct cs__cp *out);

#endif
