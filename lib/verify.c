/*
 * Checking and rebuilding a store. verify re-reads everything that proves
 * the store: every ledger entry (checksum, order, catalog leaf), the Merkle
 * root at every signed checkpoint, the catalog against a fresh replay of the
 * ledger into a scratch catalog, and the bytes of every blob. LMDB trusts
 * its pages, so a damaged catalog can crash the process that reads it: the
 * checks that read the catalog run in a child process, which sends its
 * problems and progress to the caller's process through a pipe. If that
 * child dies, the catalog is reported damaged and the journal, checkpoints
 * and blobs are checked again without it. rebuild makes a new catalog from
 * the ledger alone and swaps it in.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blob.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/remote_rebuild.h"
#include "store_internal.h"
#include "util.h"

struct vctx {
	cs_problem_fn report;
	cs_progress_fn progress;
	void *ctx;
	int problems;
	int out; /* in the catalog child: the pipe to the parent; otherwise -1 */
	/* Parent: hashes of the problems the child reported (see deliver()). */
	uint64_t *seen;
	size_t nseen, capseen;
	int after_child;
};

/*
 * The messages from the catalog child: this header, then `klen` bytes of
 * kind (or phase), `ilen` of evidence id and `dlen` of detail. Each is sent
 * with one write() of at most PIPE_BUF bytes, so a child that dies never
 * leaves half a message. Both ends are this same program.
 */
enum { MSG_PROBLEM = 1, MSG_PROGRESS = 2, MSG_OPENED = 3, MSG_END = 4 };
enum { MSG_KIND_MAX = 63, MSG_ID_MAX = 511, MSG_DETAIL_MAX = 511 };
struct msg {
	uint8_t type;
	uint8_t klen;
	uint16_t ilen;
	uint16_t dlen;
	uint16_t has_id;
	int64_t a; /* problem: position; progress: done; end: the child's result */
	uint64_t b; /* progress: total; end: the ledger size */
};

/* FNV-1a over a problem's fields: equal problems, equal hashes. */
static uint64_t
problem_hash(const struct cs_problem *p)
{
	const char *parts[3] = {p->kind, p->id != NULL ? p->id : "", p->detail};
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < 3; i++)
		for (const char *c = parts[i];; c++) {
			h = (h ^ (uint8_t)*c) * 1099511628211ULL;
			if (*c == '\0')
				break;
		}
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)((uint64_t)p->position >> (8 * i))) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

/* Parent: the slot of `h` in the set of problems the child reported, or of the free slot for it. */
static size_t
seen_slot(const struct vctx *v, uint64_t h)
{
	size_t i = h & (v->capseen - 1);

	while (v->seen[i] != 0 && v->seen[i] != h)
		i = (i + 1) & (v->capseen - 1);
	return i;
}

/*
 * Adds `h` (never 0) to that set (open addressing, at most half full; 0
 * marks a free slot). If the set cannot grow, `h` is left out: the problem
 * may then be reported twice, never not at all.
 */
static void
seen_add(struct vctx *v, uint64_t h)
{
	if (2 * (v->nseen + 1) > v->capseen) {
		struct vctx grown = *v;
		grown.capseen = v->capseen != 0 ? v->capseen * 2 : 256;
		grown.seen = calloc(grown.capseen, sizeof(*grown.seen));
		if (grown.seen == NULL)
			return;
		for (size_t k = 0; k < v->capseen; k++)
			if (v->seen[k] != 0)
				grown.seen[seen_slot(&grown, v->seen[k])] = v->seen[k];
		free(v->seen);
		v->seen = grown.seen;
		v->capseen = grown.capseen;
	}
	if (v->seen[seen_slot(v, h)] == 0) {
		v->seen[seen_slot(v, h)] = h;
		v->nseen++;
	}
}

/*
 * Hands one problem on: in the child, to the parent; in the parent, to the
 * caller. The parent remembers what the child reported, and once the child
 * has died (v->after_child) leaves out those problems when the checks made
 * again without the catalog find them a second time.
 */
static void
deliver(struct vctx *v, const struct cs_problem *p)
{
	uint64_t h;

	if (v->out >= 0) {
		char buf[sizeof(struct msg) + MSG_KIND_MAX + MSG_ID_MAX + MSG_DETAIL_MAX];
		struct msg m = {MSG_PROBLEM, 0, 0, 0, p->id != NULL, p->position, 0};
		size_t len = sizeof(m);

		m.klen = (uint8_t)strnlen(p->kind, MSG_KIND_MAX);
		m.ilen = (uint16_t)(p->id != NULL ? strnlen(p->id, MSG_ID_MAX) : 0);
		m.dlen = (uint16_t)strnlen(p->detail, MSG_DETAIL_MAX);
		memcpy(buf, &m, sizeof(m));
		memcpy(buf + len, p->kind, m.klen);
		len += m.klen;
		if (m.ilen > 0)
			memcpy(buf + len, p->id, m.ilen);
		len += m.ilen;
		memcpy(buf + len, p->detail, m.dlen);
		len += m.dlen;
		if (cs__write_all(v->out, buf, len) < 0)
			_exit(1); /* the parent is gone */
		return;
	}
	h = problem_hash(p);
	if (!v->after_child)
		seen_add(v, h);
	else if (v->capseen != 0 && v->seen[seen_slot(v, h)] == h)
		return;
	v->problems++;
	if (v->report != NULL)
		v->report(v->ctx, p);
}

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
	deliver(v, &p);
}

