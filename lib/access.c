/*
 * Who may do what, approvals and the access register (custos/access.h): the
 * rules of viewing and copying checked in one place, the events that record
 * requests, decisions, conclusive marks, accesses and searches, and their
 * projection into the catalog's "access" table (docs/formats.md sections 5
 * and 7), which lib/catalog.c calls in its write transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "custos/access.h"
#include "custos/case.h"
#include "custos/error.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

/* Requester kinds of outside requesters, and whether they bring a letter. */
static const struct {
	const char *kind;
	int letter;
} outsiders[] = {{"police", 1}, {"procuratorate", 1}, {"court", 1}, {"party", 0}, {"lawyer", 0}};

void
cs_access_policy_default(struct cs_access_policy *p)
{
	p->view_free = "legal";
	p->approver = "head";
	p->filers = "archivist,admin";
	p->markers = "legal,admin";
	p->readers = "auditor,admin,head,legal";
	p->conclusive = "party,lawyer";
}

int
cs_access_in_list(const char *list, const char *word)
{
	size_t wl = word != NULL ? strlen(word) : 0;
	const char *p = list;

	if (list == NULL || wl == 0)
		return 0;
	while (*p != '\0') {
		size_t n;
		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == wl && memcmp(p, word, n) == 0)
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

int
cs_access_time(const char *s, int64_t *ms)
{
	return s != NULL && cs__time_parse(s, ms) == 0 ? 0 : CS_EFORMAT;
}

/* "req:", "reg:" or "qry:" and the ledger index in 20 digits: the access table's keys. */
static void
akey(char buf[32], const char *prefix, uint64_t seq)
{
	snprintf(buf, 32, "%s%020" PRIu64, prefix, seq);
}

/* The actor of an event written for `who`: the user, as custosd knows him. */
static json_t *
who_json(const struct cs_access_who *who)
{
	json_t *a = json_pack("{s:s, s:s, s:I}", "kind", "user", "name",
	    who->name != NULL ? who->name : "", "uid", (json_int_t)who->uid);

	if (a != NULL && who->role != NULL &&
	    json_object_set_new(a, "role", json_string(who->role)) < 0) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

/* Sets ev's "actor" to `who` (the commit keeps an actor an event brings). */
static int
set_actor(json_t *ev, const struct cs_access_who *who)
{
	if (ev == NULL)
		return -ENOMEM;
	return json_object_set_new(ev, "actor", who_json(who)) < 0 ? -ENOMEM : 0;
}

static int
text_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && cs__text_ok(s);
}

static int
is_action(const char *a)
{
	return a != NULL &&
	    (strcmp(a, "view") == 0 || strcmp(a, "copy") == 0 || strcmp(a, "export") == 0);
}

int
cs__case_member(struct cs_store *st, MDB_txn *txn, const char *key, const char *id)
{
	size_t kl = strlen(key), il = strlen(id);
	char *m = malloc(kl + il + 2);
	MDB_val k, d;
	int rc;

	if (m == NULL)
		return -ENOMEM;
	memcpy(m, key, kl + 1);
	memcpy(m + kl + 1, id, il);
	k.mv_size = kl + 1 + il;
	k.mv_data = m;
	rc = k.mv_size <= 480 ? mdb_get(txn, st->cat.dbi[CS_DBI_MEMBERS], &k, &d) : MDB_NOTFOUND;
	free(m);
	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : CS_ESTORE;
}

static int
get_request(struct cs_store *st, MDB_txn *txn, uint64_t req, json_t **out)
{
	char k[32];
	int rc;

	akey(k, "req:", req);
	rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_ACCESS], k, strlen(k), out);
	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

