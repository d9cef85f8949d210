/*
 * Rebuild from the bucket: a new station's store made from what custos push
 * put in the bucket (docs/formats.md 13.1), trusted only as far as a
 * verifier key the operator gives: the station's identity must name that
 * key, the newest checkpoint must be signed by it, and the ledger records
 * downloaded must hash to the checkpoint's root. The catalog is then made
 * from the records as `custos rebuild` makes it; with `blobs`, every item's
 * bytes are downloaded and checked against their SHA-256, otherwise the
 * items are remote-only (the store's file `remote-only` names the bucket).
 * The store has no private key (it is not in the bucket): it is read-only
 * until keys/ledger.key is restored. docs/operations.md, "A new station
 * from the bucket".
 */
#ifndef CUSTOS_REMOTE_REBUILD_H
#define CUSTOS_REMOTE_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "custos/remote.h"
#include "custos/verify.h" /* cs_progress_fn */

struct cs_rrebuild_result {
	char station[40];
	uint64_t records; /* the ledger's size: the newest checkpoint's */
	uint64_t items;
	uint64_t blobs;       /* blobs downloaded (or already there from an interrupted run) */
	int completed_before; /* an earlier run had finished; only its downloads were left */
};

/*
 * Makes the store at `root` (created if missing; empty, or left by an
 * interrupted rebuild from the bucket, which this one finishes) from the
 * bucket of `cfg`: station `station` (NULL: the only one in the bucket),
 * checked against the verifier key `vkey` (its text, section 9.2).
 * 0, or: CS_EEXIST (a store is there), CS_ENOTFOUND (no such station or no
 * checkpoint), CS_ESIG (the key is not the station's, or the checkpoint is
 * not signed by it), CS_EPROOF (the records do not hash to the checkpoint),
 * CS_EDIGEST (a blob's bytes are not its SHA-256), CS_ELEDGER (a record is
 * malformed), CS_EREMOTE(IO), or -errno; *why says which, for an operator.
 */
int cs_remote_rebuild(const char *root, const struct cs_remote_config *cfg, const char *station,
    const char *vkey, int blobs, cs_progress_fn progress, void *ctx, struct cs_rrebuild_result *res,
    char *why, size_t whyn);

/*
 * 1 when the store was rebuilt without blobs and the blob `hex` is not in
 * it (hex NULL: whatever the blob), with *remote (n bytes) naming the bucket
 * that holds it; 0 when not (the store has its blobs, or this one is
 * here); -errno if that cannot be told.
 */
struct cs_store;
int cs_store_remote_only(struct cs_store *st, const char *hex, char *remote, size_t n);

#endif
