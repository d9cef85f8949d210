/*
 * Replicas (custos/replica.h): the "replica" event, its projection onto the
 * item's record (cs__replica_project, called by cs__catalog_apply for every
 * replica event, first written or replayed), what is still to send, and the
 * bytes of each object to send (a blob, a ledger record, the newest signed
 * checkpoint) as a read-only fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "catalog.h"
#include "custos/error.h"
#include "custos/replica.h"
#include "store_internal.h"
#include "util.h"

/* Appends the replica event's facts to the `replicas` of `obj` (a record or a derivative). */
static int
append_replica(json_t *obj, json_t *ev, uint64_t seq, const char *remote, const char *key)
{
	json_t *list = json_object_get(obj, "replicas"), *r;

	if (list == NULL) {
		list = json_array();
		if (list == NULL || json_object_set_new(obj, "replicas", list) < 0)
			return ENOMEM;
	}
	r = json_pack("{s:s, s:s, s:O*, s:O*, s:O*, s:O, s:I}", "remote", remote, "key", key,
	    "version_id", json_object_get(ev, "version_id"), "lock_mode",
	    json_object_get(ev, "lock_mode"), "retain_until", json_object_get(ev, "retain_until"),
	    "time", json_object_get(ev, "time"), "seq", (json_int_t)seq);
	return r != NULL && json_array_append_new(list, r) == 0 ? 0 : ENOMEM;
}

/* 1 when derivative entry `d` was made (status ok) with bytes `sha` (NULL: any). */
static int
derivative_ok(json_t *d, const char *sha)
{
	const char *st = json_string_value(json_object_get(d, "status"));
	const char *dsha = json_string_value(json_object_get(d, "sha256"));

	return st != NULL && strcmp(st, "ok") == 0 && dsha != NULL && strlen(dsha) == 64 &&
	    (sha == NULL || strcmp(sha, dsha) == 0);
}

int
cs__replica_project(json_t *ev, uint64_t seq, json_t *rec, const char **why)
{
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *rsha = json_string_value(json_object_get(rec, "sha256"));
	const char *remote = json_string_value(json_object_get(ev, "remote"));
	const char *key = json_string_value(json_object_get(ev, "key"));
	const char *dkind = json_string_value(json_object_get(ev, "derivative"));
	json_t *d;
	size_t i;
	int n = 0, rc = 0;

	if (remote == NULL || key == NULL) {
		*why = "replica event lacks remote or key";
		return -1;
	}
	if (dkind == NULL) {
		if (sha == NULL || rsha == NULL || strcmp(sha, rsha) != 0) {
			*why = "replica event's sha256 is not the item's";
			return -1;
		}
		return append_replica(rec, ev, seq, remote, key);
	}
	/* a derivative's: onto each of its entries made with those bytes */
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *k = json_string_value(json_object_get(d, "kind"));
		if (rc == 0 && sha != NULL && k != NULL && strcmp(k, dkind) == 0 &&
		    derivative_ok(d, sha)) {
			rc = append_replica(d, ev, seq, remote, key);
			n++;
		}
	}
	if (rc == 0 && n == 0) {
		*why = "replica event names a derivative the item does not have";
		return -1;
	}
	return rc;
}

static int
set_nonempty(json_t *ev, const char *k, const char *v)
{
	if (v == NULL || v[0] == '\0')
		return 0;
	return json_object_set_new(ev, k, json_string(v)) < 0 ? -ENOMEM : 0;
}

int
cs_replica_record(struct cs_store *st, const struct cs_replica *rp, uint64_t *seq)
{
	int blob = strcmp(rp->kind, "blob") == 0, deriv = strcmp(rp->kind, "derivative") == 0;
	json_t *ev;
	uint64_t s = 0;
	int rc;

	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "event", "replica", "kind", rp->kind,
	    "remote", rp->remote, "key", rp->key, "sha256", rp->sha256, "size",
	    (json_int_t)rp->size, "found", rp->found);
	if (ev == NULL)
		return -ENOMEM;
	rc = set_nonempty(ev, "id", blob || deriv ? rp->id : NULL);
	if (rc == 0)
		rc = set_nonempty(ev, "derivative", deriv ? rp->derivative : NULL);
	if (rc == 0)
		rc = set_nonempty(ev, "version_id", rp->version_id);
	if (rc == 0)
		rc = set_nonempty(ev, "etag", rp->etag);
	if (rc == 0)
		rc = set_nonempty(ev, "lock_mode", rp->lock_mode);
	if (rc == 0)
		rc = set_nonempty(ev, "retain_until", rp->retain_until);
	if (rc == 0 && !blob && !deriv &&
	    (json_object_set_new(ev, "tree_size", json_integer((json_int_t)rp->tree_size)) < 0 ||
	        json_object_set_new(ev, "records_from",
	            json_integer((json_int_t)rp->records_from)) < 0))
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	if (st->lockfd < 0) {
		rc = -EBADF;
	} else {
		rc = cs__store_commit_locked(st, ev, &s);
	}
	if (rc == 0 && seq != NULL)
		*seq = s;
