/*
 * Securing a source file (lib/secure.c): the one transaction that custosd's
 * pipeline and `custos ingest` both use. The file is opened safely beneath
 * its directory, its metadata taken from what the caller knows, its sidecar
 * or the recorder rules, ingested, re-read from the source with the same
 * digest required, and only then may it be released: the "released" job is
 * recorded (and the upload deleted, when asked) by this call, never before
 * the re-read proved the source.
 *
 * Also the one classification of errors for whoever secures files
 * (cs_fault), which decides whether a source is refused, waited for or
 * retaken, and whether the store stopped.
 *
 * Threads: cs_secure() needs the writer handle and may run on any thread,
 * several at once (as cs_store_ingest_fd). cs_fault() is pure.
 */
#ifndef CUSTOS_SECURE_H
#define CUSTOS_SECURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "custos/ingest.h"

struct cs_store;

/* Where cs_secure() stopped (struct cs_secured's `stage`). */
enum cs_secure_stage {
	CS_STAGE_OPEN = 0,    /* opening the source, reading its metadata */
	CS_STAGE_INGEST = 1,  /* copying it into the store (writes the store) */
	CS_STAGE_REREAD = 2,  /* reading the source again (reads the source only) */
	CS_STAGE_RELEASE = 3, /* recording the release (writes the store) */
};

enum cs_secure_flags {
	/* Take metadata from "<rel>.json" beside the file (an upload's sidecar). */
	CS_SECURE_SIDECAR = 1,
	/*
	 * Accept a file with more than one hard link (the CLI: a person named
	 * it). Without it such a file is refused (CS_ELINKED): its bytes can be
	 * changed through another name that nobody watches.
	 */
	CS_SECURE_LINKED_OK = 2,
	/* After the release is recorded, delete the very file that was read (an upload). */
	CS_SECURE_DELETE = 4,
	/*
	 * A recorder: a job left "ingested" by a crash is finished only if the
	 * file's bytes now have the job's digest (a folder may be another copy
	 * with the same names, sizes and times; its inode numbers change with
	 * every mount, so they prove nothing).
	 */
	CS_SECURE_RECORDER = 8,
	/*
	 * Drop the source's cached pages before the re-read, so that it comes
	 * from the device (a recorder's card) where the kernel allows it, not
	 * from the page cache the copy filled. custosd sets it; the CLI re-reads
	 * through the cache (a change after the copy is caught either way).
	 */
	CS_SECURE_FROM_DEVICE = 16,
	/*
	 * release_policy = remote: the "release" records the file as "held"
	 * (secured and re-read, waiting for its item's remote copy) and deletes
	 * nothing; cs_secure_unhold() releases it once the copy is confirmed.
	 * Needs a job_key.
	 */
	CS_SECURE_HOLD = 32,
};

/*
 * Fills *m for the file `rel` from a recorder's rules (file-name pattern,
 * DEVICE.json, clock offset); `officers` has room for 64, `bufs` (bufn
 * bytes) holds the strings, *extra may be set to an object recorded as the
 * event's "extra" (cs_secure() releases it). 0, or -ENOMEM when a field
 * could not be made (the file is not secured without it).
 */
typedef int (*cs_meta_fn)(const void *ctx, const char *rel, struct cs_meta *m,
    const char **officers, char *bufs, size_t bufn, json_t **extra);

struct cs_secure_req {
	int dirfd;         /* the directory the source lies beneath */
	const char *rel;   /* its path beneath dirfd, from a listing: never from metadata */
	uint64_t max_size; /* refuse larger files (-EFBIG); 0: no cap */
	unsigned flags;    /* enum cs_secure_flags */
	/*
	 * What the caller knows (source, CLI options). Sidecar fields replace
	 * these one by one; meta_fn sees them first. Borrowed.
	 */
	struct cs_meta meta;
	cs_meta_fn meta_fn; /* the recorder rules, or NULL */
	const void *meta_ctx;
	/*
	 * The daemon's job for the file, or NULL (the CLI). With a key, an
	 * "ingested" job left by a crash for exactly this file is finished
	 * without a second copy, the event carries the job, a failed re-read is
	 * recorded as "changed" and the release as "released".
	 */
	const char *job_key;
	/* The opening of a recorder's folder that reads the file: the released job's "attach". */
	const char *attach;
	/*
	 * With CS_SECURE_HOLD and CS_SECURE_DELETE: the path of the directory
	 * dirfd is (opened again by cs_secure_unhold() to delete the file).
	 */
	const char *tree;
};

