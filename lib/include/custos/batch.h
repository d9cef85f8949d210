/*
 * Group commit (lib/batch.c): files that arrive together are made durable
 * together. Each file added is copied and hashed into a temp file at once
 * (its writeback started, nothing waited for); the commit then makes the
 * whole batch durable with the waits overlapped: every temp file fsynced
 * from a few threads at once, each linked into place, each directory
 * touched fsynced once (again from several threads), then one ledger
 * journal append with one fdatasync and one catalog transaction for all of
 * the batch's events. The order of DESIGN invariant 1 holds for every file:
 * bytes durable, then linked, then its directory durable, then the ledger
 * entry durable, then the catalog. A file is secured only once the commit
 * of its batch returned 0; before that nothing about it may be reported.
 *
 * Each file gets the event a single ingest would give it
 * (cs_store_ingest_fd), in the order the files were added: an ingest, or a
 * sighting when its bytes are already stored, including bytes added earlier
 * to the same batch (the later file is then a duplicate of the earlier,
 * new item); a case number makes the item join that case with its event,
 * as with a single ingest.
 *
 * The batch closes on bounds (struct cs_batch_limits) that the caller asks
 * about with cs_batch_due(): a number of files, a number of bytes, and the
 * time the first file has waited, so that a file alone is never held back
 * noticeably.
 *
 * A batch is used once: cs_batch_new, cs_batch_add_fd (any threads, several
 * at once), cs_batch_commit (once, after every add returned), cs_batch_result
 * per file, cs_batch_free. Writer handle only. Files with the same bytes in
 * concurrent batches, or a batch and single ingests at once, get one item and
 * sightings, as concurrent single ingests do.
 */
#ifndef CUSTOS_BATCH_H
#define CUSTOS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "custos/ingest.h"

struct cs_store;
struct cs_batch;

struct cs_batch_limits {
	size_t max_files;   /* commit at this many files [0: CS_BATCH_FILES] */
	uint64_t max_bytes; /* ... or this many bytes [0: CS_BATCH_BYTES] */
	uint32_t max_ms;    /* ... or once the first file has waited this long [0: CS_BATCH_MS] */
};
#define CS_BATCH_FILES 128             /* each holds a temp file open until the commit */
#define CS_BATCH_BYTES (64ull << 20)   /* a larger file is a batch of its own */
#define CS_BATCH_MS 50

/*
 * A new, empty batch for the writer handle `st`; `lim` may be NULL (the
 * defaults). 0, -EBADF on a reader handle, -ENOMEM.
 */
int cs_batch_new(struct cs_store *st, const struct cs_batch_limits *lim, struct cs_batch **out);

/*
 * Adds the open file `fd` (read from offset 0; it stays the caller's) named
 * `name` (the original name, metadata only) with `meta` (borrowed for the
 * call only: it is copied). The bytes are read once, hashed and copied into
 * a temp file of the store; nothing is durable or recorded yet. Returns the
 * file's slot (>= 0) for cs_batch_result(), or an error as
 * cs_store_ingest_fd() gives for its copy (CS_EFORMAT bad metadata,
 * CS_ECHANGED, CS_ESOURCE, CS_EFAILED, a fault of the storage, which fails
 * the store, ...); then nothing of the file is in the batch. -EINVAL once
 * the commit began. Any thread, several at once.
 */
int cs_batch_add_fd(struct cs_batch *b, int fd, const char *name, const struct cs_meta *meta);

/*
 * cs_batch_add_fd() in two steps, for files copied by several threads at
 * once that must keep an order (the command line's): cs_batch_reserve()
 * takes the next slot (>= 0; -EINVAL once the commit began, -E2BIG, -ENOMEM),
 * cs_batch_add_fd_at() then copies the file into it, and the events follow
 * the order of the slots, not of the copies. A reserved slot must end in
 * exactly one cs_batch_add_fd_at() (which empties it if it fails) or
 * cs_batch_release() (the file was refused before its copy): until then
 * the commit waits for it. A slot never reserved, or a batch with no
 * reservation open, is refused (-EINVAL) or ignored; -1 is ignored.
 */
int cs_batch_reserve(struct cs_batch *b);
int cs_batch_add_fd_at(struct cs_batch *b, int slot, int fd, const char *name,
    const struct cs_meta *meta);
void cs_batch_release(struct cs_batch *b, int slot);
/*
 * 1 if the batch should be committed before a file of `next_size` bytes is
 * added (0: is it due now?): it holds files and one of its bounds is
 * reached, or would be passed by that file. 0 otherwise. Any thread.
 */
int cs_batch_due(struct cs_batch *b, uint64_t next_size);
/* Files added (successfully) so far. Any thread. */
size_t cs_batch_count(struct cs_batch *b);

/*
 * Makes every file added durable and recorded, as described above; waits
 * for adds still running. 0: all of them are secured (cs_batch_result()
 * gives each one's result). Otherwise none of them is (an error as
 * cs_store_ingest_fd() gives: a fault of the blob or ledger writes fails
 * the store, CS_EFAILED, -ENOMEM); blobs placed stay as orphans for the
 * next start. An empty batch commits with 0. Once per batch; any thread.
 */
int cs_batch_commit(struct cs_batch *b);
/*
 * cs_batch_commit() in two steps, so that a caller committing several
 * batches at once can keep their events in the order the batches were
 * filled: cs_batch_sync() makes the bytes durable (fsyncs, links, directory
 * fsyncs; batches at once overlap their waits), cs_batch_record() then
 * appends and indexes the events (one batch at a time holds the ledger).
 * cs_batch_sync() returns what cs_batch_commit() would if it fails (the
 * batch is then done: cs_batch_record() returns the same at once), else 0.
 * Each once per batch, in this order.
 */
int cs_batch_sync(struct cs_batch *b);
int cs_batch_record(struct cs_batch *b);

/*
 * The result of the file in `slot` after a commit that returned 0: 0 and
 * *res (seq is its own event's index), or the commit's error; -EINVAL for a
 * slot that holds no file or before the commit.
 */
int cs_batch_result(struct cs_batch *b, int slot, struct cs_ingest_result *res);

/* Frees the batch; temp files of a batch never committed are removed. NULL is fine. */
void cs_batch_free(struct cs_batch *b);

#endif
