/*
 * The evidence model's case files, corrections and actors, as ledger events
 * (docs/formats.md section 5, docs/architecture.md "The evidence model"):
 * case-open, case-add, case-remove, case-close, case-seal and amend. The
 * catalog holds their projection (case records, memberships, the current
 * value of every corrected field and its history); `custos rebuild` makes
 * it again from the ledger alone.
 *
 * Writing calls need the writer handle and are serialised with ingest by
 * the store's write lock; reading calls may run on any handle and thread.
 * Every call returns 0 or a negative code (custos/error.h).
 */
#ifndef CUSTOS_CASE_H
#define CUSTOS_CASE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custos/store.h"

/* The longest canonical key (bytes) a case number may have. */
#define CS_CASE_KEY_MAX 480

/*
 * The canonical key of case number `number` (UTF-8): Unicode NFKC
 * (libutf8proc), every bracket variant (〔〕 [] ［］ 【】 〖〗 〘〙 〚〛 () （）
 * ⦅⦆ ﹝﹞ {} ｛｝) made '[' or ']', surrounding white space dropped. Lookups
 * match on it; the number itself is kept as first written. Returns a
 * malloc'd string in *key, CS_EFORMAT if the number is not clean UTF-8 text
 * of 1..256 bytes or its key is empty or longer than CS_CASE_KEY_MAX.
 */
int cs_case_key(const char *number, char **key);

/*
 * Who writes the events of this handle (recorded as "actor" in each one):
 * kind "user" (the CLI: name and uid of the process) or "daemon" (custosd's
 * own events). NULL name clears it. The actor object has room for an
 * "approval" later. Writer handle; not while another thread writes.
 */
int cs_store_set_actor(struct cs_store *st, const char *kind, const char *name, long uid);
/* Sets the actor to the user running this process: getpwuid_r(getuid()). */
int cs_store_set_actor_process(struct cs_store *st);

/* Optional facts of a case file; every field may be NULL. */
struct cs_case_info {
	const char *category;   /* enforcement category, e.g. 行政处罚 */
	const char *title;
	const char *department;
	const char *party;      /* "person" or "organisation" */
};

/* Opens case file `number`: CS_EEXIST if a case with the same canonical key is known. */
int cs_case_open(struct cs_store *st, const char *number, const struct cs_case_info *info,
    uint64_t *seq);
/*
 * Adds item `id` to the case at `stage` (立案 … 执行 or an English alias).
 * CS_ENOTFOUND: no such case or item (*what says which: "case" or "item");
 * CS_EEXIST: already a member; CS_ESEALED: the case is sealed; CS_EFORMAT:
 * a bad stage or reason.
 */
int cs_case_add(struct cs_store *st, const char *number, const char *id, const char *stage,
    const char *reason, uint64_t *seq, const char **what);
/* Removes item `id` from the case; the reason is required. Errors as cs_case_add. */
int cs_case_remove(struct cs_store *st, const char *number, const char *id, const char *reason,
    uint64_t *seq, const char **what);
/* Marks the case no longer active. Closing does not freeze it; sealing does. */
int cs_case_close(struct cs_store *st, const char *number, const char *reason, uint64_t *seq);
/*
 * Seals the case: after this every add, remove or correction touching it is
 * refused with CS_ESEALED. The event carries the SHA-256 of the member list
 * (cs_case_members_digest) so the seal can be proven.
 */
int cs_case_seal(struct cs_store *st, const char *number, const char *reason, uint64_t *seq);

/*
 * A correction: sets descriptive fields to new values with a reason.
 * Target, by the arguments given:
 *  - id, sighting >= 0: that sighting of the item (its event's ledger index);
 *    fields officers (comma-separated), device, recorded_start,
 *    recorded_end, category, stage. sighting < 0: the item's only
 *    sighting (CS_EEXIST if it has several: say which).
 *  - id and number: the item's membership of that case; field stage.
 *  - number only: the case file; fields category, title, department, party.
 * `fields` and `values` are n parallel strings. CS_EFORMAT with *what naming
 * the field when a field or value is not allowed; CS_ESEALED for a sealed
 * case (or an item in one).
 */
int cs_amend(struct cs_store *st, const char *id, long long sighting, const char *number,
    const char *const *fields, const char *const *values, size_t n, const char *reason,
    uint64_t *seq, const char **what);

/* The case record (number, key, facts, state, seal, corrections). CS_ENOTFOUND. */
int cs_store_case_get(struct cs_store *st, const char *number, json_t **out);
/* Members of the case: array of {"id", "stage", "since", "reason"} in id order. */
int cs_store_case_members(struct cs_store *st, const char *number, json_t **out);
/* Every case record, in canonical key order. */
int cs_store_case_list(struct cs_store *st, json_t **out);
/* The case file's events: array of {"seq", "event"}, ascending. */
int cs_store_case_events(struct cs_store *st, const char *number, json_t **out);

/*
 * The SHA-256 (hex) of a member list: for each member in id byte order, the
 * line "<id>\t<stage>\n" (stage "" when none); no members: SHA-256("").
 * `members`: array of objects with "id" and "stage".
 */
int cs_case_members_digest(const json_t *members, char hex[65]);

/*
 * Folds the events of one case file (as found in a case proof, ascending
 * seq) into its member list, checking every seal against it. Returns 0 with
 * *members set (array, id order), CS_EPROOF if a seal's digest does not
 * match the members at that point (*why says so), CS_EFORMAT on an event
 * that does not belong to the case.
 */
int cs_case_fold(const json_t *events, const char *key, json_t **members, const char **why);

/*
 * Proofs of several events, all against the latest checkpoint: one
 * tlog-proof@v1 text per event, concatenated. cs_store_prove_case proves
 * the case file's every event (CS_ENOTFOUND for an unknown case, -EAGAIN if
 * the latest checkpoint does not cover its last event yet).
 */
int cs_store_prove_case(struct cs_store *st, const char *number, char **out);
/* Every event of item `id` (ingest, sightings, memberships, corrections). */
int cs_store_prove_item(struct cs_store *st, const char *id, char **out);
/* The events at ledger indexes seqs[0..n). */
int cs_store_prove_events(struct cs_store *st, const uint64_t *seqs, size_t n, char **out);

/* The canonical stage names in their order: rank 0 立案 … 6 执行; NULL past the end. */
const char *cs_stage_name(int rank);

#endif
