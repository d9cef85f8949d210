/*
 * Orphan blobs (lib/orphans.c): bytes that were placed in objects/ by an
 * ingest that never wrote its ledger event (a crash), moved to orphans/ by
 * the recovery of the next writer. Never acknowledged, they are kept for an
 * operator to look at, within limits: the oldest are removed first once
 * one is older than the age limit or all of them take more than the size
 * limit. A file in orphans/ whose bytes the catalog holds as an item (by
 * its digest) is not an orphan and is never removed.
 *
 * A writer enforces the default limits each time it opens the store and
 * after cs_store_recover(), unless it was opened with CS_OPEN_KEEP_ORPHANS
 * (custosd, which enforces its own configured limits with
 * cs_store_orphans_prune(), at start, after a recovery and daily).
 */
#ifndef CUSTOS_ORPHANS_H
#define CUSTOS_ORPHANS_H

#include <stdint.h>

struct cs_store;

#define CS_ORPHANS_MAX_AGE_DEFAULT ((int64_t)30 * 86400)  /* seconds: 30 days */
#define CS_ORPHANS_MAX_BYTES_DEFAULT ((uint64_t)10 << 30) /* 10 GiB */

/* 0 in a field: no limit of that kind. */
struct cs_orphan_limits {
	int64_t max_age_s;  /* an orphan older than this (by its mtime) is removed */
	uint64_t max_bytes; /* the oldest are removed until the rest take no more */
};

/* What orphans/ holds (after the removals of the call, if any). */
struct cs_orphans {
	uint64_t count;     /* blobs in orphans/ (files named by a SHA-256) */
	uint64_t bytes;     /* their size */
	int64_t oldest_ms;  /* mtime of the oldest, ms since the epoch; 0: none */
	uint64_t referenced; /* of them, bytes the catalog holds as an item: kept */
	uint64_t removed;   /* removed by this call */
	uint64_t removed_bytes;
};

/* Fills *out with what orphans/ holds. Any handle (on one without the catalog, referenced is 0). */
int cs_store_orphans_stat(struct cs_store *st, struct cs_orphans *out);
/*
 * Removes orphans beyond `lim`, oldest first (each is logged), and fills
 * *out. Writer handle (-EBADF otherwise); takes the store's write lock for
 * the while. Returns 0 or a negative code (a removal that failed: the rest
 * are kept; the store does not fail for it).
 */
int cs_store_orphans_prune(struct cs_store *st, const struct cs_orphan_limits *lim,
    struct cs_orphans *out);

#endif
