/*
 * Checking and rebuilding a store. verify re-reads everything that proves
 * the store: every ledger entry (checksum, order, catalog leaf), the Merkle
 * root at every signed checkpoint, the catalog against a fresh replay of the
 * ledger into a scratch catalog, and the bytes of every blob. rebuild makes
 * a new catalog from the ledger alone and swaps it in.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "store_internal.h"
#include "util.h"

struct vctx {
	cs_problem_fn report;
	cs_progress_fn progress;
	void *ctx;
	int problems;
};

static void
problem(struct vctx *v, const char *kind, const char *id, int64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
problem(struct vctx *v, const char *kind, const char *id, int64_t pos, const char *fmt, ...)
{
	struct cs_problem p;
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	p.kind = kind;
	p.id = id;
	p.position = pos;
	p.detail = detail;
	v->problems++;
	if (v->report != NULL)
		v->report(v->ctx, &p);
}

/* Removes a scratch catalog directory (two LMDB files). */
static void
remove_catalog_dir(int rootfd, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/data.mdb", rel);
	(void)unlinkat(rootfd, p, 0);
	snprintf(p, sizeof(p), "%s/lock.mdb", rel);
	(void)unlinkat(rootfd, p, 0);
	(void)unlinkat(rootfd, rel, AT_REMOVEDIR);
}

/* Pass 1: the journal, entry by entry, against the catalog and the checkpoints. */
static int
verify_ledger(struct cs_store *st, struct vctx *v, uint64_t *good_entries)
{
	struct cs__catalog_state s;
	struct cs_merkle_stream ms;
	struct cs__cp *cps = NULL;
	size_t ncp = 0, nextcp = 0;
	uint64_t off = CS_JOURNAL_HDR, seq = 0, fsize = 0;
	MDB_txn *txn = NULL;
	int rc;

	rc = cs__checkpoints_load(st, &cps, &ncp);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ncp; i++)
		if (!cps[i].valid)
			problem(v, "checkpoint-invalid", NULL, -1,
			    "checkpoints/%s is not a valid checkpoint signed by this store's key",
			    cps[i].file);
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		goto out;
	rc = cs__catalog_state(&st->cat, txn, &s);
	if (rc < 0)
		goto out;
	(void)cs__journal_filesize(&st->j, &fsize);
	cs_merkle_stream_init(&ms);
	while (nextcp < ncp && (!cps[nextcp].valid || cps[nextcp].size == 0))
		nextcp++;
	for (;;) {
		struct cs__jentry e;
		uint8_t leaf[32];
		uint64_t loff;
		uint32_t llen;
		int torn, r;

		r = cs__journal_read(&st->j, off, &e, NULL, &torn);
		if (r == 0)
			break;
		if (r == -ENOMEM || r == CS_ECRYPTO) {
			rc = r; /* the entry could not be checked: not damage */
			goto out;
		}
		if (r < 0) {
			if (r == CS_ELEDGER && seq >= s.size && torn)
				break; /* an unacknowledged tail; the writer cuts it */
			problem(v, "ledger-damaged", NULL, (int64_t)seq,
			    "ledger entry %llu (journal offset %llu) is damaged: %s",
			    (unsigned long long)seq, (unsigned long long)off,
			    torn ? "it is cut short" : "its bytes do not match their checksum");
			break;
		}
		if (seq < s.size) {
			if (cs__catalog_leaf(&st->cat, txn, seq, leaf, &loff, &llen) < 0)
				problem(v, "catalog-leaf-missing", NULL, (int64_t)seq,
				    "the catalog has no leaf for ledger entry %llu",
				    (unsigned long long)seq);
			else if (memcmp(leaf, e.leaf, 32) != 0 || loff != e.data || llen != e.len)
				problem(v, "catalog-leaf-mismatch", NULL, (int64_t)seq,
				    "the catalog's leaf for ledger entry %llu differs from the journal",
				    (unsigned long long)seq);
		}
		rc = cs_merkle_stream_push(&ms, e.leaf);
		if (rc < 0)
			goto out;
		seq++;
		off = e.next;
		while (nextcp < ncp && (!cps[nextcp].valid || cps[nextcp].size == seq)) {
			if (cps[nextcp].valid) {
				uint8_t root[32];
				if (cs_merkle_stream_root(&ms, root) < 0 ||
				    memcmp(root, cps[nextcp].root, 32) != 0)
					problem(v, "checkpoint-mismatch", NULL, (int64_t)seq - 1,
					    "the ledger's first %llu entries do not hash to the root "
					    "signed in checkpoint %s",
					    (unsigned long long)seq, cps[nextcp].file);
			}
			nextcp++;
		}
		if (v->progress != NULL && (seq & 1023) == 0)
			v->progress(v->ctx, "ledger", off, fsize);
	}
	if (v->progress != NULL)
		v->progress(v->ctx, "ledger", fsize, fsize);
	*good_entries = seq;
	if (seq < s.size)
		problem(v, "ledger-short", NULL, (int64_t)seq,
		    "the journal holds %llu readable entries but the catalog indexes %llu",
		    (unsigned long long)seq, (unsigned long long)s.size);
	for (; nextcp < ncp; nextcp++)
		if (cps[nextcp].valid && cps[nextcp].size > seq)
			problem(v, "ledger-rolled-back", NULL, (int64_t)seq,
			    "checkpoint %s covers %llu entries but only %llu are in the journal: "
			    "entries were removed or the store was rolled back",
			    cps[nextcp].file, (unsigned long long)cps[nextcp].size,
			    (unsigned long long)seq);
	/* Only indexed events are signed: an entry past the catalog is never in a checkpoint. */
	for (size_t i = 0; i < ncp; i++)
		if (cps[i].valid && cps[i].size > s.size && cps[i].size <= seq)
			problem(v, "catalog-behind", NULL, (int64_t)s.size,
			    "checkpoint %s covers %llu entries but the catalog indexes only %llu: "
			    "the catalog was rolled back",
			    cps[i].file, (unsigned long long)cps[i].size, (unsigned long long)s.size);
	{
		/* The catalog's own Merkle nodes must give the same root. */
		struct cs__merkle_ctx m = {&st->cat, txn};
		uint8_t a[32], b[32];
		if (seq == s.size && s.size > 0) {
			if (cs_merkle_stream_root(&ms, a) < 0 ||
			    cs_merkle_root(cs__catalog_merkle_get, &m, s.size, b) < 0 ||
			    memcmp(a, b, 32) != 0)
				problem(v, "catalog-tree-mismatch", NULL, -1,
				    "the catalog's Merkle tree does not match the ledger");
		}
	}
	rc = 0;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	cs__checkpoints_free(cps, ncp);
	return rc;
}

