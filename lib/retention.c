/*
 * Retention policy (custos/retention.h): holds on cases and items, the
 * marks of evidence used in a decision, their projection into the catalog's
 * "holds" table and item records (which lib/catalog.c calls in its write
 * transaction), and cs_retention_compute, the one rule of what is due.
 * Purge plans and their execution are lib/purge.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/retention.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

#define OK(x) ((x) < 0 ? ENOMEM : 0) /* jansson's -1 as apply's LMDB-style code */

void
cs_retention_policy_default(struct cs_retention_policy *p)
{
	p->classes = NULL;
	p->n_classes = 0;
	p->holders = "legal,admin";
	p->approvers = "head,admin";
	p->approvals = 2;
	p->grace_ms = 7LL * 24 * 3600 * 1000;
}

/* "5y", "30d" or "permanent" into *ms (< 0: for ever); -1 if not one. */
static int
parse_period(const char *v, size_t n, int64_t *ms)
{
	uint64_t x = 0;
	size_t i;

	if (n == 9 && memcmp(v, "permanent", 9) == 0) {
		*ms = -1;
		return 0;
	}
	if (n < 2 || (v[n - 1] != 'd' && v[n - 1] != 'y'))
		return -1;
	for (i = 0; i < n - 1; i++) {
		if (v[i] < '0' || v[i] > '9' || x > 1000000)
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x == 0 || x > (v[n - 1] == 'y' ? 1000 : 365000))
		return -1;
	*ms = (int64_t)x * (v[n - 1] == 'y' ? 365 : 1) * 86400 * 1000;
	return 0;
}

int
cs_retention_class_parse(const char *value, struct cs_retention_class *c, char *why, size_t whyn)
{
	const char *p = value;
	int have_period = 0, have_from = 0;
	char *category = NULL;

	c->category = NULL;
	while (*p != '\0') {
		size_t n, kl;
		const char *eq;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " \t");
		eq = memchr(p, '=', n);
		if (eq == NULL || eq == p || eq == p + n - 1) {
			snprintf(why, whyn, "'%.*s' is not key=value (period=, from=, category=)",
			    (int)n, p);
			goto bad;
		}
		kl = (size_t)(eq - p);
		if (kl == 6 && memcmp(p, "period", 6) == 0 && !have_period) {
			if (parse_period(eq + 1, n - kl - 1, &c->period_ms) < 0) {
				snprintf(why, whyn,
				    "period must be years (5y), days (90d) or "
				    "permanent, not '%.*s'",
				    (int)(n - kl - 1), eq + 1);
				goto bad;
			}
			have_period = 1;
		} else if (kl == 4 && memcmp(p, "from", 4) == 0 && !have_from) {
			if (n - kl - 1 == 7 && memcmp(eq + 1, "closure", 7) == 0)
				c->from = CS_FROM_CLOSURE;
			else if (n - kl - 1 == 9 && memcmp(eq + 1, "recording", 9) == 0)
				c->from = CS_FROM_RECORDING;
			else {
				snprintf(why, whyn, "from must be closure or recording, not '%.*s'",
				    (int)(n - kl - 1), eq + 1);
				goto bad;
			}
			have_from = 1;
		} else if (kl == 8 && memcmp(p, "category", 8) == 0 && category == NULL) {
			category = strndup(eq + 1, n - kl - 1);
			if (category == NULL)
				return -ENOMEM;
		} else {
			snprintf(why, whyn,
			    "'%.*s' is not a class setting, or it is given twice "
			    "(period=, from=, category= once each)",
			    (int)kl, p);
			goto bad;
		}
		p += n;
	}
	if (!have_period || !have_from) {
		snprintf(why, whyn, "a class needs %s (such as period=5y from=closure)",
		    !have_period ? "period=" : "from=");
		goto bad;
	}
	c->category = category;
	return 0;
bad:
	free(category);
	return CS_EFORMAT;
}

/* ---- the holds table: keys ---- */

/* "h:" and the hold's number in 20 digits: the hold's record. */
static void
hold_key(char buf[32], uint64_t hold)
{
	snprintf(buf, 32, "h:%020" PRIu64, hold);
}

/*
 * "c:" case key, or "i:" item id, then 0x00 and the hold's number in 20
 * digits: the holds in force on a case or an item (-> {"hold": N}).
 * NULL without memory; *len its length.
 */
