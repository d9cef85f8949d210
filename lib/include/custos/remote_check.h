/*
 * Remote check: is what the ledger says the bucket holds still there, as it
 * was confirmed? Every blob with a replica event at the remote, the
 * station's identity, the ledger records and the checkpoint the latest
 * checkpoint replica covers are looked at (HEAD, and with `deep` read back
 * and re-hashed) through custos/remote.h, many at once, and each problem is
 * named: missing, deleted, size, checksum, retention shortened or lifted,
 * extra versions (an overwrite). A purged item's objects (its record has
 * "purged") must be absent: a version left is "not-purged", unless Object
 * Lock retention or a legal hold still keeps it (a note). docs/formats.md
 * 13.4 lists the checks.
 */
#ifndef CUSTOS_REMOTE_CHECK_H
#define CUSTOS_REMOTE_CHECK_H

#include <stdint.h>

#include "custos/remote.h"

struct cs_store;

/* One problem with one object. */
struct cs_rcheck_problem {
	/* "missing", "size", "checksum", "retention", "versions", "not-purged", "unanswered";
	 * a note: "locked" */
	const char *kind;
	const char *object; /* "blob", "derivative", "record", "identity" or "checkpoint" */
	const char *id;     /* blob, derivative: the evidence id; else NULL */
	const char *key;    /* the object's key */
	const char *detail; /* a sentence for an operator (a derivative's names its kind) */
};

struct cs_rcheck_hooks {
	void (*problem)(void *ctx, const struct cs_rcheck_problem *p);
	void (*progress)(void *ctx, uint64_t done, uint64_t total); /* may be NULL */
	void *ctx;
	/* information, not a problem: a purged item's version still locked; may be NULL */
	void (*note)(void *ctx, const struct cs_rcheck_problem *p);
};

/*
 * Checks the objects of store `st` (root `dir`) at the remote `cfg`, in the
 * foreground (cs_remote_poll). *checked: objects looked at; *problems:
 * problems reported. 0 when every object could be asked about (problems
 * or not), CS_EREMOTE(IO) when some could not (each also reported as
 * "unanswered"), or the store's error.
 */
int cs_remote_check(struct cs_store *st, const char *dir, const struct cs_remote_config *cfg,
    int deep, const struct cs_rcheck_hooks *hooks, uint64_t *checked, uint64_t *problems);

#endif
