/*
 * The read side of the store: find, an item's record and its events, one
 * event or a range of them from the ledger, and the tlog proof of an item's
 * ingest event against the latest checkpoint. Each call reads in its own
 * LMDB read transaction and may run beside the writer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "custos/query.h"
#include "listing.h"
#include "store_internal.h"
#include "util.h"

/* Puts the record's officer flags in it as "flags" when it has any. */
static int
add_flags(struct cs_store *st, MDB_txn *txn, json_t *rec)
{
	json_t *flags = NULL;
	int rc = cs__officer_flags(&st->cat, txn, rec, &flags);

	if (rc == 0 && json_array_size(flags) > 0)
		rc = json_object_set(rec, "flags", flags) < 0 ? -ENOMEM : 0;
	json_decref(flags);
	return rc;
}

/* One match with the key it sorts by ("key" NUL id, hex in cursors). */
struct hit {
	struct cs_listing *l;
	char *key;
	const char *id;
};

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->id, y->id);
}

/* The text a listing sorts by under `sort` (malloc'd), NULL on no memory. */
static char *
sort_key(const struct cs_listing *l, const char *sort)
{
	const char *v = NULL;
	char num[24];

	if (strcmp(sort, "time") == 0) {
		v = l->recorded_start;
	} else if (strcmp(sort, "ingested") == 0) {
		v = l->ingested_at;
	} else if (strcmp(sort, "case") == 0) {
		v = l->n_cases > 0 ? l->cases[0].number : NULL;
	} else if (strcmp(sort, "size") == 0) {
		snprintf(num, sizeof(num), "%020lld", (long long)l->size);
		v = num;
	}
	return strdup(v != NULL ? v : "");
}

static int
valid_sort(const char *s)
{
	static const char *const sorts[] = {"id", "time", "ingested", "case", "size", NULL};

	for (size_t i = 0; sorts[i] != NULL; i++)
		if (strcmp(s, sorts[i]) == 0)
			return 1;
	return 0;
}

/* The cursor of a hit: hex of key NUL id. */
static char *
cursor_of(const struct hit *h)
{
	size_t kl = strlen(h->key), il = strlen(h->id);
	uint8_t *raw = malloc(kl + 1 + il);
	char *hex = malloc(2 * (kl + 1 + il) + 1);

	if (raw != NULL && hex != NULL) {
		memcpy(raw, h->key, kl);
		raw[kl] = '\0';
		memcpy(raw + kl + 1, h->id, il);
		cs__hex(raw, kl + 1 + il, hex);
	} else {
		free(hex);
		hex = NULL;
	}
	free(raw);
	return hex;
}

/* Splits cursor text into key and id (malloc'd in *buf). CS_EFORMAT. */
static int
cursor_parse(const char *cur, char **buf, struct hit *at)
{
	size_t n = strlen(cur);
	char *raw, *nul;

	if (n == 0 || n % 2 != 0 || n > 4096)
		return CS_EFORMAT;
	raw = malloc(n / 2 + 1);
	if (raw == NULL)
		return -ENOMEM;
	if (cs__unhex(cur, n, (uint8_t *)raw) < 0) {
		free(raw);
		return CS_EFORMAT;
	}
	raw[n / 2] = '\0';
	nul = memchr(raw, '\0', n / 2);
	if (nul == NULL || nul == raw + n / 2) {
		free(raw);
		return CS_EFORMAT;
	}
	at->key = raw;
	at->id = nul + 1;
	*buf = raw;
	return 0;
}

void
cs_list_free(struct cs_list *l)
{
	if (l == NULL)
		return;
	free(l->items);
	free(l->next);
	cs__arena_free(l->arena);
	free(l);
}

