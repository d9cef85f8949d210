/*
 * The evidence model's projection: what case-open, case-add, case-remove,
 * case-close, case-seal and amend events (and the sightings of ingest and
 * sighting events) make of the catalog. Called only by cs__catalog_apply(),
 * inside its write transaction, both live and in replay, so the catalog is
 * the ledger's replay by construction. An event that does not fit (a case
 * that does not exist, a change to a sealed case) is a ledger problem: -1
 * with *why set. docs/formats.md section 5 describes the events, section 7
 * the tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "custos/case.h"
#include "custos/error.h"

/* An LMDB-style code from a jansson call that returned < 0 or NULL. */
#define JOK(x) ((x) < 0 ? ENOMEM : 0)

static const char *const sighting_fields[] = {"source", "name", "case", "category", "stage",
	"officers", "device", "recorded_start", "recorded_end", "extra", NULL};

/* Members table key: case key, 0x00, item id. */
static char *
member_key(const char *key, const char *id, size_t *len)
{
	size_t kl = strlen(key), il = strlen(id);
	char *m = malloc(kl + 1 + il + 1);

	if (m == NULL)
		return NULL;
	memcpy(m, key, kl);
	m[kl] = '\0';
	memcpy(m + kl + 1, id, il + 1);
	*len = kl + 1 + il;
	return m;
}

/* {"seq", "time", "actor"?} of an event: where a value came from. */
static json_t *
origin(json_t *ev, uint64_t seq)
{
	json_t *o = json_pack("{s:I, s:O*}", "seq", (json_int_t)seq, "time",
	    json_object_get(ev, "time"));

	if (o != NULL && json_object_get(ev, "actor") != NULL &&
	    json_object_set(o, "actor", json_object_get(ev, "actor")) < 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* Adds a sighting (ingest's item or a sighting event's facts) to rec's "seen" list. */
static int
add_seen(json_t *rec, json_t *ev, uint64_t seq, json_t *facts)
{
	json_t *seen = json_object_get(rec, "seen"), *s = origin(ev, seq);
	int rc = s == NULL ? ENOMEM : 0;

	if (rc == 0 && seen == NULL) {
		seen = json_array();
		rc = seen == NULL ? ENOMEM : JOK(json_object_set_new(rec, "seen", seen));
	}
	for (size_t i = 0; rc == 0 && sighting_fields[i] != NULL; i++) {
		json_t *v = json_object_get(facts, sighting_fields[i]);
		if (v != NULL)
			rc = JOK(json_object_set(s, sighting_fields[i], v));
	}
	if (rc == 0)
		return JOK(json_array_append_new(seen, s));
	json_decref(s);
	return rc;
}

/*
 * Stores an item's changed record, its secondary indexes following it from
 * the record stored before (a membership's stage is indexed too).
 */
static int
put_item(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	json_t *old = NULL;
	int rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &old);

	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = cs__cat_reindex(c, txn, id, rc == 0 ? old : NULL, rec);
	json_decref(old);
	if (rc == 0)
		rc = cs__cat_put_item(c, txn, id, rec);
	return rc;
}

static int
get_case(struct cs__catalog *c, MDB_txn *txn, const char *key, json_t **rec)
{
	return cs__cat_get(txn, c->dbi[CS_DBI_CASES], key, strlen(key), rec);
}

static int
is_sealed(json_t *crec)
{
	const char *s = json_string_value(json_object_get(crec, "state"));

	return s != NULL && strcmp(s, "sealed") == 0;
}

/* 1 if the item is a member of a sealed case, 0 if not, or an LMDB code (> 1 never: codes > 0). */
static int
item_in_sealed(struct cs__catalog *c, MDB_txn *txn, json_t *rec, int *sealed)
{
	json_t *m;
	size_t i;

	*sealed = 0;
	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		json_t *crec = NULL;
		const char *k = json_string_value(json_object_get(m, "key"));
		int rc = k != NULL ? get_case(c, txn, k, &crec) : MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (is_sealed(crec))
			*sealed = 1;
		json_decref(crec);
	}
	return 0;
}

