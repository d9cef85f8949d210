/*
 * Decisions' publication records and withdrawal dates (custos/disclosure.h):
 * the checks before a disclosure-* event is written (under the write lock,
 * against the catalog), the calendar rule of the withdrawal date, the
 * projection of the events into the catalog's "disclosure" table (called
 * by cs__catalog_apply, live and in replay) and the listings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "custos/case.h"
#include "custos/disclosure.h"
#include "custos/error.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

#define DAY_MS 86400000LL
#define KEY_MAX 480 /* a table key: case key | 0x00 | decision key */

/* The source rules' grounds for not publishing (公示办法 art. 8), "other" with words. */
static const char *const exempt_reasons[] = {"minor", "state-secret", "trade-secret", "privacy",
    "security", "hinders-enforcement", "other"};

void
cs_disclosure_policy_default(struct cs_disclosure_policy *p)
{
	p->person_years = 2;
	p->organisation_years = 5;
	p->publishers = "legal,admin";
}

/* ---- the calendar (proleptic Gregorian; H. Hinnant's days_from_civil) ---- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int
cs_disclosure_add_years(int64_t ms, unsigned years, int64_t *out)
{
	const int64_t off = (int64_t)CS_DISCLOSURE_UTC_OFFSET_MIN * 60000;
	int64_t local = ms + off, days, rem, y;
	unsigned m, d;

	days = local / DAY_MS - (local % DAY_MS < 0);
	rem = local - days * DAY_MS;
	civil_from_days(days, &y, &m, &d);
	y += years;
	if (y > 9999)
		return CS_EFORMAT;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		d = 28; /* no 29 February that year: the last day of the month */
	*out = days_from_civil(y, m, d) * DAY_MS + rem - off;
	return 0;
}

/* ---- keys and records ---- */

/* The table key of a decision: case key | 0x00 | decision key, malloc'd in *k (*kl bytes). */
static int
dkey(const char *number, const char *decision, char **ck, char **k, size_t *kl, const char **why)
{
	char *c = NULL, *dk = NULL;
	int rc;

	*k = NULL;
	rc = number != NULL ? cs_case_key(number, &c) : CS_EFORMAT;
	if (rc < 0) {
		*why = "the case number is missing or not valid text (--case)";
		return rc;
	}
	rc = decision != NULL ? cs_case_key(decision, &dk) : CS_EFORMAT;
	if (rc < 0) {
		*why = "the decision document number is missing or not valid text (--decision)";
		free(c);
		return rc;
	}
	*kl = strlen(c) + 1 + strlen(dk);
	if (*kl > KEY_MAX) {
		*why = "the case and decision numbers are too long together";
		rc = CS_EFORMAT;
	} else if ((*k = malloc(*kl + 1)) == NULL) {
		rc = -ENOMEM;
	} else {
		memcpy(*k, c, strlen(c) + 1);
		memcpy(*k + strlen(c) + 1, dk, strlen(dk) + 1);
	}
	free(dk);
	if (rc == 0 && ck != NULL)
		*ck = c;
	else
		free(c);
	return rc;
}

/* The record of a decision in read transaction `txn`: 0, CS_ENOTFOUND, or an error. */
static int
get_rec(struct cs_store *st, MDB_txn *txn, const char *k, size_t kl, json_t **rec)
{
	int rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_DISCLOSURE], k, kl, rec);

	return rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

/* The role check of the writing calls: 0, or CS_EDENIED with *rule. */
static int
may_write(const struct cs_disclosure_policy *pol, const struct cs_access_who *who,
    const char **rule)
{
	*rule = NULL;
	if (who->role == NULL)
		*rule = CS_RULE_NO_ROLE;
	else if (!cs_access_in_list(pol->publishers, who->role))
		*rule = CS_RULE_PUBLISHER;
	return *rule != NULL ? CS_EDENIED : 0;
}

/* A disclosure event for `who` naming the decision as written and by its keys. */
static json_t *
event(const char *type, const struct cs_access_who *who, const char *number, const char *decision)
{
	json_t *actor = json_pack("{s:s, s:s, s:I, s:s*}", "kind", "user", "name",
	    who->name != NULL ? who->name : "", "uid", (json_int_t)who->uid, "role", who->role);

	return actor == NULL ? NULL : json_pack("{s:s, s:s, s:s, s:o}", "event", type, "case",
	    number, "decision", decision, "actor", actor);
}

