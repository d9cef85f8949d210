/*
 * Fixity: re-reading a stored item's blob and comparing it with the SHA-256
 * and size recorded at its ingest, and recording each check as a ledger
 * event "fixity" (in the manner of PREMIS: the item, its digest, the outcome
 * "ok" | "damaged" | "missing", the time and the agent). The catalog keeps,
 * per item, the last check's time and outcome, an index of items by the time
 * of their last check (their ingest when never checked), the items found
 * damaged or missing, and the latest check; `custos rebuild` reproduces them
 * from the ledger. A check is made in steps (cs_fixity_step) so a caller can
 * pace it; cs_fixity_check does it in one go. Nothing here schedules: custosd
 * decides when (daemon/fixity.c), `custos fixity check` runs checks at once.
 */
#ifndef CUSTOS_FIXITY_H
#define CUSTOS_FIXITY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cs_store;

/* The software that made a check, recorded as the event's "agent". */
struct cs_fixity_agent {
	const char *name;    /* "custosd", "custos" */
	const char *version; /* its version, e.g. "0.2.0" */
};

enum cs_fixity_outcome {
	CS_FIXITY_OK = 0,  /* the blob has the recorded size and SHA-256 */
	CS_FIXITY_DAMAGED, /* it is there but its bytes differ */
	CS_FIXITY_MISSING, /* there is no blob (or it is not a regular file) */
};

/* "ok", "damaged", "missing". */
const char *cs_fixity_outcome_name(enum cs_fixity_outcome o);

/* One check in progress; opaque. */
struct cs_fixity;

/*
 * Starts checking item `id` (its blob opened, nothing read yet). Returns 0,
 * CS_ENOTFOUND for an unknown id, -EBADF if the store is not open for
 * writing, -ENOMEM.
 */
int cs_fixity_begin(struct cs_store *st, const char *id, struct cs_fixity **out);
/*
 * Hashes up to `max` more bytes of the blob and then of each derivative (at
 * least one buffer); *done is set to 1 when every file has been read (or is
 * missing). *bytes: the bytes read by this call. A read that fails makes
 * that file damaged (its bytes cannot be read back). Returns 0, or
 * CS_ECRYPTO or the store's error (nothing learnt: check again later).
 */
int cs_fixity_step(struct cs_fixity *f, uint64_t max, uint64_t *bytes, int *done);
/*
 * Compares what was read with the record and writes the fixity events (the
 * rest is read first if cs_fixity_step did not finish): one for the blob,
 * then one for each derivative the item's record lists as made (access and
 * preservation copies, poster), naming it with "derivative": its kind, all in
 * one commit. *outcome is the first that is not ok (blob first), else ok;
 * *seq the blob's event's ledger index (either may be NULL). Returns 0 or the
 * store's error (no event was written).
 */
int cs_fixity_end(struct cs_fixity *f, const struct cs_fixity_agent *agent,
    enum cs_fixity_outcome *outcome, uint64_t *seq);
/*
 * After cs_fixity_end: the first file found not ok, *kind NULL for the blob
 * or the derivative's kind, *sha its recorded SHA-256 (valid until
 * cs_fixity_free). Returns its outcome, 0 (ok) when every file was intact.
 */
int cs_fixity_problem(const struct cs_fixity *f, const char **kind, const char **sha);
/* Releases a check (ended or not); NULL is a no-op. */
void cs_fixity_free(struct cs_fixity *f);

/* begin + end: checks item `id` in one go and writes its event. */
int cs_fixity_check(struct cs_store *st, const char *id, const struct cs_fixity_agent *agent,
    enum cs_fixity_outcome *outcome, uint64_t *seq);

/*
 * The items due: last checked (or ingested, when never checked) at or before
 * `now_ms - period_ms`, oldest first, at most `max` of them, as a JSON array
 * (new reference) of {"id", "sha256", "size", "since"} ("since": the time of
 * the last check or of the ingest). *due: how many items are due in all; with
 * `due` NULL the walk stops after `max` items (its cost does not grow with
 * the number of items due).
 */
int cs_fixity_due(struct cs_store *st, int64_t now_ms, int64_t period_ms, size_t max,
    json_t **items, uint64_t *due);

/*
 * The schedule as the catalog has it. *summary (new reference): {"items",
 * "checked" (items checked at least once), "damaged": [ids whose last check
 * was not ok], "overdue" (items due at now_ms), "last_pass" (the time of the
 * latest check, or null)}. When `items` is not NULL, *items: every item,
 * oldest check first, {"id", "size", "last_checked" (time or null),
 * "outcome" (or null), "since", "due_at", "overdue" (bool)}.
 */
int cs_fixity_report(struct cs_store *st, int64_t now_ms, int64_t period_ms, json_t **summary,
    json_t **items);

/* The current time as the ledger writes it, in ms since the epoch. */
int64_t cs_fixity_now_ms(void);

#endif
