/*
 * Publishing the ledger as a C2SP tlog-tiles log (lib/tiles.c): the static
 * hash tiles and entry bundles of the tree of the latest signed checkpoint,
 * and that checkpoint, written into a directory that any web server can
 * serve as the log's URL prefix. docs/formats.md describes the layout.
 */
#ifndef CUSTOS_TILES_H
#define CUSTOS_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "custos/verify.h" /* cs_progress_fn */

struct cs_store;

/* The tile level that names the entry bundles in cs_tile_path(). */
#define CS_TILE_ENTRIES (-1)

/*
 * The path of a tile under the log's prefix, as tlog-tiles names it:
 * "tile/<L>/<N>[.p/<W>]", or "tile/entries/<N>[.p/<W>]" for level
 * CS_TILE_ENTRIES; N in 3-digit groups, all but the last with an 'x'
 * ("x001/x234/067"). width 0 or 256: a full tile, 1..255: a partial one.
 * Returns the length written (NUL-terminated) or -ENAMETOOLONG / -EINVAL.
 */
int cs_tile_path(char *buf, size_t n, int level, uint64_t index, unsigned width);

/* What one publication did. */
struct cs_tiles_result {
	uint64_t size;          /* tree size of the published checkpoint */
	uint64_t prev_size;     /* tree size of the checkpoint that was there (0: none) */
	uint64_t written;       /* tiles and entry bundles written in this run */
	uint64_t kept;          /* already there from an earlier run, left untouched */
	uint64_t pruned;        /* partial tiles removed because their full tile is there */
	int checkpoint_written; /* 0: DIR/checkpoint already held this very note */
};

/*
 * Writes into directory `dir` (which must exist) the tiles of the tree of the
 * store's latest signed checkpoint that are not there yet, then that
 * checkpoint as `dir`/checkpoint, then removes the partial tiles that a full
 * tile written in this run supersedes. Each file is written to a temp file,
 * fsynced and linked or renamed into place, so a reader sees whole tiles
 * only and a checkpoint only after every tile it needs. Full tiles, and a
 * partial tile of a given width, are never rewritten. One publisher at a
 * time per `dir` (a lock on the directory: CS_EBUSY).
 *
 * Refuses with CS_ECONFLICT (and a log line saying why) when `dir` holds a
 * checkpoint that is not this store's (another key, a tree this one does not
 * extend, a larger tree) or a full tile of the wrong size; with CS_ENOTFOUND
 * when the store has no signed checkpoint; with -EMSGSIZE when an event is
 * longer than an entry bundle can frame (65535 bytes); CS_ELEDGER when the
 * ledger does not give the checkpoint's root. progress(ctx, "tiles", done,
 * total) is called as tiles are done (may be NULL). Any handle (a reader
 * beside custosd is fine), any thread.
 */
int cs_store_tiles(struct cs_store *st, const char *dir, cs_progress_fn progress, void *ctx,
    struct cs_tiles_result *res);

#endif
