/*
 * Purge plans and their execution, and the destruction register
 * (custos/retention.h; invariant 5 of docs/architecture.md: a purge removes
 * bytes, never history). A plan ("purge-plan") lists the items due; it is
 * approved by different users ("purge-approve"), can be cancelled
 * ("purge-cancel") until it runs, and runs once its grace period is over:
 * each item's tombstone ("purge", the register's entry) is committed before
 * its bytes go, then what became of its remote objects ("purge-remote"),
 * then "purge-done". A crash anywhere resumes from the ledger: a tombstone
 * is never written twice, the bytes it names are removed if still there.
 *
 * The projection of these events (cs__purge_project, called by
 * lib/catalog.c's apply in its write transaction) keeps the plans in the
 * purge_plans table, the register in the destruction table, and marks the
 * items: "plan": N while in a live plan, "purged": {seq, time, plan} after.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/query.h"
#include "custos/retention.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

#define JOK(x) ((x) < 0 ? ENOMEM : 0)

/* A plan's or register entry's key: the ledger index in 20 digits. */
static void
pkey(char buf[24], uint64_t seq)
{
	snprintf(buf, 24, "%020" PRIu64, seq);
}

static int
from_cat(int rc)
{
	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

static int
get_plan(struct cs__catalog *c, MDB_txn *txn, uint64_t plan, json_t **out)
{
	char k[24];

	pkey(k, plan);
	return cs__cat_get(txn, c->dbi[CS_DBI_PURGE_PLANS], k, strlen(k), out);
}

static const char *
state_of(json_t *p)
{
	const char *s = json_string_value(json_object_get(p, "state"));

	return s != NULL ? s : "";
}

static int
text_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && cs__text_ok(s);
}

/* The actor of an event written for `who` (as lib/access.c writes it). */
static int
set_who(json_t *ev, const struct cs_access_who *who)
{
	json_t *a = json_pack("{s:s, s:s, s:I}", "kind", "user", "name",
	    who->name != NULL ? who->name : "", "uid", (json_int_t)who->uid);

	if (a != NULL && who->role != NULL &&
	    json_object_set_new(a, "role", json_string(who->role)) < 0) {
		json_decref(a);
		a = NULL;
	}
	if (ev == NULL || a == NULL) {
		json_decref(a);
		return -ENOMEM;
	}
	return json_object_set_new(ev, "actor", a) < 0 ? -ENOMEM : 0;
}

/* ---- plans, approvals, cancellation ---- */

int
cs_purge_plan(struct cs_store *st, const struct cs_retention_policy *pol, uint64_t *plan)
{
	json_t *out = NULL, *ev = NULL, *due;
	MDB_txn *txn;
	uint64_t seq = 0;
	int rc;

	/* computed under the write lock: no other plan takes the same items meanwhile */
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = cs_retention_compute(st, pol, cs_now_ms(), &out);
	due = json_object_get(out, "due");
	if (rc == 0 && json_array_size(due) == 0) {
		json_decref(out);
		(void)cs__write_end(st, txn, NULL, 1, NULL); /* nothing to write */
		*plan = 0;
		return 0;
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:O, s:I, s:I, s:s}", "event", "purge-plan", "items", due,
		    "approvals_needed", (json_int_t)pol->approvals, "grace_ms",
		    (json_int_t)pol->grace_ms, "approvers",
		    pol->approvers != NULL ? pol->approvers : "");
		rc = ev == NULL ? -ENOMEM : 0;
	}
	json_decref(out);
	rc = cs__write_end(st, txn, ev, rc, &seq);
	if (rc == 0)
		*plan = seq;
	return rc;
}

/* The plan's refusal for an approval or cancellation by `who`, or NULL. */
static int
check_decider(const struct cs_retention_policy *pol, const struct cs_access_who *who,
    const char **rule)
{
	*rule = NULL;
	if (who->role == NULL || !cs_access_in_list(pol->approvers, who->role)) {
		*rule = CS_RULE_PURGE_APPROVER;
		return CS_EDENIED;
	}
	return 0;
}

