/*
 * Checking a store and rebuilding its catalog (lib/verify.c).
 */
#ifndef CUSTOS_VERIFY_H
#define CUSTOS_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct cs_store;

/* One problem found by verify; its strings are valid during the call only. */
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
 * `len` bytes of a copy of checkpoints/latest saved elsewhere; `name` names it
 * in the problems): it must be signed by this store's key for this store's
 * origin ("checkpoint-foreign" if not), and the store's ledger journal must
 * hold at least its size ("ledger-rolled-back"; "ledger-damaged" if an entry
 * before that is unreadable) with the signed root at that size
 * ("checkpoint-mismatch"), recomputed from the journal's leaf hashes (the
 * catalog is not read). A store rolled back to an older copy passes
 * cs_store_verify(), since its own checkpoints are older too; only a
 * checkpoint held elsewhere shows the rollback. Returns the number of
 * problems (0 or 1) or < 0 if the check could not run. Any handle, any
 * thread, beside the writer; `report` runs on the calling thread.
 */
int cs_store_verify_checkpoint(struct cs_store *st, const char *name, const char *note,
    size_t len, cs_problem_fn report, void *ctx);

/*
 * Rebuilds the catalog of the store at `root` from its ledger journal
 * alone. Takes the writer lock (CS_EBUSY if another handle holds it).
 * Returns the number of events replayed, or a negative code. Any thread;
 * `progress` (may be NULL) runs on it.
 */
int64_t cs_store_rebuild(const char *root, cs_progress_fn progress, void *ctx);

#endif
