/*
 * Replicas: what custos has confirmed in remote storage, as ledger events
 * "replica" (docs/formats.md 5.10), and what is still to send. An item's
 * blob is confirmed by a replica event naming the item, each derivative it
 * made by one naming the item and the derivative's kind and SHA-256; the ledger's
 * records are sent in runs that end at a signed checkpoint, confirmed by a
 * replica event naming the checkpoint (its tree size): all the records
 * before it and the checkpoint are then in the bucket, so the bucket alone
 * holds a verifiable prefix of the ledger. The catalog keeps each item's
 * replicas in its record and the latest confirmed checkpoint's size;
 * `custos rebuild` reproduces both. custos/remote.h does the sending.
 */
#ifndef CUSTOS_REPLICA_H
#define CUSTOS_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cs_store;

/* One confirmed object. Strings may be "" (no version id, no retention). */
struct cs_replica {
	const char *kind;   /* "blob", "derivative" or "checkpoint" */
	const char *id;     /* blob, derivative: the evidence id */
	const char *remote; /* "endpoint/bucket" (cs_remote_config_name) */
	const char *key;
	const char *version_id;
	const char *sha256; /* hex SHA-256 of the object's bytes */
	uint64_t size;
	const char *etag;
	const char *lock_mode;    /* "GOVERNANCE", "COMPLIANCE" or "" */
	const char *retain_until; /* RFC 3339 or "" */
	int found;                /* 1: it was already there (HEAD matched), not sent */
	uint64_t tree_size;       /* checkpoint: its tree size */
	uint64_t records_from;    /* checkpoint: the records sent with it, [from, tree_size) */
	const char *derivative;   /* derivative: its kind ("access", ...); sha256 its bytes' */
};

/* Writes the replica event; *seq its ledger index (may be NULL). 0 or the store's error. */
int cs_replica_record(struct cs_store *st, const struct cs_replica *rp, uint64_t *seq);

/*
 * The item's replicas (new reference, an array of the events' facts), its
 * blob's then its derivatives' (these with "derivative": the kind, and
 * "sha256"); CS_ENOTFOUND.
 */
int cs_replica_list(struct cs_store *st, const char *id, json_t **out);

/*
 * The objects with no replica at `remote`, as an array (new reference) of
 * {"id", "sha256", "size"} for an item's blob and {"id", "sha256", "size",
 * "derivative": kind} for each of its derivatives made (status ok), in item
 * order; with `ids`/`n` only those items' (CS_ENOTFOUND for an unknown one,
 * named in *bad).
 */
int cs_replica_pending(struct cs_store *st, const char *remote, const char *const *ids, size_t n,
    json_t **items, const char **bad);

/* The tree size of the latest checkpoint confirmed with its records (0: none). */
int cs_replica_checkpoint_size(struct cs_store *st, uint64_t *size);

/*
 * Objects to send, as a read-only fd of their bytes with size and SHA-256:
 * an item's blob (by hex digest), ledger record `seq` (its exact event
 * bytes), the store's newest signed checkpoint (*tree_size: its size;
 * CS_ENOTFOUND if none). Close the fd.
 */
int cs_replica_blob_fd(struct cs_store *st, const char *hex, int *fd, uint64_t *size);
/* A derivative's bytes (derivatives/sha256/ab/cd/<hex>). */
int cs_replica_derivative_fd(struct cs_store *st, const char *hex, int *fd, uint64_t *size);
int cs_replica_record_fd(struct cs_store *st, uint64_t seq, int *fd, uint64_t *size,
    uint8_t sha256[32]);
int cs_replica_checkpoint_fd(struct cs_store *st, int *fd, uint64_t *size, uint8_t sha256[32],
    uint64_t *tree_size);

#endif
