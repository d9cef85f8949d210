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
#include "store_internal.h"
#include "util.h"

int
cs_store_find(struct cs_store *st, const struct cs_query *q, json_t **out)
{
	json_t *arr = json_array();
	MDB_txn *txn;
	int rc;

	if (arr == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	rc = cs__catalog_find(&st->cat, txn, q, arr);
	mdb_txn_abort(txn);
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
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_get_item(&st->cat, txn, id, out);
	mdb_txn_abort(txn);
	return rc;
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