static char *
on_key(char kind, const char *name, uint64_t hold, size_t *len)
{
	size_t n = strlen(name);
	char *k = malloc(n + 24);

	if (k == NULL)
		return NULL;
	k[0] = kind;
	k[1] = ':';
	memcpy(k + 2, name, n);
	k[2 + n] = '\0';
	snprintf(k + 3 + n, 21, "%020" PRIu64, hold);
	*len = n + 23;
	return k;
}

static int
text_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && cs__text_ok(s);
}

/* {"seq", "time", "actor"?, "reason"?} of an event. */
static json_t *
origin(json_t *ev, uint64_t seq)
{
	json_t *o = json_pack("{s:I, s:O*}", "seq", (json_int_t)seq, "time",
	    json_object_get(ev, "time"));
	static const char *const f[] = {"actor", "reason"};

	for (size_t i = 0; o != NULL && i < 2; i++)
		if (json_object_get(ev, f[i]) != NULL &&
		    json_object_set(o, f[i], json_object_get(ev, f[i])) < 0) {
			json_decref(o);
			o = NULL;
		}
	return o;
}

/* ---- projection ---- */

static int
project_hold(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	const char *key = json_string_value(json_object_get(ev, "key"));
	const char *id = json_string_value(json_object_get(ev, "id"));
	json_t *rec = NULL, *h = NULL, *ix = NULL;
	char hk[32], *ok = NULL;
	size_t olen;
	int rc;

	if ((key == NULL) == (id == NULL) || (key != NULL && *key == '\0') ||
	    !json_is_string(json_object_get(ev, "reason"))) {
		*why = "hold event names neither one case nor one item, or has no reason";
		return -1;
	}
	rc = key != NULL ? cs__cat_get(txn, c->dbi[CS_DBI_CASES], key, strlen(key), &rec)
	                 : cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
	json_decref(rec);
	if (rc == MDB_NOTFOUND) {
		*why = key != NULL ? "hold event names a case file that was never opened"
		                   : "hold event names an unknown evidence id";
		return -1;
	}
	if (rc != 0)
		return rc;
	h = json_pack("{s:I, s:O, s:O, s:O*}", "hold", (json_int_t)seq, "reason",
	    json_object_get(ev, "reason"), "time", json_object_get(ev, "time"), "actor",
	    json_object_get(ev, "actor"));
	rc = h == NULL ? ENOMEM : 0;
	if (rc == 0 && key != NULL)
		rc = OK(json_object_set(h, "case", json_object_get(ev, "case"))) ||
		    OK(json_object_set(h, "key", json_object_get(ev, "key")));
	else if (rc == 0)
		rc = OK(json_object_set(h, "id", json_object_get(ev, "id")));
	rc = rc != 0 ? ENOMEM : 0;
	hold_key(hk, seq);
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_HOLDS], hk, strlen(hk), h);
	ix = json_pack("{s:I}", "hold", (json_int_t)seq);
	ok = on_key(key != NULL ? 'c' : 'i', key != NULL ? key : id, seq, &olen);
	if (rc == 0 && (ix == NULL || ok == NULL))
		rc = ENOMEM;
	if (rc == 0 && olen > 480) {
		*why = "hold event names a case or item too long to index";
		rc = -1;
	}
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_HOLDS], ok, olen, ix);
	if (rc == 0 && key != NULL) /* in the case file's history */
		rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
	free(ok);
	json_decref(ix);
	json_decref(h);
	return rc;
}

static int
project_release(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	json_t *jh = json_object_get(ev, "hold"), *h = NULL, *o = NULL;
	const char *key, *id;
	char hk[32], *ok = NULL;
	size_t olen = 0;
	MDB_val k;
	int rc;

	if (!json_is_integer(jh) || json_integer_value(jh) < 0 ||
	    !json_is_string(json_object_get(ev, "reason"))) {
		*why = "hold-release event has no hold number or no reason";
		return -1;
	}
	hold_key(hk, (uint64_t)json_integer_value(jh));
	rc = cs__cat_get(txn, c->dbi[CS_DBI_HOLDS], hk, strlen(hk), &h);
	if (rc == MDB_NOTFOUND) {
		*why = "hold-release event names an unknown hold";
		return -1;
	}
	if (rc != 0)
		return rc;
	if (json_object_get(h, "released") != NULL) {
		*why = "hold-release event releases a hold already released";
		rc = -1;
		goto out;
	}
	o = origin(ev, seq);
	rc = o == NULL ? ENOMEM : OK(json_object_set_new(h, "released", o));
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_HOLDS], hk, strlen(hk), h);
	key = json_string_value(json_object_get(h, "key"));
	id = json_string_value(json_object_get(h, "id"));
	if (rc == 0) {
		ok = on_key(key != NULL ? 'c' : 'i',
		    key != NULL      ? key
		        : id != NULL ? id
		                     : "",
		    (uint64_t)json_integer_value(jh), &olen);
		rc = ok == NULL ? ENOMEM : 0;
	}
	if (rc == 0) {
		k.mv_size = olen;
		k.mv_data = ok;
		rc = mdb_del(txn, c->dbi[CS_DBI_HOLDS], &k, NULL);
	}
	if (rc == 0 && key != NULL)
		rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