static int
set_str(json_t *ev, const char *k, const char *v)
{
	if (ev == NULL)
		return -ENOMEM;
	return v == NULL || json_object_set_new(ev, k, json_string(v)) == 0 ? 0 : -ENOMEM;
}

/* An explicit time (at_ms > 0) or now, as RFC 3339 text; CS_EFORMAT if it is to come. */
static int
when(int64_t at_ms, char t[32], const char **why)
{
	int64_t now = cs__now_ms();

	if (at_ms > now) {
		*why = "the time is in the future: give the time it happened (--at)";
		return CS_EFORMAT;
	}
	cs__time_format(at_ms > 0 ? at_ms : now, t, 32);
	return 0;
}

static int
text_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= 1024 && cs__text_ok(s);
}

/* ---- the writing calls ---- */

/* The checks of a publication or exemption, with the case record `crec`; sets *why. */
static int
check_pub(const struct cs_disclosure_pub *p, json_t *crec, const char **party, const char **why)
{
	size_t i, n = sizeof(exempt_reasons) / sizeof(exempt_reasons[0]);

	*party = p->party;
	if (p->exempt != NULL) {
		for (i = 0; i < n && strcmp(p->exempt, exempt_reasons[i]) != 0; i++)
			;
		if (i == n) {
			*why = "the exemption is minor, state-secret, trade-secret, privacy, "
			       "security, hinders-enforcement or other (with --text)";
			return CS_EFORMAT;
		}
		if (strcmp(p->exempt, "other") == 0 && !text_ok(p->text)) {
			*why = "an exemption for another reason says it in words (--text)";
			return CS_EFORMAT;
		}
		if (p->party != NULL || p->at_ms > 0) {
			*why = "an exempt decision is never published: no --at or --party with it";
			return CS_EFORMAT;
		}
		return 0;
	}
	if (p->text != NULL) {
		*why = "--text goes with --exempt other";
		return CS_EFORMAT;
	}
	if (*party == NULL)
		*party = json_string_value(json_object_get(crec, "party"));
	if (*party == NULL) {
		*why = "the case records no party: say --party person or --party organisation";
		return CS_EFORMAT;
	}
	if (strcmp(*party, "person") != 0 && strcmp(*party, "organisation") != 0) {
		*why = "the party is person (a natural person) or organisation";
		return CS_EFORMAT;
	}
	return 0;
}

int
cs_disclosure_publish(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const struct cs_disclosure_pub *p, uint64_t *seq,
    const char **rule, const char **why)
{
	json_t *ev = NULL, *crec = NULL, *rec = NULL;
	const char *party = NULL;
	char *ck = NULL, *k = NULL, t[32];
	MDB_txn *txn;
	size_t kl;
	int rc;

	*why = NULL;
	if ((rc = may_write(pol, who, rule)) < 0)
		return rc;
	if ((rc = dkey(p->number, p->decision, &ck, &k, &kl, why)) < 0)
		return rc;
	if (p->item != NULL && !text_ok(p->item)) {
		*why = "the decision document's evidence id is not valid text (--item)";
		rc = CS_EFORMAT;
	}
	if (rc == 0)
		rc = p->exempt != NULL ? 0 : when(p->at_ms, t, why);
	if (rc < 0)
		goto out;
	rc = cs__write_begin(st, &txn);
	if (rc < 0)
		goto out;
	rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], ck, strlen(ck), &crec);
	rc = rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	if (rc == CS_ENOTFOUND)
		*why = "there is no such case";
	if (rc == 0 && p->item != NULL &&
	    (rc = cs__case_member(st, txn, ck, p->item)) == CS_ENOTFOUND)
		*why = "the decision document (--item) is not evidence in this case";
	if (rc == 0)
		rc = check_pub(p, crec, &party, why);
	if (rc == 0) {
		rc = get_rec(st, txn, k, kl, &rec);
		if (rc == 0) {
			*why = "this decision has a publication record already (see custos "
			       "disclosure list)";
			rc = CS_EEXIST;
		} else if (rc == CS_ENOTFOUND) {
			rc = 0;
		}
	}
	if (rc == 0) {
		ev = event(p->exempt != NULL ? "disclosure-exempt" : "disclosure-publish", who,
		    p->number, p->decision);
		rc = set_str(ev, "item", p->item);
		if (rc == 0 && p->exempt != NULL)
			rc = set_str(ev, "exempt", p->exempt);
		if (rc == 0 && p->exempt != NULL)
			rc = set_str(ev, "text", p->text);
		if (rc == 0 && p->exempt == NULL)
			rc = set_str(ev, "published", t);
		if (rc == 0 && p->exempt == NULL)
			rc = set_str(ev, "party", party);
		if (rc == 0 && p->exempt == NULL &&
		    json_object_set_new(ev, "years",
		        json_integer(strcmp(party, "person") == 0 ? pol->person_years
		                                                  : pol->organisation_years)) < 0)
			rc = -ENOMEM;
	}
	rc = cs__write_end(st, txn, ev, rc, seq);
