/*
 * Case files, corrections and actors: the writing calls check the rules
 * (a case is opened once, a sealed case is never changed, a removal and a
 * correction give a reason, values are valid metadata) and write the events;
 * lib/project.c applies them to the catalog. Also the reading calls, the
 * member digest a seal carries, and proofs of several events.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

int
cs_store_set_actor(struct cs_store *st, const char *kind, const char *name, long uid)
{
	json_t *a = NULL;

	if (name != NULL) {
		if (!cs__text_ok(name) || kind == NULL || !cs__text_ok(kind))
			return CS_EFORMAT;
		a = json_pack("{s:s, s:s}", "kind", kind, "name", name);
		if (a == NULL ||
		    (uid >= 0 && json_object_set_new(a, "uid", json_integer(uid)) < 0)) {
			json_decref(a);
			return -ENOMEM;
		}
	}
	json_decref(st->actor);
	st->actor = a;
	return 0;
}

int
cs_store_set_actor_process(struct cs_store *st)
{
	struct passwd pw, *res = NULL;
	char buf[4096], name[32];
	uid_t uid = getuid();

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL ||
	    !cs__text_ok(pw.pw_name)) {
		snprintf(name, sizeof(name), "uid %ld", (long)uid);
		return cs_store_set_actor(st, "user", name, (long)uid);
	}
	return cs_store_set_actor(st, "user", pw.pw_name, (long)uid);
}

/* ---- member digest and fold ---- */

static int
by_id(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

	return strcmp(json_string_value(json_object_get(x, "id")),
	    json_string_value(json_object_get(y, "id")));
}

int
cs_case_members_digest(const json_t *members, char hex[65])
{
	size_t n = json_array_size(members), len = 0, off = 0;
	json_t **v = calloc(n + 1, sizeof(*v));
	uint8_t digest[32];
	char *buf;
	int rc;

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = json_array_get(members, i);
		if (json_string_value(json_object_get(v[i], "id")) == NULL) {
			free(v);
			return CS_EFORMAT;
		}
		len += strlen(json_string_value(json_object_get(v[i], "id"))) + 2;
		if (json_string_value(json_object_get(v[i], "stage")) != NULL)
			len += strlen(json_string_value(json_object_get(v[i], "stage")));
	}
	qsort(v, n, sizeof(*v), by_id);
	buf = malloc(len + 1);
	if (buf == NULL) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *stage = json_string_value(json_object_get(v[i], "stage"));
		off += (size_t)snprintf(buf + off, len + 1 - off, "%s\t%s\n",
		    json_string_value(json_object_get(v[i], "id")), stage != NULL ? stage : "");
	}
	/* the plain SHA-256 of the lines (not a Merkle leaf hash) */
	rc = EVP_Digest(buf, off, digest, NULL, EVP_sha256(), NULL) == 1 ? 0 : CS_ECRYPTO;
	if (rc == 0)
		cs__hex(digest, 32, hex);
	free(buf);
	free(v);
	return rc;
}

static long
member_at(json_t *members, const char *id)
{
	json_t *m;
	size_t i;

	json_array_foreach(members, i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0)
			return (long)i;
	}
	return -1;
}

/* The canonical key an event refers to: its "key", or a sighting's case number's. */
static int
event_key(const json_t *ev, const json_t **facts, char **key)
{
	const char *type = json_string_value(json_object_get(ev, "event"));
	const char *k = json_string_value(json_object_get(ev, "key"));
	const json_t *f = NULL;

	*facts = NULL;
	if (type != NULL && strcmp(type, "ingest") == 0)
		f = json_object_get(ev, "item");
	else if (type != NULL && strcmp(type, "sighting") == 0)
		f = json_object_get(ev, "sighting");
	if (f != NULL) {
		const char *number = json_string_value(json_object_get(f, "case"));
		*facts = f;
		return number != NULL ? cs_case_key(number, key) : CS_EFORMAT;
	}
	if (k == NULL)
		return CS_EFORMAT;
	*key = strdup(k);
	return *key != NULL ? 0 : -ENOMEM;
}

