/*
 * Retention (issue 13): how long evidence is kept, what stops it from being
 * purged, and the purge itself with its permanent destruction register.
 * Invariant 5 of docs/architecture.md: a purge removes bytes, never history.
 *
 * Everything here is a ledger event (docs/formats.md section 5), projected
 * into the catalog and remade by `custos rebuild`:
 *   hold, hold-release           a hold on a case or an item, and its end
 *   evidence-use                 an item used as evidence in a decision (kept for ever)
 *   purge-plan                   a plan: the items due, each with its class and dates
 *   purge-approve, purge-cancel  a plan's approvals, its cancellation
 *   purge                        one item's tombstone (the destruction register's entry)
 *   purge-remote                 what became of the item's remote objects
 *   purge-done                   the plan executed to its end
 *
 * Times count in cs_now_ms() (custos/store.h): the test builds' clock can
 * be set, so tests travel years without sleeping.
 *
 * Writing calls need the writer handle (custosd's, or the store user's CLI
 * when no custosd runs); they write with the handle's actor. A refusal is
 * CS_EDENIED with *rule set to one of CS_RULE_* below (stable names).
 */
#ifndef CUSTOS_RETENTION_H
#define CUSTOS_RETENTION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custos/access.h"
#include "custos/store.h"

#define CS_RULE_HOLDER "hold-role"            /* this role does not add or release holds */
#define CS_RULE_PURGE_APPROVER "purge-approver-role" /* this role does not approve purges */
#define CS_RULE_SAME_APPROVER "purge-same-approver"  /* one user approves a plan once */
#define CS_RULE_PLAN_STATE "purge-plan-state" /* the plan is cancelled, executed or superseded */

/* Where a class's period counts from. */
enum cs_retention_from {
	CS_FROM_CLOSURE,   /* the closing of the case (case-close) */
	CS_FROM_RECORDING, /* the item's recorded start (else its ingest) */
};

/* One retention class of the config. */
struct cs_retention_class {
	const char *name;     /* e.g. "traffic" */
	const char *category; /* the category it covers (case's or sighting's); NULL: any */
	int64_t period_ms;    /* < 0: kept for ever */
	enum cs_retention_from from;
};

/* The configurable part ([retention] in custosd.conf, docs/operations.md). */
struct cs_retention_policy {
	const struct cs_retention_class *classes;
	size_t n_classes;
	const char *holders;   /* roles that hold, release and mark evidence use: "legal,admin" */
	const char *approvers; /* roles that approve a purge plan: "head,admin" */
	unsigned approvals;    /* different users needed: 2 */
	int64_t grace_ms;      /* from the last approval to execution: 7 days */
};

/* The defaults: no class (nothing is ever due), holders, approvers, 2, 7 days. */
void cs_retention_policy_default(struct cs_retention_policy *p);

/*
 * One class line of the config, `value` such as "period=5y from=closure
 * category=行政处罚": period N d (days), N y (365 days) or permanent; from
 * closure or recording; category optional (none: any). Fills c's period_ms,
 * from and category (malloc'd, the caller frees it; NULL: none), not its
 * name. CS_EFORMAT with `why` naming the problem; -ENOMEM.
 */
int cs_retention_class_parse(const char *value, struct cs_retention_class *c, char *why,
    size_t whyn);

/*
 * Holds. cs_hold_add: on case `number` (an item then: id NULL) or on item
 * `id`; reason required. *hold: the hold's number (its ledger index).
 * cs_hold_release: ends hold `hold`, reason required. CS_EDENIED hold-role;
 * CS_ENOTFOUND (*what "case", "item" or "hold"); CS_EEXIST: released already.
 * cs_hold_list: the holds, current (all == 0) or every one, as an array of
 * {"hold", "case"?, "id"?, "reason", "time", "actor", "released"?}.
 * cs_hold_items: the items a hold covers now (a case's: its members).
 */
int cs_hold_add(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, const char *number, const char *id, const char *reason,
    uint64_t *hold, const char **rule, const char **what);
int cs_hold_release(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t hold, const char *reason, uint64_t *seq,
    const char **rule, const char **what);
int cs_hold_list(struct cs_store *st, int all, json_t **out);
int cs_hold_items(struct cs_store *st, uint64_t hold, json_t **ids);

/*
 * What S3 legal hold the remote objects of the items hold `hold` covers (or
 * covered, if released) should have now: *out [{"id", "held": bool}], held
 * when any hold in force still covers the item; purged items left out.
 * cs_hold_remote_record writes what was done ("hold-remote" event: hold,
 * id, legal_hold "ON"|"OFF", remote: custos/remote_purge.h's outcome).
 */