int
cs_access_request(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const struct cs_access_req *r, uint64_t *seq,
    const char **rule, const char **what)
{
	json_t *ev = NULL, *rq = NULL, *items = NULL, *crec = NULL;
	char *key = NULL;
	MDB_txn *txn;
	int letter = -1, rc;

	*rule = NULL;
	*what = NULL;
	if (who->role == NULL) {
		*rule = CS_RULE_NO_ROLE;
		return CS_EDENIED;
	}
	if (!is_action(r->action))
		*what = "action";
	else if (!text_ok(r->purpose))
		*what = "purpose";
	for (size_t i = 0; r->kind != NULL && i < sizeof(outsiders) / sizeof(outsiders[0]); i++)
		if (strcmp(r->kind, outsiders[i].kind) == 0)
			letter = outsiders[i].letter;
	if (*what == NULL && r->kind != NULL && letter < 0)
		*what = "kind";
	else if (*what == NULL && r->kind != NULL && !text_ok(r->name))
		*what = "name";
	else if (*what == NULL && letter == 1 && !text_ok(r->letter))
		*what = "letter";
	else if (*what == NULL && r->kind != NULL && strcmp(r->kind, "lawyer") == 0 &&
	    !text_ok(r->licence))
		*what = "licence";
	else if (*what == NULL &&
	    ((r->letter != NULL && !text_ok(r->letter)) ||
	        (r->licence != NULL && !text_ok(r->licence))))
		*what = r->letter != NULL ? "letter" : "licence";
	if (*what != NULL)
		return CS_EFORMAT;
	if (r->kind != NULL && !cs_access_in_list(pol->filers, who->role)) {
		*rule = CS_RULE_FILER;
		return CS_EDENIED;
	}
	rc = cs_case_key(r->number, &key);
	if (rc < 0) {
		*what = "case";
		return rc;
	}
	rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		free(key);
		return rc;
	}
	rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], key, strlen(key), &crec);
	rc = rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	if (rc == CS_ENOTFOUND)
		*what = "case";
	items = json_array();
	for (size_t i = 0; rc == 0 && i < r->n_items; i++) {
		rc = cs__case_member(st, txn, key, r->items[i]);
		if (rc == CS_ENOTFOUND)
			*what = "item";
		else if (rc == 0)
			rc = json_array_append_new(items, json_string(r->items[i])) < 0 ? -ENOMEM
			                                                                : 0;
	}
	if (r->kind == NULL)
		rq = json_pack("{s:s, s:s, s:I}", "kind",
		    cs_access_in_list(pol->view_free, who->role) ? "internal-legal" : "internal",
		    "name", who->name != NULL ? who->name : "", "uid", (json_int_t)who->uid);
	else
		rq = json_pack("{s:s, s:s, s:s*, s:s*}", "kind", r->kind, "name", r->name, "letter",
		    r->letter, "licence", r->licence);
	if (rc == 0)
		ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "event", "access-request",
		    "case", r->number, "key", key, "action", r->action, "purpose", r->purpose,
		    "items", items, "requester", rq);
	if (rc == 0)
		rc = set_actor(ev, who);
	json_decref(rq);
	json_decref(items);
	json_decref(crec);
	free(key);
	return cs__write_end(st, txn, ev, rc, seq);
}