int
cs_case_fold(const json_t *events, const char *key, json_t **members, const char **why)
{
	json_t *mem = json_array(), *ev;
	size_t i;
	int rc = mem == NULL ? -ENOMEM : 0;

	json_array_foreach(events, i, ev)
	{
		const char *type = json_string_value(json_object_get(ev, "event"));
		const char *id = json_string_value(json_object_get(ev, "id"));
		const json_t *facts;
		char *k = NULL;
		long at;
		if (rc < 0)
			break;
		rc = event_key(ev, &facts, &k);
		if (rc == 0 && strcmp(k, key) != 0)
			rc = CS_EFORMAT;
		free(k);
		if (rc < 0) {
			*why = "an event of the proof does not belong to this case file";
			break;
		}
		if (facts != NULL) {
			/* a sighting with the case number made the item a member */
			const char *iid = json_string_value(json_object_get(ev, "id"));
			if (iid == NULL)
				iid = json_string_value(json_object_get(facts, "id"));
			if (iid != NULL && member_at(mem, iid) < 0)
				rc = json_array_append_new(mem, json_pack("{s:s, s:O*}", "id", iid,
				         "stage", json_object_get(facts, "stage"))) < 0 ?
				    -ENOMEM : 0;
			continue;
		}
		at = id != NULL ? member_at(mem, id) : -1;
		if (strcmp(type, "case-add") == 0 && id != NULL && at < 0) {
			rc = json_array_append_new(mem, json_pack("{s:s, s:O*}", "id", id, "stage",
			                                   json_object_get(ev, "stage"))) < 0 ?
			    -ENOMEM : 0;
		} else if (strcmp(type, "case-remove") == 0 && at >= 0) {
			json_array_remove(mem, (size_t)at);
		} else if (strcmp(type, "amend") == 0 && at >= 0 &&
		    json_object_get(json_object_get(ev, "set"), "stage") != NULL) {
			rc = json_object_set(json_array_get(mem, (size_t)at), "stage",
			         json_object_get(json_object_get(ev, "set"), "stage")) < 0 ?
			    -ENOMEM : 0;
		} else if (strcmp(type, "case-seal") == 0) {
			char hex[65];
			const char *want = json_string_value(json_object_get(ev, "members_sha256"));
			rc = cs_case_members_digest(mem, hex);
			if (rc == 0 && (want == NULL || strcmp(want, hex) != 0)) {
				*why = "the seal's member digest does not match the members these "
				       "events give";
				rc = CS_EPROOF;
			}
		}
	}
	if (rc < 0) {
		json_decref(mem);
		return rc;
	}
	if (json_array_size(mem) > 1) {
		/* id order, as the digest and the catalog list them */
		size_t n = json_array_size(mem);
		json_t **v = malloc(n * sizeof(*v)), *sorted = json_array();
		if (v == NULL || sorted == NULL) {
			free(v);
			json_decref(sorted);
			json_decref(mem);
			return -ENOMEM;
		}
		for (size_t j = 0; j < n; j++)
			v[j] = json_array_get(mem, j);
		qsort(v, n, sizeof(*v), by_id);
		for (size_t j = 0; j < n; j++)
			json_array_append(sorted, v[j]);
		free(v);
		json_decref(mem);
		mem = sorted;
	}
	*members = mem;
	return 0;
}

/* ---- writing ---- */

/* Takes the write lock and a read transaction for the rules. */
static int
wbegin(struct cs_store *st, MDB_txn **txn)
{
	int rc;

	if (st->lockfd < 0)
		return -EBADF;
	if (st->failed)
		return CS_EFAILED;
	pthread_mutex_lock(&st->wlock);
	if (st->failed) {
		pthread_mutex_unlock(&st->wlock);
		return CS_EFAILED;
	}
	rc = cs__catalog_rtxn(&st->cat, txn);
	if (rc < 0)
		pthread_mutex_unlock(&st->wlock);
	return rc;
}

/* Ends the read transaction, commits `ev` (consumed) if rc == 0, drops the lock. */
static int
wend(struct cs_store *st, MDB_txn *txn, json_t *ev, int rc, uint64_t *seq)
{
	uint64_t s = 0;

	mdb_txn_abort(txn);
	if (rc == 0 && ev == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = cs__store_commit(st, &ev, 1, &s);
	pthread_mutex_unlock(&st->wlock);
	json_decref(ev);
	if (rc == 0 && seq != NULL)
		*seq = s;
	return rc;
}

int
cs__write_begin(struct cs_store *st, MDB_txn **txn)
{
	return wbegin(st, txn);
}

int
cs__write_end(struct cs_store *st, MDB_txn *txn, json_t *ev, int rc, uint64_t *seq)
{
	return wend(st, txn, ev, rc, seq);
}

static int
case_rec(struct cs_store *st, MDB_txn *txn, const char *key, json_t **crec)
{
	int rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], key, strlen(key), crec);

	if (rc == MDB_NOTFOUND)
		return CS_ENOTFOUND;
	return rc == ENOMEM ? -ENOMEM : rc != 0 ? CS_ESTORE : 0;
}

