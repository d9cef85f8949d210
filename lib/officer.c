/*
 * The officer registry: importing it from CSV (checked whole before any
 * event is written), its projection into the catalog's "officers" table
 * (called by cs__catalog_apply for "officer" events, live and in replay),
 * and the flags of a recording whose officer is unknown or whose
 * certificate was not valid when it was recorded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "custos/csv.h"
#include "custos/error.h"
#include "custos/officer.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

#define DAY_MS 86400000LL

enum { COL_NAME, COL_POST, COL_CERT, COL_FROM, COL_TO, COL_COUNT };

static const char *const col_names[COL_COUNT] = {"name", "post", "certificate", "valid_from",
    "valid_to"};

/* Accepted header spellings of each column. */
static const char *const col_alias[][4] = {
    {"name", "姓名", NULL},
    {"post", "unit", "岗位", "单位"},
    {"certificate", "certificate_number", "执法证号", "证件号"},
    {"valid_from", "有效期起", NULL},
    {"valid_to", "有效期止", NULL},
};

/*
 * A date (YYYY-MM-DD: that whole day, UTC) or an RFC 3339 time, as the
 * first millisecond it covers (`end`: the first one after it). CS_EFORMAT.
 */
static int
date_ms(const char *s, int end, int64_t *ms)
{
	char buf[32];
	size_t n = strlen(s);

	if (n == 10 && s[4] == '-' && s[7] == '-') {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		if (cs__time_parse(buf, ms) < 0)
			return CS_EFORMAT;
		if (end)
			*ms += DAY_MS;
		return 0;
	}
	return cs__time_parse(s, ms) < 0 ? CS_EFORMAT : 0;
}

struct import {
	int col[COL_COUNT]; /* the field index of each column, -1 if absent */
	int header;         /* the header was read */
	json_t *evs;        /* the officer events, in file order */
	json_t *lines;      /* certificate -> line, for duplicates */
	struct cs_officer_error *err;
};

static int
refuse(struct import *im, size_t line, int col, const char *why)
{
	if (im->err != NULL) {
		im->err->line = line;
		im->err->field = col >= 0 ? col_names[col] : NULL;
		im->err->why = why;
	}
	return CS_EFORMAT;
}

static int
read_header(struct import *im, size_t line, char *const *f, size_t n)
{
	for (int c = 0; c < COL_COUNT; c++)
		im->col[c] = -1;
	for (size_t i = 0; i < n; i++) {
		int known = 0;
		for (int c = 0; c < COL_COUNT && !known; c++)
			for (int a = 0; a < 4 && col_alias[c][a] != NULL && !known; a++)
				if (strcasecmp(f[i], col_alias[c][a]) == 0) {
					if (im->col[c] >= 0)
						return refuse(im, line, c,
						    "the column is named twice in the header");
					im->col[c] = (int)i;
					known = 1;
				}
		if (!known)
			return refuse(im, line, -1,
			    "the header names a column that is not "
			    "name, post, certificate, valid_from or valid_to");
	}
	for (int c = 0; c < COL_COUNT; c++)
		if (im->col[c] < 0 && c != COL_POST)
			return refuse(im, line, c,
			    "the header lacks this column (it needs name, "
			    "certificate, valid_from, valid_to; post is optional)");
	im->header = 1;
	return 0;
}

static int
read_row(void *ctx, size_t line, char *const *f, size_t n)
{
	struct import *im = ctx;
	const char *v[COL_COUNT];
	int64_t from, to;
	json_t *o, *ev;

	if (!im->header)
		return read_header(im, line, f, n);
	for (int c = 0; c < COL_COUNT; c++) {
		v[c] = im->col[c] >= 0 && (size_t)im->col[c] < n ? f[im->col[c]] : "";
		if (im->col[c] >= 0 && (size_t)im->col[c] >= n)
			return refuse(im, line, c, "the record has fewer fields than the header");
		if (*v[c] != '\0' && (!cs__text_ok(v[c]) || strlen(v[c]) > 256))
			return refuse(im, line, c,
			    "not text (1 to 256 bytes of UTF-8 without "
			    "control characters)");
	}
	if (*v[COL_NAME] == '\0')
		return refuse(im, line, COL_NAME, "empty: every officer has a name");
	if (*v[COL_CERT] == '\0')
		return refuse(im, line, COL_CERT, "empty: every officer has a certificate number");
	if (*v[COL_FROM] == '\0' || date_ms(v[COL_FROM], 0, &from) < 0)
		return refuse(im, line, COL_FROM,
		    "not a date: write YYYY-MM-DD or an RFC 3339 "
		    "time");
	if (*v[COL_TO] != '\0' && date_ms(v[COL_TO], 1, &to) < 0)
		return refuse(im, line, COL_TO,
		    "not a date: write YYYY-MM-DD or an RFC 3339 "
		    "time, or leave it empty for no end");
	if (*v[COL_TO] != '\0' && to <= from)
		return refuse(im, line, COL_TO, "the certificate ends before it starts");
	if (json_object_get(im->lines, v[COL_CERT]) != NULL)
		return refuse(im, line, COL_CERT,
		    "the certificate number is on an earlier line "
		    "of the file too");
	o = json_pack("{s:s, s:s, s:s}", "name", v[COL_NAME], "certificate", v[COL_CERT],
	    "valid_from", v[COL_FROM]);
	if (o != NULL && *v[COL_POST] != '\0' &&
	    json_object_set_new(o, "post", json_string(v[COL_POST])) < 0)
		json_decref(o), o = NULL;
	if (o != NULL && *v[COL_TO] != '\0' &&
	    json_object_set_new(o, "valid_to", json_string(v[COL_TO])) < 0)
		json_decref(o), o = NULL;
	ev = o != NULL ? json_pack("{s:s, s:o}", "event", "officer", "officer", o) : NULL;
	if (ev == NULL || json_array_append_new(im->evs, ev) < 0 ||
	    json_object_set_new(im->lines, v[COL_CERT], json_integer((json_int_t)line)) < 0)
		return -ENOMEM;
	return 0;
}

