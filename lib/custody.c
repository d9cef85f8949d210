/*
 * The chain of custody of one item (every ledger event about it, each with
 * its inclusion proof checked against the latest signed checkpoint with the
 * store's verifier key, as an outside checker would) and the yearly
 * statistics by category, stage, officer and device, read from the time
 * index's part for that year.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/access.h"
#include "custos/case.h"
#include "custos/check.h"
#include "custos/checkpoint.h"
#include "custos/custody.h"
#include "custos/error.h"
#include "custos/query.h"
#include "store_internal.h"

/* Proves event `seq` and checks the proof: sets "proof", "proof_status" (and "why"). */
static int
prove_one(struct cs_store *st, const char *vkey, uint64_t seq, json_t *e)
{
	struct cs_check chk = {0};
	char *text = NULL;
	const char *status = "verified", *why = NULL;
	int rc = cs_store_prove_events(st, &seq, 1, &text);

	if (rc == -EAGAIN || rc == CS_ENOTFOUND) {
		rc = json_object_set_new(e, "proof_status", json_string("not-covered")) < 0
		    ? -ENOMEM
		    : 0;
		return rc;
	}
	if (rc < 0)
		return rc;
	rc = cs_check_proofs(text, strlen(text), vkey, &chk);
	if (rc == 0 &&
	    (chk.status != CS_CHECK_OK || chk.n_proven != 1 || chk.proven[0].index != seq)) {
		status = "failed";
		why = chk.status == CS_CHECK_SIGNATURE ? "the checkpoint's signature does not check"
		    : chk.status == CS_CHECK_INCLUSION ? "the event is not in the signed tree"
		                                       : "the proof is malformed";
	}
	if (rc == 0 &&
	    (json_object_set_new(e, "proof", json_string(text)) < 0 ||
	        json_object_set_new(e, "proof_status", json_string(status)) < 0 ||
	        (why != NULL && json_object_set_new(e, "why", json_string(why)) < 0)))
		rc = -ENOMEM;
	cs_check_fini(&chk);
	free(text);
	return rc;
}