/* Adds `id` to case `key` (record crec, changed and stored by the caller). */
static int
add_member(struct cs__catalog *c, MDB_txn *txn, json_t *crec, const char *key, json_t *rec,
    const char *id, json_t *ev, uint64_t seq, json_t *stage, json_t *reason)
{
	json_t *mem = origin(ev, seq), *cases = json_object_get(rec, "cases"), *ent;
	size_t mlen;
	char *mk = member_key(key, id, &mlen);
	int rc = mem == NULL || mk == NULL ? ENOMEM : 0;

	if (rc == 0 && stage != NULL)
		rc = JOK(json_object_set(mem, "stage", stage));
	if (rc == 0 && reason != NULL)
		rc = JOK(json_object_set(mem, "reason", reason));
	if (rc == 0)
		rc = JOK(json_object_set_new(mem, "id", json_string(id)));
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_MEMBERS], mk, mlen, mem);
	if (rc == 0 && cases == NULL) {
		cases = json_array();
		rc = cases == NULL ? ENOMEM : JOK(json_object_set_new(rec, "cases", cases));
	}
	if (rc == 0) {
		ent = json_pack("{s:O, s:s, s:I}", "case", json_object_get(crec, "number"), "key",
		    key, "since", (json_int_t)seq);
		if (ent != NULL && stage != NULL && json_object_set(ent, "stage", stage) < 0) {
			json_decref(ent);
			ent = NULL;
		}
		rc = ent == NULL ? ENOMEM : JOK(json_array_append_new(cases, ent));
	}
	if (rc == 0) {
		MDB_val k = {strlen(key), (void *)key}, d = {strlen(id), (void *)id};
		rc = mdb_put(txn, c->dbi[CS_DBI_BY_CASE], &k, &d, MDB_NODUPDATA);
		if (rc == MDB_KEYEXIST)
			rc = 0;
	}
	if (rc == 0)
		rc = JOK(json_object_set_new(crec, "members",
		    json_integer(json_integer_value(json_object_get(crec, "members")) + 1)));
	json_decref(mem);
	free(mk);
	return rc;
}

/* The index of case `key` in rec's "cases", or -1. */
static long
case_index(json_t *rec, const char *key)
{
	json_t *m;
	size_t i;

	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		const char *k = json_string_value(json_object_get(m, "key"));
		if (k != NULL && strcmp(k, key) == 0)
			return (long)i;
	}
	return -1;
}

/*
 * An ingest or sighting that came with a case number: the item joins that
 * case (opened if new, marked "implicit") in the same event, unless the
 * case is sealed or the item is in it already.
 */
static int
sighting_member(struct cs__catalog *c, MDB_txn *txn, json_t *rec, json_t *ev, uint64_t seq,
    json_t *facts)
{
	const char *number = json_string_value(json_object_get(facts, "case"));
	const char *id = json_string_value(json_object_get(rec, "id"));
	json_t *crec = NULL;
	char *key = NULL;
	int rc;

	if (number == NULL || id == NULL)
		return 0;
	rc = cs_case_key(number, &key);
	if (rc == -ENOMEM)
		return ENOMEM;
	if (rc < 0)
		return 0; /* not a number a key can be made of: no case file */
	rc = get_case(c, txn, key, &crec);
	if (rc == MDB_NOTFOUND) {
		/* not "o*": a member left out for lack of memory would change the projection */
		json_t *o = origin(ev, seq);
		crec = o != NULL ? json_pack("{s:s, s:s, s:s, s:o, s:i, s:b}", "number", number,
		                       "key", key, "state", "open", "opened", o, "members", 0,
		                       "implicit", 1) :
		                   NULL;
		rc = crec == NULL ? ENOMEM : 0;
	}
	if (rc == 0 && is_sealed(crec))
		goto out; /* secured, not added: the case file is sealed */
	if (rc == 0 && case_index(rec, key) < 0)
		rc = add_member(c, txn, crec, key, rec, id, ev, seq,
		    json_object_get(facts, "stage"), NULL);
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_CASES], key, strlen(key), crec);
	if (rc == 0)
		rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
out:
	json_decref(crec);
	free(key);
	return rc;
}

/* A correction record: what changed, from what, by which event. */
static int
add_correction(json_t *holder, json_t *ev, uint64_t seq, json_t *target, const char *field,
    json_t *from, json_t *to)
{
	json_t *list = json_object_get(holder, "corrections"), *o = origin(ev, seq);
	int rc = o == NULL ? ENOMEM : 0;

	if (rc == 0 && list == NULL) {
		list = json_array();
		rc = list == NULL ? ENOMEM : JOK(json_object_set_new(holder, "corrections", list));
	}
	if (rc == 0)
		rc = JOK(json_object_set_new(o, "field", json_string(field)));
	if (rc == 0)
		rc = JOK(json_object_set_new(o, "from",
		    from != NULL ? json_copy(from) : json_null()));
	if (rc == 0)
		rc = JOK(json_object_set(o, "to", to));
	if (rc == 0 && json_object_get(ev, "reason") != NULL)
		rc = JOK(json_object_set(o, "reason", json_object_get(ev, "reason")));
	if (rc == 0 && target != NULL)
		rc = JOK(json_object_update(o, target));
	if (rc == 0)
		return JOK(json_array_append_new(list, o));
	json_decref(o);
	return rc;
}