out:
	json_decref(ev);
	return rc;
}

static int
get_rec(struct cs_store *st, MDB_txn *txn, const char *id, json_t **rec)
{
	return cs__catalog_get_item(&st->cat, txn, id, rec);
}

/* The derivatives' replicas, each with "derivative" (its kind) and "sha256", onto `out`. */
static int
derivative_replicas(json_t *rec, json_t *out)
{
	json_t *d, *r, *c;
	size_t i, j;

	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		json_array_foreach(json_object_get(d, "replicas"), j, r)
		{
			c = json_deep_copy(r);
			if (c == NULL)
				return -ENOMEM;
			if (json_object_set(c, "derivative", json_object_get(d, "kind")) < 0 ||
			    json_object_set(c, "sha256", json_object_get(d, "sha256")) < 0) {
				json_decref(c);
				return -ENOMEM;
			}
			if (json_array_append_new(out, c) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

int
cs_replica_list(struct cs_store *st, const char *id, json_t **out)
{
	MDB_txn *txn = NULL;
	json_t *rec = NULL, *l;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = get_rec(st, txn, id, &rec);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	l = json_object_get(rec, "replicas");
	*out = l != NULL ? json_deep_copy(l) : json_array();
	rc = *out != NULL ? derivative_replicas(rec, *out) : -ENOMEM;
	json_decref(rec);
	if (rc < 0) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* 1 when `obj` has a replica at `remote` (NULL: at any remote). */
static int
has_replica(json_t *obj, const char *remote)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(obj, "replicas"), i, r)
	{
		const char *rm = json_string_value(json_object_get(r, "remote"));
		if (remote == NULL || (rm != NULL && strcmp(rm, remote) == 0))
			return 1;
	}
	return 0;
}

/*
 * Derivative `i` of `list` is to send to `remote`: made, without a replica
 * there, and the first of the list with its bytes (one object for both).
 */
static int
derivative_due(json_t *list, size_t i, const char *remote)
{
	json_t *d = json_array_get(list, i);
	const char *sha = json_string_value(json_object_get(d, "sha256"));

	if (!derivative_ok(d, NULL) || has_replica(d, remote))
		return 0;
	for (size_t j = 0; j < i; j++)
		if (derivative_ok(json_array_get(list, j), sha))
			return 0;
	return 1;
}

int
cs__replica_todo(json_t *rec, const char *remote)
{
	json_t *list = json_object_get(rec, "derivatives");

	if (!has_replica(rec, remote))
		return 1;
	for (size_t i = 0; i < json_array_size(list); i++)
		if (derivative_due(list, i, remote))
			return 1;
	return 0;
}

struct pend {
	const char *remote;
	json_t *out;
};

/* The item's objects with no replica at `remote`: its blob, then its derivatives. */
static int
add_pending(json_t *out, const char *id, json_t *rec, const char *remote)
{
	json_t *list = json_object_get(rec, "derivatives"), *o, *d;

	if (!has_replica(rec, remote)) {
		o = json_pack("{s:s, s:O, s:O}", "id", id, "sha256",
		    json_object_get(rec, "sha256"), "size", json_object_get(rec, "size"));
		if (o == NULL || json_array_append_new(out, o) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < json_array_size(list); i++) {
		if (!derivative_due(list, i, remote))
			continue;
		d = json_array_get(list, i);
		o = json_pack("{s:s, s:O, s:O, s:O}", "id", id, "sha256",
		    json_object_get(d, "sha256"), "size", json_object_get(d, "size"), "derivative",
		    json_object_get(d, "kind"));
		if (o == NULL || json_array_append_new(out, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int
pend_cb(void *ctx, const char *id, json_t *rec)
{
	struct pend *p = ctx;

	return add_pending(p->out, id, rec, p->remote);
}

/*
 * 1 when the upload_todo index is the pending list of `remote`: no replica
 * event named another remote (then "no replica at `remote`" is "no replica").
 */
static int
index_holds(struct cs_store *st, MDB_txn *txn, const char *remote)
{
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int rc, yes = 1;

	if (mdb_cursor_open(txn, st->cat.dbi[CS_DBI_REMOTES], &cur) != 0)
		return 0;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0 && yes;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
		yes = k.mv_size == strlen(remote) && memcmp(k.mv_data, remote, k.mv_size) == 0;
	mdb_cursor_close(cur);
	return yes && rc == MDB_NOTFOUND;
}

/* The pending items from the upload_todo index, in id order as a scan gives them. */
static int
pending_indexed(struct cs_store *st, MDB_txn *txn, struct pend *p)
{
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int rc;

	if (mdb_cursor_open(txn, st->cat.dbi[CS_DBI_UPLOAD_TODO], &cur) != 0)
		return CS_ESTORE;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		char id[512];
		json_t *rec = NULL;
		int r;
		if (k.mv_size == 0 || k.mv_size >= sizeof(id))
			continue;
		memcpy(id, k.mv_data, k.mv_size);
		id[k.mv_size] = '\0';
		r = get_rec(st, txn, id, &rec);
		if (r == 0)
			r = add_pending(p->out, id, rec, p->remote);
		json_decref(rec);
		if (r < 0 && r != CS_ENOTFOUND) {
			mdb_cursor_close(cur);
			return r;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : CS_ESTORE;
}

int
cs_replica_pending(struct cs_store *st, const char *remote, const char *const *ids, size_t n,
    json_t **items, const char **bad)
{
	struct pend p = {remote, json_array()};
	MDB_txn *txn = NULL;
	int rc;

	if (p.out == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0 && ids == NULL && index_holds(st, txn, remote)) {
		rc = pending_indexed(st, txn, &p);
	} else if (rc == 0 && ids == NULL) {
		rc = cs__catalog_each_item(&st->cat, txn, pend_cb, &p);
	} else {
		for (size_t i = 0; rc == 0 && i < n; i++) {
			json_t *rec = NULL;
			rc = get_rec(st, txn, ids[i], &rec);
			if (rc == CS_ENOTFOUND && bad != NULL)
				*bad = ids[i];
			if (rc == 0)
				rc = add_pending(p.out, ids[i], rec, remote);
			json_decref(rec);
		}
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc < 0) {
		json_decref(p.out);
		return rc;
	}
	*items = p.out;
	return 0;
}

int
cs_replica_checkpoint_size(struct cs_store *st, uint64_t *size)
{
	MDB_txn *txn = NULL;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_replica_cp(&st->cat, txn, size);
	mdb_txn_abort(txn);
	return rc;
}

/* Opens `path` under the store's root, a regular file, read-only. */
static int
open_object(struct cs_store *st, const char *path, int *fd, uint64_t *size)
{
	struct stat sb;
	int f = openat(st->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (f < 0)
		return -errno;
	if (fstat(f, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(f);
		return CS_ENOTREG;
	}
	*fd = f;
	*size = (uint64_t)sb.st_size;
	return 0;
}

int
cs_replica_blob_fd(struct cs_store *st, const char *hex, int *fd, uint64_t *size)
{
	char path[CS_BLOB_PATH_MAX];

	if (strlen(hex) != 64)
		return CS_EFORMAT;
	cs__blob_path(hex, path, sizeof(path));
	return open_object(st, path, fd, size);
}

int
cs_replica_derivative_fd(struct cs_store *st, const char *hex, int *fd, uint64_t *size)
{
	char path[CS_BLOB_PATH_MAX + 16];

	if (strlen(hex) != 64)
		return CS_EFORMAT;
	snprintf(path, sizeof(path), "derivatives/sha256/%.2s/%.2s/%s", hex, hex + 2, hex);
	return open_object(st, path, fd, size);
}

/* A read-only memfd holding `len` bytes of `buf`, with their SHA-256. */
static int
mem_fd(const char *name, const void *buf, size_t len, int *fd, uint8_t sha[32])
{
	int f = memfd_create(name, MFD_CLOEXEC);

	if (f < 0)
		return -errno;
	if (write(f, buf, len) != (ssize_t)len) {
		int rc = errno != 0 ? -errno : -EIO;
		close(f);
		return rc;
	}
	if (EVP_Digest(buf, len, sha, NULL, EVP_sha256(), NULL) != 1) {
		close(f);
		return CS_ECRYPTO;
	}
	*fd = f;
	return 0;
}

int
cs_replica_record_fd(struct cs_store *st, uint64_t seq, int *fd, uint64_t *size, uint8_t sha256[32])
{
	struct cs__jentry e;
	MDB_txn *txn = NULL;
	uint64_t off;
	uint32_t len;
	char *buf = NULL;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_leaf(&st->cat, txn, seq, NULL, &off, &len);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	/* the leaf records where the event's bytes start: its entry is 4 bytes before */
	rc = cs__journal_read(&st->j, off - 4, &e, &buf, NULL);
	if (rc == 1 && e.len == len)
		rc = mem_fd("custos-record", buf, len, fd, sha256);
	else
		rc = rc < 0 ? rc : CS_ELEDGER;
	if (rc == 0)
		*size = len;
	free(buf);
	return rc;
}

int
cs_replica_checkpoint_fd(struct cs_store *st, int *fd, uint64_t *size, uint8_t sha256[32],
    uint64_t *tree_size)
{
	struct cs__cp cp = {0};
	int rc = cs__checkpoint_newest(st, &cp);

	if (rc < 0)
		return rc;
	rc = mem_fd("custos-checkpoint", cp.note, cp.len, fd, sha256);
	if (rc == 0) {
		*size = cp.len;
		*tree_size = cp.size;
	}
	free(cp.note);
	return rc;
}