int
cs_purge_approve(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t plan, uint64_t *seq, const char **rule)
{
	json_t *p = NULL, *ev = NULL, *a;
	MDB_txn *txn;
	size_t i;
	int rc = check_decider(pol, who, rule);

	if (rc < 0)
		return rc;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = from_cat(get_plan(&st->cat, txn, plan, &p));
	if (rc == 0 && strcmp(state_of(p), "proposed") != 0) {
		*rule = CS_RULE_PLAN_STATE;
		rc = CS_EDENIED;
	}
	json_array_foreach(json_object_get(p, "approvals"), i, a)
	{
		json_t *uid = json_object_get(json_object_get(a, "actor"), "uid");
		if (rc == 0 && json_is_integer(uid) && json_integer_value(uid) == who->uid) {
			*rule = CS_RULE_SAME_APPROVER;
			rc = CS_EDENIED;
		}
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:I}", "event", "purge-approve", "plan", (json_int_t)plan);
		rc = set_who(ev, who);
	}
	json_decref(p);
	return cs__write_end(st, txn, ev, rc, seq);
}

int
cs_purge_cancel(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t plan, const char *reason, uint64_t *seq,
    const char **rule)
{
	json_t *p = NULL, *ev = NULL;
	MDB_txn *txn;
	const char *s;
	int rc = check_decider(pol, who, rule);

	if (rc < 0)
		return rc;
	if (!text_ok(reason))
		return CS_EFORMAT;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = from_cat(get_plan(&st->cat, txn, plan, &p));
	s = state_of(p);
	if (rc == 0 && strcmp(s, "proposed") != 0 && strcmp(s, "approved") != 0) {
		*rule = CS_RULE_PLAN_STATE;
		rc = CS_EDENIED;
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:I, s:s}", "event", "purge-cancel", "plan",
		    (json_int_t)plan, "reason", reason);
		rc = set_who(ev, who);
	}
	json_decref(p);
	return cs__write_end(st, txn, ev, rc, seq);
}

int
cs_purge_plan_get(struct cs_store *st, uint64_t plan, json_t **out)
{
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = from_cat(get_plan(&st->cat, txn, plan, out));
	mdb_txn_abort(txn);
	return rc;
}

static int
add_val(void *ctx, const char *k, size_t kl, json_t *val)
{
	(void)k;
	(void)kl;
	return json_array_append(ctx, val) < 0 ? -ENOMEM : 0;
}

/* Every value of table `dbi` in key order into *out. */
static int
table_list(struct cs_store *st, int dbi, json_t **out)
{
	json_t *a = json_array();
	MDB_txn *txn;
	int rc = a == NULL ? -ENOMEM : cs__catalog_rtxn(&st->cat, &txn);

	if (rc == 0) {
		rc = cs__cat_each(txn, st->cat.dbi[dbi], "", 0, add_val, a);
		mdb_txn_abort(txn);
	}
	if (rc < 0) {
		json_decref(a);
		return rc;
	}
	*out = a;
	return 0;
}

int
cs_purge_plans(struct cs_store *st, json_t **out)
{
	json_t *a = NULL, *r;
	size_t n;
	int rc = table_list(st, CS_DBI_PURGE_PLANS, &a);

	if (rc < 0)
		return rc;
	r = json_array();
	n = json_array_size(a);
	for (size_t i = n; r != NULL && i > 0; i--)
		if (json_array_append(r, json_array_get(a, i - 1)) < 0) {
			json_decref(r);
			r = NULL;
		}
	json_decref(a);
	if (r == NULL)
		return -ENOMEM;
	*out = r;
	return 0;
}

int
cs_destruction_register(struct cs_store *st, json_t **out)
{
	return table_list(st, CS_DBI_DESTRUCTION, out);
}

/* ---- execution ---- */

/* 0 if the plan may run now (approved and its grace over, or already running). */
static int
may_run(json_t *p, const char **rule)
{
	const char *s = state_of(p), *at = json_string_value(json_object_get(p, "executes_at"));
	int64_t ms;

	if (strcmp(s, "executing") == 0)
		return 0;
	if (strcmp(s, "approved") == 0 && at != NULL && cs__time_parse(at, &ms) == 0 &&
	    cs_now_ms() >= ms)
		return 0;
	*rule = CS_RULE_PLAN_STATE;
	return CS_EDENIED;
}

/* A malloc'd sentence: `head` then `arg`. */
static char *
say(const char *head, const char *arg)
{
	size_t n = strlen(head) + strlen(arg) + 1;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s%s", head, arg);
	return s;
}

/*
 * Why item `id` (record `rec`) may no longer be purged now that its plan
 * runs: a case of it open (again), a hold in force on it or on a case of it
 * (`holds`: cs_hold_list's, each with the case's "key" added), its use as
 * evidence in a decision. *why NULL: it may go; else malloc'd.
 */