static int
sealed(json_t *crec)
{
	const char *s = json_string_value(json_object_get(crec, "state"));

	return s != NULL && strcmp(s, "sealed") == 0;
}

/* A case event naming the case as written here and by its key. */
static json_t *
case_event(const char *type, const char *number, const char *key)
{
	return json_pack("{s:s, s:s, s:s}", "event", type, "case", number, "key", key);
}

static int
set_opt(json_t *ev, const char *field, const char *val)
{
	if (ev == NULL || val == NULL)
		return 0;
	return json_object_set_new(ev, field, json_string(val)) < 0 ? -ENOMEM : 0;
}

static const char *
party_canon(const char *p)
{
	if (p == NULL)
		return NULL;
	if (strcmp(p, "person") == 0 || strcmp(p, "natural-person") == 0 ||
	    strcmp(p, "自然人") == 0)
		return "person";
	if (strcmp(p, "organisation") == 0 || strcmp(p, "organization") == 0 ||
	    strcmp(p, "法人") == 0)
		return "organisation";
	return NULL;
}

int
cs_case_open(struct cs_store *st, const char *number, const struct cs_case_info *info,
    uint64_t *seq)
{
	static const struct cs_case_info none;
	const struct cs_case_info *in = info != NULL ? info : &none;
	json_t *crec = NULL, *ev = NULL;
	char *key = NULL;
	MDB_txn *txn;
	int rc;

	rc = cs_case_key(number, &key);
	if (rc < 0)
		return rc;
	if ((in->category && !cs__text_ok(in->category)) ||
	    (in->title && !cs__text_ok(in->title)) ||
	    (in->department && !cs__text_ok(in->department)) ||
	    (in->party && party_canon(in->party) == NULL)) {
		free(key);
		return CS_EFORMAT;
	}
	rc = wbegin(st, &txn);
	if (rc < 0) {
		free(key);
		return rc;
	}
	rc = case_rec(st, txn, key, &crec);
	if (rc == 0)
		rc = CS_EEXIST;
	else if (rc == CS_ENOTFOUND)
		rc = 0;
	if (rc == 0) {
		ev = case_event("case-open", number, key);
		rc = set_opt(ev, "category", in->category);
		if (rc == 0)
			rc = set_opt(ev, "title", in->title);
		if (rc == 0)
			rc = set_opt(ev, "department", in->department);
		if (rc == 0)
			rc = set_opt(ev, "party", party_canon(in->party));
	}
	json_decref(crec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

/* Common start of add/remove/close/seal: the case's key and record, refused if sealed. */
static int
case_begin(struct cs_store *st, const char *number, char **key, MDB_txn **txn, json_t **crec,
    const char **what)
{
	int rc = cs_case_key(number, key);

	if (rc < 0) {
		if (what != NULL)
			*what = "case";
		return rc;
	}
	rc = wbegin(st, txn);
	if (rc < 0) {
		free(*key);
		*key = NULL;
		return rc;
	}
	rc = case_rec(st, *txn, *key, crec);
	if (rc == CS_ENOTFOUND && what != NULL)
		*what = "case";
	if (rc == 0 && sealed(*crec))
		rc = CS_ESEALED;
	return rc;
}

static int
item_rec(struct cs_store *st, MDB_txn *txn, const char *id, json_t **rec, const char **what)
{
	int rc = cs__catalog_get_item(&st->cat, txn, id, rec);

	if (rc == CS_ENOTFOUND && what != NULL)
		*what = "item";
	return rc;
}

static int
is_member(json_t *rec, const char *key)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "key")), key) == 0)
			return 1;
	}
	return 0;
}

