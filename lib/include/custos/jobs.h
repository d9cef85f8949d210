/*
 * Jobs (lib/jobs.c): the daemon's persistent state per source file
 * (discovered, secured, released, refused), kept in the catalog environment
 * but outside the ledger: it is operational state, not evidence. `key`
 * names the source (for example "inbox/0/path/in/inbox"); `job` is a JSON
 * object.
 *
 * Writing calls (put, del) need the writer handle and are serialised by the
 * store's write lock; a storage fault fails the store as a failed ingest
 * does. Reading calls (get, counts, each) read in their own transaction.
 * All may run on any thread, beside the writer.
 */
#ifndef CUSTOS_JOBS_H
#define CUSTOS_JOBS_H

#include <jansson.h>

struct cs_store;

/* Stores `job` (borrowed) under `key`, replacing any. 0, -EBADF on a reader, or < 0. */
int cs_store_job_put(struct cs_store *st, const char *key, const json_t *job);
/*
 * Stores the `n` jobs (borrowed; NULL: removed) under their keys in one
 * transaction (one commit for many): all or none. As cs_store_job_put().
 */
int cs_store_jobs_put(struct cs_store *st, size_t n, const char *const *keys,
    const json_t *const *jobs);
/* The job under `key` in *job (a new reference, the caller's); CS_ENOTFOUND if none. */
int cs_store_job_get(struct cs_store *st, const char *key, json_t **job);
/* Removes the job under `key` (0 also when there was none). -EBADF on a reader, or < 0. */
int cs_store_job_del(struct cs_store *st, const char *key);
/*
 * Counts of jobs per "state" value, as a JSON object in *out (a new
 * reference). The counts are kept in the catalog as the jobs change, so the
 * call costs the same at any number of jobs; only a reader of a catalog
 * that no writer has opened since before custos kept them reads every job.
 */
int cs_store_job_counts(struct cs_store *st, json_t **out);
/*
 * Calls cb for every job whose key starts with `prefix`, in key order, on
 * the calling thread inside a read transaction (cb must not call the
 * writing calls); `job` is borrowed for the call. Stops when cb returns
 * nonzero. Returns 0 or a negative code.
 */
int cs_store_jobs_each(struct cs_store *st, const char *prefix,
    int (*cb)(void *ctx, const char *key, json_t *job), void *ctx);

#endif