static int
recheck(struct cs_store *st, MDB_txn *txn, json_t *holds, const char *id, json_t *rec,
    char **why)
{
	json_t *m, *h, *use;
	size_t i, j;

	*why = NULL;
	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		const char *key = json_string_value(json_object_get(m, "key")), *state;
		const char *num = json_string_value(json_object_get(m, "case"));
		json_t *crec = NULL;
		int rc;

		if (key == NULL)
			continue;
		rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], key, strlen(key), &crec);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return from_cat(rc);
		state = json_string_value(json_object_get(crec, "state"));
		if (rc == 0 && (state == NULL || strcmp(state, "open") == 0))
			*why = say("its case is open: ", num != NULL ? num : key);
		json_array_foreach(holds, j, h)
		{
			const char *hk = json_string_value(json_object_get(h, "key"));
			if (*why == NULL && hk != NULL && strcmp(hk, key) == 0)
				*why = say("held by a hold on case ", num != NULL ? num : key);
		}
		json_decref(crec);
		if (*why != NULL)
			return 0;
	}
	json_array_foreach(holds, j, h)
	{
		const char *hid = json_string_value(json_object_get(h, "id"));
		if (*why == NULL && hid != NULL && strcmp(hid, id) == 0)
			*why = say("held by a hold on item ", id);
	}
	use = json_array_get(json_object_get(rec, "evidence_use"), 0);
	if (*why == NULL && use != NULL)
		*why = say("used as evidence in a decision of case ",
		    json_string_value(json_object_get(use, "case")) != NULL ?
		        json_string_value(json_object_get(use, "case")) :
		        "?");
	return 0;
}