out:
	free(ok);
	json_decref(h);
	return rc;
}

static int
project_use(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *key = json_string_value(json_object_get(ev, "key"));
	json_t *rec = NULL, *uses, *u, *o;
	size_t i;
	int rc;

	if (id == NULL || key == NULL || !json_is_boolean(json_object_get(ev, "used"))) {
		*why = "evidence-use event lacks an evidence id, a case or its value";
		return -1;
	}
	rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
	if (rc == MDB_NOTFOUND) {
		*why = "evidence-use event names an unknown evidence id";
		return -1;
	}
	if (rc != 0)
		return rc;
	uses = json_object_get(rec, "evidence_use");
	if (uses == NULL) {
		uses = json_array();
		rc = uses == NULL ? ENOMEM : OK(json_object_set_new(rec, "evidence_use", uses));
	}
	json_array_foreach(uses, i, u)
	{
		const char *k = json_string_value(json_object_get(u, "key"));
		if (rc == 0 && k != NULL && strcmp(k, key) == 0) {
			rc = OK(json_array_remove(uses, i));
			break;
		}
	}
	if (rc == 0 && json_is_true(json_object_get(ev, "used"))) {
		o = origin(ev, seq);
		if (o != NULL &&
		    (json_object_set(o, "case", json_object_get(ev, "case")) < 0 ||
		        json_object_set(o, "key", json_object_get(ev, "key")) < 0)) {
			json_decref(o);
			o = NULL;
		}
		rc = o == NULL ? ENOMEM : OK(json_array_append_new(uses, o));
	}
	if (rc == 0 && json_array_size(uses) == 0)
		rc = OK(json_object_del(rec, "evidence_use"));
	if (rc == 0)
		rc = cs__cat_put_item(c, txn, id, rec);
	json_decref(rec);
	return rc;
}

int
cs__retention_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why)
{
	if (strcmp(type, "hold") == 0)
		return project_hold(c, txn, ev, seq, why);
	if (strcmp(type, "hold-release") == 0)
		return project_release(c, txn, ev, seq, why);
	return project_use(c, txn, ev, seq, why);
}

/* ---- writing calls ---- */

static int
store_code(int rc)
{
	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

/* Sets ev's "actor" to `who`, the user as custosd knows him. */
static int
set_actor(json_t *ev, const struct cs_access_who *who)
{
	json_t *a;

	if (ev == NULL)
		return -ENOMEM;
	a = json_pack("{s:s, s:s, s:I}", "kind", "user", "name", who->name != NULL ? who->name : "",
	    "uid", (json_int_t)who->uid);
	if (a != NULL && who->role != NULL &&
	    json_object_set_new(a, "role", json_string(who->role)) < 0) {
		json_decref(a);
		a = NULL;
	}
	return json_object_set_new(ev, "actor", a) < 0 ? -ENOMEM : 0;
}

/*
 * The first rules of a holder's write: `who` is one of the holders (else
 * CS_EDENIED with *rule) and gives a reason (else CS_EFORMAT, *what
 * "reason"). Sets *rule and *what to NULL first.
 */
static int
holder(const struct cs_retention_policy *pol, const struct cs_access_who *who, const char *reason,
    const char **rule, const char **what)
{
	*rule = NULL;
	*what = NULL;
	if (who->role == NULL || !cs_access_in_list(pol->holders, who->role)) {
		*rule = who->role == NULL ? CS_RULE_NO_ROLE : CS_RULE_HOLDER;
		return CS_EDENIED;
	}
	if (!text_ok(reason)) {
		*what = "reason";
		return CS_EFORMAT;
	}
	return 0;
}

/* The case record of `number` (*key its canonical key, malloc'd). */
static int
find_case(struct cs_store *st, MDB_txn *txn, const char *number, char **key, json_t **crec)
{
	int rc = cs_case_key(number, key);

	if (rc < 0)
		return rc == -ENOMEM ? rc : CS_ENOTFOUND;
	rc = store_code(cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], *key, strlen(*key), crec));
	if (rc < 0) {
		free(*key);
		*key = NULL;
	}
	return rc;
}