int
cs_officers_import(struct cs_store *st, const char *text, size_t len, size_t *count,
    struct cs_officer_error *err)
{
	struct import im = {.evs = json_array(), .lines = json_object(), .err = err};
	struct cs_csv_error cerr = {0, 0, NULL};
	size_t n, done = 0;
	int rc;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	rc = im.evs != NULL && im.lines != NULL ? 0 : -ENOMEM;
	if (rc == 0)
		rc = cs_csv_parse(text, len, read_row, &im, &cerr);
	if (rc == CS_EFORMAT && cerr.why != NULL && err != NULL) {
		err->line = cerr.line;
		err->field = NULL;
		err->why = cerr.why;
	}
	n = json_array_size(im.evs);
	if (rc == 0 && n == 0) {
		rc = CS_EFORMAT;
		if (err != NULL)
			err->why = im.header ? "the file lists no officer after its header"
			                     : "the file is empty (it needs a header and officers)";
	}
	if (rc == 0 && st->lockfd < 0)
		rc = -EBADF;
	if (rc == 0 && st->failed)
		rc = CS_EFAILED;
	if (rc == 0) {
		pthread_mutex_lock(&st->wlock);
		while (rc == 0 && done < n) {
			json_t *batch[CS__COMMIT_MAX];
			size_t k = n - done < CS__COMMIT_MAX ? n - done : CS__COMMIT_MAX;
			uint64_t seq;
			for (size_t i = 0; i < k; i++)
				batch[i] = json_array_get(im.evs, done + i);
			rc = st->failed ? CS_EFAILED : cs__store_commit(st, batch, k, &seq);
			if (rc == 0)
				done += k;
		}
		pthread_mutex_unlock(&st->wlock);
	}
	if (count != NULL)
		*count = done;
	json_decref(im.evs);
	json_decref(im.lines);
	return rc;
}

/* ---- the projection ---- */

int
cs__officer_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char **why)
{
	json_t *o = json_object_get(ev, "officer"), *rec;
	const char *cert = json_string_value(json_object_get(o, "certificate"));
	const char *from = json_string_value(json_object_get(o, "valid_from"));
	const char *to = json_string_value(json_object_get(o, "valid_to"));
	int64_t fms, tms = INT64_MAX;
	int rc;

	if (cert == NULL || *cert == '\0' || strlen(cert) > 256 || from == NULL ||
	    date_ms(from, 0, &fms) < 0 || (to != NULL && date_ms(to, 1, &tms) < 0)) {
		*why = "officer event lacks a certificate number or valid dates";
		return -1;
	}
	rec = json_deep_copy(o);
	if (rec == NULL || json_object_set_new(rec, "seq", json_integer((json_int_t)seq)) < 0 ||
	    json_object_set(rec, "time", json_object_get(ev, "time")) < 0 ||
	    json_object_set_new(rec, "from_ms", json_integer(fms)) < 0 ||
	    (to != NULL && json_object_set_new(rec, "to_ms", json_integer(tms)) < 0) ||
	    (json_object_get(ev, "actor") != NULL &&
	        json_object_set(rec, "actor", json_object_get(ev, "actor")) < 0)) {
		json_decref(rec);
		return ENOMEM;
	}
	rc = cs__cat_put(txn, c->dbi[CS_DBI_OFFICERS], cert, strlen(cert), rec);
	json_decref(rec);
	return rc;
}

/* ---- flags ---- */

