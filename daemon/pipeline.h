/*
 * Securing files (pipeline.c): the queue of settled candidates, the work
 * items on the thread pool (open, ingest, re-read, release), and the pause
 * while the store's disk is full. Calls log.h and watch.h, never dock.c: a
 * recorder's part comes through the tree's struct tree_source.
 */
#ifndef CUSTOSD_PIPELINE_H
#define CUSTOSD_PIPELINE_H

#include <stdint.h>

#include "daemon.h"

/* Every tick: files unchanged for the settle time join the queue; work starts. */
void settle_tick(struct daemon *d);
/* Starts work on queued files while there is room. */
void pump(struct daemon *d);
/* Drops a tree's candidates that are not being secured right now. */
void drop_candidates(struct daemon *d, struct inbox *ib);
/* 1 if work may start: not failed, not paused for space, not stopping. */
int taking_work(const struct daemon *d);
/*
 * A write to the store failed with rc while `what` was being done (`size`
 * bytes were to be written): pauses for space if the disk is full, else
 * stops taking work for good (the fsync rule: never retried).
 */
void store_failed(struct daemon *d, int rc, const char *what, uint64_t size);
/* Free bytes on the store's disk; UINT64_MAX when unknown. */
uint64_t store_free(const struct daemon *d);
/* After a reload: a pause for space is judged again under the new reserve; work starts. */
void pipeline_reloaded(struct daemon *d);

#endif