/* The holds in force, each with its case's key (for recheck). */
static int
holds_now(struct cs_store *st, json_t **out)
{
	json_t *h;
	size_t i;
	int rc = cs_hold_list(st, 0, out);

	json_array_foreach(rc == 0 ? *out : NULL, i, h)
	{
		const char *num = json_string_value(json_object_get(h, "case"));
		char *key = NULL;
		if (rc == 0 && num != NULL && cs_case_key(num, &key) == 0)
			rc = json_object_set_new(h, "key", json_string(key)) < 0 ? -ENOMEM : 0;
		free(key);
	}
	if (rc < 0 && rc != CS_ENOTFOUND) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* The other unpurged items' derivative blobs: sha256 -> an id, for the shared-bytes rule. */
struct shared_ctx {
	json_t *map;  /* sha256 -> id */
	json_t *skip; /* ids being purged now: their references do not keep bytes */
};

static int
shared_add(void *ctx, const char *id, json_t *rec)
{
	struct shared_ctx *s = ctx;
	json_t *d;
	size_t i;

	if (json_object_get(rec, "purged") != NULL || json_object_get(s->skip, id) != NULL)
		return 0;
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *sha = json_string_value(json_object_get(d, "sha256"));
		if (sha != NULL && json_object_get(s->map, sha) == NULL &&
		    json_object_set_new(s->map, sha, json_string(id)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The tombstone of item `id` (record `rec`, plan entry `it`): what the
 * register keeps, and what becomes of its local bytes.
 */
static json_t *
tombstone(uint64_t plan, json_t *p, json_t *it, const char *id, json_t *rec, json_t *shared)
{
	json_t *ev, *approvers = json_array(), *ders = json_array(), *a, *d;
	size_t i;
	int bad = approvers == NULL || ders == NULL;

	json_array_foreach(json_object_get(p, "approvals"), i, a)
		bad |= json_array_append(approvers, json_object_get(a, "actor")) < 0;
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *sha = json_string_value(json_object_get(d, "sha256"));
		const char *other = sha != NULL ? json_string_value(json_object_get(shared, sha))
		                                : NULL;
		char local[600];
		if (sha == NULL)
			continue;
		if (other != NULL)
			snprintf(local, sizeof(local), "kept, shared with %s", other);
		bad |= json_array_append_new(ders,
		           json_pack("{s:O*, s:s, s:s}", "kind", json_object_get(d, "kind"),
		               "sha256", sha, "local",
		               other != NULL ? local : "removed")) < 0;
	}
	/* the blob itself is this item's alone (one item per digest): it goes */
	ev = json_pack("{s:s, s:I, s:s, s:O, s:O, s:O*, s:O*, s:O*, s:O*, s:O*, s:O, s:O, s:s}",
	    "event", "purge", "plan", (json_int_t)plan, "id", id, "sha256",
	    json_object_get(rec, "sha256"), "size", json_object_get(rec, "size"), "cases",
	    json_object_get(it, "cases"), "class", json_object_get(it, "class"), "from",
	    json_object_get(it, "from"), "since", json_object_get(it, "since"), "due",
	    json_object_get(it, "due"), "approvers", approvers, "derivatives", ders, "local",
	    "removed");
	json_decref(approvers);
	json_decref(ders);
	if (bad) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}

/* 1 if the record is purged now, by plan `plan` (not evidence again since). */
static int
purged_now_by(const json_t *rec, uint64_t plan)
{
	json_t *p = json_object_get(json_object_get(rec, "purged"), "plan");

	return p != NULL && (uint64_t)json_integer_value(p) == plan;
}

/* 1 if the record's purge history (bytes that came back) names plan `plan`. */
static int
purged_by(const json_t *rec, uint64_t plan)
{
	json_t *p;
	size_t i;

	json_array_foreach(json_object_get(rec, "purges"), i, p)
		if ((uint64_t)json_integer_value(json_object_get(p, "plan")) == plan)
			return 1;
	return 0;
}

/*
 * Phase one, under the write lock: every item of the plan not purged yet is
 * checked again and gets its tombstone, committed before any byte goes.
 * The items that may no longer go are put in `skipped`.
 */
static int
write_tombstones(struct cs_store *st, uint64_t plan, json_t *skipped, const char **rule)
{
	struct shared_ctx sh = {json_object(), json_object()};
	json_t *p = NULL, *now = NULL, *evs = json_array(), *it, *rec;
	MDB_txn *txn;
	size_t i;
	int rc;

	rc = sh.map == NULL || sh.skip == NULL || evs == NULL ? -ENOMEM : 0;
	if (rc == 0)
		rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		json_decref(sh.map);
		json_decref(sh.skip);
		json_decref(evs);
		return rc;
	}
	rc = from_cat(get_plan(&st->cat, txn, plan, &p));
	if (rc == 0)
		rc = may_run(p, rule);
	if (rc == 0)
		rc = holds_now(st, &now);
	json_array_foreach(json_object_get(p, "items"), i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		char *why = NULL;
		if (rc < 0 || id == NULL)
			break;
		rec = NULL;
		rc = from_cat(cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), &rec));
		if (rc == CS_ENOTFOUND) {
			rc = 0;
			why = strdup("no such item");
		} else if (rc == 0 &&
		    (json_object_get(rec, "purged") != NULL || purged_by(rec, plan))) {
			json_decref(rec);
			continue; /* its tombstone is written: never twice (nor after a return) */
		} else if (rc == 0) {
			rc = recheck(st, txn, now, id, rec, &why);
		}
		if (rc == 0 && why != NULL)
			rc = json_array_append_new(skipped,
			         json_pack("{s:s, s:s}", "id", id, "why", why)) < 0
			    ? -ENOMEM
			    : 0;
		else if (rc == 0)
			rc = json_object_set_new(sh.skip, id, json_true()) < 0 ? -ENOMEM : 0;
		free(why);
		json_decref(rec);
	}
	if (rc == 0 && json_object_size(sh.skip) > 0)
		rc = cs__catalog_each_item(&st->cat, txn, shared_add, &sh);
	json_array_foreach(json_object_get(p, "items"), i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		json_t *ev;
		if (rc < 0 || id == NULL || json_object_get(sh.skip, id) == NULL)
			continue;
		rec = NULL;
		rc = from_cat(cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), &rec));
		ev = rc == 0 ? tombstone(plan, p, it, id, rec, sh.map) : NULL;
		if (rc == 0)
			rc = ev == NULL || json_array_append_new(evs, ev) < 0 ? -ENOMEM : 0;
		json_decref(rec);
	}
	mdb_txn_abort(txn);
	for (size_t off = 0; rc == 0 && off < json_array_size(evs); off += CS__BATCH_MAX) {
		size_t n = json_array_size(evs) - off;
		json_t *batch[CS__COMMIT_MAX], **v = batch;
		uint64_t seq;
		if (n > CS__BATCH_MAX)
			n = CS__BATCH_MAX;
		if (n > CS__COMMIT_MAX && (v = malloc(n * sizeof(*v))) == NULL) {
			rc = -ENOMEM;
			break;
		}
		for (size_t j = 0; j < n; j++)
			v[j] = json_array_get(evs, off + j);
		rc = cs__store_commit(st, v, n, &seq);
		if (v != batch)
			free(v);
		CS_FAILPOINT("purge-tombstones");
	}
	pthread_mutex_unlock(&st->wlock);
	json_decref(p);
	json_decref(now);
	json_decref(sh.map);
	json_decref(sh.skip);
	json_decref(evs);
	return rc;
}