out:
	json_decref(crec);
	json_decref(rec);
	free(ck);
	free(k);
	return rc;
}

/* The frame of revoke and withdraw: the record must exist; check() says what else. */
static int
change(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const char *type, const char *number, const char *decision,
    int (*check)(json_t *rec, const char **why), json_t *fields, uint64_t *seq,
    const char **rule, const char **why)
{
	json_t *ev = NULL, *rec = NULL, *v;
	const char *f;
	char *k = NULL;
	MDB_txn *txn;
	size_t kl;
	int rc;

	*why = NULL;
	if ((rc = may_write(pol, who, rule)) < 0 || (rc = dkey(number, decision, NULL, &k, &kl,
	    why)) < 0)
		return rc;
	rc = cs__write_begin(st, &txn);
	if (rc < 0) {
		free(k);
		return rc;
	}
	rc = get_rec(st, txn, k, kl, &rec);
	if (rc == CS_ENOTFOUND)
		*why = "this decision has no publication record (custos disclosure publish)";
	if (rc == 0)
		rc = check(rec, why);
	if (rc == 0) {
		ev = event(type, who, number, decision);
		json_object_foreach(fields, f, v)
		{
			if (rc == 0 && (ev == NULL || json_object_set(ev, f, v) < 0))
				rc = -ENOMEM;
		}
	}
	json_decref(rec);
	free(k);
	return cs__write_end(st, txn, ev, rc, seq);
}

static int
check_revoke(json_t *rec, const char **why)
{
	if (json_object_get(rec, "revoked") != NULL) {
		*why = "this decision was revoked already";
		return CS_EEXIST;
	}
	return 0;
}

static int
check_withdraw(json_t *rec, const char **why)
{
	if (json_object_get(rec, "exempt") != NULL) {
		*why = "this decision is exempt: it was never published, so there is nothing to "
		       "withdraw";
		return CS_EFORMAT;
	}
	if (json_object_get(rec, "withdrawn") != NULL) {
		*why = "this decision was withdrawn already";
		return CS_EEXIST;
	}
	return 0;
}

int
cs_disclosure_revoke(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const char *number, const char *decision,
    const char *reason, int64_t at_ms, uint64_t *seq, const char **rule, const char **why)
{
	json_t *f;
	char t[32];
	int rc;

	*why = NULL;
	*rule = NULL;
	if ((rc = may_write(pol, who, rule)) < 0)
		return rc;
	if (!text_ok(reason)) {
		*why = "a revocation says why (--reason)";
		return CS_EFORMAT;
	}
	if ((rc = when(at_ms, t, why)) < 0)
		return rc;
	f = json_pack("{s:s, s:s}", "revoked", t, "reason", reason);
	if (f == NULL)
		return -ENOMEM;
	rc = change(st, pol, who, "disclosure-revoke", number, decision, check_revoke, f, seq, rule,
	    why);
	json_decref(f);
	return rc;
}

int
cs_disclosure_withdraw(struct cs_store *st, const struct cs_disclosure_policy *pol,
    const struct cs_access_who *who, const char *number, const char *decision, uint64_t *seq,
    const char **rule, const char **why)
{
	json_t *f = json_object();
	int rc;

	if (f == NULL)
		return -ENOMEM;
	rc = change(st, pol, who, "disclosure-withdraw", number, decision, check_withdraw, f, seq,
	    rule, why);
	json_decref(f);
	return rc;
}