/* The digest of case `key`'s current member list. */
static int
members_of(struct cs__catalog *c, MDB_txn *txn, const char *key, json_t **out);

static int
apply_amend(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	const char *id = json_string_value(json_object_get(ev, "id"));
	const char *key = json_string_value(json_object_get(ev, "key"));
	json_t *set = json_object_get(ev, "set"), *rec = NULL, *old = NULL, *crec = NULL, *v;
	const char *field;
	int rc = 0, sealed = 0;

	if (!json_is_object(set) || json_object_size(set) == 0) {
		*why = "amend event sets no field";
		return -1;
	}
	if (key != NULL) {
		rc = get_case(c, txn, key, &crec);
		if (rc == MDB_NOTFOUND) {
			*why = "amend event names an unknown case file";
			return -1;
		}
		if (rc != 0)
			return rc;
		if (is_sealed(crec)) {
			*why = "amend event changes a sealed case file";
			rc = -1;
			goto out;
		}
	}
	if (id != NULL) {
		rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
		if (rc == MDB_NOTFOUND) {
			*why = "amend event names an unknown evidence id";
			rc = -1;
		}
		if (rc != 0)
			goto out;
	}
	if (id != NULL && key != NULL) {
		/* a membership: its stage */
		long i = case_index(rec, key);
		size_t mlen;
		char *mk;
		json_t *mem = NULL, *ent, *target;
		if (i < 0) {
			*why = "amend event names a membership that does not exist";
			rc = -1;
			goto out;
		}
		ent = json_array_get(json_object_get(rec, "cases"), (size_t)i);
		mk = member_key(key, id, &mlen);
		if (mk == NULL) {
			rc = ENOMEM;
			goto out;
		}
		rc = cs__cat_get(txn, c->dbi[CS_DBI_MEMBERS], mk, mlen, &mem);
		target = json_pack("{s:s, s:O}", "target", "membership", "case",
		    json_object_get(crec, "number"));
		if (rc == 0 && target == NULL)
			rc = ENOMEM;
		json_object_foreach(set, field, v)
		{
			if (rc != 0)
				break;
			if (strcmp(field, "stage") != 0 || !json_is_string(v)) {
				*why = "amend event sets a field a membership does not have";
				rc = -1;
				break;
			}
			rc = add_correction(rec, ev, seq, target, field,
			    json_object_get(ent, field), v);
			if (rc == 0)
				rc = JOK(json_object_set(ent, field, v));
			if (rc == 0)
				rc = JOK(json_object_set(mem, field, v));
		}
		json_decref(target);
		if (rc == 0)
			rc = cs__cat_put(txn, c->dbi[CS_DBI_MEMBERS], mk, mlen, mem);
		json_decref(mem);
		free(mk);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
		if (rc == 0)
			rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
	} else if (id != NULL) {
		/* a sighting: the one whose event is ev.sighting */
		json_t *seen = json_object_get(rec, "seen"), *s = NULL, *target;
		json_int_t want = json_integer_value(json_object_get(ev, "sighting"));
		size_t i, at = 0;
		rc = item_in_sealed(c, txn, rec, &sealed);
		if (rc != 0)
			goto out;
		if (sealed) {
			*why = "amend event changes an item in a sealed case file";
			rc = -1;
			goto out;
		}
		json_array_foreach(seen, i, v)
		{
			if (s == NULL && json_integer_value(json_object_get(v, "seq")) == want) {
				s = v;
				at = i;
			}
		}
		if (s == NULL || !json_is_integer(json_object_get(ev, "sighting"))) {
			*why = "amend event names a sighting the item does not have";
			rc = -1;
			goto out;
		}
		old = json_deep_copy(rec);
		target = json_pack("{s:s, s:I}", "target", "sighting", "sighting", want);
		if (old == NULL || target == NULL)
			rc = ENOMEM;
		json_object_foreach(set, field, v)
		{
			int ok = 0;
			if (rc != 0)
				break;
			for (size_t f = 0; sighting_fields[f] != NULL; f++)
				ok |= strcmp(field, sighting_fields[f]) == 0;
			if (!ok || strcmp(field, "name") == 0 || strcmp(field, "source") == 0 ||
			    strcmp(field, "case") == 0 || strcmp(field, "extra") == 0) {
				*why = "amend event sets a field a sighting does not have";
				rc = -1;
				break;
			}
			rc = add_correction(rec, ev, seq, target, field, json_object_get(s, field),
			    v);
			if (rc == 0)
				rc = JOK(json_object_set(s, field, v));
			/* the record's own fields are its first sighting's */
			if (rc == 0 && at == 0)
				rc = JOK(json_object_set(rec, field, v));
		}
		json_decref(target);
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
		if (rc == 0)
			rc = cs__cat_reindex(c, txn, id, old, rec);
	} else if (key != NULL) {
		/* the case file's facts */
		json_object_foreach(set, field, v)
		{
			if (rc != 0)
				break;
			if (strcmp(field, "category") != 0 && strcmp(field, "title") != 0 &&
			    strcmp(field, "department") != 0 && strcmp(field, "party") != 0) {
				*why = "amend event sets a field a case file does not have";
				rc = -1;
				break;
			}
			rc = add_correction(crec, ev, seq, NULL, field,
			    json_object_get(crec, field), v);
			if (rc == 0)
				rc = JOK(json_object_set(crec, field, v));
		}
		if (rc == 0)
			rc = cs__cat_put(txn, c->dbi[CS_DBI_CASES], key, strlen(key), crec);
		if (rc == 0)
			rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
	} else {
		*why = "amend event names neither an item nor a case file";
		rc = -1;
	}
out:
	json_decref(old);
	json_decref(rec);
	json_decref(crec);
	return rc;
}

