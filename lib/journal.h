/*
 * The ledger journal: <root>/ledger/journal, an append-only file that is the
 * source of truth for everything custos has done. After a 16-byte header,
 * each entry is: 4-byte big-endian length N, N bytes of canonical JSON event,
 * and the 32-byte RFC 9162 leaf hash SHA-256(0x00 || event) as a checksum.
 * lib-internal.
 */
#ifndef CS_JOURNAL_H
#define CS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define CS_JOURNAL_MAGIC "CUSTOS-LEDGER-1\n"
#define CS_JOURNAL_HDR 16u
#define CS_JOURNAL_MAX_ENTRY (16u << 20)

struct cs__journal {
	int fd;
	uint64_t end; /* offset just past the last entry the writer knows of */
};

struct cs__jentry {
	uint64_t off;     /* offset of the length prefix */
	uint64_t data;    /* offset of the event bytes */
	uint32_t len;     /* event length */
	uint64_t next;    /* offset of the following entry */
	uint8_t leaf[32]; /* leaf hash as stored */
};

/* Opens (creating it with its header when `create`) the journal in <root>/ledger. */
int cs__journal_open(struct cs__journal *j, int rootfd, int writable, int create);
void cs__journal_close(struct cs__journal *j);
/* Current file size. */
int cs__journal_filesize(struct cs__journal *j, uint64_t *size);

/*
 * Reads the entry at `off`. Returns 1 with *e (and the event bytes in *buf,
 * malloc'd, if buf is not NULL) when a complete entry whose checksum
 * matches is there; 0 at the end of the file; CS_ELEDGER when the bytes at
 * `off` are not a valid entry (torn or damaged; *e->len may say which).
 * `torn` (optional) is set to 1 when the entry runs past the end of file.
 */
int cs__journal_read(struct cs__journal *j, uint64_t off, struct cs__jentry *e, char **buf,
    int *torn);

/*
 * Appends an event at j->end and makes it durable (fdatasync). On success
 * *e describes the new entry and j->end moves past it. -ENOMEM and
 * CS_ECRYPTO (the entry could not be built) mean nothing was written; on
 * any other failure the caller must treat the store as failed: a retried
 * fsync can lie.
 */
int cs__journal_append(struct cs__journal *j, const char *ev, uint32_t len, struct cs__jentry *e);
/*
 * Appends n events with one write and one fdatasync (events that belong
 * together, such as an ingest and its case-add); es[i] describes each. A
 * crash can tear only the last entry written; errors as cs__journal_append.
 */
int cs__journal_append_many(struct cs__journal *j, const char *const *evs, const uint32_t *lens,
    size_t n, struct cs__jentry *es);

/* Cuts the file at `off` (a torn tail) and makes that durable. */
int cs__journal_truncate(struct cs__journal *j, uint64_t off);

#endif