int cs_hold_remote_wants(struct cs_store *st, uint64_t hold, json_t **out);
/* *hold: a hold in force on item `id` or a case file it is in; 0: none. CS_ENOTFOUND. */
int cs_hold_of_item(struct cs_store *st, const char *id, uint64_t *hold);
int cs_hold_remote_record(struct cs_store *st, uint64_t hold, const char *id, int on,
    json_t *outcome, uint64_t *seq);

/*
 * Marks item `id` as used as evidence in a decision of case `number`
 * (value 1) or not (0): such an item is kept for ever. Role: holders.
 */
int cs_retention_mark_used(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, const char *id, const char *number, int value,
    const char *reason, uint64_t *seq, const char **rule, const char **what);

/*
 * What is due at `now_ms` under `pol`, not written anywhere: *out is
 *   {"time": T, "due": [ITEM...], "blocked": [ITEM...], "kept": n}
 * ITEM = {"id", "sha256", "size", "cases": [number...], "class", "from"
 * ("closure"|"recording"), "since" (the time counted from), "due" (since +
 * period)} and, in "blocked", "why": a sentence ("held by hold 12: …",
 * "case X is open", "used as evidence in a decision of case X", "in plan 40
 * already", "no retention class covers it"). An item not yet due is not
 * listed ("kept" counts those and the permanent ones). When several classes
 * apply the longest wins; an item in several cases is due when it is due in
 * each. Purged items are not listed.
 */
int cs_retention_compute(struct cs_store *st, const struct cs_retention_policy *pol,
    int64_t now_ms, json_t **out);

/*
 * A plan: writes the "purge-plan" event with the due items of
 * cs_retention_compute (none due: *plan 0, nothing written). *plan: its
 * number (ledger index). Plans are made by custosd daily and by
 * `custos retention plan --write`.
 */
int cs_purge_plan(struct cs_store *st, const struct cs_retention_policy *pol, uint64_t *plan);

/*
 * Approves plan `plan` as `who` (approvers role, a user once per plan).
 * When the plan has pol->approvals approvals from different users, its
 * grace period starts. Cancel: any approver, reason required, until
 * execution starts. CS_EDENIED: purge-approver-role, purge-same-approver,
 * purge-plan-state; CS_ENOTFOUND.
 */
int cs_purge_approve(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t plan, uint64_t *seq, const char **rule);
int cs_purge_cancel(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t plan, const char *reason, uint64_t *seq,
    const char **rule);

/*
 * The plan with its state: {"plan", "time", "items": [...], "approvals":
 * [{"seq","time","actor"}], "state": "proposed"|"approved"|"executing"|
 * "done"|"cancelled", "executes_at"? (last approval + grace), "purged"?,
 * "skipped"? [{"id","why"}]}. cs_purge_plans: every plan, newest first.
 */
int cs_purge_plan_get(struct cs_store *st, uint64_t plan, json_t **out);
int cs_purge_plans(struct cs_store *st, json_t **out);

/*
 * Removes an item's remote objects: what custosd (or the CLI) binds to the
 * remote (cs_remote_purge_entry, custos/remote_purge.h). `entry` is the
 * item's destruction register entry (its "purge" event: which bytes went
 * and which stayed, shared). *outcome: the JSON the purge-remote event
 * records. Returns 0, or < 0 when the remote could not be asked (the item
 * is then retried at the next run; its local purge stands).
 */
typedef int (*cs_purge_remote_fn)(void *ctx, const json_t *entry, json_t **outcome);

struct cs_purge_hooks {
	cs_purge_remote_fn remote; /* NULL: no remote */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

/*
 * Executes plan `plan` if it is approved and its grace is over at
 * cs_now_ms() (else CS_EDENIED purge-plan-state, *rule). Each item is
 * checked again (a hold, an open case or an evidence use since the plan
 * skips it, named in the plan's "skipped"); then its tombstone ("purge"
 * event: id, sha256, size, cases, class, since, due, plan, approvers) is
 * written, then its blob and derivatives are removed (a blob another
 * unpurged item still refers to stays: "local": "kept, shared with ID"),
 * then its remote objects (purge-remote). A crash anywhere resumes here:
 * an item with a tombstone is never written twice. Ends with purge-done.
 */
int cs_purge_execute(struct cs_store *st, uint64_t plan, const struct cs_purge_hooks *hooks,
    const char **rule);

/*
 * The destruction register: every "purge" event, oldest first (array of
 * the events, with "seq"). It is never purged.
 */
int cs_destruction_register(struct cs_store *st, json_t **out);

#endif