int
cs_hold_add(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, const char *number, const char *id, const char *reason,
    uint64_t *hold, const char **rule, const char **what)
{
	json_t *ev = NULL, *rec = NULL;
	char *key = NULL;
	MDB_txn *txn;
	int rc;

	rc = holder(pol, who, reason, rule, what);
	if (rc < 0)
		return rc;
	if ((number == NULL) == (id == NULL)) {
		*what = "case";
		return CS_EFORMAT;
	}
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	if (number != NULL) {
		rc = find_case(st, txn, number, &key, &rec);
		*what = rc == CS_ENOTFOUND ? "case" : NULL;
		if (rc == 0)
			ev = json_pack("{s:s, s:s, s:s, s:s}", "event", "hold", "case", number,
			    "key", key, "reason", reason);
	} else {
		rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
		*what = rc == CS_ENOTFOUND ? "item" : NULL;
		if (rc == 0)
			ev = json_pack("{s:s, s:s, s:s}", "event", "hold", "id", id, "reason",
			    reason);
	}
	if (rc == 0)
		rc = set_actor(ev, who);
	json_decref(rec);
	free(key);
	return cs__write_end(st, txn, ev, rc, hold);
}

int
cs_hold_release(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, uint64_t hold, const char *reason, uint64_t *seq,
    const char **rule, const char **what)
{
	json_t *ev = NULL, *h = NULL;
	char hk[32];
	MDB_txn *txn;
	int rc;

	rc = holder(pol, who, reason, rule, what);
	if (rc < 0)
		return rc;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	hold_key(hk, hold);
	rc = store_code(cs__cat_get(txn, st->cat.dbi[CS_DBI_HOLDS], hk, strlen(hk), &h));
	if (rc == CS_ENOTFOUND)
		*what = "hold";
	else if (rc == 0 && json_object_get(h, "released") != NULL)
		rc = CS_EEXIST;
	if (rc == 0) {
		/* the hold's case or item, for their histories */
		ev = json_pack("{s:s, s:I, s:s, s:O*, s:O*, s:O*}", "event", "hold-release", "hold",
		    (json_int_t)hold, "reason", reason, "case", json_object_get(h, "case"), "key",
		    json_object_get(h, "key"), "id", json_object_get(h, "id"));
		rc = set_actor(ev, who);
	}
	json_decref(h);
	return cs__write_end(st, txn, ev, rc, seq);
}

struct collect {
	json_t *out;
	int all;
};

static int
collect_hold(void *ctx, const char *key, size_t keylen, json_t *val)
{
	struct collect *c = ctx;
	json_t *h;

	(void)key;
	(void)keylen;
	if (!c->all && json_object_get(val, "released") != NULL)
		return 0;
	h = json_deep_copy(val);
	if (h != NULL)
		json_object_del(h, "key");
	return h == NULL || json_array_append_new(c->out, h) < 0 ? -ENOMEM : 0;
}

int
cs_hold_list(struct cs_store *st, int all, json_t **out)
{
	struct collect c = {json_array(), all};
	MDB_txn *txn;
	int rc;

	if (c.out == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0) {
		rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_HOLDS], "h:", 2, collect_hold, &c);
		mdb_txn_abort(txn);
	}
	if (rc < 0) {
		json_decref(c.out);
		return rc;
	}
	*out = c.out;
	return 0;
}

/* Appends the dupsort values of `key` in `dbi` to array `out` as strings. */
static int
dup_strings(MDB_txn *txn, MDB_dbi dbi, const char *key, json_t *out)
{
	MDB_val k = {strlen(key), (void *)key}, d;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, dbi, &cur);

	if (rc != 0)
		return store_code(rc);
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST_DUP);
	while (rc == 0) {
		if (json_array_append_new(out, json_stringn(d.mv_data, d.mv_size)) < 0) {
			mdb_cursor_close(cur);
			return -ENOMEM;
		}
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_code(rc);
}