/* Unlinks `path` (relative to the root) if there, and makes its removal durable. */
static int
remove_blob(struct cs_store *st, const char *path)
{
	char dir[CS_BLOB_PATH_MAX + 16];
	char *slash;
	int fd, rc = 0;

	if (unlinkat(st->rootfd, path, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	fd = openat(st->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Phase two: the bytes each tombstone of the plan says are to go, if still there. */
static int
remove_bytes(struct cs_store *st, uint64_t plan, const struct cs_purge_hooks *hooks)
{
	json_t *reg = NULL, *e, *d;
	uint64_t total = 0, done = 0;
	size_t i, j;
	int rc = cs_destruction_register(st, &reg);

	json_array_foreach(reg, i, e)
		total += (uint64_t)json_integer_value(json_object_get(e, "plan")) == plan;
	json_array_foreach(reg, i, e)
	{
		const char *sha = json_string_value(json_object_get(e, "sha256"));
		const char *local = json_string_value(json_object_get(e, "local"));
		char path[CS_BLOB_PATH_MAX + 16];

		const char *id = json_string_value(json_object_get(e, "id"));
		json_t *rec = NULL;
		MDB_txn *txn = NULL;

		if (rc < 0 || id == NULL ||
		    (uint64_t)json_integer_value(json_object_get(e, "plan")) != plan)
			continue;
		/*
		 * Under the write lock, and only while the item is still purged by
		 * this plan: its bytes may have come in again since its tombstone
		 * (a sighting makes it evidence again), and an ingest that found
		 * them stored checks under this lock that they still are.
		 */
		rc = cs__write_begin(st, &txn);
		if (rc < 0)
			break;
		rc = from_cat(cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), &rec));
		if (rc == 0 && !purged_now_by(rec, plan)) {
			json_decref(rec);
			mdb_txn_abort(txn);
			pthread_mutex_unlock(&st->wlock);
			done++;
			continue; /* evidence again: its bytes stay */
		}
		json_decref(rec);
		if (rc == 0 && sha != NULL && strlen(sha) == 64 && local != NULL &&
		    strcmp(local, "removed") == 0) {
			cs__blob_path(sha, path, sizeof(path));
			rc = remove_blob(st, path);
		}
		json_array_foreach(json_object_get(e, "derivatives"), j, d)
		{
			const char *ds = json_string_value(json_object_get(d, "sha256"));
			const char *dl = json_string_value(json_object_get(d, "local"));
			if (rc < 0 || ds == NULL || strlen(ds) != 64 || dl == NULL ||
			    strcmp(dl, "removed") != 0)
				continue;
			snprintf(path, sizeof(path), "derivatives/sha256/%.2s/%.2s/%s", ds, ds + 2,
			    ds);
			rc = remove_blob(st, path);
		}
		mdb_txn_abort(txn);
		pthread_mutex_unlock(&st->wlock);
		done++;
		CS_FAILPOINT("purge-unlink");
		CS_FAILPARK("purge-unlink");
		if (rc == 0 && hooks != NULL && hooks->progress != NULL)
			hooks->progress(hooks->ctx, done, total);
	}
	json_decref(reg);
	return rc;
}

/* 1 if item `id` is (still) purged by plan `plan`: not evidence again since. */
static int
still_purged(struct cs_store *st, const char *id, uint64_t plan)
{
	json_t *rec = NULL;
	int yes = cs_store_get(st, id, &rec) == 0 && purged_now_by(rec, plan);

	json_decref(rec);
	return yes;
}

/* Phase three: each purged item's remote objects, once (purge-remote). */
static int
remove_remote(struct cs_store *st, uint64_t plan, const struct cs_purge_hooks *hooks)
{
	json_t *reg = NULL, *e;
	size_t i;
	int rc, failed = 0;

	if (hooks == NULL || hooks->remote == NULL)
		return 0;
	rc = cs_destruction_register(st, &reg);
	json_array_foreach(reg, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		json_t *outcome = NULL, *ev;
		uint64_t seq;
		int r;

		if (rc < 0 || id == NULL ||
		    (uint64_t)json_integer_value(json_object_get(e, "plan")) != plan ||
		    json_object_get(e, "remote") != NULL || !still_purged(st, id, plan))
			continue; /* done, or evidence again (bytes came back): copies stay */
		r = hooks->remote(hooks->ctx, e, &outcome);
		if (r < 0) {
			failed = r; /* retried at the next run; the local purge stands */
			json_decref(outcome);
			continue;
		}
		ev = json_pack("{s:s, s:I, s:s, s:o}", "event", "purge-remote", "plan",
		    (json_int_t)plan, "id", id, "remote", outcome != NULL ? outcome : json_null());
		rc = ev == NULL ? -ENOMEM : cs__store_commit_locked(st, ev, &seq);
		json_decref(ev);
	}
	json_decref(reg);
	return rc < 0 ? rc : failed;
}

int
cs_purge_execute(struct cs_store *st, uint64_t plan, const struct cs_purge_hooks *hooks,
    const char **rule)
{
	json_t *skipped = json_array(), *p = NULL, *ev = NULL;
	MDB_txn *txn;
	uint64_t seq;
	int rc = skipped == NULL ? -ENOMEM : 0;

	*rule = NULL;
	if (rc == 0)
		rc = cs_purge_plan_get(st, plan, &p);
	if (rc == 0 && strcmp(state_of(p), "done") != 0)
		rc = may_run(p, rule);
	else if (rc == 0) {
		*rule = CS_RULE_PLAN_STATE;
		rc = CS_EDENIED;
	}
	json_decref(p);
	if (rc == 0)
		rc = write_tombstones(st, plan, skipped, rule);
	if (rc == 0)
		rc = remove_bytes(st, plan, hooks);
	if (rc == 0)
		rc = remove_remote(st, plan, hooks);
	/* the end, once: under the lock, if no other run wrote it meanwhile */
	if (rc == 0)
		rc = cs__write_begin(st, &txn);
	if (rc == 0) {
		p = NULL;
		rc = from_cat(get_plan(&st->cat, txn, plan, &p));
		if (rc == 0 && strcmp(state_of(p), "executing") != 0 &&
		    strcmp(state_of(p), "approved") != 0) {
			*rule = CS_RULE_PLAN_STATE;
			rc = CS_EDENIED;
		}
		if (rc == 0) {
			ev = json_pack("{s:s, s:I, s:O}", "event", "purge-done", "plan",
			    (json_int_t)plan, "skipped", skipped);
			rc = ev == NULL ? -ENOMEM : 0;
		}
		json_decref(p);
		rc = cs__write_end(st, txn, ev, rc, &seq);
	}
	json_decref(skipped);
	return rc;
}

/* ---- projection (lib/catalog.c's apply calls it, in its write transaction) ---- */

static int
put_plan(struct cs__catalog *c, MDB_txn *txn, uint64_t plan, json_t *p)
{
	char k[24];

	pkey(k, plan);
	return cs__cat_put(txn, c->dbi[CS_DBI_PURGE_PLANS], k, strlen(k), p);
}

/* Takes the plan mark off item `id` if it is plan `plan`'s. */
static int
unmark(struct cs__catalog *c, MDB_txn *txn, const char *id, uint64_t plan)
{
	json_t *rec = NULL;
	int rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 &&
	    (uint64_t)json_integer_value(json_object_get(rec, "plan")) == plan &&
	    json_object_del(rec, "plan") == 0)
		rc = cs__cat_put_item(c, txn, id, rec);
	json_decref(rec);
	return rc;
}

static int
unmark_all(struct cs__catalog *c, MDB_txn *txn, json_t *p, uint64_t plan)
{
	json_t *it;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(p, "items"), i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		if (rc == 0 && id != NULL)
			rc = unmark(c, txn, id, plan);
	}
	return rc;
}

