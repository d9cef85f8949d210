/*
 * The store's private state, shared by store.c (open, ingest, queries) and
 * verify.c (verify, rebuild). lib-internal.
 */
#ifndef CS_STORE_INTERNAL_H
#define CS_STORE_INTERNAL_H

#include <pthread.h>

#include "catalog.h"
#include "custos/note.h"
#include "custos/store.h"
#include "journal.h"

struct cs_store {
	char *root;
	int rootfd;
	int lockfd; /* >= 0 when this handle is the writer */
	int flags;
	char station[40];
	char origin[80];
	struct cs__catalog cat;
	struct cs__journal j;
	struct cs_signer *signer; /* writer only */
	pthread_mutex_t wlock;    /* serialises ledger appends and catalog writes */
	uint64_t size;            /* writer: events in the ledger */
	int64_t last_ms;          /* writer: time of the last event */
	int failed;               /* a durability failure (its code): refuse all writes */
	int orphan;               /* a blob was placed but its event failed: scan at next start */
	cs_log_fn log;
	void *logctx;
};

void cs__store_log(struct cs_store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Applies journal entries from `off` on into `cat`, in batches, stopping
 * before the first entry that starts at or after `stop` (UINT64_MAX: the
 * end of the journal); sets *end, *count.
 */
int cs__replay(struct cs__journal *j, struct cs__catalog *cat, uint64_t off, uint64_t stop,
    uint64_t first_seq, uint64_t *end, uint64_t *count, int *torn, cs_progress_fn progress,
    void *ctx);

/* Loads all checkpoints, sorted by size (ascending). Notes malloc'd. */
struct cs__cp {
	uint64_t size;
	uint8_t root[32];
	char *note;
	size_t len;
	char file[32];
	int valid; /* parsed and the signature verifies */
};
int cs__checkpoints_load(struct cs_store *st, struct cs__cp **out, size_t *n);
void cs__checkpoints_free(struct cs__cp *cps, size_t n);

#endif
