/*
 * The fingerprint index and matching (custos/media.h: cs_media_match,
 * cs_media_similar) and the catalog's projection of "fingerprint" events
 * (cs__fp_project, called by cs__catalog_apply). Each item's fingerprint
 * (the hashes and values the event carries) is kept in the "fingerprints"
 * table; each usable video hash is split into 4 bands of 16 bits and each
 * audio value into 2, and the "fp_bands" table maps band number and band
 * value to (hash, time in ms, item). A query looks up the bands of its own
 * hashes only (pigeonhole: a hash within Hamming distance 3 shares a band
 * with its query, most within 7 do), keeps the candidates within
 * VIDEO_MAX_DIST (AUDIO_MAX_DIST) bits, and votes per item on the offset
 * (item time - query time, in half-second bins, scored over a one-second
 * window): the score is the fraction of the query's hashes that match at
 * the best offset. Nothing scans every stored hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "custos/error.h"
#include "custos/media.h"
#include "store_internal.h"

#define VIDEO_BANDS 4
#define AUDIO_BANDS 2
#define AUDIO_BAND0 0x10
#define VIDEO_MAX_DIST 10
#define AUDIO_MAX_DIST 4
#define BIN_MS 500
#define BUCKET_MAX 2048 /* a band value shared by more entries says nothing: skipped */
/* Fewer usable hashes than this in a query (or matched in an item) are no evidence. */
#define VIDEO_MIN 2
#define AUDIO_MIN 16 /* about 2 s of sound */

/* One parsed fingerprint: times in ms and values (video: 64-bit hashes; audio: 32-bit). */
struct fpv {
	uint32_t *ms;
	uint64_t *v;
	size_t n;
};

static void
fpv_free(struct fpv *f)
{
	free(f->ms);
	free(f->v);
	f->ms = NULL;
	f->v = NULL;
	f->n = 0;
}