struct collect {
	json_t *arr;
};

static int
collect_member(void *ctx, const char *key, size_t keylen, json_t *val)
{
	struct collect *cl = ctx;

	(void)key;
	(void)keylen;
	return json_array_append(cl->arr, val) < 0 ? -ENOMEM : 0;
}

static int
members_of(struct cs__catalog *c, MDB_txn *txn, const char *key, json_t **out)
{
	struct collect cl = {json_array()};
	size_t kl = strlen(key);
	char *prefix = malloc(kl + 1);
	int rc;

	if (cl.arr == NULL || prefix == NULL) {
		json_decref(cl.arr);
		free(prefix);
		return ENOMEM;
	}
	memcpy(prefix, key, kl + 1); /* with its 0x00 separator */
	rc = cs__cat_each(txn, c->dbi[CS_DBI_MEMBERS], prefix, kl + 1, collect_member, &cl);
	free(prefix);
	if (rc < 0) {
		json_decref(cl.arr);
		return rc == -ENOMEM ? ENOMEM : MDB_CORRUPTED;
	}
	*out = cl.arr;
	return 0;
}

static int
apply_case(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type, uint64_t seq,
    const char **why)
{
	const char *key = json_string_value(json_object_get(ev, "key"));
	const char *number = json_string_value(json_object_get(ev, "case"));
	const char *id = json_string_value(json_object_get(ev, "id"));
	json_t *crec = NULL, *rec = NULL;
	int rc;

	if (key == NULL || number == NULL || *key == '\0') {
		*why = "case event lacks a case number or key";
		return -1;
	}
	rc = get_case(c, txn, key, &crec);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (strcmp(type, "case-open") == 0) {
		static const char *const facts[] = {"category", "title", "department", "party",
			NULL};
		if (rc == 0) {
			*why = "case-open event opens a case file that is already open";
			rc = -1;
			goto out;
		}
		json_t *o = origin(ev, seq);
		crec = o != NULL ? json_pack("{s:s, s:s, s:s, s:o, s:i}", "number", number, "key",
		                       key, "state", "open", "opened", o, "members", 0) :
		                   NULL;
		rc = crec == NULL ? ENOMEM : 0;
		for (size_t i = 0; rc == 0 && facts[i] != NULL; i++)
			if (json_object_get(ev, facts[i]) != NULL)
				rc = JOK(json_object_set(crec, facts[i],
				    json_object_get(ev, facts[i])));
		goto store;
	}
	if (rc == MDB_NOTFOUND) {
		*why = "case event names a case file that was never opened";
		return -1;
	}
	if (is_sealed(crec)) {
		*why = "case event changes a sealed case file";
		rc = -1;
		goto out;
	}
	if (strcmp(type, "case-add") == 0 || strcmp(type, "case-remove") == 0) {
		long i;
		if (id == NULL) {
			*why = "case event lacks an evidence id";
			rc = -1;
			goto out;
		}
		rc = cs__cat_get(txn, c->dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
		if (rc == MDB_NOTFOUND) {
			*why = "case event names an unknown evidence id";
			rc = -1;
		}
		if (rc != 0)
			goto out;
		i = case_index(rec, key);
		if (strcmp(type, "case-add") == 0) {
			if (i >= 0) {
				*why = "case-add event adds an item the case file already holds";
				rc = -1;
				goto out;
			}
			rc = add_member(c, txn, crec, key, rec, id, ev, seq,
			    json_object_get(ev, "stage"), json_object_get(ev, "reason"));
		} else {
			size_t mlen;
			char *mk;
			MDB_val k = {strlen(key), (void *)key}, d = {strlen(id), (void *)id}, mv;
			if (i < 0) {
				*why = "case-remove event removes an item the case file does not "
				       "hold";
				rc = -1;
				goto out;
			}
			rc = JOK(json_array_remove(json_object_get(rec, "cases"), (size_t)i));
			mk = rc == 0 ? member_key(key, id, &mlen) : NULL;
			if (rc == 0 && mk == NULL)
				rc = ENOMEM;
			if (rc == 0) {
				mv.mv_size = mlen;
				mv.mv_data = mk;
				rc = mdb_del(txn, c->dbi[CS_DBI_MEMBERS], &mv, NULL);
			}
			free(mk);
			if (rc == 0)
				rc = mdb_del(txn, c->dbi[CS_DBI_BY_CASE], &k, &d);
			if (rc == 0)
				rc = JOK(json_object_set_new(crec, "members",
				    json_integer(
				        json_integer_value(json_object_get(crec, "members")) - 1)));
		}
		if (rc == 0)
			rc = put_item(c, txn, id, rec);
	} else if (strcmp(type, "case-close") == 0) {
		json_t *o = origin(ev, seq);
		if (o != NULL && json_object_get(ev, "reason") != NULL &&
		    json_object_set(o, "reason", json_object_get(ev, "reason")) < 0) {
			json_decref(o);
			o = NULL;
		}
		rc = o == NULL ? ENOMEM : JOK(json_object_set_new(crec, "closed", o));
		if (rc == 0)
			rc = JOK(json_object_set_new(crec, "state", json_string("closed")));
	} else if (strcmp(type, "case-seal") == 0) {
		const char *want = json_string_value(json_object_get(ev, "members_sha256"));
		json_t *members = NULL, *o;
		char hex[65];
		rc = members_of(c, txn, key, &members);
		if (rc == 0 && cs_case_members_digest(members, hex) < 0)
			rc = ENOMEM;
		json_decref(members);
		if (rc != 0)
			goto out;
		if (want == NULL || strcmp(want, hex) != 0) {
			*why = "case-seal event's member digest does not match the case file's "
			       "members";
			rc = -1;
			goto out;
		}
		o = origin(ev, seq);
		if (o != NULL &&
		    (json_object_set_new(o, "members_sha256", json_string(hex)) < 0 ||
		        (json_object_get(ev, "reason") != NULL &&
		            json_object_set(o, "reason", json_object_get(ev, "reason")) < 0))) {
			json_decref(o);
			o = NULL;
		}
		rc = o == NULL ? ENOMEM : JOK(json_object_set_new(crec, "seal", o));
		if (rc == 0)
			rc = JOK(json_object_set_new(crec, "state", json_string("sealed")));
	} else {
		rc = 0; /* a case event of a later version: kept in the case file's events */
	}
store:
	if (rc == 0)
		rc = cs__cat_put(txn, c->dbi[CS_DBI_CASES], key, strlen(key), crec);
	if (rc == 0)
		rc = cs__cat_put_seq(txn, c->dbi[CS_DBI_CASE_EVENTS], key, seq);
out:
	json_decref(rec);
	json_decref(crec);
	return rc;
}

int
cs__project_event(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, json_t *rec, const char **why)
{
	if (strcmp(type, "ingest") == 0 || strcmp(type, "sighting") == 0) {
		json_t *facts =
		    json_object_get(ev, strcmp(type, "ingest") == 0 ? "item" : "sighting");
		int rc = add_seen(rec, ev, seq, facts);
		if (rc == 0)
			rc = sighting_member(c, txn, rec, ev, seq, facts);
		return rc;
	}
	if (strcmp(type, "amend") == 0)
		return apply_amend(c, txn, ev, seq, why);
	return apply_case(c, txn, ev, type, seq, why);
}