int
cs_store_custody(struct cs_store *st, const char *id, json_t **out)
{
	json_t *rec = NULL, *evs = NULL, *list = json_array(), *res = NULL, *e;
	char *vkey = NULL, *note = NULL;
	size_t i;
	int rc;

	rc = list != NULL ? cs_store_get(st, id, &rec) : -ENOMEM;
	if (rc == 0)
		rc = cs_store_item_events(st, id, &evs);
	if (rc == 0)
		rc = cs_store_verifier_key(st, &vkey);
	if (rc == 0) {
		rc = cs_store_latest_checkpoint(st, &note);
		if (rc == CS_ENOTFOUND)
			rc = 0;
	}
	json_array_foreach(evs, i, e)
	{
		json_t *ev = json_object_get(e, "event"), *one;
		if (rc < 0)
			break;
		one = json_pack("{s:O, s:O*, s:O*, s:O}", "seq", json_object_get(e, "seq"), "time",
		    json_object_get(ev, "time"), "type", json_object_get(ev, "event"), "event", ev);
		if (one != NULL && json_object_get(ev, "actor") != NULL &&
		    json_object_set(one, "actor", json_object_get(ev, "actor")) < 0)
			json_decref(one), one = NULL;
		if (one == NULL || json_array_append_new(list, one) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = prove_one(st, vkey, (uint64_t)json_integer_value(json_object_get(e, "seq")),
		    one);
	}
	if (rc == 0) {
		res = json_pack("{s:s, s:O, s:O}", "id", id, "record", rec, "events", list);
		if (res == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0 && note != NULL) {
		unsigned long long size = 0;
		const char *nl = strchr(note, '\n');
		/* the note's second line is the tree size (C2SP tlog-checkpoint) */
		if (nl != NULL)
			size = strtoull(nl + 1, NULL, 10);
		if (json_object_set_new(res, "checkpoint",
		        json_pack("{s:I, s:s}", "size", (json_int_t)size, "note", note)) < 0)
			rc = -ENOMEM;
	}
	if (rc < 0)
		json_decref(res);
	else
		*out = res;
	json_decref(rec);
	json_decref(evs);
	json_decref(list);
	free(vkey);
	free(note);
	return rc;
}

/* ---- statistics ---- */

/* Adds an item of `bytes` under `value` of one dimension (once per item: `seen`). */
static int
tally(json_t *dim, json_t *seen, const char *value, json_int_t bytes)
{
	json_t *v;

	if (value == NULL || *value == '\0')
		value = "(none)";
	if (json_object_get(seen, value) != NULL)
		return 0;
	if (json_object_set_new(seen, value, json_true()) < 0)
		return -ENOMEM;
	v = json_object_get(dim, value);
	if (v == NULL) {
		v = json_pack("{s:I, s:I}", "items", (json_int_t)0, "bytes", (json_int_t)0);
		if (v == NULL || json_object_set_new(dim, value, v) < 0)
			return -ENOMEM;
	}
	if (json_object_set_new(v, "items",
	        json_integer(json_integer_value(json_object_get(v, "items")) + 1)) < 0 ||
	    json_object_set_new(v, "bytes",
	        json_integer(json_integer_value(json_object_get(v, "bytes")) + bytes)) < 0)
		return -ENOMEM;
	return 0;
}

static const char *const dims[] = {"by_category", "by_stage", "by_officer", "by_device"};

/* Counts one item into the figures. */
static int
count_item(json_t *res, json_t *rec, json_t *flags)
{
	json_int_t bytes = json_integer_value(json_object_get(rec, "size"));
	json_t *seen[4] = {json_object(), json_object(), json_object(), json_object()};
	json_t *s, *v;
	size_t i, j;
	int rc = 0;

	for (int d = 0; d < 4; d++)
		if (seen[d] == NULL)
			rc = -ENOMEM;
	json_array_foreach(json_object_get(rec, "seen"), i, s)
	{
		if (rc == 0)
			rc = tally(json_object_get(res, dims[0]), seen[0],
			    json_string_value(json_object_get(s, "category")), bytes);
		if (rc == 0 && json_object_get(s, "stage") != NULL)
			rc = tally(json_object_get(res, dims[1]), seen[1],
			    json_string_value(json_object_get(s, "stage")), bytes);
		json_array_foreach(json_object_get(s, "officers"), j, v)
		{
			if (rc == 0)
				rc = tally(json_object_get(res, dims[2]), seen[2],
				    json_string_value(v), bytes);
		}
		if (rc == 0 && json_array_size(json_object_get(s, "officers")) == 0)
			rc = tally(json_object_get(res, dims[2]), seen[2], NULL, bytes);
		if (rc == 0)
			rc = tally(json_object_get(res, dims[3]), seen[3],
			    json_string_value(json_object_get(s, "device")), bytes);
	}
	json_array_foreach(json_object_get(rec, "cases"), i, s)
	{
		if (rc == 0)
			rc = tally(json_object_get(res, dims[1]), seen[1],
			    json_string_value(json_object_get(s, "stage")), bytes);
	}
	if (rc == 0 && json_object_size(seen[1]) == 0)
		rc = tally(json_object_get(res, dims[1]), seen[1], NULL, bytes);
	if (rc == 0 && json_array_size(flags) > 0) {
		json_t *kinds = json_object(), *fl = json_object_get(res, "flags");
		rc = kinds != NULL ? 0 : -ENOMEM;
		json_array_foreach(flags, i, s)
		{
			const char *k = json_string_value(json_object_get(s, "flag"));
			if (rc == 0 && k != NULL && json_object_get(kinds, k) == NULL)
				rc = json_object_set_new(kinds, k, json_true()) < 0 ||
				        json_object_set_new(fl, k,
				            json_integer(
				                json_integer_value(json_object_get(fl, k)) + 1)) < 0
				    ? -ENOMEM
				    : 0;
		}
		json_decref(kinds);
		if (rc == 0)
			rc = json_object_set_new(res, "flagged",
			         json_integer(
			             json_integer_value(json_object_get(res, "flagged")) + 1)) < 0
			    ? -ENOMEM
			    : 0;
	}
	if (rc == 0)
		rc = json_object_set_new(res, "items",
		         json_integer(json_integer_value(json_object_get(res, "items")) + 1)) < 0 ||
		        json_object_set_new(res, "bytes",
		            json_integer(
		                json_integer_value(json_object_get(res, "bytes")) + bytes)) < 0
		    ? -ENOMEM
		    : 0;
	for (int d = 0; d < 4; d++)
		json_decref(seen[d]);
	return rc;
}

/*
 * The year's register entries (views, copies, exports let through) by
 * requester kind into `by`: {kind: {"accesses", "view", "copy", "export"}}.
 */
static int
count_accesses(struct cs_store *st, int year, json_t *by)
{
	char t[32];
	int64_t from = 0, to = 0;
	json_t *reg = NULL, *e;
	size_t i;
	int rc;

	snprintf(t, sizeof(t), "%04d-01-01T00:00:00Z", year);
	rc = cs_access_time(t, &from);
	snprintf(t, sizeof(t), "%04d-01-01T00:00:00Z", year + 1);
	if (rc == 0)
		rc = year < 9999 ? cs_access_time(t, &to) : 0;
	if (rc == 0)
		rc = cs_access_register(st, NULL, from, to, 0, &reg);
	json_array_foreach(reg, i, e)
	{
		const char *kind = json_string_value(
		    json_object_get(json_object_get(e, "requester"), "kind"));
		const char *action = json_string_value(json_object_get(e, "action"));
		json_t *k;
		if (rc < 0)
			break;
		if (kind == NULL)
			kind = "(none)";
		k = json_object_get(by, kind);
		if (k == NULL) {
			k = json_pack("{s:I, s:I, s:I, s:I}", "accesses", (json_int_t)0, "view",
			    (json_int_t)0, "copy", (json_int_t)0, "export", (json_int_t)0);
			if (k == NULL || json_object_set_new(by, kind, k) < 0) {
				rc = -ENOMEM;
				break;
			}
		}
		json_object_set_new(k, "accesses",
		    json_integer(json_integer_value(json_object_get(k, "accesses")) + 1));
		if (action != NULL && json_object_get(k, action) != NULL)
			json_object_set_new(k, action,
			    json_integer(json_integer_value(json_object_get(k, action)) + 1));
	}
	json_decref(reg);
	return rc;
}

int
cs_store_stats(struct cs_store *st, int year, json_t **out)
{
	char prefix[8];
	json_t *res, *done = json_object();
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val k, d;
	int rc;

	if (year < 1970 || year > 9999) {
		json_decref(done);
		return CS_EFORMAT;
	}
	snprintf(prefix, sizeof(prefix), "%04d-", year);
	res = json_pack("{s:i, s:I, s:I, s:I, s:{}, s:{}, s:{}, s:{}, s:{}, s:{}}", "year", year,
	    "items", (json_int_t)0, "bytes", (json_int_t)0, "flagged", (json_int_t)0, "by_category",
	    "by_stage", "by_officer", "by_device", "flags", "accesses_by_requester_kind");
	rc = res != NULL && done != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;
	if (rc == 0 && mdb_cursor_open(txn, st->cat.dbi[CS_DBI_BY_TIME], &cur) != 0)
		rc = CS_ESTORE;
	if (rc == 0) {
		int r;
		k.mv_size = 5;
		k.mv_data = prefix;
		r = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
		while (r == 0 && rc == 0 && k.mv_size >= 5 && memcmp(k.mv_data, prefix, 5) == 0) {
			char id[512];
			json_t *rec = NULL, *flags = NULL;
			if (d.mv_size >= sizeof(id)) {
				rc = CS_ESTORE;
				break;
			}
			memcpy(id, d.mv_data, d.mv_size);
			id[d.mv_size] = '\0';
			if (json_object_get(done, id) == NULL) {
				rc = json_object_set_new(done, id, json_true()) < 0 ? -ENOMEM : 0;
				if (rc == 0)
					rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
				if (rc == 0)
					rc = cs__officer_flags(&st->cat, txn, rec, &flags);
				if (rc == 0)
					rc = count_item(res, rec, flags);
				json_decref(rec);
				json_decref(flags);
			}
			if (rc == 0)
				r = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
		}
		if (rc == 0 && r != 0 && r != MDB_NOTFOUND)
			rc = CS_ESTORE;
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(done);
	if (rc == 0)
		rc = count_accesses(st, year, json_object_get(res, "accesses_by_requester_kind"));
	if (rc < 0) {
		json_decref(res);
		return rc;
	}
	*out = res;
	return 0;
}