int
cs_hold_items(struct cs_store *st, uint64_t hold, json_t **ids)
{
	json_t *h = NULL, *out = json_array();
	const char *key, *id;
	char hk[32];
	MDB_txn *txn;
	int rc;

	if (out == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0) {
		json_decref(out);
		return rc;
	}
	hold_key(hk, hold);
	rc = store_code(cs__cat_get(txn, st->cat.dbi[CS_DBI_HOLDS], hk, strlen(hk), &h));
	key = json_string_value(json_object_get(h, "key"));
	id = json_string_value(json_object_get(h, "id"));
	if (rc == 0 && json_object_get(h, "released") == NULL) {
		if (key != NULL)
			rc = dup_strings(txn, st->cat.dbi[CS_DBI_BY_CASE], key, out);
		else if (id != NULL)
			rc = OK(json_array_append_new(out, json_string(id))) ? -ENOMEM : 0;
	}
	mdb_txn_abort(txn);
	json_decref(h);
	if (rc < 0) {
		json_decref(out);
		return rc;
	}
	*ids = out;
	return 0;
}

int
cs_retention_mark_used(struct cs_store *st, const struct cs_retention_policy *pol,
    const struct cs_access_who *who, const char *id, const char *number, int value,
    const char *reason, uint64_t *seq, const char **rule, const char **what)
{
	json_t *ev = NULL, *rec = NULL, *crec = NULL, *m;
	char *key = NULL;
	MDB_txn *txn;
	size_t i;
	int rc, in = 0;

	rc = holder(pol, who, reason, rule, what);
	if (rc < 0)
		return rc;
	if (id == NULL || number == NULL) {
		*what = id == NULL ? "item" : "case";
		return CS_EFORMAT;
	}
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc == CS_ENOTFOUND)
		*what = "item";
	if (rc == 0) {
		rc = find_case(st, txn, number, &key, &crec);
		if (rc == CS_ENOTFOUND)
			*what = "case";
	}
	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		if (key != NULL && json_is_string(json_object_get(m, "key")) &&
		    strcmp(json_string_value(json_object_get(m, "key")), key) == 0)
			in = 1;
	}
	if (rc == 0 && !in && value) {
		*what = "member"; /* used in a decision of a case it is not in */
		rc = CS_ENOTFOUND;
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "event", "evidence-use", "id", id,
		    "case", number, "key", key, "used", value, "reason", reason);
		rc = set_actor(ev, who);
	}
	json_decref(rec);
	json_decref(crec);
	free(key);
	return cs__write_end(st, txn, ev, rc, seq);
}

/* ---- what is due ---- */

/*
 * 1 when the item is out of retention's hands already: purged (its record's
 * "purged", set by lib/purge.c's projection), 2 when it is in a plan that is
 * neither cancelled nor done (its record's "plan", the plan's number, which
 * that projection sets and clears), with *plan; 0 otherwise.
 */
static int
purged_or_planned(const json_t *rec, uint64_t *plan)
{
	json_t *p = json_object_get(rec, "purged");

	if (p != NULL && !json_is_false(p) && !json_is_null(p))
		return 1;
	p = json_object_get(rec, "plan");
	if (json_is_integer(p)) {
		*plan = (uint64_t)json_integer_value(p);
		return 2;
	}
	return 0;
}

struct due_ctx {
	struct cs_store *st;
	const struct cs_retention_policy *pol;
	MDB_txn *txn;
	int64_t now;
	json_t *due, *blocked, *cases; /* cases: key -> case record, read once */
	size_t kept;
	char why[512];
	uint64_t hold; /* held(): the hold found */
};

/* The case record of `key`, kept in d->cases (borrowed); NULL if none. */
static int
case_rec(struct due_ctx *d, const char *key, json_t **crec)
{
	json_t *c = json_object_get(d->cases, key);
	int rc;

	if (c == NULL) {
		rc = cs__cat_get(d->txn, d->st->cat.dbi[CS_DBI_CASES], key, strlen(key), &c);
		if (rc == MDB_NOTFOUND)
			c = json_null();
		else if (rc != 0)
			return store_code(rc);
		if (json_object_set_new(d->cases, key, c) < 0)
			return -ENOMEM;
	}
	*crec = json_is_object(c) ? c : NULL;
	return 0;
}

