/*
 * The evidence store: content-addressed blobs, the ledger journal (the
 * source of truth: an RFC 9162 Merkle log of canonical JSON events), the
 * LMDB catalog that indexes it, and signed checkpoints. One process at a
 * time may write a store (an exclusive lock on <root>/lock); any number may
 * read it. See docs/formats.md for the on-disk layout.
 *
 * This header covers the store as a whole: creating, opening and closing
 * it, its identity, and the failed state. The other topics have their own
 * headers: custos/ingest.h, custos/checkpoint.h, custos/query.h,
 * custos/verify.h, custos/jobs.h, custos/orphans.h, custos/receipt.h,
 * custos/secure.h. For callers of the whole store API this header includes
 * them all; new code includes what it uses.
 *
 * Threads: a handle may be shared by the threads of its process. Writing
 * calls (writer handle only) are serialised by the handle's write lock;
 * reading calls each read in their own LMDB read transaction and may run on
 * any thread, concurrently with the writer. The exceptions are named at
 * each call (cs_store_close, cs_store_recover, cs_store_verify).
 *
 * Every function returns 0 (or a count) on success, or a negative code
 * (cs_strerror() describes it). Records and events are handed out as jansson
 * objects owned by the caller (json_decref them), text as malloc'd strings
 * owned by the caller (free them); output parameters are set only on
 * success.
 */
#ifndef CUSTOS_STORE_H
#define CUSTOS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct cs_store;

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
	/*
	 * With CS_OPEN_WRITE: do not enforce the default limits on orphans/ at
	 * the open and after cs_store_recover(); the caller enforces its own
	 * (cs_store_orphans_prune, custos/orphans.h).
	 */
	CS_OPEN_KEEP_ORPHANS = 4,
};

/*
 * Optional log sink for lib/ (warnings during recovery, for example). It is
 * called on the thread of the lib call that logs, possibly several at once.
 */
typedef void (*cs_log_fn)(void *ctx, int level, const char *msg);
enum { CS_LOG_ERROR = 0, CS_LOG_WARN = 1, CS_LOG_INFO = 2, CS_LOG_DEBUG = 3 };

/*
 * Creates a new store at `root` (created if missing; must be empty) for
 * station `station` ([A-Za-z0-9._-], 1..32 chars): layout, catalog, and
 * an Ed25519 signing key (mode 0400). Returns 0, CS_EEXIST if a store is
 * there, or another negative code. Any thread.
 */
int cs_store_init(const char *root, const char *station);

/*
 * Opens the store at `root`. With CS_OPEN_WRITE it takes the writer lock
 * (CS_EBUSY if held), removes stale temp files, cuts a torn ledger tail,
 * brings the catalog up to the ledger, and (after a crash) handles orphan
 * blobs. `log` may be NULL. *out is set only on success; the caller owns
 * the handle (cs_store_close). CS_ESTORE if catalog/data.mdb is missing
 * (also with CS_OPEN_NOCATALOG), its header is damaged (checked before
 * LMDB, which trusts it, maps it or reads past the end of the file) or LMDB
 * cannot open it; never -ENOMEM for a damaged header; -EINVAL for
 * CS_OPEN_WRITE | CS_OPEN_NOCATALOG. Any thread.
 */
int cs_store_open(struct cs_store **out, const char *root, int flags, cs_log_fn log, void *logctx);
/*
 * Closes the handle and frees it (the writer lock is released). NULL is a
 * no-op. No other call on the handle may be running or follow.
 */
void cs_store_close(struct cs_store *st);

/* The station name and the log's origin line; owned by the handle. Any thread. */
const char *cs_store_station(const struct cs_store *st);
const char *cs_store_origin(const struct cs_store *st);
/*
 * Number of events in the ledger (the tree size) as the catalog has them;
 * 0 if the catalog cannot be read. Any thread, beside the writer.
 */
uint64_t cs_store_size(struct cs_store *st);

/*
 * 0 while the writer handle takes work; after a failure that stopped it
 * (the failed state: every later write returns CS_EFAILED), the code of that
 * failure: -EIO, -ENOSPC, ..., or -ENOMEM / CS_ECRYPTO when the catalog could
 * not index an event already in the journal for lack of memory. Opening the
 * store again recovers from any of them. Any thread (a snapshot).
 */
int cs_store_failure(const struct cs_store *st);

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
 * *cause (if not NULL): the error that failed it (0 if none). Any thread
 * (a snapshot).
 */
int cs_store_failed(const struct cs_store *st, int *cause);

/* For callers of the whole store API: every topic of the store. */
#include "custos/checkpoint.h"
#include "custos/ingest.h"
#include "custos/jobs.h"
#include "custos/orphans.h"
#include "custos/query.h"
#include "custos/receipt.h"
#include "custos/secure.h"
#include "custos/verify.h"

/*
 * The clock every rule counts in (event times, approval periods, retention
 * and grace periods), ms since the epoch: the real time, or in the test
 * builds only the test clock of $CUSTOS_TEST_CLOCK (lib/util.c).
 */
int64_t cs_now_ms(void);

#endif