int
cs_access_decide(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, uint64_t req, int approve, int64_t until_ms,
    const char *reason, uint64_t *seq, const char **rule)
{
	json_t *ev = NULL, *rec = NULL;
	MDB_txn *txn;
	int rc;

	*rule = NULL;
	if (who->role == NULL || !cs_access_in_list(pol->approver, who->role)) {
		*rule = who->role == NULL ? CS_RULE_NO_ROLE : CS_RULE_APPROVER;
		return CS_EDENIED;
	}
	if (!approve && !text_ok(reason))
		return CS_EFORMAT;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = get_request(st, txn, req, &rec);
	if (rc == CS_ENOTFOUND) {
		*rule = CS_RULE_UNKNOWN;
		rc = CS_EDENIED;
	} else if (rc == 0 &&
	    json_integer_value(json_object_get(json_object_get(rec, "actor"), "uid")) == who->uid) {
		*rule = CS_RULE_OWN;
		rc = CS_EDENIED;
	} else if (rc == 0 &&
	    strcmp(json_string_value(json_object_get(rec, "state")), "pending") != 0) {
		*rule = CS_RULE_DECIDED;
		rc = CS_EDENIED;
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:I}", "event", approve ? "access-approve" : "access-deny",
		    "request", (json_int_t)req);
		if (ev != NULL && !approve &&
		    json_object_set_new(ev, "reason", json_string(reason)) < 0)
			rc = -ENOMEM;
		if (ev != NULL && approve && until_ms > 0) {
			char t[32];
			cs__time_format(until_ms, t, sizeof(t));
			if (json_object_set_new(ev, "until", json_string(t)) < 0)
				rc = -ENOMEM;
		}
		if (rc == 0)
			rc = set_actor(ev, who);
	}
	json_decref(rec);
	return cs__write_end(st, txn, ev, rc, seq);
}

int
cs_access_mark(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *id, int value, const char *reason, uint64_t *seq,
    const char **rule)
{
	json_t *ev = NULL, *rec = NULL;
	MDB_txn *txn;
	int rc;

	*rule = NULL;
	if (who->role == NULL || !cs_access_in_list(pol->markers, who->role)) {
		*rule = who->role == NULL ? CS_RULE_NO_ROLE : CS_RULE_MARKER;
		return CS_EDENIED;
	}
	if (!text_ok(reason) || id == NULL)
		return CS_EFORMAT;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc == 0) {
		ev = json_pack("{s:s, s:s, s:b, s:s}", "event", "conclusive", "id", id,
		    "conclusive", value, "reason", reason);
		rc = set_actor(ev, who);
	}
	json_decref(rec);
	return cs__write_end(st, txn, ev, rc, seq);
}