static int
project_plan(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	json_t *p, *it, *rec;
	size_t i;
	int rc;

	if (!json_is_array(json_object_get(ev, "items"))) {
		*why = "purge-plan event lacks its items";
		return -1;
	}
	p = json_pack("{s:I, s:O*, s:O*, s:O, s:O*, s:O*, s:O*, s:[], s:s}", "plan",
	    (json_int_t)seq, "time", json_object_get(ev, "time"), "actor",
	    json_object_get(ev, "actor"), "items", json_object_get(ev, "items"),
	    "approvals_needed", json_object_get(ev, "approvals_needed"), "grace_ms",
	    json_object_get(ev, "grace_ms"), "approvers", json_object_get(ev, "approvers"),
	    "approvals", "state", "proposed");
	rc = p == NULL ? ENOMEM : put_plan(c, txn, seq, p);
	json_decref(p);
	json_array_foreach(json_object_get(ev, "items"), i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		if (rc != 0)
			break;
		rec = NULL;
		rc = id != NULL ? cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec)
		                : MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND) {
			*why = "purge-plan event names an unknown evidence id";
			return -1;
		}
		if (rc == 0 && json_object_get(rec, "purged") == NULL)
			rc = JOK(json_object_set_new(rec, "plan", json_integer((json_int_t)seq)));
		if (rc == 0)
			rc = cs__cat_put_item(c, txn, id, rec);
		json_decref(rec);
	}
	return rc;
}