static int
flag(json_t *flags, json_t *s, const char *officer, const char *f, const char *why)
{
	json_t *o = json_pack("{s:O*, s:s, s:s}", "sighting", json_object_get(s, "seq"), "flag", f,
	    "why", why);

	if (o != NULL && officer != NULL &&
	    json_object_set_new(o, "officer", json_string(officer)) < 0)
		json_decref(o), o = NULL;
	return o == NULL || json_array_append_new(flags, o) < 0 ? -ENOMEM : 0;
}

int
cs__officer_sighting(struct cs__catalog *c, MDB_txn *txn, const char **officers, size_t n,
    const char *t, struct cs__officer_memo *memo,
    int (*add)(void *ctx, const char *officer, const char *flag, const char *why), void *ctx)
{
	struct cs__officer_memo one;
	int64_t at;
	int rc = 0, timed = t != NULL && cs__time_parse(t, &at) == 0;

	if (n == 0)
		return add(ctx, NULL, "no-officer", "the recording names no officer");
	if (memo == NULL) {
		memo = &one;
		one.id[0] = '\0';
	}
	for (size_t j = 0; j < n && rc == 0; j++) {
		const char *id = officers[j];
		if (id == NULL)
			continue;
		if (memo->id[0] == '\0' || strcmp(memo->id, id) != 0) {
			json_t *off = NULL;
			int r = cs__cat_get(txn, c->dbi[CS_DBI_OFFICERS], id, strlen(id), &off);
			if (r != 0 && r != MDB_NOTFOUND)
				return r == ENOMEM ? -ENOMEM : CS_ESTORE;
			memo->found = r == 0;
			memo->from = json_integer_value(json_object_get(off, "from_ms"));
			memo->has_to = json_object_get(off, "to_ms") != NULL;
			memo->to = json_integer_value(json_object_get(off, "to_ms"));
			json_decref(off);
			/* (a certificate number longer than the memo is looked up each time) */
			if (strlen(id) < sizeof(memo->id))
				memcpy(memo->id, id, strlen(id) + 1);
			else
				memo->id[0] = '\0';
		}
		if (!memo->found)
			rc = add(ctx, id, "officer-unknown",
			    "no officer with this certificate number is in the registry");
		else if (!timed || at < memo->from || (memo->has_to && at >= memo->to))
			rc = add(ctx, id, "certificate-not-valid",
			    "the officer's certificate was not valid when it was recorded");
	}
	return rc;
}

struct flagctx {
	json_t *flags, *s;
};

static int
add_flag(void *ctx, const char *officer, const char *f, const char *why)
{
	struct flagctx *x = ctx;

	return flag(x->flags, x->s, officer, f, why);
}

int
cs__officer_flags(struct cs__catalog *c, MDB_txn *txn, const json_t *rec, json_t **out)
{
	json_t *flags = json_array(), *s, *o;
	struct cs__officer_memo memo = {.id = ""};
	const char **ids = NULL;
	MDB_stat ms;
	size_t i, j;
	int rc = flags != NULL ? 0 : -ENOMEM;

	if (rc == 0 && mdb_stat(txn, c->dbi[CS_DBI_OFFICERS], &ms) != 0)
		rc = CS_ESTORE;
	if (rc < 0 || ms.ms_entries == 0)
		goto out; /* no registry kept: nothing to flag against */
	json_array_foreach(json_object_get(rec, "seen"), i, s)
	{
		const char *t = json_string_value(json_object_get(s, "recorded_start"));
		json_t *offs = json_object_get(s, "officers");
		struct flagctx x = {flags, s};
		const char **nids;
		if (rc < 0)
			break;
		if (t == NULL)
			t = json_string_value(json_object_get(s, "time"));
		nids = realloc(ids, (json_array_size(offs) + 1) * sizeof(*ids));
		if (nids == NULL) {
			rc = -ENOMEM;
			break;
		}
		ids = nids;
		json_array_foreach(offs, j, o)
			ids[j] = json_string_value(o);
		rc = cs__officer_sighting(c, txn, ids, json_array_size(offs), t, &memo, add_flag,
		    &x);
	}
out:
	free(ids);
	if (rc < 0) {
		json_decref(flags);
		return rc;
	}
	*out = flags;
	return 0;
}

int
cs_store_item_flags(struct cs_store *st, const json_t *rec, json_t **out)
{
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__officer_flags(&st->cat, txn, rec, out);
	mdb_txn_abort(txn);
	return rc;
}

static int
collect(void *ctx, const char *key, size_t keylen, json_t *val)
{
	(void)key;
	(void)keylen;
	json_object_del(val, "from_ms");
	json_object_del(val, "to_ms");
	return json_array_append(ctx, val) < 0 ? -ENOMEM : 0;
}

int
cs_store_officers(struct cs_store *st, json_t **out)
{
	json_t *arr = json_array();
	MDB_txn *txn;
	int rc = arr != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;

	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	rc = cs__cat_each(txn, st->cat.dbi[CS_DBI_OFFICERS], "", 0, collect, arr);
	mdb_txn_abort(txn);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}