/* Adds the keys of the case files item record `irec` is in to `keys` (once each). */
static int
add_case_keys(json_t *keys, json_t *irec)
{
	json_t *c, *k;
	size_t i, j;

	json_array_foreach(json_object_get(irec, "cases"), i, c)
	{
		int seen = 0;
		json_array_foreach(keys, j, k)
		{
			if (json_equal(k, json_object_get(c, "key")))
				seen = 1;
		}
		if (!seen && json_is_string(json_object_get(c, "key")) &&
		    json_array_append(keys, json_object_get(c, "key")) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The refusal of item `id` under approval record `rec` (NULL: none), or
 * NULL; without an approval, the keys of the item's case files go to `keys`.
 */
static const char *
check_item(struct cs_store *st, MDB_txn *txn, const struct cs_access_policy *pol, json_t *rec,
    const char *id, json_t *keys, int *err)
{
	json_t *items = json_object_get(rec, "items"), *irec = NULL, *v;
	const char *kind = json_string_value(
	    json_object_get(json_object_get(rec, "requester"), "kind"));
	size_t i;
	int found = 0, rc;

	*err = 0;
	rc = cs__catalog_get_item(&st->cat, txn, id, &irec);
	if (rc < 0) {
		*err = rc;
		return NULL;
	}
	if (rec != NULL && json_array_size(items) > 0) {
		json_array_foreach(items, i, v)
		{
			if (strcmp(json_string_value(v), id) == 0)
				found = 1;
		}
		if (!found) {
			json_decref(irec);
			return CS_RULE_OTHER_ITEM;
		}
	} else if (rec != NULL) {
		rc = cs__case_member(st, txn, json_string_value(json_object_get(rec, "key")),
		    id);
		if (rc == CS_ENOTFOUND) {
			json_decref(irec);
			return CS_RULE_OTHER_CASE;
		}
		*err = rc;
	}
	if (rec == NULL)
		*err = add_case_keys(keys, irec);
	v = json_object_get(json_object_get(irec, "conclusive"), "value");
	if (rec != NULL && cs_access_in_list(pol->conclusive, kind) && !json_is_true(v)) {
		json_decref(irec);
		return CS_RULE_CONCLUSIVE;
	}
	json_decref(irec);
	return NULL;
}

/* The refusal of approval `rec` for this action, case and user now, or NULL. */
static const char *
check_approval(json_t *rec, const struct cs_access_who *who, const char *action, const char *key)
{
	const char *state = json_string_value(json_object_get(rec, "state"));
	const char *until = json_string_value(
	    json_object_get(json_object_get(rec, "decision"), "until"));
	int64_t until_ms = 0;

	if (strcmp(state, "pending") == 0)
		return CS_RULE_PENDING;
	if (strcmp(state, "denied") == 0)
		return CS_RULE_DENIED;
	if (strcmp(json_string_value(json_object_get(rec, "action")), action) != 0)
		return CS_RULE_OTHER_ACTION;
	if (json_integer_value(json_object_get(json_object_get(rec, "actor"), "uid")) != who->uid)
		return CS_RULE_NOT_YOURS;
	if (key != NULL && strcmp(json_string_value(json_object_get(rec, "key")), key) != 0)
		return CS_RULE_OTHER_CASE;
	if (until != NULL && (cs__time_parse(until, &until_ms) < 0 || cs__now_ms() >= until_ms))
		return CS_RULE_EXPIRED;
	return NULL;
}

/* cs_access_grant; `derivative` (may be NULL): the kind of derivative fetched, in the entry. */
static int
grant(struct cs_store *st, const struct cs_access_policy *pol, const struct cs_access_who *who,
    const char *action, const char *number, const char *const *ids, size_t n, int64_t approval,
    const char *purpose, const char *derivative, uint64_t *seq, const char **rule,
    const char **item)
{
	json_t *ev = NULL, *rec = NULL, *items = NULL, *rq = NULL, *keys = NULL;
	char *key = NULL;
	MDB_txn *txn;
	int rc;

	*rule = NULL;
	*item = NULL;
	if (!is_action(action) || (n == 0 && number == NULL))
		return CS_EFORMAT;
	if (who->role == NULL)
		*rule = CS_RULE_NO_ROLE;
	else if (approval < 0 && strcmp(action, "view") != 0)
		*rule = strcmp(action, "copy") == 0 ? CS_RULE_COPY_APPROVAL
		                                    : CS_RULE_EXPORT_APPROVAL;
	else if (approval < 0 && !cs_access_in_list(pol->view_free, who->role))
		*rule = CS_RULE_VIEW_APPROVAL;
	else if (approval < 0 && !text_ok(purpose))
		*rule = CS_RULE_PURPOSE;
	if (*rule != NULL)
		return CS_EDENIED;
	if (number != NULL && (rc = cs_case_key(number, &key)) < 0)
		return rc;
	rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		free(key);
		return rc;
	}
	if (approval >= 0) {
		rc = get_request(st, txn, (uint64_t)approval, &rec);
		if (rc == CS_ENOTFOUND) {
			*rule = CS_RULE_UNKNOWN;
			rc = CS_EDENIED;
		} else if (rc == 0 && (*rule = check_approval(rec, who, action, key)) != NULL) {
			rc = CS_EDENIED;
		}
	}
	items = json_array();
	keys = json_array();
	for (size_t i = 0; rc == 0 && i < n; i++) {
		*rule = check_item(st, txn, pol, rec, ids[i], keys, &rc);
		if (rc == CS_ENOTFOUND || rc == -ENOENT)
			*item = ids[i];
		if (*rule != NULL) {
			*item = ids[i];
			rc = CS_EDENIED;
		} else if (rc == 0) {
			rc = json_array_append_new(items, json_string(ids[i])) < 0 ? -ENOMEM : 0;
		}
	}
	if (rc == 0 && rec != NULL) {
		json_t *dec = json_object_get(rec, "decision");
		ev = json_pack("{s:s, s:s, s:O, s:I, s:O, s:O, s:O, s:O, s:O}", "event", "access",
		    "action", action, "items", items, "approval", (json_int_t)approval, "approver",
		    json_object_get(dec, "actor"), "requester", json_object_get(rec, "requester"),
		    "purpose", json_object_get(rec, "purpose"), "case",
		    json_object_get(rec, "case"), "key", json_object_get(rec, "key"));
	} else if (rc == 0) {
		rq = json_pack("{s:s, s:s, s:I}", "kind", "internal-legal", "name",
		    who->name != NULL ? who->name : "", "uid", (json_int_t)who->uid);
		ev = json_pack("{s:s, s:s, s:O, s:n, s:n, s:O, s:s, s:s*, s:s*, s:O}", "event",
		    "access", "action", action, "items", items, "approval", "approver", "requester",
		    rq, "purpose", purpose, "case", number, "key", key, "cases", keys);
	}
	if (rc == 0 && derivative != NULL &&
	    json_object_set_new(ev, "derivative", json_string(derivative)) < 0)
		rc = -ENOMEM;
	if (rc == 0)
		rc = set_actor(ev, who);
	json_decref(rq);
	json_decref(items);
	json_decref(keys);
	json_decref(rec);
	free(key);
	return cs__write_end(st, txn, ev, rc, seq);
}

int
cs_access_grant(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *action, const char *number, const char *const *ids,
    size_t n, int64_t approval, const char *purpose, uint64_t *seq, const char **rule,
    const char **item)
{
	return grant(st, pol, who, action, number, ids, n, approval, purpose, NULL, seq, rule,
	    item);
}

int
cs_access_grant_derivative(struct cs_store *st, const struct cs_access_policy *pol,
    const struct cs_access_who *who, const char *id, const char *kind, int64_t approval,
    const char *purpose, uint64_t *seq, const char **rule, const char **item)
{
	const char *action;

	*rule = NULL;
	*item = NULL;
	if (kind == NULL || id == NULL)
		return CS_EFORMAT;
	if (strcmp(kind, "access") == 0 || strcmp(kind, "poster") == 0)
		action = "view";
	else if (strcmp(kind, "preservation") == 0)
		action = "copy";
	else
		return CS_EFORMAT;
	return grant(st, pol, who, action, NULL, &id, 1, approval, purpose, kind, seq, rule, item);
}

int
cs_access_open_blob(struct cs_store *st, const char *id, int *fd, uint64_t *size, char sha[65])
{
	char path[CS_BLOB_PATH_MAX];
	json_t *rec = NULL;
	const char *hex;
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	hex = json_string_value(json_object_get(rec, "sha256"));
	if (hex == NULL || strlen(hex) != 64) {
		json_decref(rec);
		return CS_ESTORE;
	}
	memcpy(sha, hex, 65);
	*size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
	json_decref(rec);
	cs__blob_path(sha, path, sizeof(path));
	*fd = openat(st->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return *fd >= 0 ? 0 : -errno;
}

int
cs_access_log_search(struct cs_store *st, const struct cs_access_who *who, const json_t *query,
    size_t found, uint64_t *seq)
{
	json_t *ev = json_pack("{s:s, s:O, s:I}", "event", "search", "query", query, "found",
	    (json_int_t)found);
	MDB_txn *txn;
	int rc = set_actor(ev, who);

	if (rc < 0) {
		json_decref(ev);
		return rc;
	}
	rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		json_decref(ev);
		return rc;
	}
	return cs__write_end(st, txn, ev, 0, seq);
}

int
cs_access_request_get(struct cs_store *st, uint64_t req, json_t **out)
{
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = get_request(st, txn, req, out);
	mdb_txn_abort(txn);
	return rc;
}

struct reg_ctx {
	const char *key;
	int64_t from, to;
	json_t *out;
};

static int
reg_add(void *ctx, const char *k, size_t kl, json_t *val)
{
	struct reg_ctx *r = ctx;
	const char *ck = json_string_value(json_object_get(val, "key"));
	int64_t ms = 0;
	json_t *c;
	size_t i;
	int match = r->key == NULL || (ck != NULL && strcmp(ck, r->key) == 0);

	(void)k;
	(void)kl;
	/* a view without approval names the case files of its items in "cases" */
	json_array_foreach(json_object_get(val, "cases"), i, c)
	{
		if (!match && json_is_string(c) && strcmp(json_string_value(c), r->key) == 0)
			match = 1;
	}
	if (!match)
		return 0;
	if (cs__time_parse(json_string_value(json_object_get(val, "time")), &ms) < 0)
		return CS_ESTORE;
	if ((r->from > 0 && ms < r->from) || (r->to > 0 && ms >= r->to))
		return 0;
	return json_array_append(r->out, val) < 0 ? -ENOMEM : 0;
}

int
cs_access_register(struct cs_store *st, const char *number, int64_t from_ms, int64_t to_ms,
    int searches, json_t **out)
{
	struct reg_ctx r = {NULL, from_ms, to_ms, json_array()};
	char *key = NULL;
	MDB_txn *txn;
	int rc = r.out == NULL ? -ENOMEM : 0;

	if (rc == 0 && number != NULL)
		rc = cs_case_key(number, &key);
	r.key = key;
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0) {
		rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_ACCESS], searches ? "qry:" : "reg:", 4,
		    reg_add, &r);
		mdb_txn_abort(txn);
	}
	free(key);
	if (rc < 0) {
		json_decref(r.out);
		return rc;
	}
	*out = r.out;
	return 0;
}