/* The child's progress callback: ctx is its vctx. */
static void
send_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct vctx *v = ctx;
	char buf[sizeof(struct msg) + MSG_KIND_MAX];
	struct msg m = {MSG_PROGRESS, 0, 0, 0, 0, (int64_t)done, total};

	m.klen = (uint8_t)strnlen(phase, MSG_KIND_MAX);
	memcpy(buf, &m, sizeof(m));
	memcpy(buf + sizeof(m), phase, m.klen);
	if (cs__write_all(v->out, buf, sizeof(m) + m.klen) < 0)
		_exit(1);
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

/*
 * A scratch catalog: a replay of the journal that verify compares the
 * catalog with, or checks the blobs by when the catalog cannot be read.
 * It lives in the store's tmp/verify-<pid>, or in $TMPDIR/custos-verify-<pid>
 * when the store has no room for it (full, or read-only): a store is
 * checked precisely when something went wrong with it.
 */
struct scratch {
	struct cs__catalog cat;
	int dfd;      /* the store's root, or AT_FDCWD */
	char rel[64]; /* the directory, relative to dfd */
};

/* The scratch directory of process `pid`, in the store (relative) or in $TMPDIR. */
static void
scratch_name(char *rel, size_t n, int in_store, long pid)
{
	const char *tmpdir = getenv("TMPDIR");

	if (in_store)
		snprintf(rel, n, "tmp/verify-%ld", pid);
	else
		snprintf(rel, n, "%.36s/custos-verify-%ld",
		    tmpdir != NULL && *tmpdir == '/' && strlen(tmpdir) <= 36 ? tmpdir : "/tmp",
		    pid);
}

/*
 * Creates a scratch catalog and replays into it the journal entries that
 * start before `stop` (see cs__replay()). Returns the replay's result; the
 * scratch catalog is open (sc->cat.env) unless it could not be created.
 * scratch_remove() cleans up either way.
 */
static int
scratch_replay(struct cs_store *st, struct scratch *sc, uint64_t stop, uint64_t *end,
    uint64_t *count, int *torn, struct vctx *v)
{
	size_t dlen = strlen(st->root) + sizeof(sc->rel) + 2;
	char *dir = malloc(dlen);
	int rc;

	memset(&sc->cat, 0, sizeof(sc->cat));
	sc->dfd = st->rootfd;
	scratch_name(sc->rel, sizeof(sc->rel), 1, (long)getpid());
	if (dir == NULL)
		return -ENOMEM;
	snprintf(dir, dlen, "%s/%s", st->root, sc->rel);
	for (;;) {
		remove_catalog_dir(sc->dfd, sc->rel);
		rc = cs__catalog_open(&sc->cat, sc->dfd == st->rootfd ? dir : sc->rel, 1, 1);
		if (rc == 0)
			rc = cs__replay(&st->j, &sc->cat, CS_JOURNAL_HDR, stop, 0, end, count, torn,
			    v->progress, v->ctx);
		/* (LMDB reports a write cut short by a full disk as EIO.) */
		if (sc->dfd != st->rootfd || !(rc == -ENOSPC || rc == -EDQUOT || rc == -EIO ||
		                                 rc == -EROFS || rc == -EACCES || rc == -EPERM))
			break;
		cs__catalog_close(&sc->cat);
		remove_catalog_dir(sc->dfd, sc->rel);
		sc->dfd = AT_FDCWD;
		scratch_name(sc->rel, sizeof(sc->rel), 0, (long)getpid());
	}
	free(dir);
	return rc;
}

static void
scratch_remove(struct scratch *sc)
{
	cs__catalog_close(&sc->cat);
	remove_catalog_dir(sc->dfd, sc->rel);
}

/*
 * Pass 1: the journal, entry by entry, against the catalog and the
 * checkpoints. Without a catalog (`cat` NULL) the journal's checksums and
 * the checkpoints' signatures and roots are checked, and a torn last entry
 * is taken for an unacknowledged tail, as rebuild takes it, unless a
 * checkpoint covers it.
 */