static int
project_approve(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, json_t *p,
    uint64_t plan)
{
	json_t *a = json_pack("{s:I, s:O*, s:O*}", "seq", (json_int_t)seq, "time",
	    json_object_get(ev, "time"), "actor", json_object_get(ev, "actor"));
	json_t *list = json_object_get(p, "approvals");
	int64_t ms = 0;
	int rc;

	rc = a == NULL || !json_is_array(list) ? ENOMEM : JOK(json_array_append_new(list, a));
	if (rc == 0 && json_array_size(list) >=
	        (size_t)json_integer_value(json_object_get(p, "approvals_needed"))) {
		char t[32];
		(void)cs__time_parse(json_string_value(json_object_get(ev, "time")), &ms);
		cs__time_format(ms + json_integer_value(json_object_get(p, "grace_ms")), t,
		    sizeof(t));
		rc = JOK(json_object_set_new(p, "state", json_string("approved")));
		if (rc == 0)
			rc = JOK(json_object_set_new(p, "executes_at", json_string(t)));
	}
	return rc == 0 ? put_plan(c, txn, plan, p) : rc;
}

/* A "purge" event: the item's tombstone, and the register's entry. */
static int
project_purge(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, json_t *p,
    uint64_t plan, const char **why)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	json_t *rec = NULL, *o;
	MDB_val k;
	char key[24];
	int rc;

	if (id == NULL) {
		*why = "purge event names no evidence id";
		return -1;
	}
	rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
	if (rc == MDB_NOTFOUND || (rc == 0 && json_object_get(rec, "purged") != NULL)) {
		json_decref(rec);
		*why = "purge event names an unknown or already purged evidence id";
		return -1;
	}
	if (rc != 0)
		return rc;
	o = json_pack("{s:I, s:O*, s:I, s:O*}", "seq", (json_int_t)seq, "time",
	    json_object_get(ev, "time"), "plan", (json_int_t)plan, "local",
	    json_object_get(ev, "local"));
	rc = o == NULL ? ENOMEM : JOK(json_object_set_new(rec, "purged", o));
	if (rc == 0)
		(void)json_object_del(rec, "plan");
	if (rc == 0)
		rc = cs__fixity_unindex(c, txn, id, rec);
	if (rc == 0 && strlen(id) <= 480) {
		k.mv_size = strlen(id);
		k.mv_data = (void *)id;
		rc = mdb_del(txn, c->dbi[CS_DBI_MEDIA_TODO], &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (rc == 0)
		rc = cs__cat_put_item(c, txn, id, rec);
	json_decref(rec);
	pkey(key, seq);
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_DESTRUCTION], key, strlen(key), ev);
	if (rc == 0)
		rc = JOK(json_object_set_new(p, "state", json_string("executing")));
	if (rc == 0)
		rc = JOK(json_object_set_new(p, "purged",
		    json_integer(json_integer_value(json_object_get(p, "purged")) + 1)));
	return rc == 0 ? put_plan(c, txn, plan, p) : rc;
}

/*
 * The bytes of a purged item arrived again (a sighting): they are evidence
 * again, kept like new ones. The record's "purged" moves to its "purges"
 * history (the tombstone and the register entry stay); what the purge
 * removed is made again: the copies at the remote ("replicas", so the upload
 * queue takes it), the derivatives and the media record (so the media stage
 * does), the place in the fixity schedule. The caller puts the record.
 */