/* 1 if one of the item's sightings (or its record) is of `category`. */
static int
seen_category(const json_t *rec, const char *category)
{
	const char *s = json_string_value(json_object_get(rec, "category"));
	json_t *v;
	size_t i;

	if (s != NULL && strcmp(s, category) == 0)
		return 1;
	json_array_foreach(json_object_get(rec, "seen"), i, v)
	{
		s = json_string_value(json_object_get(v, "category"));
		if (s != NULL && strcmp(s, category) == 0)
			return 1;
	}
	return 0;
}

/* The time a class counts from, for one case (crec NULL: none): 0 or -1 unknown. */
struct verdict {
	const struct cs_retention_class *cls; /* NULL: no class applies */
	int64_t since, due;                   /* due INT64_MAX: kept for ever */
};

static int64_t
rec_time(const json_t *o, const char *field)
{
	int64_t ms;
	const char *t = json_string_value(json_object_get(o, field));

	return t != NULL && cs__time_parse(t, &ms) == 0 ? ms : -1;
}

/*
 * The class that keeps item `rec` longest in case `crec` (closed or sealed;
 * NULL: the item in no case, where only classes counting from recording
 * apply): the latest due time wins, a permanent class over any period.
 */
static void
judge(const struct cs_retention_policy *pol, const json_t *rec, const json_t *crec,
    struct verdict *v)
{
	const char *ccat = json_string_value(json_object_get(crec, "category"));
	int64_t closed = -1, recorded = rec_time(rec, "recorded_start");

	if (recorded < 0)
		recorded = rec_time(rec, "ingested_at");
	if (crec != NULL) {
		closed = rec_time(json_object_get(crec, "closed"), "time");
		if (closed < 0)
			closed = rec_time(json_object_get(crec, "seal"), "time");
	}
	v->cls = NULL;
	v->since = v->due = -1;
	for (size_t i = 0; i < pol->n_classes; i++) {
		const struct cs_retention_class *k = &pol->classes[i];
		int64_t since = k->from == CS_FROM_CLOSURE ? closed : recorded, due;
		if (k->category != NULL && !(ccat != NULL && strcmp(ccat, k->category) == 0) &&
		    !seen_category(rec, k->category))
			continue;
		if (since < 0)
			continue; /* from closure, for an item in no case */
		due = k->period_ms < 0 || since > INT64_MAX - k->period_ms ? INT64_MAX
		                                                           : since + k->period_ms;
		if (v->cls == NULL || due > v->due) {
			v->cls = k;
			v->since = since;
			v->due = due;
		}
	}
}

/* "held by hold N: REASON" if a hold is in force on item `id` or case `key` (else 0). */
static int
held(struct due_ctx *d, char kind, const char *name, int *is)
{
	size_t plen = strlen(name) + 3;
	char *p = malloc(plen);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*is = 0;
	if (p == NULL)
		return -ENOMEM;
	p[0] = kind;
	p[1] = ':';
	memcpy(p + 2, name, plen - 2);
	k.mv_size = plen;
	k.mv_data = p;
	rc = mdb_cursor_open(d->txn, d->st->cat.dbi[CS_DBI_HOLDS], &cur);
	if (rc == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == plen + 20 && memcmp(k.mv_data, p, plen) == 0) {
			char hk[32];
			json_t *h = NULL;
			uint64_t n = strtoull((const char *)k.mv_data + plen, NULL, 10);
			hold_key(hk, n);
			rc = cs__cat_get(d->txn, d->st->cat.dbi[CS_DBI_HOLDS], hk, strlen(hk), &h);
			if (rc == 0) {
				snprintf(d->why, sizeof(d->why), "held by hold %" PRIu64 ": %s", n,
				    json_string_value(json_object_get(h, "reason")));
				d->hold = n;
				*is = 1;
			}
			json_decref(h);
		} else if (rc == 0 || rc == MDB_NOTFOUND) {
			rc = 0;
		}
		mdb_cursor_close(cur);
	}
	free(p);
	return store_code(rc);
}

static int
add_time(json_t *o, const char *field, int64_t ms)
{
	char t[40];

	cs__time_format(ms, t, sizeof(t));
	return json_object_set_new(o, field, json_string(t)) < 0 ? -ENOMEM : 0;
}