int
cs_case_add(struct cs_store *st, const char *number, const char *id, const char *stage,
    const char *reason, uint64_t *seq, const char **what)
{
	const char *canon = stage != NULL ? cs__stage_canon(stage) : NULL;
	json_t *crec = NULL, *rec = NULL, *ev = NULL;
	char *key = NULL;
	MDB_txn *txn = NULL;
	int rc;

	if ((stage != NULL && canon == NULL) || (reason != NULL && !cs__text_ok(reason))) {
		if (what != NULL)
			*what = stage != NULL && canon == NULL ? "stage" : "reason";
		return CS_EFORMAT;
	}
	rc = case_begin(st, number, &key, &txn, &crec, what);
	if (txn == NULL)
		return rc;
	if (rc == 0)
		rc = item_rec(st, txn, id, &rec, what);
	if (rc == 0 && is_member(rec, key))
		rc = CS_EEXIST;
	if (rc == 0) {
		ev = case_event("case-add", number, key);
		rc = set_opt(ev, "id", id);
		if (rc == 0)
			rc = set_opt(ev, "stage", canon);
		if (rc == 0)
			rc = set_opt(ev, "reason", reason);
	}
	json_decref(crec);
	json_decref(rec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

int
cs_case_remove(struct cs_store *st, const char *number, const char *id, const char *reason,
    uint64_t *seq, const char **what)
{
	json_t *crec = NULL, *rec = NULL, *ev = NULL;
	char *key = NULL;
	MDB_txn *txn = NULL;
	int rc;

	if (!cs__text_ok(reason)) {
		if (what != NULL)
			*what = "reason";
		return CS_EFORMAT;
	}
	rc = case_begin(st, number, &key, &txn, &crec, what);
	if (txn == NULL)
		return rc;
	if (rc == 0)
		rc = item_rec(st, txn, id, &rec, what);
	if (rc == 0 && !is_member(rec, key)) {
		rc = CS_ENOTFOUND;
		if (what != NULL)
			*what = "member";
	}
	if (rc == 0) {
		ev = case_event("case-remove", number, key);
		rc = set_opt(ev, "id", id);
		if (rc == 0)
			rc = set_opt(ev, "reason", reason);
	}
	json_decref(crec);
	json_decref(rec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

/* The current members of case `key`, id order. */
static int
members_in(struct cs_store *st, MDB_txn *txn, const char *key, json_t **out);

int
cs_case_close(struct cs_store *st, const char *number, const char *reason, uint64_t *seq)
{
	json_t *crec = NULL, *ev = NULL;
	char *key = NULL;
	MDB_txn *txn = NULL;
	const char *state;
	int rc;

	if (reason != NULL && !cs__text_ok(reason))
		return CS_EFORMAT;
	rc = case_begin(st, number, &key, &txn, &crec, NULL);
	if (txn == NULL)
		return rc;
	state = json_string_value(json_object_get(crec, "state"));
	if (rc == 0 && state != NULL && strcmp(state, "closed") == 0)
		rc = CS_EEXIST;
	if (rc == 0) {
		ev = case_event("case-close", number, key);
		rc = set_opt(ev, "reason", reason);
	}
	json_decref(crec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

int
cs_case_seal(struct cs_store *st, const char *number, const char *reason, uint64_t *seq)
{
	json_t *crec = NULL, *ev = NULL, *members = NULL;
	char *key = NULL, hex[65];
	MDB_txn *txn = NULL;
	int rc;

	if (reason != NULL && !cs__text_ok(reason))
		return CS_EFORMAT;
	rc = case_begin(st, number, &key, &txn, &crec, NULL);
	if (txn == NULL)
		return rc;
	if (rc == 0)
		rc = members_in(st, txn, key, &members);
	if (rc == 0)
		rc = cs_case_members_digest(members, hex);
	if (rc == 0) {
		ev = case_event("case-seal", number, key);
		rc = set_opt(ev, "members_sha256", hex);
		if (rc == 0 && json_object_set_new(ev, "members",
		                   json_integer((json_int_t)json_array_size(members))) < 0)
			rc = -ENOMEM;
		if (rc == 0)
			rc = set_opt(ev, "reason", reason);
	}
	json_decref(members);
	json_decref(crec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

/* Checks one corrected value; returns it as the event carries it (new reference) or NULL. */
static json_t *
amend_value(const char *target, const char *field, const char *value, int *bad)
{
	*bad = 1;
	if (strcmp(target, "membership") == 0) {
		if (strcmp(field, "stage") == 0 && cs__stage_canon(value) != NULL) {
			*bad = 0;
			return json_string(cs__stage_canon(value));
		}
		return NULL;
	}
	if (strcmp(target, "case") == 0) {
		if (strcmp(field, "party") == 0) {
			if (party_canon(value) == NULL)
				return NULL;
			*bad = 0;
			return json_string(party_canon(value));
		}
		if ((strcmp(field, "category") == 0 || strcmp(field, "title") == 0 ||
		        strcmp(field, "department") == 0) && cs__text_ok(value)) {
			*bad = 0;
			return json_string(value);
		}
		return NULL;
	}
	/* a sighting: the same rules as at ingest */
	if (strcmp(field, "officers") == 0 || strcmp(field, "officer") == 0) {
		const char *officers[64];
		struct cs_meta m = {0};
		char *copy = strdup(value), *save = NULL, *tok;
		json_t *arr = NULL, *mj = NULL;
		m.officers = officers;
		if (copy == NULL) {
			*bad = 0;
			return NULL;
		}
		for (tok = strtok_r(copy, ",", &save); tok != NULL && m.n_officers < 64;
		     tok = strtok_r(NULL, ",", &save))
			officers[m.n_officers++] = tok;
		if (m.n_officers > 0 && tok == NULL && cs__meta_json(&m, &mj, NULL) == 0) {
			arr = json_incref(json_object_get(mj, "officers"));
			*bad = 0;
		}
		json_decref(mj);
		free(copy);
		return arr;
	}
	{
		struct cs_meta m = {0};
		json_t *mj = NULL, *v = NULL;
		const char *key = field;
		if (strcmp(field, "device") == 0)
			m.device = value;
		else if (strcmp(field, "category") == 0)
			m.category = value;
		else if (strcmp(field, "stage") == 0)
			m.stage = value;
		else if (strcmp(field, "recorded_start") == 0 ||
		    strcmp(field, "recorded-at") == 0) {
			m.recorded_start = value;
			key = "recorded_start";
		} else if (strcmp(field, "recorded_end") == 0 ||
		    strcmp(field, "recorded-end") == 0) {
			m.recorded_end = value;
			key = "recorded_end";
		} else
			return NULL;
		if (cs__meta_json(&m, &mj, NULL) == 0) {
			v = json_incref(json_object_get(mj, key));
			*bad = 0;
		}
		json_decref(mj);
		return v;
	}
}

/* The field name as stored ("officer" and "recorded-at" are accepted spellings). */
static const char *
field_name(const char *f)
{
	if (strcmp(f, "officer") == 0)
		return "officers";
	if (strcmp(f, "recorded-at") == 0)
		return "recorded_start";
	if (strcmp(f, "recorded-end") == 0)
		return "recorded_end";
	return f;
}

int
cs_amend(struct cs_store *st, const char *id, long long sighting, const char *number,
    const char *const *fields, const char *const *values, size_t n, const char *reason,
    uint64_t *seq, const char **what)
{
	const char *target = id != NULL && number != NULL ? "membership" :
	    id != NULL                                    ? "sighting" :
	                                                    "case";
	json_t *crec = NULL, *rec = NULL, *ev = NULL, *set = NULL;
	char *key = NULL;
	MDB_txn *txn = NULL;
	int rc = 0;

	if (id == NULL && number == NULL)
		return -EINVAL;
	if (!cs__text_ok(reason)) {
		if (what != NULL)
			*what = "reason";
		return CS_EFORMAT;
	}
	if (n == 0) {
		if (what != NULL)
			*what = "set";
		return CS_EFORMAT;
	}
	set = json_object();
	if (set == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int bad;
		json_t *v = amend_value(target, fields[i], values[i], &bad);
		if (v == NULL) {
			rc = bad ? CS_EFORMAT : -ENOMEM;
			if (bad && what != NULL)
				*what = fields[i];
		} else if (json_object_set_new(set, field_name(fields[i]), v) < 0) {
			rc = -ENOMEM;
		}
	}
	if (rc < 0) {
		json_decref(set);
		return rc;
	}
	if (number != NULL) {
		rc = case_begin(st, number, &key, &txn, &crec, what);
	} else {
		rc = wbegin(st, &txn);
		if (rc < 0) {
			json_decref(set);
			return rc;
		}
	}
	if (txn == NULL) {
		json_decref(set);
		return rc;
	}
	if (rc == 0 && id != NULL)
		rc = item_rec(st, txn, id, &rec, what);
	if (rc == 0 && key != NULL && id != NULL && !is_member(rec, key)) {
		rc = CS_ENOTFOUND;
		if (what != NULL)
			*what = "member";
	}
	if (rc == 0 && key == NULL) {
		/* a sighting: which one, and not of an item in a sealed case */
		json_t *seen = json_object_get(rec, "seen"), *s, *m;
		size_t i;
		int found = 0;
		if (sighting < 0) {
			if (json_array_size(seen) != 1) {
				rc = CS_EEXIST;
				if (what != NULL)
					*what = "sighting";
			} else {
				sighting = (long long)json_integer_value(
				    json_object_get(json_array_get(seen, 0), "seq"));
			}
		}
		json_array_foreach(seen, i, s)
		{
			found |= json_integer_value(json_object_get(s, "seq")) == sighting;
		}
		if (rc == 0 && !found) {
			rc = CS_ENOTFOUND;
			if (what != NULL)
				*what = "sighting";
		}
		json_array_foreach(json_object_get(rec, "cases"), i, m)
		{
			json_t *c = NULL;
			const char *k = json_string_value(json_object_get(m, "key"));
			if (rc == 0 && k != NULL && case_rec(st, txn, k, &c) == 0 && sealed(c))
				rc = CS_ESEALED; /* the caller finds which in the item's cases */
			json_decref(c);
		}
	}
	if (rc == 0) {
		ev = json_pack("{s:s, s:O, s:s}", "event", "amend", "set", set, "reason", reason);
		if (ev != NULL && id != NULL)
			rc = set_opt(ev, "id", id);
		if (rc == 0 && ev != NULL && number != NULL) {
			rc = set_opt(ev, "case", number);
			if (rc == 0)
				rc = set_opt(ev, "key", key);
		}
		if (rc == 0 && ev != NULL && key == NULL &&
		    json_object_set_new(ev, "sighting", json_integer(sighting)) < 0)
			rc = -ENOMEM;
	}
	json_decref(set);
	json_decref(crec);
	json_decref(rec);
	free(key);
	return wend(st, txn, ev, rc, seq);
}

int
cs__case_ingest_check(struct cs_store *st, MDB_txn *txn, const char *id, json_t *meta)
{
	const char *number = json_string_value(json_object_get(meta, "case"));
	json_t *crec = NULL;
	char *key = NULL;
	int rc;

	if (number == NULL)
		return 0;
	rc = cs_case_key(number, &key);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return 0; /* a number without a key is kept with the sighting only */
	rc = case_rec(st, txn, key, &crec);
	if (rc == 0 && sealed(crec))
		cs__store_log(st, CS_LOG_WARN,
		    "%s arrived with case number %s, whose case file is sealed: it is secured, "
		    "not added to the case",
		    id, number);
	json_decref(crec);
	free(key);
	return rc == CS_ENOTFOUND || rc == 0 ? 0 : rc;
}

/* ---- reading ---- */

static int
case_get_in(struct cs_store *st, const char *number, char **key, MDB_txn **txn, json_t **crec)
{
	int rc = cs_case_key(number, key);

	if (rc < 0)
		return rc == CS_EFORMAT ? CS_ENOTFOUND : rc;
	rc = cs__catalog_rtxn(&st->cat, txn);
	if (rc < 0) {
		free(*key);
		*key = NULL;
		return rc;
	}
	rc = case_rec(st, *txn, *key, crec);
	if (rc < 0) {
		mdb_txn_abort(*txn);
		*txn = NULL;
		free(*key);
		*key = NULL;
	}
	return rc;
}

int
cs_store_case_get(struct cs_store *st, const char *number, json_t **out)
{
	MDB_txn *txn = NULL;
	char *key = NULL;
	int rc = case_get_in(st, number, &key, &txn, out);

	if (rc == 0) {
		mdb_txn_abort(txn);
		free(key);
	}
	return rc;
}

static int
append_val(void *ctx, const char *key, size_t keylen, json_t *val)
{
	(void)key;
	(void)keylen;
	return json_array_append(ctx, val) < 0 ? -ENOMEM : 0;
}

static int
members_in(struct cs_store *st, MDB_txn *txn, const char *key, json_t **out)
{
	json_t *arr = json_array();
	int rc;

	if (arr == NULL)
		return -ENOMEM;
	/* the prefix with its 0x00 separator */
	rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_MEMBERS], key, strlen(key) + 1, append_val, arr);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int
cs_store_case_members(struct cs_store *st, const char *number, json_t **out)
{
	MDB_txn *txn = NULL;
	json_t *crec = NULL;
	char *key = NULL;
	int rc = case_get_in(st, number, &key, &txn, &crec);

	if (rc < 0)
		return rc;
	rc = members_in(st, txn, key, out);
	mdb_txn_abort(txn);
	json_decref(crec);
	free(key);
	return rc;
}

int
cs_store_case_list(struct cs_store *st, json_t **out)
{
	json_t *arr = json_array();
	MDB_txn *txn;
	int rc;

	if (arr == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0) {
		rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_CASES], "", 0, append_val, arr);
		mdb_txn_abort(txn);
	}
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int
case_seqs(struct cs_store *st, const char *number, uint64_t **seqs, size_t *n)
{
	MDB_txn *txn = NULL;
	json_t *crec = NULL;
	char *key = NULL;
	int rc = case_get_in(st, number, &key, &txn, &crec);

	if (rc < 0)
		return rc;
	rc = cs__cat_seqs(&st->cat, txn, st->cat.dbi[CS_DBI_CASE_EVENTS], key, seqs, n);
	mdb_txn_abort(txn);
	json_decref(crec);
	free(key);
	return rc;
}

int
cs_store_case_events(struct cs_store *st, const char *number, json_t **out)
{
	uint64_t *seqs = NULL;
	json_t *arr;
	size_t n = 0;
	int rc = case_seqs(st, number, &seqs, &n);

	if (rc < 0)
		return rc;
	arr = json_array();
	rc = arr == NULL ? -ENOMEM : 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		json_t *ev = NULL;
		rc = cs_store_event(st, seqs[i], &ev, NULL, NULL);
		if (rc == 0 && json_array_append_new(arr, json_pack("{s:I, s:o}", "seq",
		                                             (json_int_t)seqs[i], "event", ev)) < 0)
			rc = -ENOMEM;
	}
	free(seqs);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int
cs_store_prove_events(struct cs_store *st, const uint64_t *seqs, size_t n, char **out)
{
	struct cs__merkle_ctx m = {&st->cat, NULL};
	struct cs__cp cp = {0}; /* the newest checkpoint, its signature checked */
	char *all = NULL;
	size_t total = 0;
	int rc;

	if (n == 0)
		return CS_ENOTFOUND;
	rc = cs__checkpoint_newest(st, &cp);
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &m.txn);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct cs_tlog_proof p = {0};
		char *raw = NULL, *one = NULL, *grown;
		size_t rawlen = 0, onelen = 0;
		if (seqs[i] >= cp.size) {
			rc = -EAGAIN;
			break;
		}
		rc = cs_store_event(st, seqs[i], NULL, &raw, &rawlen);
		if (rc == 0)
			rc = cs_merkle_inclusion_proof(cs__catalog_merkle_get, &m, seqs[i], cp.size,
			    p.hashes, &p.count);
		if (rc == 0) {
			p.index = seqs[i];
			p.extra = (uint8_t *)raw;
			p.extra_len = rawlen;
			p.checkpoint = cp.note;
			p.checkpoint_len = cp.len;
			rc = cs_tlog_proof_format(&p, &one, &onelen);
		}
		free(raw);
		if (rc == 0) {
			grown = realloc(all, total + onelen + 1);
			if (grown == NULL) {
				rc = -ENOMEM;
			} else {
				all = grown;
				memcpy(all + total, one, onelen + 1);
				total += onelen;
			}
		}
		free(one);
	}
	if (m.txn != NULL)
		mdb_txn_abort(m.txn);
	free(cp.note);
	if (rc < 0) {
		free(all);
		return rc;
	}
	*out = all;
	return 0;
}

int
cs_store_prove_case(struct cs_store *st, const char *number, char **out)
{
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rc = case_seqs(st, number, &seqs, &n);

	if (rc == 0)
		rc = cs_store_prove_events(st, seqs, n, out);
	free(seqs);
	return rc;
}

int
cs_store_prove_item(struct cs_store *st, const char *id, char **out)
{
	uint64_t *seqs = NULL;
	json_t *rec = NULL;
	MDB_txn *txn;
	size_t n = 0;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc == 0)
		rc = cs__catalog_item_seqs(&st->cat, txn, id, &seqs, &n);
	mdb_txn_abort(txn);
	json_decref(rec);
	if (rc == 0)
		rc = n > 0 ? cs_store_prove_events(st, seqs, n, out) : CS_ELEDGER;
	free(seqs);
	return rc;
}
