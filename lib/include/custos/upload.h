/*
 * Upload: what to send to a remote next, in the order that keeps the bucket
 * a verifiable archive, and recording what the remote confirmed. A pass
 * sends the blobs of the items with no replica at the remote and the
 * derivatives they made with none (under the blobs' content-addressed keys;
 * the durable
 * queue is the catalog itself: cs_replica_pending), then the ledger's
 * records after the last confirmed checkpoint with the station's identity
 * (custos.json), and, only once all of those are confirmed, the newest
 * signed checkpoint. A confirmed blob, derivative or checkpoint becomes a replica event
 * (custos/replica.h), so a restart resumes where the events stop; records
 * confirmed before a crash are looked for again (HEAD) and not sent twice.
 * `custos push` and custosd both take their objects from here and hand
 * them to custos/remote.h. Blocking (it reads the catalog, opens files and
 * writes events): an event loop calls it from a worker thread, one call at
 * a time.
 */
#ifndef CUSTOS_UPLOAD_H
#define CUSTOS_UPLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custos/remote.h"

struct cs_store;

/* One object to send. */
struct cs_upload_obj {
	char kind[16]; /* "blob", "derivative", "record", "identity" or "checkpoint" */
	char id[512];  /* blob, derivative: the evidence id */
	char derivative[32]; /* derivative: its kind ("access", "poster", ...) */
	char key[1200];
	char hex[65]; /* its SHA-256 */
	uint8_t sha256[32];
	int fd; /* its bytes (the caller closes it); -1 when rc < 0 */
	uint64_t size;
	const char *content_type;
	uint64_t tree_size, records_from; /* checkpoint */
	int rc; /* < 0: the bytes could not be read (nothing to send; not reported back) */
};

struct cs_upload;

/*
 * An upload from the store `st` (root `dir`) to the remote `cfg` (both
 * must outlive it); with `ids`/`n`, only those items' blobs and no ledger
 * objects (CS_ENOTFOUND for an unknown id, named in *bad). The first pass
 * starts at once. 0, -ENOMEM or the store's error.
 */
int cs_upload_new(struct cs_upload **out, struct cs_store *st, const char *dir,
    const struct cs_remote_config *cfg, const char *const *ids, size_t n, const char **bad);
void cs_upload_free(struct cs_upload *u);

/*
 * Up to `max` next objects of the pass in objs[0 .. *n). *n == 0 with
 * *finished 0: wait for the results of the objects handed out; *finished
 * 1: the pass is over (every object handed out was reported). 0 or the
 * store's error.
 */
int cs_upload_next(struct cs_upload *u, struct cs_upload_obj *objs, size_t max, size_t *n,
    int *finished);
/*
 * The remote's result for an object handed out: a confirmed blob,
 * derivative or checkpoint is written as a replica event. 1 when an event was written,
 * else 0, or the store's error (the object is in the bucket but not
 * recorded: it is found there next time).
 */
int cs_upload_result(struct cs_upload *u, const struct cs_upload_obj *o,
    const struct cs_remote_result *res);
/*
 * The items held (custos/retention.h) when a copy of theirs was confirmed
 * since the last call: {id: hold number}, or NULL if none. Their new
 * objects want S3 legal hold (cs_remote_legal_hold); the caller owns it.
 */
json_t *cs_upload_take_held(struct cs_upload *u);
/* Starts a new pass (after the last one finished): the catalog is asked again. */
int cs_upload_pass(struct cs_upload *u);

/* The pass's blobs: still to confirm (count, bytes). */
void cs_upload_backlog(const struct cs_upload *u, size_t *items, uint64_t *bytes);
/* 1 when the store has no signed checkpoint yet (the records wait for one). */
int cs_upload_no_checkpoint(const struct cs_upload *u);

#endif