/* The page of q's matches in its order, in a read transaction. */
static int
list_in(struct cs_store *st, MDB_txn *txn, const struct cs_query *q, struct cs_list *out)
{
	const char *sort = q->sort != NULL ? q->sort : "id";
	struct hit *hits = NULL, at = {NULL, NULL, NULL};
	struct cs_listing *page = NULL;
	char *curbuf = NULL;
	size_t n = 0, start = 0, end = 0;
	int rc = 0, desc = *sort == '-', sorted = 1, byid;

	if (desc)
		sort++;
	byid = strcmp(sort, "id") == 0;
	if (!valid_sort(sort))
		rc = CS_EFORMAT;
	if (rc == 0 && q->after != NULL)
		rc = cursor_parse(q->after, &curbuf, &at);
	if (rc == 0)
		rc = cs__catalog_find(&st->cat, txn, q, out);
	n = out->n;
	if (rc == 0 && (hits = calloc(n + 1, sizeof(*hits))) == NULL)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		hits[i].l = &out->items[i];
		hits[i].id = hits[i].l->id;
		/* (by id: every key is "", not copied) */
		hits[i].key = byid ? (char *)"" : sort_key(hits[i].l, sort);
		if (hits[i].key == NULL)
			rc = -ENOMEM;
		else if (i > 0 && hit_cmp(&hits[i - 1], &hits[i]) > 0)
			sorted = 0;
	}
	if (rc == 0) {
		/*
		 * (one sort of the matches: O(m log m) in the matches m, never the
		 * catalog; none when they came in order, as the values of one index
		 * key do by id)
		 */
		if (!sorted)
			qsort(hits, n, sizeof(*hits), hit_cmp);
		for (size_t i = 0; desc && i < n / 2; i++) {
			struct hit t = hits[i];
			hits[i] = hits[n - 1 - i];
			hits[n - 1 - i] = t;
		}
		if (at.key != NULL) {
			/* the first hit after the cursor: a binary search */
			size_t lo = 0, hi = n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				int c = hit_cmp(&hits[mid], &at);
				if (desc ? c >= 0 : c <= 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			start = lo;
		}
		end = q->limit > 0 && n - start > q->limit ? start + q->limit : n;
		if ((!sorted || desc || start > 0 || end < n) &&
		    (page = malloc((end - start + 1) * sizeof(*page))) == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0 && end < n && end > start && (out->next = cursor_of(&hits[end - 1])) == NULL)
		rc = -ENOMEM;
	if (rc == 0 && page != NULL) {
		for (size_t i = start; i < end; i++)
			page[i - start] = *hits[i].l;
		free(out->items);
		out->items = page;
		page = NULL;
		out->n = out->cap = end - start;
	}
	out->total = n;
	for (size_t i = 0; !byid && hits != NULL && i < n; i++)
		free(hits[i].key);
	free(hits);
	free(page);
	free(curbuf);
	return rc;
}

int
cs_store_list(struct cs_store *st, const struct cs_query *q, struct cs_list **out)
{
	struct cs_list *l = calloc(1, sizeof(*l));
	MDB_txn *txn;
	int rc = l != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;

	if (rc == 0) {
		rc = list_in(st, txn, q, l);
		mdb_txn_abort(txn);
	}
	if (rc < 0) {
		cs_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* The records of listings (with their flags) in a JSON array, in their order. */
static int
records_of(struct cs_store *st, MDB_txn *txn, const struct cs_list *l, json_t *arr)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		json_t *rec = NULL;
		rc = cs__catalog_get_item(&st->cat, txn, l->items[i].id, &rec);
		if (rc == CS_ENOTFOUND)
			rc = CS_ESTORE; /* a listing without its record: a damaged catalog */
		if (rc == 0)
			rc = add_flags(st, txn, rec);
		if (rc == 0 && json_array_append(arr, rec) < 0)
			rc = -ENOMEM;
		json_decref(rec);
	}
	return rc;
}

int
cs_store_find_page(struct cs_store *st, const struct cs_query *q, json_t **out)
{
	struct cs_list *l = calloc(1, sizeof(*l));
	json_t *items = json_array(), *page = NULL;
	MDB_txn *txn = NULL;
	int rc = l != NULL && items != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;

	if (rc == 0)
		rc = list_in(st, txn, q, l);
	if (rc == 0)
		rc = records_of(st, txn, l, items);
	if (rc == 0) {
		page = json_pack("{s:O, s:I}", "items", items, "total", (json_int_t)l->total);
		if (page == NULL)
			rc = -ENOMEM;
		else if (l->next != NULL &&
		    json_object_set_new(page, "next", json_string(l->next)) < 0)
			rc = -ENOMEM;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	cs_list_free(l);
	json_decref(items);
	if (rc < 0) {
		json_decref(page);
		return rc;
	}
	*out = page;
	return 0;
}

int
cs_store_find(struct cs_store *st, const struct cs_query *q, json_t **out)
{
	struct cs_list *l = calloc(1, sizeof(*l));
	json_t *arr = json_array();
	MDB_txn *txn = NULL;
	int rc = l != NULL && arr != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;

	if (rc == 0)
		rc = cs__catalog_find(&st->cat, txn, q, l);
	if (rc == 0)
		rc = records_of(st, txn, l, arr);
	if (txn != NULL)
		mdb_txn_abort(txn);
	cs_list_free(l);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int
cs_store_get(struct cs_store *st, const char *id, json_t **out)
{
	MDB_txn *txn;
	json_t *rec = NULL;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc == 0)
		rc = add_flags(st, txn, rec);
	mdb_txn_abort(txn);
	if (rc < 0) {
		json_decref(rec);
		return rc;
	}
	*out = rec;
	return 0;
}

static int
event_in(struct cs_store *st, MDB_txn *txn, uint64_t seq, json_t **event, char **raw,
    size_t *rawlen)
{
	uint64_t off;
	uint32_t len;
	char *buf;
	uint8_t leaf[32], want[32];
	ssize_t n;
	int rc;

	rc = cs__catalog_leaf(&st->cat, txn, seq, want, &off, &len);
	if (rc < 0)
		return rc;
	if (len > CS_JOURNAL_MAX_ENTRY)
		return CS_ELEDGER;
	buf = malloc((size_t)len + 1);
	if (buf == NULL)
		return -ENOMEM;
	n = cs__pread_all(st->j.fd, buf, len, (off_t)off);
	if (n != (ssize_t)len) {
		free(buf);
		return n < 0 ? (int)n : CS_ELEDGER;
	}
	buf[len] = '\0';
	if (cs_merkle_leaf_hash(buf, len, leaf) < 0 || memcmp(leaf, want, 32) != 0) {
		free(buf);
		return CS_ELEDGER;
	}
	if (event != NULL) {
		int oom;
		*event = cs__json_load(buf, len, 0, &oom);
		if (*event == NULL) {
			free(buf);
			return oom ? -ENOMEM : CS_ELEDGER;
		}
	}
	if (raw != NULL) {
		*raw = buf;
		*rawlen = len;
	} else {
		free(buf);
	}
	return 0;
}

int
cs_store_event(struct cs_store *st, uint64_t seq, json_t **event, char **raw, size_t *rawlen)
{
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = event_in(st, txn, seq, event, raw, rawlen);
	mdb_txn_abort(txn);
	return rc;
}

int
cs_store_item_events(struct cs_store *st, const char *id, json_t **out)
{
	uint64_t *seqs = NULL;
	json_t *arr = NULL, *rec = NULL;
	MDB_txn *txn;
	size_t n = 0;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc < 0)
		goto out;
	rc = cs__catalog_item_seqs(&st->cat, txn, id, &seqs, &n);
	if (rc < 0)
		goto out;
	arr = json_array();
	for (size_t i = 0; i < n && rc == 0; i++) {
		json_t *ev = NULL;
		rc = event_in(st, txn, seqs[i], &ev, NULL, NULL);
		if (rc == 0)
			json_array_append_new(arr, json_pack("{s:I, s:o}", "seq",
			    (json_int_t)seqs[i], "event", ev));
	}
	if (rc == 0) {
		*out = arr;
		arr = NULL;
	}
out:
	json_decref(arr);
	json_decref(rec);
	free(seqs);
	mdb_txn_abort(txn);
	return rc;
}

int
cs_store_log(struct cs_store *st, uint64_t from, uint64_t count, cs_event_fn cb, void *ctx)
{
	struct cs__catalog_state s;
	MDB_txn *txn;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_state(&st->cat, txn, &s);
	for (uint64_t i = from; rc == 0 && i < s.size && i - from < count; i++) {
		json_t *ev = NULL;
		rc = event_in(st, txn, i, &ev, NULL, NULL);
		if (rc == 0) {
			int stop = cb(ctx, i, ev);
			json_decref(ev);
			if (stop)
				break;
		}
	}
	mdb_txn_abort(txn);
	return rc;
}