static int
judge_item(void *ctx, const char *id, json_t *rec)
{
	struct due_ctx *d = ctx;
	struct verdict best = {NULL, -1, -1}, v;
	json_t *m, *item = NULL, *cases = json_array();
	const char *open = NULL, *uncovered = NULL, *used;
	uint64_t plan = 0;
	size_t i;
	int rc = cases == NULL ? -ENOMEM : 0, state, is = 0, any = 0;

	state = purged_or_planned(rec, &plan);
	if (state == 1)
		goto out;
	d->why[0] = '\0';
	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		const char *key = json_string_value(json_object_get(m, "key"));
		const char *cst;
		json_t *crec = NULL;
		if (rc < 0 || key == NULL)
			continue;
		rc = case_rec(d, key, &crec);
		if (rc == 0)
			rc = OK(json_array_append(cases, json_object_get(m, "case"))) ? -ENOMEM : 0;
		if (rc < 0 || crec == NULL)
			continue;
		any = 1;
		cst = json_string_value(json_object_get(crec, "state"));
		if (cst == NULL || (strcmp(cst, "closed") != 0 && strcmp(cst, "sealed") != 0)) {
			if (open == NULL)
				open = json_string_value(json_object_get(m, "case"));
			continue;
		}
		judge(d->pol, rec, crec, &v);
		if (v.cls == NULL) {
			if (uncovered == NULL)
				uncovered = json_string_value(json_object_get(m, "case"));
			continue;
		}
		if (best.cls == NULL || v.due > best.due)
			best = v;
	}
	if (rc < 0)
		goto out;
	if (!any) {
		judge(d->pol, rec, NULL, &best);
		if (best.cls == NULL)
			snprintf(d->why, sizeof(d->why),
			    "in no case file, and no retention class "
			    "counting from recording covers it");
	} else if (uncovered != NULL) {
		snprintf(d->why, sizeof(d->why), "no retention class covers it in case %s",
		    uncovered);
		best.cls = NULL;
	}
	if (best.cls != NULL && (best.due == INT64_MAX || best.due > d->now)) {
		d->kept++; /* not due yet, or kept for ever */
		goto out;
	}
	if (best.cls == NULL && open != NULL && uncovered == NULL && any) {
		d->kept++; /* in open cases only: nothing to count from yet */
		goto out;
	}
	/* due by its period: unless something stops it */
	used = json_string_value(
	    json_object_get(json_array_get(json_object_get(rec, "evidence_use"), 0), "case"));
	if (best.cls != NULL && state == 2)
		snprintf(d->why, sizeof(d->why), "in plan %" PRIu64 " already", plan);
	else if (best.cls != NULL && (rc = held(d, 'i', id, &is)) == 0 && !is) {
		json_array_foreach(json_object_get(rec, "cases"), i, m)
		{
			const char *key = json_string_value(json_object_get(m, "key"));
			if (!is && rc == 0 && key != NULL)
				rc = held(d, 'c', key, &is);
		}
		if (rc == 0 && !is && used != NULL)
			snprintf(d->why, sizeof(d->why),
			    "used as evidence in a decision of case %s", used);
		else if (rc == 0 && !is && open != NULL)
			snprintf(d->why, sizeof(d->why), "case %s is open", open);
	}
	if (rc < 0)
		goto out;
	item = json_pack("{s:s, s:O*, s:O*, s:O}", "id", id, "sha256",
	    json_object_get(rec, "sha256"), "size", json_object_get(rec, "size"), "cases", cases);
	rc = item == NULL ? -ENOMEM : 0;
	if (rc == 0 && best.cls != NULL) {
		rc = OK(json_object_set_new(item, "class", json_string(best.cls->name))) ||
		    OK(json_object_set_new(item, "from",
		        json_string(best.cls->from == CS_FROM_CLOSURE ? "closure" : "recording")));
		rc = rc != 0 ? -ENOMEM : add_time(item, "since", best.since);
		if (rc == 0)
			rc = add_time(item, "due", best.due);
	}
	if (rc == 0 && d->why[0] != '\0')
		rc = OK(json_object_set_new(item, "why", json_string(d->why))) ? -ENOMEM : 0;
	if (rc == 0)
		rc = json_array_append_new(d->why[0] != '\0' ? d->blocked : d->due, item) < 0
		    ? -ENOMEM
		    : 0;
	item = NULL;
out:
	json_decref(item);
	json_decref(cases);
	return rc;
}