struct cs_secured {
	struct cs_ingest_result res; /* valid from CS_STAGE_REREAD on */
	struct stat sb;              /* the source as opened */
	enum cs_secure_stage stage;  /* the stage reached (where a failure happened) */
	int resumed;                 /* an ingest interrupted by a crash was finished */
	/* "" or the sidecar's problems: bad fields left out, unreadable, not JSON */
	char sidecar_problem[1024];
	/* The source as opened, from cs_secure_copy() to cs_secure_end(); -1 when closed. */
	int fd;
	struct cs_batch *batch; /* cs_secure_copy() into a batch: that batch (else NULL) */
	int slot; /* ... the file's slot in it (-1: none: not in a batch, or resumed) */
	int dirfd; /* cs_secure_path_copy(): the source's directory, kept open (else -1) */
};

/*
 * Secures the source `rq->rel` beneath `rq->dirfd` into the writer handle
 * `st`, filling *out (also on failure: out->stage says where it stopped).
 * Returns 0 once the file is stored, recorded and re-read with the same
 * digest (and its release recorded, when rq->job_key is set); the caller may
 * then release the source. Otherwise a negative code: cs_fault(st, rc,
 * out->stage) says what it means. CS_ECHANGED at CS_STAGE_REREAD: the copy
 * is kept but the source changed after it was read; it must not be
 * released on that copy. Any thread.
 */
int cs_secure(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out);

/*
 * cs_secure() in its stages, for a caller that runs them apart (custosd
 * re-reads one file while it copies the next) or makes many files durable
 * at once in a group commit (custos/batch.h). In this order, each only
 * after the one before returned 0, on the same rq and *out:
 *   cs_secure_copy     opens the source (out->fd), its metadata, the ingest
 *                      (or finishes one a crash interrupted: out->resumed,
 *                      nothing copied); CS_STAGE_OPEN and CS_STAGE_INGEST.
 *                      With a batch `b` (of the same store; NULL: none) the
 *                      file is only added to it: nothing of it is durable
 *                      or recorded until cs_batch_commit(b) returned
 *   cs_secure_reread   with a batch, only after its commit returned
 *                      (whatever it returned): the file's result from the
 *                      batch (the commit's error at CS_STAGE_INGEST when it
 *                      failed); then the re-read, same digest and size, or
 *                      CS_ECHANGED (recorded in the job); CS_STAGE_REREAD
 *   cs_secure_release  deletes an upload (CS_SECURE_DELETE) and records the
 *                      release; only once the copy is durable and re-read
 *   cs_secure_end      always, with the last rc (also when a stage failed):
 *                      closes the source and records a refusal in the job
 * cs_secure_finish() is the last three in one call. The re-read rule is the
 * same as cs_secure()'s: nothing is released that was not durable and
 * re-read with the digest its copy was stored under. `rq` (its dirfd and
 * strings) must stay valid from the copy to the end; the batch until the
 * re-read returned. Any thread, one stage of a file at a time; copies into
 * one batch from several threads at once.
 */
struct cs_batch;
int cs_secure_copy(struct cs_store *st, struct cs_batch *b, const struct cs_secure_req *rq,
    struct cs_secured *out);
int cs_secure_reread(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out);
int cs_secure_release(struct cs_store *st, const struct cs_secure_req *rq,
    struct cs_secured *out);
/*
 * cs_secure_release() of `n` files at once (each rq[i] with out[i]; rc[i]
 * its result): their releases recorded in one catalog transaction.
 */
void cs_secure_release_all(struct cs_store *st, size_t n, const struct cs_secure_req *const *rq,
    struct cs_secured *const *out, int *rc);
void cs_secure_end(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out,
    int rc);
int cs_secure_finish(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out);

