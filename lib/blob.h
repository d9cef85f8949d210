/*
 * Content-addressed, write-once blob files under <root>/objects/sha256/ab/cd/<hex>.
 * lib-internal: used by the store (store.c, ingest.c, verify.c).
 */
#ifndef CS_BLOB_H
#define CS_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CS_BLOB_PATH_MAX 96 /* "objects/sha256/ab/cd/" + 64 hex + NUL */

/* Writes the relative path of the blob with hex digest `hex` into buf. */
void cs__blob_path(const char *hex, char *buf, size_t n);

struct cs__blob_put {
	uint8_t digest[32];
	uint64_t size;
	int existed;  /* the blob was already stored (and checked intact) */
	int repaired; /* a damaged stored copy was replaced with these bytes */
};

/*
 * Reads `srcfd` to its end once, hashing and copying into a temp file in
 * <root>/tmp; fsyncs it, makes it read-only, links it into place without
 * replacing an intact blob, and fsyncs the directory (and any fan-out
 * directory it had to make). Fails with CS_ECHANGED if the source's size or
 * mtime changed during the read. `rootfd` is the store root directory.
 * The same as cs__blob_stage, cs__blob_sync, cs__blob_link,
 * cs__blob_fsync_dirs and cs__blob_discard in a row.
 */
int cs__blob_put(int rootfd, int srcfd, atomic_uchar *fresh, struct cs__blob_put *out);

/* A blob copied into a temp file and not yet durable (the steps of a group commit). */
struct cs__blob_tmp {
	int fd;            /* the temp file, open until cs__blob_discard() */
	char path[64];     /* "tmp/blob-<pid>-<n>", relative to the root */
	uint8_t digest[32];
	uint64_t size;
};

/*
 * Copies and hashes `srcfd` into a new temp file, checks the source did not
 * change (CS_ECHANGED), makes the copy read-only and starts its writeback
 * without waiting. Nothing is durable yet. On failure nothing is left.
 */
int cs__blob_stage(int rootfd, int srcfd, struct cs__blob_tmp *t);
/* fsyncs the temp file: 0 or -errno. Any thread. */
int cs__blob_sync(struct cs__blob_tmp *t);
/*
 * Links the fsynced temp file into place (making a missing fan-out
 * directory), as cs__blob_put does; *out as there. *dirs: which directories
 * the caller must fsync before anything refers to the blob (CS__BLOB_DIR_*;
 * 0 when the bytes were linked by the caller itself, earlier in the same
 * commit). `intact`: the caller knows a stored copy with this digest intact
 * (it linked it itself, in this commit), so it is not read again.
 *
 * `fresh`: the store's map of second-level directories (CS__BLOB_FRESH_BYTES,
 * one bit per objects/sha256/ab/cd) whose entry in their parent may not be
 * durable yet: set before such a directory is made, cleared by
 * cs__blob_fresh_done() once a commit fsynced the parent. A link into a
 * directory whose bit is set asks for its parent's fsync too (CS__BLOB_DIR_MID),
 * whoever made it: another commit running at the same time, or a process that
 * ended before its commit. Bytes found already linked ask for their
 * directory's fsync (CS__BLOB_DIR_LEAF): another commit may have linked them
 * and not yet made the link durable.
 */
#define CS__BLOB_DIR_LEAF 1u /* objects/sha256/ab/cd */
#define CS__BLOB_DIR_MID 2u  /* objects/sha256/ab (cd was made) */
#define CS__BLOB_DIR_TOP 4u  /* objects/sha256 (ab was made) */
#define CS__BLOB_FRESH_BYTES (65536 / 8)
int cs__blob_link(int rootfd, struct cs__blob_tmp *t, int intact, atomic_uchar *fresh,
    struct cs__blob_put *out, unsigned *dirs);
/* After the fsync of the parent of `digest`'s directory (CS__BLOB_DIR_MID): clears its bit. */
void cs__blob_fresh_done(atomic_uchar *fresh, const uint8_t digest[32]);
/*
 * Whether the blob of `digest` is still in place: 0, CS_EPURGED if not
 * there (a purge removed it after a link found it: the caller holds the
 * write lock, under which purges unlink), or -errno.
 */
int cs__blob_there(int rootfd, const uint8_t digest[32]);

/* fsyncs the directories `dirs` (CS__BLOB_DIR_*) of the blob with digest `hex`. */
int cs__blob_fsync_dirs(int rootfd, const char *hex, unsigned dirs);
/* Closes and removes the temp file (linked or not). */
void cs__blob_discard(int rootfd, struct cs__blob_tmp *t);

/* Re-hashes the stored blob: 0 if intact, CS_EDIGEST if damaged, -ENOENT if missing. */
int cs__blob_check(int rootfd, const char *hex, uint64_t size);
/* The same for a blob of content-addressed tree `tree` ("objects", "derivatives"). */
int cs__blob_check_in(int rootfd, const char *tree, const char *hex, uint64_t size);

/*
 * Links the finished file `tmp` (relative to rootfd, its bytes fsynced) into
 * derivatives/sha256/ab/cd/<hex>, durably; an existing one is kept (lib/media.c).
 */
int cs__derivative_place(int rootfd, const char *tmp, const char *hex);

/* Hashes everything readable from fd (from offset 0) into digest; size out. */
int cs__hash_fd(int fd, uint8_t digest[32], uint64_t *size);

#endif
