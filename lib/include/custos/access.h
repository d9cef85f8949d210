/*
 * Who may do what with evidence, and the access register (查阅登记簿): the
 * rules of the source rules about viewing (查阅) and copying (复制), as one
 * decision every front end asks for (custosd's control socket, the export).
 *
 * Everything here is a ledger event (docs/formats.md section 5):
 * access-request, access-approve, access-deny (approvals), access (one entry
 * of the register: a view, copy or export that was let through), conclusive
 * (an item marked as one a party or lawyer may receive) and search (a
 * metadata query, the register's lighter form). The catalog's "access"
 * table holds their projection: requests with their decision, the register
 * and the searches.
 *
 * A refusal is CS_EDENIED with *rule set to a stable rule name
 * (CS_RULE_* below); the names are part of the interface (--json, docs).
 * Writing calls need the writer handle; they write with the user as actor.
 */
#ifndef CUSTOS_ACCESS_H
#define CUSTOS_ACCESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custos/store.h"

/* The rules a refusal names. */
#define CS_RULE_NO_ROLE "no-role"                       /* the user has no role in the config */
#define CS_RULE_VIEW_APPROVAL "view-needs-approval"     /* this role views only with an approval */
#define CS_RULE_COPY_APPROVAL "copy-needs-approval"     /* a copy always needs an approval */
#define CS_RULE_EXPORT_APPROVAL "export-needs-approval" /* so does an export */
#define CS_RULE_PURPOSE "purpose-required"              /* no access without a purpose */
#define CS_RULE_UNKNOWN "approval-unknown"              /* no such request */
#define CS_RULE_PENDING "approval-pending"              /* not decided yet */
#define CS_RULE_DENIED "approval-denied"                /* the request was denied */
#define CS_RULE_OTHER_ACTION "approval-other-action"    /* approved for another action */
#define CS_RULE_OTHER_CASE "approval-other-case"        /* for another case (item not in it) */
#define CS_RULE_OTHER_ITEM "approval-other-item"        /* the item is not one it names */
#define CS_RULE_EXPIRED "approval-expired"              /* its period is over (or not begun) */
#define CS_RULE_NOT_YOURS "approval-not-yours"          /* filed by another user */
#define CS_RULE_CONCLUSIVE "conclusive-only"  /* parties and lawyers: conclusive items only */
#define CS_RULE_APPROVER "approver-role"      /* only the approving role decides */
#define CS_RULE_OWN "own-request"             /* nobody decides his own request */
#define CS_RULE_DECIDED "request-decided"     /* approved or denied already */
#define CS_RULE_FILER "file-for-outside-role" /* this role does not file for outsiders */
#define CS_RULE_MARKER "mark-conclusive-role" /* this role does not mark items */
#define CS_RULE_READER "register-role"        /* this role does not read the register */

/* The configurable part of the rules: comma-separated role and kind lists. */
struct cs_access_policy {
	const char *view_free;  /* roles that view without an approval: "legal" */
	const char *approver;   /* the role that approves and denies: "head" */
	const char *filers;     /* roles that file for outside requesters: "archivist,admin" */
	const char *markers;    /* roles that mark items conclusive: "legal,admin" */
	const char *readers;    /* roles that read the register: "auditor,admin,head,legal" */
	const char *conclusive; /* requester kinds limited to conclusive items: "party,lawyer" */
};

/* The defaults, from the source rules. */
void cs_access_policy_default(struct cs_access_policy *p);
/* 1 if `word` is one of the comma-separated `list` (spaces around commas allowed). */
int cs_access_in_list(const char *list, const char *word);

/* An RFC 3339 time (--until, --from, --to) as ms since the epoch; CS_EFORMAT if not one. */
int cs_access_time(const char *s, int64_t *ms);

/* The user asking: his uid, name and role (NULL: none). */
struct cs_access_who {
	long uid;
	const char *name;
	const char *role;
};