struct diffctx {
	struct vctx *v;
};

static void
on_diff(void *ctx, const char *table, const char *key, const char *what)
{
	struct diffctx *d = ctx;

	problem(d->v, "catalog-mismatch", strcmp(table, "items") == 0 ? key : NULL, -1,
	    "catalog table %s, key %s %s", table, key, what);
}

/*
 * Pass 2: catalog == replay(ledger). The catalog is compared with a replay of
 * the entries it says it has indexed (up to its journal_end). An intact entry
 * after those is left by a crash between an ingest's ledger append and its
 * catalog commit; the next writer indexes it (recover()), so it is not a
 * difference, but it must still apply cleanly, and there can be only one. A
 * torn last entry was never acknowledged either: the writer cuts it.
 */
static int
verify_catalog(struct cs_store *st, struct vctx *v)
{
	struct cs__catalog_state s;
	struct cs__catalog scratch;
	struct diffctx d = {v};
	char rel[64], *dir;
	uint64_t end, count, tail = 0;
	MDB_txn *txn;
	int torn, rc, dfd = st->rootfd;

	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_state(&st->cat, txn, &s);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	if (s.journal_end == 0)
		s.journal_end = CS_JOURNAL_HDR;
	snprintf(rel, sizeof(rel), "tmp/verify-%ld", (long)getpid());
	dir = malloc(strlen(st->root) + sizeof(rel) + 2);
	if (dir == NULL)
		return -ENOMEM;
	snprintf(dir, strlen(st->root) + sizeof(rel) + 2, "%s/%s", st->root, rel);
	/*
	 * The scratch catalog goes in the store's tmp/, or in $TMPDIR when the
	 * store has no room for it (full, or read-only): a store is checked
	 * precisely when something went wrong with it.
	 */
	for (;;) {
		const char *tmpdir = getenv("TMPDIR");
		remove_catalog_dir(dfd, rel);
		rc = cs__catalog_open(&scratch, dfd == st->rootfd ? dir : rel, 1, 1);
		if (rc == 0)
			rc = cs__replay(&st->j, &scratch, CS_JOURNAL_HDR, s.journal_end, 0, &end, &count,
			    &torn, v->progress, v->ctx);
		/* (LMDB reports a write cut short by a full disk as EIO.) */
		if (dfd != st->rootfd || !(rc == -ENOSPC || rc == -EDQUOT || rc == -EIO ||
		                             rc == -EROFS || rc == -EACCES || rc == -EPERM))
			break;
		cs__catalog_close(&scratch);
		remove_catalog_dir(dfd, rel);
		dfd = AT_FDCWD;
		snprintf(rel, sizeof(rel), "%.36s/custos-verify-%ld",
		    tmpdir != NULL && *tmpdir == '/' && strlen(tmpdir) <= 36 ? tmpdir : "/tmp",
		    (long)getpid());
	}
	if (rc < 0 && scratch.env == NULL) {
		remove_catalog_dir(dfd, rel);
		free(dir);
		return rc;
	}
	if (rc == 0) {
		rc = cs__catalog_compare(&st->cat, &scratch, on_diff, &d);
		if (rc > 0)
			rc = 0;
		if (rc == 0) {
			rc = cs__replay(&st->j, &scratch, end, UINT64_MAX, count, &end, &tail, &torn,
			    NULL, NULL);
			if (rc == CS_ELEDGER && torn)
				rc = 0;
			if (rc == 0 && tail > 1)
				problem(v, "catalog-behind", NULL, (int64_t)count,
				    "the catalog indexes %llu ledger entries but %llu more follow; a "
				    "crash leaves at most one, so the catalog was rolled back",
				    (unsigned long long)count, (unsigned long long)tail);
		}
	}
	if (rc == CS_ELEDGER) {
		problem(v, "ledger-unreplayable", NULL, (int64_t)(count + tail),
		    "ledger entry %llu cannot be applied (its event is malformed or out of "
		    "order)",
		    (unsigned long long)(count + tail));
		rc = 0;
	}
	cs__catalog_close(&scratch);
	remove_catalog_dir(dfd, rel);
	free(dir);
	return rc;
}