/* ---- reading ---- */

struct collect {
	json_t *out;
	int64_t now; /* due: only what is due at now; < 0: every record */
};

static int
collect_one(void *ctx, const char *key, size_t keylen, json_t *val)
{
	struct collect *c = ctx;
	const char *state = json_string_value(json_object_get(val, "state"));
	int64_t due;

	(void)key;
	(void)keylen;
	if (c->now >= 0 &&
	    (state == NULL || (strcmp(state, "published") != 0 && strcmp(state, "revoked") != 0) ||
	        cs__time_parse(json_string_value(json_object_get(val, "withdraw_by")), &due) < 0 ||
	        due > c->now))
		return 0;
	return json_array_append(c->out, val) < 0 ? -ENOMEM : 0;
}

static int
by_due(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int64_t dx = 0, dy = 0, sx, sy;

	cs__time_parse(json_string_value(json_object_get(x, "withdraw_by")), &dx);
	cs__time_parse(json_string_value(json_object_get(y, "withdraw_by")), &dy);
	if (dx != dy)
		return dx < dy ? -1 : 1;
	sx = json_integer_value(json_object_get(x, "seq"));
	sy = json_integer_value(json_object_get(y, "seq"));
	return sx < sy ? -1 : sx > sy;
}

static int
read_recs(struct cs_store *st, const char *number, int64_t now, json_t **out)
{
	struct collect c = {json_array(), now};
	json_t *crec = NULL;
	char *ck = NULL;
	MDB_txn *txn;
	int rc = c.out != NULL ? 0 : -ENOMEM;

	if (rc == 0 && number != NULL)
		rc = cs_case_key(number, &ck);
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		goto out;
	if (ck != NULL) {
		rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_CASES], ck, strlen(ck), &crec);
		rc = rc == 0 ? 0 : rc == MDB_NOTFOUND ? CS_ENOTFOUND : CS_ESTORE;
	}
	/* the prefix "key\0" of one case's records, or none */
	if (rc == 0)
		rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_DISCLOSURE], ck != NULL ? ck : "",
		    ck != NULL ? strlen(ck) + 1 : 0, collect_one, &c);
	mdb_txn_abort(txn);
out:
	json_decref(crec);
	free(ck);
	if (rc < 0) {
		json_decref(c.out);
		return rc;
	}
	*out = c.out;
	return 0;
}

int
cs_disclosure_list(struct cs_store *st, const char *number, json_t **out)
{
	return read_recs(st, number, -1, out);
}

int
cs_disclosure_due(struct cs_store *st, int64_t now_ms, json_t **out)
{
	json_t *arr = NULL, *sorted;
	json_t **v;
	size_t n, i;
	int rc = read_recs(st, NULL, now_ms < 0 ? 0 : now_ms, &arr);

	if (rc < 0)
		return rc;
	n = json_array_size(arr);
	v = malloc((n + 1) * sizeof(*v));
	sorted = json_array();
	if (v == NULL || sorted == NULL) {
		free(v);
		json_decref(sorted);
		json_decref(arr);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), by_due);
	for (i = 0; i < n && rc == 0; i++)
		rc = json_array_append(sorted, v[i]) < 0 ? -ENOMEM : 0;
	free(v);
	json_decref(arr);
	if (rc < 0) {
		json_decref(sorted);
		return rc;
	}
	*out = sorted;
	return 0;
}

/* ---- the projection (lib/catalog.c's apply, in its write transaction) ---- */

#define JOK(x) ((x) < 0 ? ENOMEM : 0)

/* The withdrawal date of record `rec`: publication + years, or the revocation if earlier. */
static int
set_due(json_t *rec)
{
	int64_t pub, due, rev;
	json_t *y = json_object_get(rec, "years");
	const char *r = json_string_value(json_object_get(rec, "revoked"));
	const char *why = "period-over";
	char t[32];

	if (json_object_get(rec, "exempt") != NULL)
		return 0;
	if (cs__time_parse(json_string_value(json_object_get(rec, "published")), &pub) < 0 ||
	    !json_is_integer(y) || json_integer_value(y) < 0 || json_integer_value(y) > 1000 ||
	    cs_disclosure_add_years(pub, (unsigned)json_integer_value(y), &due) < 0 ||
	    (r != NULL && cs__time_parse(r, &rev) < 0))
		return -1;
	if (r != NULL && rev < due) {
		due = rev;
		why = "revoked";
	}
	cs__time_format(due, t, sizeof(t));
	return JOK(json_object_set_new(rec, "withdraw_by", json_string(t))) ||
	        JOK(json_object_set_new(rec, "why_due", json_string(why))) ? ENOMEM : 0;
}