static int
hexval(const char *s, int digits, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < digits; i++) {
		int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/*
 * Parses `part` ({"hashes": hex} video, {"values": hex, "item_us"} audio)
 * into *f. 0, -EINVAL (malformed), -ENOMEM. An absent part: n = 0.
 */
static int
parse(const json_t *part, int audio, struct fpv *f)
{
	const char *hex = json_string_value(json_object_get(part, audio ? "values" : "hashes"));
	json_int_t item_us = json_integer_value(json_object_get(part, "item_us"));
	size_t len, w = audio ? 8 : 24;

	memset(f, 0, sizeof(*f));
	if (part == NULL)
		return 0;
	if (hex == NULL || (len = strlen(hex)) % w != 0 || (audio && item_us <= 0))
		return -EINVAL;
	f->n = len / w;
	f->ms = malloc((f->n ? f->n : 1) * sizeof(*f->ms));
	f->v = malloc((f->n ? f->n : 1) * sizeof(*f->v));
	if (f->ms == NULL || f->v == NULL) {
		fpv_free(f);
		return -ENOMEM;
	}
	for (size_t i = 0; i < f->n; i++) {
		uint64_t ms = 0;
		if (audio)
			ms = (uint64_t)item_us * i / 1000;
		else if (hexval(hex + w * i, 8, &ms) < 0)
			goto bad;
		if (hexval(hex + w * i + (audio ? 0 : 8), audio ? 8 : 16, &f->v[i]) < 0)
			goto bad;
		f->ms[i] = (uint32_t)(ms > UINT32_MAX ? UINT32_MAX : ms);
	}
	return 0;
bad:
	fpv_free(f);
	return -EINVAL;
}

/*
 * Hash i of f is worth indexing and looking up: not one of a flat or
 * near-flat picture or of silence, and not the one before it again (a still
 * scene, a steady tone), which would match anything like it at every offset.
 */
static int
usable(const struct fpv *f, size_t i, int audio)
{
	int pc = __builtin_popcountll(f->v[i]);

	if (i > 0 && f->v[i] == f->v[i - 1])
		return 0;
	return audio ? pc >= 4 && pc <= 28 : pc >= 8 && pc <= 56;
}

static uint16_t
band(uint64_t v, int audio, int b)
{
	return (uint16_t)(v >> (audio ? 16 * (1 - b) : 16 * (3 - b)));
}

static void
band_key(uint8_t k[3], int audio, int b, uint64_t v)
{
	uint16_t x = band(v, audio, b);

	k[0] = (uint8_t)((audio ? AUDIO_BAND0 : 0) + b);
	k[1] = (uint8_t)(x >> 8);
	k[2] = (uint8_t)x;
}

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* Adds (del: removes) the band entries of one part of item `id`'s fingerprint. */
static int
index_part(struct cs__catalog *c, MDB_txn *txn, const char *id, const struct fpv *f,
    int audio, int del)
{
	size_t idn = strlen(id);
	uint8_t kb[3], db[12 + 480];
	MDB_val k = {3, kb}, d = {12 + idn, db};
	int rc = 0;

	if (idn == 0 || idn > 480)
		return 0;
	memcpy(db + 12, id, idn);
	for (size_t i = 0; i < f->n && rc == 0; i++) {
		if (!usable(f, i, audio))
			continue;
		put_be(db, f->v[i], 8);
		put_be(db + 8, f->ms[i], 4);
		for (int b = 0; b < (audio ? AUDIO_BANDS : VIDEO_BANDS) && rc == 0; b++) {
			band_key(kb, audio, b, f->v[i]);
			rc = del ? mdb_del(txn, c->dbi[CS_DBI_FP_BANDS], &k, &d) :
				   mdb_put(txn, c->dbi[CS_DBI_FP_BANDS], &k, &d, 0);
			if (rc == MDB_NOTFOUND || rc == MDB_KEYEXIST)
				rc = 0;
		}
	}
	return rc;
}

/* Indexes (del: unindexes) a stored fingerprint {"video"?, "audio"?}. LMDB codes. */
static int
index_fp(struct cs__catalog *c, MDB_txn *txn, const char *id, const json_t *fp, int del)
{
	struct fpv f;
	int rc = 0;

	for (int audio = 0; audio <= 1 && rc == 0; audio++) {
		rc = parse(json_object_get(fp, audio ? "audio" : "video"), audio, &f);
		if (rc == -ENOMEM)
			return ENOMEM;
		if (rc < 0)
			return del ? 0 : -1;
		rc = index_part(c, txn, id, &f, audio, del);
		fpv_free(&f);
	}
	return rc;
}

int
cs__fp_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq, const char *id,
    json_t *rec, const char **why)
{
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *rsha = json_string_value(json_object_get(rec, "sha256"));
	json_t *fp = json_object_get(ev, "fingerprint"), *old = NULL, *sum;
	const char *status = json_string_value(json_object_get(fp, "status"));
	const char *part;
	json_t *p;
	int rc;

	if (status == NULL || (strcmp(status, "ok") != 0 && strcmp(status, "failed") != 0)) {
		*why = "fingerprint event has no valid status";
		return -1;
	}
	if (sha == NULL || rsha == NULL || strcmp(sha, rsha) != 0) {
		*why = "fingerprint event's sha256 is not the item's";
		return -1;
	}
	if (strlen(id) == 0 || strlen(id) > 480)
		return 0;
	/* the record keeps the summary; the hashes go to the fingerprints table */
	sum = json_deep_copy(fp);
	if (sum == NULL) {
		rc = ENOMEM;
		goto out;
	}
	json_object_foreach(sum, part, p) {
		const char *data = strcmp(part, "video") == 0 ? "hashes" :
		    strcmp(part, "audio") == 0 ? "values" : NULL;
		if (data == NULL || !json_is_object(p))
			continue;
		if (json_object_del(p, data) < 0) {
			rc = ENOMEM;
			goto out;
		}
	}
	if (json_object_set_new(sum, "seq", json_integer((json_int_t)seq)) < 0 ||
	    json_object_set(sum, "time", json_object_get(ev, "time")) < 0 ||
	    json_object_set(rec, "fingerprint", sum) < 0) {
		rc = ENOMEM;
		goto out;
	}
	/* a new fingerprint of the item replaces the one before in the index */
	rc = cs__cat_get(txn, c->dbi[CS_DBI_FP], id, strlen(id), &old);
	if (rc == 0)
		rc = index_fp(c, txn, id, old, 1);
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0 && strcmp(status, "ok") == 0) {
		/* hashes the event carries, copied from it before the summary dropped them */
		json_t *full = json_pack("{s:O*, s:O*}", "video", json_object_get(fp, "video"),
		    "audio", json_object_get(fp, "audio"));
		rc = full == NULL ? ENOMEM : index_fp(c, txn, id, full, 0);
		if (rc == -1)
			*why = "fingerprint event's hashes are malformed";
		if (rc == 0)
			rc = cs__cat_put(txn, c->dbi[CS_DBI_FP], id, strlen(id), full);
		json_decref(full);
	} else if (rc == 0) {
		MDB_val k = {strlen(id), (void *)id};
		rc = mdb_del(txn, c->dbi[CS_DBI_FP], &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (rc == 0)
		rc = cs__media_settle(c, txn, id, rec);
out:
	json_decref(old);
	json_decref(sum);
	return rc;
}

/* ---- matching ---- */

/* One vote: query hash `qi` matched item `item` at offset `off` ms. */
struct vote {
	size_t item;
	int64_t bin;
	int64_t off;
	size_t qi;
};

static int
vote_cmp(const void *a, const void *b)
{
	const struct vote *x = a, *y = b;

	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	if (x->bin != y->bin)
		return x->bin < y->bin ? -1 : 1;
	return x->qi < y->qi ? -1 : x->qi > y->qi;
}

struct matcher {
	struct cs__catalog *c;
	MDB_txn *txn;
	json_t *ids; /* id -> index */
	json_t *names; /* index -> id */
	struct vote *votes;
	size_t nvotes, cap;
	uint64_t candidates;
	const char *self;
};

static int
item_index(struct matcher *m, const char *id, size_t idn, size_t *out)
{
	char buf[481];
	json_t *ix;

	memcpy(buf, id, idn);
	buf[idn] = '\0';
	ix = json_object_get(m->ids, buf);
	if (ix != NULL) {
		*out = (size_t)json_integer_value(ix);
		return 0;
	}
	*out = json_array_size(m->names);
	return json_object_set_new(m->ids, buf, json_integer((json_int_t)*out)) < 0 ||
	    json_array_append_new(m->names, json_string(buf)) < 0 ? -ENOMEM : 0;
}

static int
add_vote(struct matcher *m, size_t item, int64_t off, size_t qi)
{
	if (m->nvotes == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 1024;
		struct vote *v = realloc(m->votes, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		m->votes = v;
		m->cap = cap;
	}
	m->votes[m->nvotes++] = (struct vote){item, off >= 0 ? off / BIN_MS :
	    -((-off + BIN_MS - 1) / BIN_MS), off, qi};
	return 0;
}

/* Looks up each band of each usable query hash; votes for the candidates close enough. */
static int
lookup(struct matcher *m, const struct fpv *q, int audio, size_t *usable_n)
{
	MDB_cursor *cur = NULL;
	uint8_t kb[3];
	int rc = mdb_cursor_open(m->txn, m->c->dbi[CS_DBI_FP_BANDS], &cur);

	*usable_n = 0;
	if (rc != 0)
		return CS_ESTORE;
	for (size_t i = 0; i < q->n && rc == 0; i++) {
		if (!usable(q, i, audio))
			continue;
		(*usable_n)++;
		for (int b = 0; b < (audio ? AUDIO_BANDS : VIDEO_BANDS) && rc == 0; b++) {
			MDB_val k = {3, kb}, d;
			size_t count = 0;
			band_key(kb, audio, b, q->v[i]);
			rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
			if (rc == MDB_NOTFOUND) {
				rc = 0;
				continue;
			}
			if (rc == 0)
				rc = mdb_cursor_count(cur, &count);
			if (rc != 0 || count > BUCKET_MAX)
				continue;
			for (; rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP)) {
				const uint8_t *p = d.mv_data;
				size_t item, idn = d.mv_size - 12;
				uint64_t v;
				int64_t off;

				if (d.mv_size < 13 || d.mv_size > 12 + 480)
					continue;
				m->candidates++;
				v = get_be(p, 8);
				if (__builtin_popcountll(v ^ q->v[i]) >
				    (audio ? AUDIO_MAX_DIST : VIDEO_MAX_DIST))
					continue;
				if (m->self != NULL && strlen(m->self) == idn &&
				    memcmp(m->self, p + 12, idn) == 0)
					continue;
				off = (int64_t)get_be(p + 8, 4) - q->ms[i];
				if (item_index(m, (const char *)p + 12, idn, &item) < 0 ||
				    add_vote(m, item, off, i) < 0) {
					mdb_cursor_close(cur);
					return -ENOMEM;
				}
			}
			rc = rc == MDB_NOTFOUND ? 0 : rc;
		}
	}
	mdb_cursor_close(cur);
	return rc == 0 ? 0 : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

/* Distinct query hashes among the votes [a, b) and [b, e) (each sorted by qi). */
static size_t
window(const struct vote *v, size_t a, size_t b, size_t e, int64_t *sum)
{
	size_t n = 0, i = a, j = b;
	size_t last = SIZE_MAX;

	*sum = 0;
	while (i < b || j < e) {
		const struct vote *x = j >= e || (i < b && v[i].qi <= v[j].qi) ? &v[i++] : &v[j++];
		if (x->qi != last) {
			n++;
			*sum += x->off;
			last = x->qi;
		}
	}
	return n;
}

/*
 * The best offset per item from the votes: into `res` (id -> {"matched",
 * "of", "score", "offset_s"} under `kind`).
 */
static int
tally(struct matcher *m, size_t total, const char *kind, json_t *res)
{
	size_t i = 0, n = m->nvotes;
	struct vote *v = m->votes;

	if (n > 0) /* (no votes: v may be NULL) */
		qsort(v, n, sizeof(*v), vote_cmp);
	if (total < (strcmp(kind, "audio") == 0 ? AUDIO_MIN : VIDEO_MIN))
		i = n; /* too short a query to say anything */
	while (i < n) {
		size_t item = v[i].item, best = 0, e = i;
		int64_t best_sum = 0;
		json_t *r, *it;
		const char *id;

		while (e < n && v[e].item == item)
			e++;
		/* bins of this item: [s, t) one bin, [t, u) the next one if adjacent */
		for (size_t s = i; s < e;) {
			size_t t = s, u;
			int64_t sum;
			size_t got;
			while (t < e && v[t].bin == v[s].bin)
				t++;
			u = t;
			if (t < e && v[t].bin == v[s].bin + 1)
				while (u < e && v[u].bin == v[t].bin)
					u++;
			got = window(v, s, t, u, &sum);
			if (got > best) {
				best = got;
				best_sum = sum;
			}
			s = t;
		}
		if (best < (strcmp(kind, "audio") == 0 ? AUDIO_MIN : VIDEO_MIN)) {
			i = e;
			continue;
		}
		id = json_string_value(json_array_get(m->names, item));
		it = json_object_get(res, id);
		if (it == NULL) {
			it = json_object();
			if (it == NULL || json_object_set_new(res, id, it) < 0)
				return -ENOMEM;
		}
		r = json_pack("{s:I, s:I, s:f, s:f}", "matched", (json_int_t)best, "of",
		    (json_int_t)total, "score", total ? (double)best / (double)total : 0.0,
		    "offset_s", best ? (double)best_sum / (double)best / 1000.0 : 0.0);
		if (r == NULL || json_object_set_new(it, kind, r) < 0)
			return -ENOMEM;
		i = e;
	}
	m->nvotes = 0;
	return 0;
}

static int
score_cmp(const void *a, const void *b)
{
	double x = json_real_value(json_object_get(*(json_t *const *)a, "score"));
	double y = json_real_value(json_object_get(*(json_t *const *)b, "score"));

	return x > y ? -1 : x < y;
}

int
cs_media_match(struct cs_store *st, const json_t *fp, const char *self, double threshold,
    json_t **out)
{
	struct matcher m = {0};
	struct fpv q[2] = {{0}, {0}};
	size_t usable_n[2] = {0, 0};
	json_t *res = json_object(), *list = json_array(), *o = NULL, *it, **sorted = NULL;
	MDB_stat ms = {0};
	const char *id;
	size_t n = 0;
	int rc;

	m.c = &st->cat;
	m.self = self;
	m.ids = json_object();
	m.names = json_array();
	if (res == NULL || list == NULL || m.ids == NULL || m.names == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int audio = 0; audio <= 1; audio++) {
		rc = parse(json_object_get(fp, audio ? "audio" : "video"), audio, &q[audio]);
		if (rc < 0)
			goto out;
	}
	rc = cs__catalog_rtxn(&st->cat, &m.txn);
	if (rc < 0)
		goto out;
	if (mdb_stat(m.txn, st->cat.dbi[CS_DBI_FP_BANDS], &ms) != 0) {
		rc = CS_ESTORE;
		goto out;
	}
	for (int audio = 0; audio <= 1; audio++) {
		rc = lookup(&m, &q[audio], audio, &usable_n[audio]);
		if (rc == 0)
			rc = tally(&m, usable_n[audio], audio ? "audio" : "video", res);
		if (rc < 0)
			goto out;
	}
	sorted = malloc((json_object_size(res) + 1) * sizeof(*sorted));
	if (sorted == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_foreach(res, id, it) {
		json_t *v = json_object_get(it, "video"), *a = json_object_get(it, "audio");
		json_t *best = json_real_value(json_object_get(a, "score")) >
		        json_real_value(json_object_get(v, "score")) ? a : v;
		double score = json_real_value(json_object_get(best, "score"));
		if (score < threshold || score <= 0)
			continue;
		if (json_object_set_new(it, "id", json_string(id)) < 0 ||
		    json_object_set_new(it, "score", json_real(score)) < 0 ||
		    json_object_set(it, "offset_s", json_object_get(best, "offset_s")) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		sorted[n++] = it;
	}
	if (n > 0)
		qsort(sorted, n, sizeof(*sorted), score_cmp);
	for (size_t i = 0; i < n; i++)
		if (json_array_append(list, sorted[i]) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	o = json_pack("{s:O, s:{s:I, s:I}, s:{s:I, s:I}}", "matches", list, "query",
	    "video_hashes", (json_int_t)usable_n[0], "audio_values", (json_int_t)usable_n[1],
	    "index", "entries", (json_int_t)ms.ms_entries, "candidates",
	    (json_int_t)m.candidates);
	if (o == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*out = o;
	rc = 0;
out:
	if (m.txn != NULL)
		mdb_txn_abort(m.txn);
	free(sorted);
	free(m.votes);
	fpv_free(&q[0]);
	fpv_free(&q[1]);
	json_decref(m.ids);
	json_decref(m.names);
	json_decref(res);
	json_decref(list);
	return rc;
}

int
cs_media_similar(struct cs_store *st, const char *id, double threshold, json_t **out)
{
	MDB_txn *txn = NULL;
	json_t *fp = NULL;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = strlen(id) > 0 && strlen(id) <= 480 ?
	    cs__cat_get(txn, st->cat.dbi[CS_DBI_FP], id, strlen(id), &fp) : MDB_NOTFOUND;
	mdb_txn_abort(txn);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	rc = cs_media_match(st, fp, id, threshold, out);
	json_decref(fp);
	return rc;
}
