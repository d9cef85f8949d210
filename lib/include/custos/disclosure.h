/*
 * Decisions' publication records (公开) and their withdrawal (撤回): the
 * rules' disclosure part. A decision is named by its case and its decision
 * document number (决定书文号, such as 平司罚决〔2026〕3号, matched on the
 * canonical key of custos/case.h), optionally with the evidence id of the
 * decision document. Its record says when it was published and whether the
 * party is a natural person or an organisation, or why it is never
 * published (an exemption: a minor, a state or trade secret, privacy, or
 * another reason in words). A published decision must be withdrawn N years
 * after its publication (2 for a natural person, 5 for an organisation:
 * the policy's periods, recorded with the publication), or at once when the
 * decision is revoked (撤销); withdrawing it (the page is taken down) is
 * recorded too, and then nothing more is due.
 *
 * Everything is a ledger event (docs/formats.md section 5.15):
 * disclosure-publish, disclosure-exempt, disclosure-revoke and
 * disclosure-withdraw, projected into the catalog's "disclosure" table.
 * A refusal by role is CS_EDENIED with *rule CS_RULE_PUBLISHER (or
 * custos/access.h's CS_RULE_NO_ROLE); any other refusal is a negative code
 * with *why, a sentence for the operator naming the problem. Writing calls
 * need the writer handle and write with the user as actor.
 */
#ifndef CUSTOS_DISCLOSURE_H
#define CUSTOS_DISCLOSURE_H

#include <jansson.h>
#include <stdint.h>

#include "custos/access.h"
#include "custos/store.h"

#define CS_RULE_PUBLISHER "publisher-role" /* this role does not record publications */

/*
 * Calendar arithmetic is done in China Standard Time (UTC+08:00, no summer
 * time): a decision published on 1 March is due on 1 March N years later at
 * the same time of day, whatever the UTC date.
 */
#define CS_DISCLOSURE_UTC_OFFSET_MIN 480

/* The configurable part: periods in years and the roles that write. */
struct cs_disclosure_policy {
	unsigned person_years;       /* a natural person's decision: 2 */
	unsigned organisation_years; /* an organisation's: 5 */
	const char *publishers;      /* roles that publish, revoke, withdraw: "legal,admin" */
};

/* The defaults, from the source rules. */
void cs_disclosure_policy_default(struct cs_disclosure_policy *p);

/*
 * `ms` plus `years` calendar years (the same date and time of day in UTC+08:00);
 * a 29 February with no 29 February in the target year gives the 28th (the
 * last day of the month: 民法典 art. 202). CS_EFORMAT when the result is past
 * the year 9999.
 */
int cs_disclosure_add_years(int64_t ms, unsigned years, int64_t *out);

/* What a publication record says. */
struct cs_disclosure_pub {
	const char *number;   /* the case number */
	const char *decision; /* the decision document number */
	const char *item;     /* the decision document's evidence id (in the case), or NULL */
	int64_t at_ms;        /* when it was published (0: now); never in the future */
	const char *party;    /* "person" or "organisation"; NULL: the case's "party" */
	/*
	 * NULL, or why it is never published (the rules' art. 8): "minor",
	 * "state-secret", "trade-secret", "privacy", "security" (it could
	 * endanger national, public or economic security or social stability),
	 * "hinders-enforcement", or "other" (then `text` says why)
	 */
	const char *exempt;
	const char *text;
};

/*
 * Records a publication (disclosure-publish) or an exemption
 * (disclosure-exempt). A decision has one record: a second is refused.
 * CS_ENOTFOUND (unknown case, item not in it), CS_EFORMAT (bad field,
 * no party known), CS_EEXIST (recorded already), each with *why.
 */
int cs_disclosure_publish(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const struct cs_disclosure_pub *p, uint64_t *seq,
    const char **rule, const char **why);

/*
 * Records that the decision was revoked at `at_ms` (0: now) for `reason`
 * (disclosure-revoke): a published one is due for withdrawal at once.
 * CS_ENOTFOUND (no record), CS_EEXIST (revoked already), CS_EFORMAT.
 */
int cs_disclosure_revoke(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const char *number, const char *decision,
    const char *reason, int64_t at_ms, uint64_t *seq, const char **rule, const char **why);

/*
 * Records that the published decision was taken down now
 * (disclosure-withdraw). CS_ENOTFOUND (no record), CS_EFORMAT (exempt:
 * never published), CS_EEXIST (withdrawn already).
 */
int cs_disclosure_withdraw(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const char *number, const char *decision, uint64_t *seq,
    const char **rule, const char **why);

/*
 * The records (of case `number`, NULL: all) in case and decision key order:
 * an array of objects with "case", "decision", "item"?, "state"
 * ("published", "revoked", "withdrawn" or "exempt"), "published"?,
 * "party"?, "years"?, "withdraw_by"? (the withdrawal date), "why_due"?
 * ("period-over" or "revoked"), "exempt"?, "text"?, "revoked"?,
 * "revoke_reason"?, "withdrawn"?, "seq". CS_ENOTFOUND for an unknown case.
 */
int cs_disclosure_list(struct cs_store *st, const char *number, json_t **out);

/*
 * What must be withdrawn at `now_ms`: the published records not withdrawn
 * whose withdrawal date has come, oldest date first (list's objects).
 */
int cs_disclosure_due(struct cs_store *st, int64_t now_ms, json_t **out);

#endif
