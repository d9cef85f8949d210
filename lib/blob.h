/*
 * Content-addressed, write-once blob files under <root>/objects/sha256/ab/cd/<hex>.
 * lib-internal: used by the store (store.c, ingest.c, verify.c).
 */
#ifndef CS_BLOB_H
#define CS_BLOB_H

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
 * replacing an intact blob, and fsyncs the directory. Fails with
 * CS_ECHANGED if the source's size or mtime changed during the read.
 * `rootfd` is the store root directory.
 */
int cs__blob_put(int rootfd, int srcfd, struct cs__blob_put *out);

/* Re-hashes the stored blob: 0 if intact, CS_EDIGEST if damaged, -ENOENT if missing. */
int cs__blob_check(int rootfd, const char *hex, uint64_t size);

/* Hashes everything readable from fd (from offset 0) into digest; size out. */
int cs__hash_fd(int fd, uint8_t digest[32], uint64_t *size);

#endif