/*
 * Held files (CS_SECURE_HOLD): each "held" job has an index entry
 * "held/<item id>/<sha256 of the job key>" ({"key": job key}) written and
 * removed in the same transaction as the job, so the held files of an item,
 * or all of them, are found without reading every job.
 *
 * cs_secure_unhold() releases the files held for item `id` (every held file
 * when `id` is NULL): an upload recorded with delete is deleted if it is
 * still the very file that was read (its sidecar with it), then its job
 * becomes "released" and its index entry goes, in one transaction per call.
 * At most `max` files per call; *n (may be NULL) says how many were
 * released. 0 or a negative code (a store fault fails the store as
 * cs_store_job_put does). Any thread, with the writer handle.
 */
int cs_secure_unhold(struct cs_store *st, const char *id, size_t max, size_t *n);
/*
 * Calls cb with the item id of held files, in index order, starting after
 * the item `after` ("" or NULL: from the first), each id once, until cb
 * returns nonzero. 0 or a negative code. Any thread.
 */
int cs_secure_held_each(struct cs_store *st, const char *after,
    int (*cb)(void *ctx, const char *id), void *ctx);

/*
 * cs_secure() for a path given by a person (the CLI): the directory part is
 * resolved as given, the last component must be the file itself (a symbolic
 * link there is refused: -ELOOP). rq->dirfd and rq->rel are ignored.
 */
int cs_secure_path(struct cs_store *st, const char *path, const struct cs_secure_req *rq,
    struct cs_secured *out);
/*
 * cs_secure_path() in two parts: cs_secure_path_copy() is cs_secure_copy()
 * (into the batch `b`, or NULL) for a path resolved as cs_secure_path()
 * does, with the source's directory kept open in out->dirfd (a failure
 * leaves nothing open); cs_secure_path_finish() is cs_secure_finish() for
 * it, and closes the directory. Give both the same `path`. `slot` is a slot
 * of `b` reserved for this file (cs_batch_reserve(): the file's event then
 * keeps its place among the others), which the call always ends, or -1
 * (the next free one).
 */
int cs_secure_path_copy(struct cs_store *st, struct cs_batch *b, int slot, const char *path,
    const struct cs_secure_req *rq, struct cs_secured *out);
int cs_secure_path_finish(struct cs_store *st, const char *path, const struct cs_secure_req *rq,
    struct cs_secured *out);

/* The largest sidecar read; a larger one is named as a problem and left out. */
#define CS_SIDECAR_MAX (1 << 16)

/*
 * An upload's sidecar, the bytes read from "<file>.json" (untrusted): 0 with
 * *out the JSON object (a new reference, the caller's), or with *out NULL
 * when it is unusable (not JSON, not an object), the reason written to
 * `problem` (n bytes); -ENOMEM when memory ran out (bad input never gives
 * that). Its fields are then taken by cs_meta_from_sidecar(). Any thread.
 */
int cs_sidecar_parse(const char *buf, size_t len, json_t **out, char *problem, size_t n);

/* What an error from securing a file means to the one who secures it. */
enum cs_fault {
	CS_FAULT_NONE = 0,
	/*
	 * Not acceptable evidence (a link, FIFO, device, hard-linked, over the
	 * size cap, ...): say so, leave it (custosd records it in the job).
	 */
	CS_FAULT_REFUSED,
	/* The source cannot be read now (an I/O error): say so, retry later. */
	CS_FAULT_SOURCE,
	/* It changed or vanished while it was read: take it again once it settles. */
	CS_FAULT_WAIT,
	/* Out of memory (OpenSSL's failures count as such): nothing refused; try again. */
	CS_FAULT_MEMORY,
	/* The store failed (disk full, I/O error, damaged catalog): it takes no more work. */
	CS_FAULT_STORE,
};

/*
 * Classifies `rc`, returned at `stage` (a write to the store at
 * CS_STAGE_INGEST and CS_STAGE_RELEASE, a read of the source otherwise; any
 * other lib write counts as CS_STAGE_INGEST). `st` may be NULL; with it, a
 * store stopped for lack of memory (cs_store_failure) is CS_FAULT_MEMORY.
 */
enum cs_fault cs_fault(const struct cs_store *st, int rc, enum cs_secure_stage stage);

#endif