int
cs__disclosure_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *type,
    uint64_t seq, const char **why)
{
	MDB_dbi dbi = c->dbi[CS_DBI_DISCLOSURE];
	const char *number = json_string_value(json_object_get(ev, "case"));
	const char *decision = json_string_value(json_object_get(ev, "decision"));
	json_t *rec = NULL, *e;
	char *k = NULL;
	size_t kl;
	int rc, found;

	if (dkey(number, decision, NULL, &k, &kl, why) < 0) {
		*why = "disclosure event lacks a valid case or decision number";
		return -1;
	}
	rc = cs__cat_get(txn, dbi, k, kl, &rec);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	found = rc == 0;
	rc = 0;
	if (strcmp(type, "disclosure-publish") == 0 || strcmp(type, "disclosure-exempt") == 0) {
		static const char *const f[] = {"case", "decision", "item", "published", "party",
			"years", "exempt", "text", NULL};
		int exempt = type[11] == 'e';
		if (found) {
			*why = "disclosure event records a decision that has a record already";
			rc = -1;
			goto out;
		}
		if ((exempt && json_string_value(json_object_get(ev, "exempt")) == NULL) ||
		    (!exempt && (json_object_get(ev, "exempt") != NULL ||
		        json_string_value(json_object_get(ev, "party")) == NULL))) {
			*why = "disclosure event lacks its party or exemption";
			rc = -1;
			goto out;
		}
		rec = json_pack("{s:s, s:I, s:O*, s:O*}", "state", exempt ? "exempt" : "published",
		    "seq", (json_int_t)seq, "time", json_object_get(ev, "time"), "actor",
		    json_object_get(ev, "actor"));
		for (size_t i = 0; rec != NULL && rc == 0 && f[i] != NULL; i++)
			if ((e = json_object_get(ev, f[i])) != NULL)
				rc = JOK(json_object_set(rec, f[i], e));
		if (rec == NULL)
			rc = ENOMEM;
	} else if (!found) {
		*why = "disclosure event names a decision that has no publication record";
		rc = -1;
		goto out;
	} else if (strcmp(type, "disclosure-revoke") == 0) {
		if (json_object_get(rec, "revoked") != NULL ||
		    json_string_value(json_object_get(ev, "revoked")) == NULL) {
			*why = "disclosure-revoke event revokes twice or lacks its time";
			rc = -1;
			goto out;
		}
		rc = JOK(json_object_set(rec, "revoked", json_object_get(ev, "revoked")));
		if (rc == 0 && json_object_get(ev, "reason") != NULL)
			rc = JOK(json_object_set(rec, "revoke_reason",
			    json_object_get(ev, "reason")));
		if (rc == 0 && json_object_get(rec, "exempt") == NULL &&
		    json_object_get(rec, "withdrawn") == NULL)
			rc = JOK(json_object_set_new(rec, "state", json_string("revoked")));
	} else if (strcmp(type, "disclosure-withdraw") == 0) {
		if (json_object_get(rec, "exempt") != NULL ||
		    json_object_get(rec, "withdrawn") != NULL) {
			*why = "disclosure-withdraw event names an exempt or withdrawn decision";
			rc = -1;
			goto out;
		}
		rc = JOK(json_object_set(rec, "withdrawn", json_object_get(ev, "time")));
		if (rc == 0)
			rc = JOK(json_object_set_new(rec, "state", json_string("withdrawn")));
	} else {
		rc = 0; /* a disclosure event of a later version: kept in the ledger */
		goto out;
	}
	if (rc == 0 && (rc = set_due(rec)) < 0)
		*why = "disclosure event has no valid publication time or period";
	if (rc == 0)
		rc = cs__cat_put(txn, dbi, k, kl, rec);
out:
	json_decref(rec);
	free(k);
	return rc;
}