int
cs_retention_compute(struct cs_store *st, const struct cs_retention_policy *pol, int64_t now_ms,
    json_t **out)
{
	struct due_ctx d = {st, pol, NULL, now_ms, json_array(), json_array(), json_object(), 0,
	    {0}, 0};
	json_t *o = NULL;
	int rc;

	rc = d.due == NULL || d.blocked == NULL || d.cases == NULL ? -ENOMEM : 0;
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &d.txn);
	if (rc == 0) {
		rc = cs__catalog_each_item(&st->cat, d.txn, judge_item, &d);
		mdb_txn_abort(d.txn);
	}
	if (rc == 0) {
		o = json_pack("{s:O, s:O, s:I}", "due", d.due, "blocked", d.blocked, "kept",
		    (json_int_t)d.kept);
		rc = o == NULL ? -ENOMEM : add_time(o, "time", now_ms);
	}
	json_decref(d.due);
	json_decref(d.blocked);
	json_decref(d.cases);
	if (rc < 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* 1 in *is if a hold is in force on item `id` (rec: its record) or a case file it is in. */
static int
item_held(struct due_ctx *d, const char *id, const json_t *rec, int *is)
{
	json_t *m;
	size_t i;
	int rc = held(d, 'i', id, is);

	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		const char *key = json_string_value(json_object_get(m, "key"));
		if (rc < 0 || *is || key == NULL)
			break;
		rc = held(d, 'c', key, is);
	}
	return rc;
}

int
cs_hold_remote_wants(struct cs_store *st, uint64_t hold, json_t **out)
{
	struct due_ctx d = {st, NULL, NULL, 0, NULL, NULL, NULL, 0, "", 0};
	json_t *h = NULL, *ids = json_array(), *list = json_array(), *id;
	const char *key, *one;
	char hk[32];
	size_t i;
	int rc = ids == NULL || list == NULL ? -ENOMEM : 0;

	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &d.txn);
	if (rc == 0) {
		hold_key(hk, hold);
		rc = store_code(cs__cat_get(d.txn, st->cat.dbi[CS_DBI_HOLDS], hk, strlen(hk), &h));
	}
	key = json_string_value(json_object_get(h, "key"));
	one = json_string_value(json_object_get(h, "id"));
	if (rc == 0 && key != NULL)
		rc = dup_strings(d.txn, st->cat.dbi[CS_DBI_BY_CASE], key, ids);
	else if (rc == 0 && one != NULL)
		rc = OK(json_array_append_new(ids, json_string(one))) ? -ENOMEM : 0;
	json_array_foreach(ids, i, id)
	{
		json_t *rec = NULL;
		int is = 0;
		if (rc < 0)
			break;
		rc = store_code(cs__cat_get(d.txn, st->cat.dbi[CS_DBI_ITEMS], json_string_value(id),
		    strlen(json_string_value(id)), &rec));
		if (rc == 0)
			rc = item_held(&d, json_string_value(id), rec, &is);
		if (rc == 0 && json_object_get(rec, "purged") == NULL)
			rc = OK(json_array_append_new(list,
			         json_pack("{s:O, s:b}", "id", id, "held", is)))
			    ? -ENOMEM
			    : 0;
		json_decref(rec);
	}
	if (d.txn != NULL)
		mdb_txn_abort(d.txn);
	json_decref(h);
	json_decref(ids);
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*out = list;
	return 0;
}

int
cs_hold_remote_record(struct cs_store *st, uint64_t hold, const char *id, int on, json_t *outcome,
    uint64_t *seq)
{
	json_t *ev = json_pack("{s:s, s:I, s:s, s:s, s:O}", "event", "hold-remote", "hold",
	    (json_int_t)hold, "id", id, "legal_hold", on ? "ON" : "OFF", "remote",
	    outcome != NULL ? outcome : json_null());
	MDB_txn *txn = NULL;
	int rc;

	if (ev == NULL)
		return -ENOMEM;
	rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		json_decref(ev);
		return rc;
	}
	return cs__write_end(st, txn, ev, 0, seq);
}

int
cs_hold_of_item(struct cs_store *st, const char *id, uint64_t *hold)
{
	struct due_ctx d = {st, NULL, NULL, 0, NULL, NULL, NULL, 0, "", 0};
	json_t *rec = NULL;
	int rc, is = 0;

	*hold = 0;
	rc = cs__catalog_rtxn(&st->cat, &d.txn);
	if (rc < 0)
		return rc;
	rc = store_code(cs__cat_get(d.txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), &rec));
	if (rc == 0)
		rc = item_held(&d, id, rec, &is);
	if (rc == 0 && is)
		*hold = d.hold;
	json_decref(rec);
	mdb_txn_abort(d.txn);
	return rc;
}