/* What a request asks; kind NULL: for the user himself (internal). */
struct cs_access_req {
	const char *number; /* case number */
	const char *action; /* "view", "copy" or "export" */
	const char *purpose;
	const char *const *items; /* n_items ids (members of the case); 0: the whole case */
	size_t n_items;
	const char *kind;    /* police, procuratorate, court, party, lawyer (outsiders) */
	const char *name;    /* the outside requester's name */
	const char *letter;  /* the agency's letter reference (police, procuratorate, court) */
	const char *licence; /* the lawyer's licence number */
};

/*
 * Files a request (access-request). CS_EDENIED (*rule) when the role may not
 * file it; CS_EFORMAT with *what naming the field that is missing or bad;
 * CS_ENOTFOUND (*what "case" or "item") for an unknown case or an item that
 * is not a member of it. *seq: the request's number (its ledger index).
 */
int cs_access_request(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const struct cs_access_req *r, uint64_t *seq,
    const char **rule, const char **what);

/*
 * Approves (until_ms > 0: valid until then; 0: no end) or denies (reason
 * required) request `req`. CS_EDENIED: approver-role, own-request,
 * request-decided, approval-unknown.
 */
int cs_access_decide(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, uint64_t req, int approve, int64_t until_ms,
    const char *reason, uint64_t *seq, const char **rule);

/*
 * Marks item `id` conclusive (value 1) or not (0), with a reason.
 * CS_EDENIED: mark-conclusive-role.
 */
int cs_access_mark(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *id, int value, const char *reason, uint64_t *seq,
    const char **rule);

/*
 * The one gate: may `who` do `action` to items ids[0..n) (of case `number`,
 * which may be NULL for a view or copy) under approval `approval` (< 0:
 * none)? If so, writes the register entry (event "access": requester, kind,
 * purpose, approval and approver, items, action, case) and returns 0 with
 * *seq its ledger index; the check and the entry are one step under the
 * write lock. Else CS_EDENIED with *rule and *item (the item refused, or
 * NULL). `purpose` is needed when there is no approval (the approval's
 * request carries its own). Export calls it with action "export", the
 * case's number and every item it writes.
 */
int cs_access_grant(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *action, const char *number, const char *const *ids,
    size_t n, int64_t approval, const char *purpose, uint64_t *seq, const char **rule,
    const char **item);

/*
 * cs_access_grant for fetching a derivative of item `id` (`kind`: "access",
 * "poster", "preservation"; custos/media.h): the access copy and the poster
 * are for viewing (action "view"), a preservation copy is a copy of the
 * evidence (action "copy"); the register entry names the kind
 * ("derivative"). CS_EFORMAT for another kind. Open it with
 * cs_media_derivative_open.
 */
int cs_access_grant_derivative(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *id, const char *kind, int64_t approval,
    const char *purpose, uint64_t *seq, const char **rule, const char **item);

/*
 * Opens the stored bytes of item `id` for reading (*fd, O_CLOEXEC) with their
 * size and digest: for a copy that cs_access_grant let through. CS_ENOTFOUND.
 */
int cs_access_open_blob(struct cs_store *st, const char *id, int *fd, uint64_t *size, char sha[65]);

/* Logs a metadata query (event "search": who, the query's terms, how many found). */
int cs_access_log_search(struct cs_store *st, const struct cs_access_who *who, const json_t *query,
    size_t found, uint64_t *seq);

/* The request `req` with its state and decision. CS_ENOTFOUND. */
int cs_access_request_get(struct cs_store *st, uint64_t req, json_t **out);

/*
 * The register: entries (the "access" events) in ledger order, of case
 * `number` if not NULL, with from_ms <= time < to_ms (0: no bound). With
 * `searches`, the search events instead. *out: an array of events.
 */
int cs_access_register(struct cs_store *st, const char *number, int64_t from_ms, int64_t to_ms,
    int searches, json_t **out);

#endif