/* ---- projection (lib/catalog.c's apply calls it, in its write transaction) ---- */

#define JOK(x) ((x) < 0 ? ENOMEM : 0)

int
cs__access_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type, uint64_t seq,
    const char **why)
{
	MDB_dbi dbi = c->dbi[CS_DBI_ACCESS];
	json_t *rec = NULL, *dec;
	char k[32];
	int rc;

	if (strcmp(type, "access-request") == 0) {
		if (json_string_value(json_object_get(ev, "key")) == NULL ||
		    json_string_value(json_object_get(ev, "action")) == NULL) {
			*why = "access-request event lacks its case key or action";
			return -1;
		}
		rec = json_deep_copy(ev);
		rc = rec == NULL ? ENOMEM
		                 : JOK(json_object_set_new(rec, "state", json_string("pending")));
		akey(k, "req:", seq);
	} else if (strcmp(type, "access-approve") == 0 || strcmp(type, "access-deny") == 0) {
		json_int_t req = json_integer_value(json_object_get(ev, "request"));
		akey(k, "req:", (uint64_t)req);
		rc = cs__cat_get(txn, dbi, k, strlen(k), &rec);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 &&
		        strcmp(json_string_value(json_object_get(rec, "state")), "pending") != 0)) {
			json_decref(rec);
			*why = "an approval or denial names no pending request";
			return -1;
		}
		dec = json_pack("{s:I, s:O*, s:O*, s:O*, s:O*}", "seq", (json_int_t)seq, "time",
		    json_object_get(ev, "time"), "actor", json_object_get(ev, "actor"), "until",
		    json_object_get(ev, "until"), "reason", json_object_get(ev, "reason"));
		if (rc == 0)
			rc = dec == NULL ? ENOMEM : JOK(json_object_set_new(rec, "decision", dec));
		else
			json_decref(dec);
		if (rc == 0)
			rc = JOK(json_object_set_new(rec, "state",
			    json_string(type[7] == 'a' ? "approved" : "denied")));
	} else {
		rec = json_incref(ev);
		akey(k, strcmp(type, "access") == 0 ? "reg:" : "qry:", seq);
		rc = 0;
	}
	if (rc == 0)
		rc = cs__cat_put(txn, dbi, k, strlen(k), rec);
	json_decref(rec);
	return rc;
}