static int
verify_ledger(struct cs_store *st, struct cs__catalog *cat, struct vctx *v, uint64_t *good_entries)
{
	struct cs__catalog_state s = {0};
	struct cs_merkle_stream ms;
	struct cs__cp *cps = NULL;
	size_t ncp = 0, nextcp = 0;
	uint64_t off = CS_JOURNAL_HDR, seq = 0, fsize = 0, maxcp = 0;
	MDB_txn *txn = NULL;
	int rc;

	rc = cs__checkpoints_load(st, &cps, &ncp);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ncp; i++) {
		const char *why = NULL;
		switch (cps[i].damaged) {
		case CS__CP_DAMAGED:
			why = "is damaged: its bytes do not match their checksum";
			break;
		case CS__CP_TORN:
			/* an interrupted append, never acknowledged: the writer cuts it */
			continue;
		case CS__CP_LOST:
			why = "is damaged (its length is wrong): the entries after it cannot be "
			      "read";
			break;
		case CS__CP_HEADER:
			why = "does not begin with its header: it is damaged and cannot be read";
			break;
		}
		if (why != NULL)
			problem(v, "checkpoint-damaged", NULL, -1, "%s %s", cps[i].file, why);
		else if (!cps[i].valid)
			problem(v, "checkpoint-invalid", NULL, -1,
			    "%s is not a valid checkpoint signed by this store's key", cps[i].file);
	}
	if (cat != NULL) {
		rc = cs__catalog_rtxn(cat, &txn);
		if (rc < 0)
			goto out;
		rc = cs__catalog_state(cat, txn, &s);
		if (rc < 0)
			goto out;
	}
	(void)cs__journal_filesize(&st->j, &fsize);
	/*
	 * With the catalog, the journal is read as far as the catalog's snapshot
	 * (taken after the checkpoints were loaded, so a live writer's newer
	 * entries, perhaps still being written, are not read), and further only
	 * as far as a checkpoint reaches: a checkpoint beyond the catalog means
	 * the catalog was rolled back. What follows is pass 2's to judge.
	 */
	for (size_t i = 0; i < ncp; i++)
		if (cps[i].valid && cps[i].size > maxcp)
			maxcp = cps[i].size;
	if (cat != NULL && s.journal_end > CS_JOURNAL_HDR && s.journal_end < fsize &&
	    maxcp <= s.size)
		fsize = s.journal_end;
	cs_merkle_stream_init(&ms);
	while (nextcp < ncp && (!cps[nextcp].valid || cps[nextcp].size == 0))
		nextcp++;
	for (;;) {
		struct cs__jentry e;
		uint8_t leaf[32];
		uint64_t loff;
		uint32_t llen;
		int torn, r;

		if (cat != NULL && seq >= s.size && seq >= maxcp && off >= s.journal_end)
			break;
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
		if (cat != NULL && seq < s.size) {
			if (cs__catalog_leaf(cat, txn, seq, leaf, &loff, &llen) < 0)
				problem(v, "catalog-leaf-missing", NULL, (int64_t)seq,
				    "the catalog has no leaf for ledger entry %llu",
				    (unsigned long long)seq);
			else if (memcmp(leaf, e.leaf, 32) != 0 || loff != e.data || llen != e.len)
				problem(v, "catalog-leaf-mismatch", NULL, (int64_t)seq,
				    "the catalog's leaf for ledger entry %llu differs from the "
				    "journal",
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
					    "the ledger's first %llu entries do not hash to the "
					    "root signed in %s",
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
			    "%s covers %llu entries but only %llu are in the journal: "
			    "entries were removed or the store was rolled back",
			    cps[nextcp].file, (unsigned long long)cps[nextcp].size,
			    (unsigned long long)seq);
	/* Only indexed events are signed: an entry past the catalog is never in a checkpoint. */
	for (size_t i = 0; i < ncp && cat != NULL; i++)
		if (cps[i].valid && cps[i].size > s.size && cps[i].size <= seq)
			problem(v, "catalog-behind", NULL, (int64_t)s.size,
			    "%s covers %llu entries but the catalog indexes only %llu: "
			    "the catalog was rolled back",
			    cps[i].file, (unsigned long long)cps[i].size,
			    (unsigned long long)s.size);
	{
		/* The catalog's own Merkle nodes must give the same root. */
		struct cs__merkle_ctx m = {cat, txn};
		uint8_t a[32], b[32];
		if (cat != NULL && seq == s.size && s.size > 0) {
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

	problem(d->v, "catalog-mismatch",
	    strcmp(table, "items") == 0 || strcmp(table, "listing") == 0 ? key : NULL, -1,
	    "catalog table %s, key %s %s", table, key, what);
}

/*
 * How many of the `n` entries from `off` on were appended by the last
 * commit? A group commit (batch.c) writes all its events with one "time"; a
 * crash before its catalog transaction leaves them all unindexed, and a live
 * writer may be between its append and its catalog commit. Entries of
 * several commits past the catalog mean it was rolled back. Returns the
 * trailing entries that share the last one's time.
 */
static uint64_t
last_commit(struct cs__journal *j, uint64_t off, uint64_t n)
{
	char last[64] = "";
	uint64_t same = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct cs__jentry e;
		const char *t;
		char *buf = NULL;
		json_t *ev;
		int torn, oom;
		if (cs__journal_read(j, off, &e, &buf, &torn) != 1)
			break; /* a torn last entry: no event */
		ev = cs__json_load(buf, e.len, 0, &oom);
		t = json_string_value(json_object_get(ev, "time"));
		if (t == NULL || strlen(t) >= sizeof(last)) {
			same = 1; /* no time to compare: this entry alone */
			last[0] = '\0';
		} else if (same > 0 && strcmp(last, t) == 0) {
			same++;
		} else {
			same = 1;
			snprintf(last, sizeof(last), "%s", t);
		}
		json_decref(ev);
		free(buf);
		off = e.next;
	}
	return same;
}

/*
 * Does the catalog, now (a fresh snapshot), index at least `n` entries? Then
 * the entries that followed an older snapshot were a live writer's, indexed
 * since, not a rolled-back catalog's.
 */
static int
catalog_caught_up(struct cs__catalog *cat, uint64_t n)
{
	struct cs__catalog_state s;
	MDB_txn *txn;
	int rc;

	if (cs__catalog_rtxn(cat, &txn) < 0)
		return 0;
	rc = cs__catalog_state(cat, txn, &s);
	mdb_txn_abort(txn);
	return rc == 0 && s.size >= n;
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
verify_catalog(struct cs_store *st, struct cs__catalog *cat, struct vctx *v)
{
	struct cs__catalog_state s;
	struct scratch sc;
	struct diffctx d = {v};
	uint64_t end, count = 0, tail = 0;
	MDB_txn *txn;
	int torn, rc;

	/*
	 * One snapshot of the catalog for the whole pass: a live writer (custosd)
	 * keeps indexing meanwhile, and its newer entries are not differences.
	 */
	rc = cs__catalog_rtxn(cat, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_state(cat, txn, &s);
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if (s.journal_end == 0)
		s.journal_end = CS_JOURNAL_HDR;
	rc = scratch_replay(st, &sc, s.journal_end, &end, &count, &torn, v);
	if (rc == 0) {
		rc = cs__catalog_compare(cat, txn, &sc.cat, on_diff, &d);
		if (rc > 0)
			rc = 0;
		if (rc == 0) {
			uint64_t from = end, last;
			rc = cs__replay(&st->j, &sc.cat, end, UINT64_MAX, count, &end, &tail, &torn,
			    NULL, NULL);
			if (rc == CS_ELEDGER && torn)
				rc = 0;
			/*
			 * More than the last commit's events past the catalog: rolled
			 * back, unless a live writer indexed them meanwhile (all but
			 * its last commit, which it may still be writing).
			 */
			last = tail > 1 ? last_commit(&st->j, from, tail) : tail;
			if (rc == 0 && last < tail && !catalog_caught_up(cat, count + tail - last))
				problem(v, "catalog-behind", NULL, (int64_t)count,
				    "the catalog indexes %llu ledger entries but %llu more "
				    "follow; a crash leaves at most the events of one commit, "
				    "so the catalog was rolled back",
				    (unsigned long long)count, (unsigned long long)tail);
		}
	}
	mdb_txn_abort(txn);
	if (rc == CS_ELEDGER && sc.cat.env != NULL) {
		problem(v, "ledger-unreplayable", NULL, (int64_t)(count + tail),
		    "ledger entry %llu cannot be applied (its event is malformed or out of "
		    "order)",
		    (unsigned long long)(count + tail));
		rc = 0;
	}
	scratch_remove(&sc);
	return rc;
}

/* Pass 3: the bytes. */
struct bctx {
	struct cs_store *st;
	struct vctx *v;
	uint64_t done, total;
	struct cs__catalog *cat; /* the records' catalog, read in txn */
	MDB_txn *txn;
};

/*
 * The item's derivatives made with status ok (access and preservation
 * copies, poster: section 5.11 of docs/formats.md), each re-hashed in
 * derivatives/ against its record entry.
 */
static int
check_derivatives(struct bctx *b, const char *id, json_t *rec)
{
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *hex = json_string_value(json_object_get(d, "sha256"));
		const char *kind = json_string_value(json_object_get(d, "kind"));
		const char *status = json_string_value(json_object_get(d, "status"));
		json_int_t size = json_integer_value(json_object_get(d, "size"));
		char path[CS_BLOB_PATH_MAX + 16], remote[1200];
		int rc;

		if (status == NULL || strcmp(status, "ok") != 0)
			continue; /* a failed derivative has no bytes */
		if (hex == NULL || strlen(hex) != 64 || kind == NULL) {
			problem(b->v, "record-damaged", id, -1,
			    "the catalog record of %s names a derivative without its SHA-256", id);
			continue;
		}
		rc = cs__blob_check_in(b->st->rootfd, "derivatives", hex, (uint64_t)size);
		if (rc == -ENOMEM || rc == CS_ECRYPTO)
			return rc;
		snprintf(path, sizeof(path), "derivatives/sha256/%.2s/%.2s/%s", hex, hex + 2, hex);
		if (rc == -ENOENT && json_array_size(json_object_get(d, "replicas")) > 0 &&
		    cs_store_remote_only(b->st, NULL, remote, sizeof(remote)) == 1)
			rc = 0; /* a store rebuilt without blobs: the bucket holds it */
		if (rc == -ENOENT)
			problem(b->v, "derivative-missing", id, -1,
			    "the %s copy of %s (%s) is missing", kind, id, path);
		else if (rc == CS_EDIGEST)
			problem(b->v, "derivative-damaged", id, -1,
			    "the %s copy of %s (%s) does not match its SHA-256", kind, id, path);
		else if (rc < 0)
			problem(b->v, "derivative-unreadable", id, -1,
			    "the %s copy of %s (%s) cannot be read: %s", kind, id, path,
			    cs_strerror(rc));
	}
	return 0;
}

/*
 * A purged item (lib/purge.c): its bytes are expected gone. A blob still
 * there is a problem only once its plan is done and its tombstone said it
 * goes (a plan still running removes it when it resumes); one kept because
 * another item shares it is expected.
 */
static int
check_purged(struct bctx *b, const char *id, json_t *rec)
{
	json_t *pg = json_object_get(rec, "purged"), *p = NULL;
	const char *local = json_string_value(json_object_get(pg, "local"));
	const char *hex = json_string_value(json_object_get(rec, "sha256"));
	char path[CS_BLOB_PATH_MAX], key[24];
	struct stat sb;
	int rc;

	b->done++;
	cs__blob_path(hex, path, sizeof(path));
	if (local == NULL || strcmp(local, "removed") != 0 ||
	    fstatat(b->st->rootfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	snprintf(key, sizeof(key), "%020lld",
	    (long long)json_integer_value(json_object_get(pg, "plan")));
	rc = cs__cat_get(b->txn, b->cat->dbi[CS_DBI_PURGE_PLANS], key, strlen(key), &p);
	if (rc == 0 && strcmp(json_string_value(json_object_get(p, "state")) != NULL ?
	                          json_string_value(json_object_get(p, "state")) : "",
	                   "done") == 0)
		problem(b->v, "purged-blob-present", id, -1,
		    "%s was purged by plan %lld but its stored copy (%s) is still there", id,
		    (long long)json_integer_value(json_object_get(pg, "plan")), path);
	json_decref(p);
	return rc == ENOMEM ? -ENOMEM : 0;
}

static int
check_item(struct bctx *b, const char *id, json_t *rec)
{
	const char *hex = json_string_value(json_object_get(rec, "sha256"));
	json_int_t size = json_integer_value(json_object_get(rec, "size"));
	char path[CS_BLOB_PATH_MAX], remote[1200];
	int rc;

	if (rec == NULL || hex == NULL) {
		problem(b->v, "record-damaged", id, -1, "the catalog record of %s is unreadable",
		    id);
		return 0;
	}
	if (json_object_get(rec, "purged") != NULL)
		return check_purged(b, id, rec);
	rc = cs__blob_check(b->st->rootfd, hex, (uint64_t)size);
	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		return rc; /* the blob could not be checked: not damage */
	cs__blob_path(hex, path, sizeof(path));
	if (rc == -ENOENT && json_array_size(json_object_get(rec, "replicas")) > 0 &&
	    cs_store_remote_only(b->st, hex, remote, sizeof(remote)) == 1)
		rc = 0; /* a store rebuilt without blobs: the bucket holds it (verify --remote) */
	if (rc == -ENOENT)
		problem(b->v, "blob-missing", id, -1, "the stored copy of %s (%s) is missing", id,
		    path);
	else if (rc == CS_EDIGEST)
		problem(b->v, "blob-damaged", id, -1,
		    "the stored copy of %s (%s) does not match its SHA-256", id, path);
	else if (rc < 0)
		problem(b->v, "blob-unreadable", id, -1,
		    "the stored copy of %s (%s) cannot be read: %s", id, path, cs_strerror(rc));
	rc = check_derivatives(b, id, rec);
	if (rc < 0)
		return rc;
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

/*
 * Re-hashes the blob of every item of `cat` (or of the `n` ids), by the
 * records in `cat`: the live catalog, or a scratch replay of the journal.
 */
static int
verify_blobs(struct cs_store *st, struct cs__catalog *cat, const char *const *ids, size_t n,
    struct vctx *v)
{
	struct bctx b = {st, v, 0, 0, cat, NULL};
	MDB_txn *txn = NULL;
	int rc;

	rc = cs__catalog_rtxn(cat, &txn);
	if (rc < 0)
		return rc;
	b.txn = txn;
	if (n == 0) {
		rc = cs__catalog_each_item(cat, txn, count_items, &b);
		if (rc == 0)
			rc = cs__catalog_each_item(cat, txn, each_blob, &b);
	} else {
		b.total = n;
		for (size_t i = 0; i < n && rc == 0; i++) {
			json_t *rec = NULL;
			int r = cs__catalog_get_item(cat, txn, ids[i], &rec);
			if (r == CS_ENOTFOUND)
				problem(v, "not-found", ids[i], -1,
				    "no evidence item has the id %s", ids[i]);
			else if (r < 0)
				rc = r;
			else
				rc = check_item(&b, ids[i], rec);
			json_decref(rec);
		}
	}
	mdb_txn_abort(txn);
	return rc;
}

/*
 * The catalog child: opens the catalog afresh (an LMDB environment must not
 * be used across fork(), so the one `st` may hold is left alone) and runs
 * the three passes, sending every problem and progress report to the
 * parent, then its result and the catalog's size. It never returns.
 */
static void
catalog_child(struct cs_store *st, const char *const *ids, size_t n, int out)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
	struct vctx v = {NULL, send_progress, NULL, 0, out, NULL, 0, 0, 0};
	struct cs__catalog_state s = {0};
	struct rlimit nocore = {0, 0};
	struct msg m = {MSG_END, 0, 0, 0, 0, 0, 0};
	uint64_t good = 0;
	MDB_txn *txn;
	char *dir;
	int rc;

	/*
	 * A crash here is an expected outcome on a damaged catalog, which the
	 * parent reports: end by the signal itself, whatever handlers the
	 * program (or a sanitizer's runtime) installed, and without a core file.
	 */
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], SIG_DFL);
	(void)setrlimit(RLIMIT_CORE, &nocore);
	v.ctx = &v;
	dir = malloc(strlen(st->root) + sizeof("/catalog"));
	if (dir == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(dir, strlen(st->root) + sizeof("/catalog"), "%s/catalog", st->root);
	rc = cs__catalog_open(&st->cat, dir, 0, 0);
	free(dir);
	if (rc < 0)
		goto out;
	m.type = MSG_OPENED;
	if (cs__write_all(out, &m, sizeof(m)) < 0)
		_exit(1);
	m.type = MSG_END;
#ifdef CS_FAILPOINTS
	/*
	 * Test builds: CUSTOS_TEST_CATALOG_SIGNAL=N makes this child die by
	 * signal N once the catalog is open, as LMDB does on a damaged page
	 * while reading (tests/integration/catalog-crash.sh).
	 */
	if (getenv("CUSTOS_TEST_CATALOG_SIGNAL") != NULL)
		raise((int)strtol(getenv("CUSTOS_TEST_CATALOG_SIGNAL"), NULL, 10));
#endif
	rc = verify_ledger(st, &st->cat, &v, &good);
	if (rc == 0)
		rc = verify_catalog(st, &st->cat, &v);
	if (rc == 0)
		rc = verify_blobs(st, &st->cat, ids, n, &v);
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0) {
		rc = cs__catalog_state(&st->cat, txn, &s);
		mdb_txn_abort(txn);
	}
	cs__catalog_close(&st->cat);
out:
	m.a = rc;
	m.b = s.size;
	(void)cs__write_all(out, &m, sizeof(m));
	_exit(0);
}

/* Reads exactly `len` bytes; 0 at the end of the stream (or a short message), 1, or -errno. */
static int
read_msg_part(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = read(fd, (char *)buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		done += (size_t)r;
	}
	return 1;
}

/*
 * Runs the checks that read the catalog in a child process and passes on
 * what it reports. Returns the child's result (0 or < 0) with *size set,
 * 1 when the catalog is damaged: the child died, or LMDB could not read the
 * catalog; or 2 when the catalog was made by an older custos (no problem
 * is reported then). `why` says what happened.
 */
static int
run_catalog_child(struct cs_store *st, const char *const *ids, size_t n, struct vctx *v,
    uint64_t *size, char *why, size_t whylen)
{
	struct msg m, end = {0};
	siginfo_t si;
	int fds[2], rc, wrc, opened = 0, got_end = 0;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if (pid == 0) {
		close(fds[0]);
		catalog_child(st, ids, n, fds[1]);
	}
	close(fds[1]);
	for (;;) {
		char kind[MSG_KIND_MAX + 1], id[MSG_ID_MAX + 1], detail[MSG_DETAIL_MAX + 1];

		rc = read_msg_part(fds[0], &m, sizeof(m));
		if (rc <= 0)
			break;
		if (m.type == MSG_OPENED) {
			opened = 1;
			continue;
		}
		if (m.type == MSG_END) {
			end = m;
			got_end = 1;
			continue;
		}
		if (m.klen > MSG_KIND_MAX || m.ilen > MSG_ID_MAX || m.dlen > MSG_DETAIL_MAX ||
		    (rc = read_msg_part(fds[0], kind, m.klen)) <= 0 ||
		    (rc = read_msg_part(fds[0], id, m.ilen)) <= 0 ||
		    (rc = read_msg_part(fds[0], detail, m.dlen)) <= 0)
			break;
		kind[m.klen] = id[m.ilen] = detail[m.dlen] = '\0';
		if (m.type == MSG_PROBLEM) {
			struct cs_problem p = {kind, m.has_id ? id : NULL, m.a, detail};
			deliver(v, &p);
		} else if (m.type == MSG_PROGRESS && v->progress != NULL) {
			v->progress(v->ctx, kind, (uint64_t)m.a, m.b);
		}
	}
	close(fds[0]);
	if (rc < 0)
		(void)kill(pid, SIGKILL); /* the pipe failed: the child's reports would be lost */
	/*
	 * Wait without reaping first: while the child is a zombie its pid, and
	 * with it the name of the scratch catalog it may have left, are not
	 * reused by another process.
	 */
	memset(&si, 0, sizeof(si));
	while ((wrc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT)) < 0 && errno == EINTR)
		;
	if (wrc < 0) {
		/* Reaped elsewhere (SIGCHLD ignored, say): judge by its last message. */
		si.si_code = CLD_EXITED;
		si.si_status = got_end ? 0 : -1;
	}
	if (!got_end || si.si_code != CLD_EXITED || si.si_status != 0) {
		char rel[64];
		scratch_name(rel, sizeof(rel), 1, (long)pid);
		remove_catalog_dir(st->rootfd, rel);
		scratch_name(rel, sizeof(rel), 0, (long)pid);
		remove_catalog_dir(AT_FDCWD, rel);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return rc;
	if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
		snprintf(why, whylen, "%s it crashed (signal %d, %s)",
		    opened ? "reading" : "opening", si.si_status, strsignal(si.si_status));
		return 1;
	}
	if (!got_end || si.si_code != CLD_EXITED || si.si_status != 0) {
		snprintf(why, whylen, "%s it failed (the checking process %s %d)",
		    opened ? "reading" : "opening",
		    si.si_code == CLD_EXITED ? "exited with status" : "ended with code",
		    si.si_code == CLD_EXITED ? si.si_status : si.si_code);
		return 1;
	}
	if (end.a == CS__EOLDCATALOG) {
		snprintf(why, whylen, "it was made by an older custos");
		return 2;
	}
	if (end.a == CS_ESTORE) {
		snprintf(why, whylen, "%s", opened ? "LMDB found it damaged while reading it" :
		                                     "LMDB cannot open it");
		return 1;
	}
	*size = end.b;
	return (int)end.a;
}

/*
 * When the catalog cannot be read: pass 1 without it, then the journal
 * replayed into a scratch catalog (as rebuild would make it), whose records
 * name the blobs to re-hash. *size is the number of intact journal entries.
 */
static int
verify_without_catalog(struct cs_store *st, const char *const *ids, size_t n, struct vctx *v,
    uint64_t *size)
{
	struct scratch sc;
	uint64_t end, count = 0;
	int torn = 0, rc;

	rc = verify_ledger(st, NULL, v, size);
	if (rc < 0)
		return rc;
	rc = scratch_replay(st, &sc, UINT64_MAX, &end, &count, &torn, v);
	if (rc == CS_ELEDGER && torn)
		rc = 0; /* an unacknowledged tail: rebuild leaves it out too */
	if (rc == CS_ELEDGER && sc.cat.env != NULL) {
		problem(v, "ledger-unreplayable", NULL, (int64_t)count,
		    "ledger entry %llu cannot be applied (its event is malformed or out of order)",
		    (unsigned long long)count);
		rc = 0;
	}
	if (rc == 0)
		rc = verify_blobs(st, &sc.cat, ids, n, v);
	scratch_remove(&sc);
	return rc;
}

int
cs_store_verify(struct cs_store *st, const char *const *ids, size_t n, cs_problem_fn report,
    cs_progress_fn progress, void *ctx, uint64_t *size)
{
	struct vctx v = {report, progress, ctx, 0, -1, NULL, 0, 0, 0};
	uint64_t sz = 0;
	char why[160];
	int rc;

	rc = run_catalog_child(st, ids, n, &v, &sz, why, sizeof(why));
	if (rc == 2) {
		/*
		 * A catalog made by an older custos is not damage: as every command
		 * that opens the store does, it is made again from the ledger (it
		 * holds nothing else), and the new one is checked.
		 */
		int up = cs__store_upgrade(st);
		if (up == 0)
			rc = run_catalog_child(st, ids, n, &v, &sz, why, sizeof(why));
		else
			snprintf(why, sizeof(why),
			    "it was made by an older custos and could not be brought up to "
			    "date (%s)", cs_strerror(up));
		if (rc == 2 || up < 0)
			rc = 1;
	}
	if (rc == 1) {
		problem(&v, "catalog", NULL, -1,
		    "the catalog is damaged: %s; run `custos rebuild` to make it again from the "
		    "ledger", why);
		v.after_child = 1;
		rc = verify_without_catalog(st, ids, n, &v, &sz);
	}
	free(v.seen);
	if (rc < 0)
		return rc;
	if (size != NULL)
		*size = sz;
	return v.problems;
}

int
cs_store_verify_checkpoint(struct cs_store *st, const char *name, const char *note, size_t len,
    cs_problem_fn report, void *ctx)
{
	struct vctx v = {report, NULL, ctx, 0, -1, NULL, 0, 0, 0};
	struct cs_merkle_stream ms;
	struct cs_verifier *ver = NULL;
	struct cs_checkpoint cp;
	uint64_t off = CS_JOURNAL_HDR, seq = 0;
	uint8_t root[32];
	size_t tl = 0;
	int torn = 0, rc, r = 0;

	rc = cs__store_verifier_load(st, &ver);
	if (rc < 0)
		return rc;
	rc = cs_note_verify(ver, note, len, &tl);
	cs_verifier_free(ver);
	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		return rc;
	if (rc < 0 || cs_checkpoint_parse(&cp, note, tl) < 0 ||
	    strcmp(cp.origin, st->origin) != 0) {
		problem(&v, "checkpoint-foreign", NULL, -1,
		    "%s is not a checkpoint signed by this store's key for %s", name, st->origin);
		free(v.seen);
		return v.problems;
	}
	/* The root of the journal's first cp.size leaf hashes: the ledger as it is. */
	cs_merkle_stream_init(&ms);
	while (seq < cp.size) {
		struct cs__jentry e;

		r = cs__journal_read(&st->j, off, &e, NULL, &torn);
		if (r != 1)
			break;
		rc = cs_merkle_stream_push(&ms, e.leaf);
		if (rc < 0)
			return rc;
		seq++;
		off = e.next;
	}
	if (r == -ENOMEM || r == CS_ECRYPTO)
		return r; /* the entry could not be checked: not damage */
	if (seq < cp.size && r < 0 && !torn) {
		problem(&v, "ledger-damaged", NULL, (int64_t)seq,
		    "ledger entry %llu (journal offset %llu) is damaged, so the store's ledger "
		    "cannot be checked against the root signed in %s",
		    (unsigned long long)seq, (unsigned long long)off, name);
	} else if (seq < cp.size) {
		problem(&v, "ledger-rolled-back", NULL, (int64_t)seq,
		    "%s covers %llu ledger entries but the store holds only %llu: the store was "
		    "rolled back to an older copy or entries were removed",
		    name, (unsigned long long)cp.size, (unsigned long long)seq);
	} else {
		rc = cs_merkle_stream_root(&ms, root);
		if (rc < 0)
			return rc;
		if (memcmp(root, cp.root, 32) != 0)
			problem(&v, "checkpoint-mismatch", NULL, (int64_t)cp.size - 1,
			    "the store's first %llu ledger entries do not hash to the root signed "
			    "in %s: its history differs from the one that was signed",
			    (unsigned long long)cp.size, name);
	}
	free(v.seen);
	return v.problems;
}

int64_t
cs_store_rebuild(const char *root, cs_progress_fn progress, void *ctx)
{
	int rootfd, lockfd = -1;
	int64_t rc;

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
	rc = cs__rebuild_locked(rootfd, root, progress, ctx);
out:
	if (lockfd >= 0)
		close(lockfd);
	close(rootfd);
	return rc;
}

int64_t
cs__rebuild_locked(int rootfd, const char *root, cs_progress_fn progress, void *ctx)
{
	struct cs__catalog cat = {0};
	struct cs__journal j = {.fd = -1};
	char *newdir = NULL, *olddir = NULL;
	uint64_t end, count = 0, fsize = 0;
	int torn, rc;

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
	rc = cs__replay(&j, &cat, CS_JOURNAL_HDR, UINT64_MAX, 0, &end, &count, &torn, progress,
	    ctx);
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
	return rc < 0 ? rc : (int64_t)count;
}