/* Pass 3: the bytes. */
struct bctx {
	struct cs_store *st;
	struct vctx *v;
	uint64_t done, total;
};

static int
check_item(struct bctx *b, const char *id, json_t *rec)
{
	const char *hex = json_string_value(json_object_get(rec, "sha256"));
	json_int_t size = json_integer_value(json_object_get(rec, "size"));
	char path[CS_BLOB_PATH_MAX];
	int rc;

	if (rec == NULL || hex == NULL) {
		problem(b->v, "record-damaged", id, -1, "the catalog record of %s is unreadable", id);
		return 0;
	}
	rc = cs__blob_check(b->st->rootfd, hex, (uint64_t)size);
	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		return rc; /* the blob could not be checked: not damage */
	cs__blob_path(hex, path, sizeof(path));
	if (rc == -ENOENT)
		problem(b->v, "blob-missing", id, -1, "the stored copy of %s (%s) is missing", id,
		    path);
	else if (rc == CS_EDIGEST)
		problem(b->v, "blob-damaged", id, -1,
		    "the stored copy of %s (%s) does not match its SHA-256", id, path);
	else if (rc < 0)
		problem(b->v, "blob-unreadable", id, -1, "the stored copy of %s (%s) cannot be read: %s",
		    id, path, cs_strerror(rc));
	b->done++;
	if (b->v->progress != NULL)
		b->v->progress(b->v->ctx, "blobs", b->done, b->total);
	return 0;
}

static int
each_blob(void *ctx, const char *id, json_t *rec)
{
	return check_item(ctx, id, rec);
}

static int
count_items(void *ctx, const char *id, json_t *rec)
{
	(void)id;
	(void)rec;
	((struct bctx *)ctx)->total++;
	return 0;
}

int
cs_store_verify(struct cs_store *st, const char *const *ids, size_t n, cs_problem_fn report,
    cs_progress_fn progress, void *ctx)
{
	struct vctx v = {report, progress, ctx, 0};
	struct bctx b = {st, &v, 0, 0};
	uint64_t good = 0;
	MDB_txn *txn = NULL;
	int rc;

	rc = verify_ledger(st, &v, &good);
	if (rc < 0)
		return rc;
	rc = verify_catalog(st, &v);
	if (rc < 0)
		return rc;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	if (n == 0) {
		rc = cs__catalog_each_item(&st->cat, txn, count_items, &b);
		if (rc == 0)
			rc = cs__catalog_each_item(&st->cat, txn, each_blob, &b);
	} else {
		b.total = n;
		for (size_t i = 0; i < n && rc == 0; i++) {
			json_t *rec = NULL;
			int r = cs__catalog_get_item(&st->cat, txn, ids[i], &rec);
			if (r == CS_ENOTFOUND)
				problem(&v, "not-found", ids[i], -1, "no evidence item has the id %s",
				    ids[i]);
			else if (r < 0)
				rc = r;
			else
				rc = check_item(&b, ids[i], rec);
			json_decref(rec);
		}
	}
	mdb_txn_abort(txn);
	return rc < 0 ? rc : v.problems;
}