int
cs__purge_revive(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	json_t *was = json_object_get(rec, "purged"), *hist;
	int rc;

	if (was == NULL)
		return 0;
	hist = json_object_get(rec, "purges");
	if (hist == NULL) {
		hist = json_array();
		if (hist == NULL || json_object_set_new(rec, "purges", hist) < 0)
			return ENOMEM;
	}
	if (json_array_append(hist, was) < 0)
		return ENOMEM;
	(void)json_object_del(rec, "purged");
	(void)json_object_del(rec, "replicas");
	(void)json_object_del(rec, "derivatives");
	(void)json_object_del(rec, "media");
	rc = cs__fixity_index(c, txn, id, rec);
	if (rc == 0)
		rc = cs__media_index(c, txn, id);
	return rc;
}

/* A "purge-remote" event: the outcome into the item's record and its register entry. */
static int
project_remote(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char **why)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	json_t *rec = NULL, *pg, *entry = NULL;
	char key[24];
	int rc;

	rc = id != NULL ? cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec)
	                : MDB_NOTFOUND;
	pg = json_object_get(rec, "purged");
	if (rc == MDB_NOTFOUND || (rc == 0 && pg == NULL)) {
		json_decref(rec);
		*why = "purge-remote event names no purged evidence item";
		return -1;
	}
	if (rc != 0)
		return rc;
	rc = JOK(json_object_set(pg, "remote", json_object_get(ev, "remote")));
	if (rc == 0)
		rc = cs__cat_put_item(c, txn, id, rec);
	pkey(key, (uint64_t)json_integer_value(json_object_get(pg, "seq")));
	if (rc == 0)
		rc = cs__cat_get(txn, c->dbi[CS_DBI_DESTRUCTION], key, strlen(key), &entry);
	if (rc == 0)
		rc = JOK(json_object_set(entry, "remote", json_object_get(ev, "remote")));
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_DESTRUCTION], key, strlen(key), entry);
	json_decref(entry);
	json_decref(rec);
	return rc;
}

int
cs__purge_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why)
{
	json_int_t plan = json_integer_value(json_object_get(ev, "plan"));
	json_t *p = NULL, *o;
	const char *s;
	int rc;

	if (strcmp(type, "purge-plan") == 0)
		return project_plan(c, txn, ev, seq, why);
	if (strcmp(type, "purge-remote") == 0)
		return project_remote(c, txn, ev, why);
	if (strcmp(type, "purge-approve") != 0 && strcmp(type, "purge-cancel") != 0 &&
	    strcmp(type, "purge") != 0 && strcmp(type, "purge-done") != 0)
		return 0; /* a kind from a later version: kept in the ledger */
	rc = plan > 0 ? get_plan(c, txn, (uint64_t)plan, &p) : MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND) {
		*why = "a purge event names no plan";
		return -1;
	}
	if (rc != 0)
		return rc;
	s = state_of(p);
	if ((strcmp(type, "purge-approve") == 0 && strcmp(s, "proposed") != 0) ||
	    (strcmp(type, "purge-cancel") == 0 && strcmp(s, "proposed") != 0 &&
	        strcmp(s, "approved") != 0) ||
	    (strcmp(type, "purge") == 0 && strcmp(s, "approved") != 0 &&
	        strcmp(s, "executing") != 0) ||
	    (strcmp(type, "purge-done") == 0 && strcmp(s, "approved") != 0 &&
	        strcmp(s, "executing") != 0)) {
		json_decref(p);
		*why = "a purge event does not fit its plan's state";
		return -1;
	}
	if (strcmp(type, "purge-approve") == 0) {
		rc = project_approve(c, txn, ev, seq, p, (uint64_t)plan);
	} else if (strcmp(type, "purge") == 0) {
		rc = project_purge(c, txn, ev, seq, p, (uint64_t)plan, why);
	} else {
		int done = strcmp(type, "purge-done") == 0;
		o = json_pack("{s:I, s:O*, s:O*, s:O*}", "seq", (json_int_t)seq, "time",
		    json_object_get(ev, "time"), "actor", json_object_get(ev, "actor"), "reason",
		    json_object_get(ev, "reason"));
		rc = o == NULL ? ENOMEM
		               : JOK(json_object_set_new(p, done ? "done" : "cancelled", o));
		if (rc == 0)
			rc = JOK(json_object_set_new(p, "state",
			    json_string(done ? "done" : "cancelled")));
		if (rc == 0 && done && json_is_array(json_object_get(ev, "skipped")))
			rc = JOK(json_object_set(p, "skipped", json_object_get(ev, "skipped")));
		if (rc == 0)
			rc = put_plan(c, txn, (uint64_t)plan, p);
		if (rc == 0)
			rc = unmark_all(c, txn, p, (uint64_t)plan);
	}
	json_decref(p);
	return rc;
}