int
cs_store_verify_checkpoint(struct cs_store *st, const char *name, const char *note, size_t len,
    cs_problem_fn report, void *ctx)
{
	struct vctx v = {report, NULL, ctx, 0};
	struct cs__merkle_ctx m = {&st->cat, NULL};
	struct cs__catalog_state s;
	struct cs_verifier *ver = NULL;
	struct cs_checkpoint cp;
	char *vkey = NULL;
	uint8_t root[32];
	size_t tl = 0;
	int rc;

	rc = cs_store_verifier_key(st, &vkey);
	if (rc == 0)
		rc = cs_verifier_parse(&ver, vkey, strlen(vkey));
	free(vkey);
	if (rc < 0)
		return rc;
	rc = cs_note_verify(ver, note, len, &tl);
	cs_verifier_free(ver);
	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		return rc;
	if (rc < 0 || cs_checkpoint_parse(&cp, note, tl) < 0 || strcmp(cp.origin, st->origin) != 0) {
		problem(&v, "checkpoint-foreign", NULL, -1,
		    "%s is not a checkpoint signed by this store's key for %s", name, st->origin);
		return v.problems;
	}
	rc = cs__catalog_rtxn(&st->cat, &m.txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_state(&st->cat, m.txn, &s);
	if (rc < 0)
		goto out;
	if (cp.size > s.size) {
		problem(&v, "ledger-rolled-back", NULL, (int64_t)s.size,
		    "%s covers %llu ledger entries but the store holds only %llu: the store was "
		    "rolled back to an older copy or entries were removed",
		    name, (unsigned long long)cp.size, (unsigned long long)s.size);
	} else {
		rc = cs_merkle_root(cs__catalog_merkle_get, &m, cp.size, root);
		if (rc < 0)
			goto out;
		if (memcmp(root, cp.root, 32) != 0)
			problem(&v, "checkpoint-mismatch", NULL, (int64_t)cp.size - 1,
			    "the store's first %llu ledger entries do not hash to the root signed in %s: "
			    "its history differs from the one that was signed",
			    (unsigned long long)cp.size, name);
	}
	rc = 0;
out:
	mdb_txn_abort(m.txn);
	return rc < 0 ? rc : v.problems;
}

int64_t
cs_store_rebuild(const char *root, cs_progress_fn progress, void *ctx)
{
	struct cs__catalog cat = {0};
	struct cs__journal j = {.fd = -1};
	char *newdir = NULL, *olddir = NULL;
	uint64_t end, count = 0, fsize = 0;
	int rootfd, lockfd = -1, torn, rc;

	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	lockfd = openat(rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd < 0) {
		rc = -errno;
		goto out;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? CS_EBUSY : -errno;
		goto out;
	}
	rc = cs__journal_open(&j, rootfd, 0, 0);
	if (rc < 0)
		goto out;
	newdir = malloc(strlen(root) + 32);
	olddir = malloc(strlen(root) + 32);
	if (newdir == NULL || olddir == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(newdir, strlen(root) + 32, "%s/catalog.rebuild", root);
	snprintf(olddir, strlen(root) + 32, "%s/catalog", root);
	remove_catalog_dir(rootfd, "catalog.rebuild");
	rc = cs__catalog_open(&cat, newdir, 1, 0);
	if (rc < 0)
		goto out;
	rc = cs__replay(&j, &cat, CS_JOURNAL_HDR, UINT64_MAX, 0, &end, &count, &torn, progress, ctx);
	(void)cs__journal_filesize(&j, &fsize);
	if (rc == 0 && end < fsize && !torn)
		rc = CS_ELEDGER;
	if (rc == CS_ELEDGER && torn) {
		/* A torn tail is never acknowledged work: the next writer cuts it. */
		rc = 0;
	}
	cs__catalog_close(&cat);
	if (rc < 0) {
		remove_catalog_dir(rootfd, "catalog.rebuild");
		goto out;
	}
	/* LMDB never fsyncs the directory it creates data.mdb in. */
	rc = cs__fsync_dir(rootfd, "catalog.rebuild");
	if (rc < 0)
		goto out;
	remove_catalog_dir(rootfd, "catalog");
	if (renameat(rootfd, "catalog.rebuild", rootfd, "catalog") < 0) {
		rc = -errno;
		goto out;
	}
	rc = cs__fsync_dir(rootfd, NULL);
out:
	cs__journal_close(&j);
	free(newdir);
	free(olddir);
	if (lockfd >= 0)
		close(lockfd);
	close(rootfd);
	return rc < 0 ? rc : (int64_t)count;
}
