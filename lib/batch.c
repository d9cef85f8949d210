/*
 * Group commit (custos/batch.h): files copied into temp files as they are
 * added, then made durable and recorded together, with the fsyncs of the
 * temp files and of the directories overlapped on a few threads, one
 * journal append and one catalog transaction.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob.h"
#include "custos/batch.h"
#include "custos/error.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

/*
 * fsyncs in flight at once. On ext4 concurrent fsyncs share one journal
 * commit: 2,000 small files fsynced one after another took 5 s on the test
 * machine, from 8 threads 0.04 s.
 */
#define SYNC_THREADS 16
#define SYNC_STACK (256u << 10)

struct entry {
	struct cs__blob_tmp t;
	json_t *mj;  /* the file's metadata (cs__meta_json) */
	json_t *job; /* the event's "job", or NULL */
	char *name;
	struct cs__blob_put bp;
	unsigned dirs; /* CS__BLOB_DIR_* to fsync */
	struct cs_ingest_result res;
};

struct cs_batch {
	struct cs_store *st;
	struct cs_batch_limits lim;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	struct entry **e; /* slots; an entry is the adder's alone until it is ready */
	size_t n, cap;
	size_t live;      /* ready entries */
	size_t busy;      /* adds running */
	uint64_t bytes;
	int64_t first_ms; /* when the first file was added (monotonic) */
	int closed;       /* the commit began */
	int done;         /* the commit returned; rc its result */
	int rc;
	struct entry **ready; /* between cs_batch_sync and cs_batch_record: the ready entries */
	size_t nready;
	int placed;           /* a blob was placed anew */
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cs_batch_new(struct cs_store *st, const struct cs_batch_limits *lim, struct cs_batch **out)
{
	struct cs_batch *b;

	if (st->lockfd < 0)
		return -EBADF;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->st = st;
	if (lim != NULL)
		b->lim = *lim;
	if (b->lim.max_files == 0 || b->lim.max_files > CS__BATCH_MAX)
		b->lim.max_files = b->lim.max_files == 0 ? CS_BATCH_FILES : CS__BATCH_MAX;
	if (b->lim.max_bytes == 0)
		b->lim.max_bytes = CS_BATCH_BYTES;
	if (b->lim.max_ms == 0)
		b->lim.max_ms = CS_BATCH_MS;
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return -ENOMEM;
	}
	if (pthread_cond_init(&b->idle, NULL) != 0) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

static void
entry_free(struct cs_store *st, struct entry *e)
{
	if (e == NULL)
		return;
	cs__blob_discard(st->rootfd, &e->t);
	json_decref(e->mj);
	json_decref(e->job);
	free(e->name);
	free(e);
}

int
cs_batch_reserve(struct cs_batch *b)
{
	int slot = -1;

	pthread_mutex_lock(&b->lock);
	if (b->closed) {
		slot = -EINVAL;
	} else if (b->n == CS__BATCH_MAX) {
		slot = -E2BIG;
	} else if (b->n == b->cap) {
		size_t cap = b->cap == 0 ? 32 : b->cap * 2;
		struct entry **ne = realloc(b->e, cap * sizeof(*ne));
		if (ne == NULL) {
			slot = -ENOMEM;
		} else {
			b->e = ne;
			b->cap = cap;
		}
	}
	if (slot == -1) {
		slot = (int)b->n;
		b->e[b->n++] = NULL; /* held until the copy is done */
		b->busy++;
	}
	pthread_mutex_unlock(&b->lock);
	return slot;
}

/* 1 if `slot` was reserved (it may have ended already: the caller's to know). */
static int
slot_valid(struct cs_batch *b, int slot)
{
	int ok;

	pthread_mutex_lock(&b->lock);
	ok = slot >= 0 && (size_t)slot < b->n && b->busy > 0;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

/* The end of a reservation: the slot holds `e` (ready) or stays empty (NULL). */
static void
slot_done(struct cs_batch *b, int slot, struct entry *e)
{
	pthread_mutex_lock(&b->lock);
	if (e != NULL) {
		b->e[slot] = e;
		if (b->live++ == 0)
			b->first_ms = mono_ms();
		b->bytes += e->t.size;
	}
	if (--b->busy == 0)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

void
cs_batch_release(struct cs_batch *b, int slot)
{
	if (slot_valid(b, slot))
		slot_done(b, slot, NULL);
}

int
cs_batch_add_fd_at(struct cs_batch *b, int slot, int fd, const char *name,
    const struct cs_meta *meta)
{
	static const struct cs_meta none;
	struct cs_store *st = b->st;
	const char *field = NULL, *base;
	struct entry *e;
	int rc;

	if (!slot_valid(b, slot))
		return -EINVAL;
	if (st->failed) {
		rc = CS_EFAILED;
		goto refused;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		rc = -ENOMEM;
		goto refused;
	}
	e->t.fd = -1;
	rc = cs__meta_json(meta != NULL ? meta : &none, &e->mj, &field);
	if (rc == 0)
		rc = cs__ingest_job(meta, &e->job);
	base = name != NULL ? name : "";
	if (rc == 0 && (e->name = strdup(base)) == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		rc = cs__blob_stage(st->rootfd, fd, &e->t);
		if (rc < 0)
			cs__ingest_blob_failed(st, rc);
	}
	if (rc < 0) {
		entry_free(st, e);
		goto refused;
	}
	slot_done(b, slot, e);
	return slot;
refused:
	slot_done(b, slot, NULL);
	return rc;
}

int
cs_batch_add_fd(struct cs_batch *b, int fd, const char *name, const struct cs_meta *meta)
{
	int slot;

	if (b->st->failed)
		return CS_EFAILED;
	slot = cs_batch_reserve(b);
	return slot < 0 ? slot : cs_batch_add_fd_at(b, slot, fd, name, meta);
}

int
cs_batch_due(struct cs_batch *b, uint64_t next_size)
{
	int due;

	pthread_mutex_lock(&b->lock);
	due = b->live > 0 &&
	      (b->live >= b->lim.max_files || b->bytes >= b->lim.max_bytes ||
	          next_size > b->lim.max_bytes - b->bytes ||
	          mono_ms() - b->first_ms >= (int64_t)b->lim.max_ms);
	pthread_mutex_unlock(&b->lock);
	return due;
}

size_t
cs_batch_count(struct cs_batch *b)
{
	size_t n;

	pthread_mutex_lock(&b->lock);
	n = b->live;
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* ---- fsyncs from several threads ---- */

struct par {
	struct cs_store *st;
	struct entry **e;    /* the ready entries, in slot order */
	char (*dirs)[32];    /* the directories to fsync */
	size_t n;            /* entries or directories */
	atomic_size_t next;
	atomic_int rc;       /* the first failure */
	int what;            /* 0: temp files, 1: directories */
};

static void *
par_main(void *arg)
{
	struct par *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n) {
		int rc = p->what == 0 ? cs__blob_sync(&p->e[i]->t)
		                      : cs__fsync_dir(p->st->rootfd, p->dirs[i]);
		int zero = 0;
		if (rc < 0)
			(void)atomic_compare_exchange_strong(&p->rc, &zero, rc);
	}
	return NULL;
}

/* Runs the fsyncs of `p` on up to SYNC_THREADS threads (the caller's among them). */
static int
par_run(struct par *p)
{
	pthread_t t[SYNC_THREADS];
	pthread_attr_t attr;
	size_t want = p->n < SYNC_THREADS ? p->n : SYNC_THREADS, started = 0;
	int have_attr = pthread_attr_init(&attr) == 0;

	if (have_attr)
		(void)pthread_attr_setstacksize(&attr, SYNC_STACK);
	/* The caller is one of them; a thread that cannot start only costs overlap. */
	for (size_t i = 1; i < want; i++) {
		if (pthread_create(&t[started], have_attr ? &attr : NULL, par_main, p) != 0)
			break;
		started++;
	}
	par_main(p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (have_attr)
		pthread_attr_destroy(&attr);
	return atomic_load(&p->rc);
}

/* The directories the entries' links need fsynced, each once, into p->dirs. */
static int
collect_dirs(struct par *p, size_t n)
{
	uint8_t *leaf = calloc(65536 / 8, 1), mid[256 / 8] = {0};
	int top = 0;
	size_t k = 0;

	p->dirs = malloc((2 * n + 1) * sizeof(*p->dirs));
	if (leaf == NULL || p->dirs == NULL) {
		free(leaf);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = p->e[i]->bp.digest;
		unsigned dirs = p->e[i]->dirs, l = (unsigned)d[0] << 8 | d[1];
		if ((dirs & CS__BLOB_DIR_LEAF) && !(leaf[l / 8] & (1u << (l % 8)))) {
			leaf[l / 8] |= (uint8_t)(1u << (l % 8));
			snprintf(p->dirs[k++], sizeof(p->dirs[0]), "objects/sha256/%02x/%02x", d[0],
			    d[1]);
		}
		if ((dirs & CS__BLOB_DIR_MID) && !(mid[d[0] / 8] & (1u << (d[0] % 8)))) {
			mid[d[0] / 8] |= (uint8_t)(1u << (d[0] % 8));
			snprintf(p->dirs[k++], sizeof(p->dirs[0]), "objects/sha256/%02x", d[0]);
		}
		if ((dirs & CS__BLOB_DIR_TOP) && !top) {
			top = 1;
			snprintf(p->dirs[k++], sizeof(p->dirs[0]), "objects/sha256");
		}
	}
	free(leaf);
	p->n = k;
	return 0;
}

/* 1 if an entry before `i` placed or checked the blob with the same digest. */
static int
linked_before(struct entry **e, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (memcmp(e[k]->bp.digest, e[i]->bp.digest, 32) == 0)
			return 1;
	return 0;
}

/* Links each durable temp file into place (in slot order). */
static int
link_all(struct cs_store *st, struct entry **e, size_t n, int *placed)
{
	char hex[65];
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = cs__blob_link(st->rootfd, &e[i]->t, linked_before(e, i), st->dir_fresh,
		    &e[i]->bp, &e[i]->dirs);
		if (rc < 0)
			return rc;
		if (!e[i]->bp.existed)
			*placed = 1;
		if (e[i]->bp.repaired) {
			cs__hex(e[i]->bp.digest, 32, hex);
			cs__store_log(st, CS_LOG_WARN,
			    "stored blob %s was damaged; replaced with verified bytes", hex);
		}
	}
	return 0;
}

/* The events, in slot order, and their append and catalog commit. wlock held. */
static int
record_all(struct cs_store *st, struct entry **e, size_t n)
{
	struct cs__ingest_seen *seen = malloc(n * sizeof(*seen));
	json_t **evs = calloc(n, sizeof(*evs));
	MDB_txn *txn = NULL;
	size_t nseen = 0;
	uint64_t seq;
	int rc;

	if (seen == NULL || evs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* bytes found stored when linked: a purge (under this lock) may have removed them since */
	for (size_t i = 0; i < n; i++)
		if (e[i]->bp.existed && (rc = cs__blob_there(st->rootfd, e[i]->bp.digest)) < 0)
			goto out;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = cs__ingest_event(st, txn, e[i]->bp.digest, e[i]->bp.size, e[i]->name,
		    e[i]->mj, e[i]->job, seen, nseen, &e[i]->res, &evs[i]);
		if (rc == 0 && !e[i]->res.duplicate) {
			memcpy(seen[nseen].digest, e[i]->bp.digest, 32);
			seen[nseen++].id = e[i]->res.id;
		}
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc < 0)
		goto out;
	rc = cs__store_commit(st, evs, n, &seq);
	for (size_t i = 0; rc == 0 && i < n; i++)
		e[i]->res.seq = seq + i;
out:
	for (size_t i = 0; evs != NULL && i < n; i++)
		json_decref(evs[i]);
	free(evs);
	free(seen);
	return rc;
}

/* The end of a commit: its result kept for cs_batch_result(). */
static int
commit_done(struct cs_batch *b, int rc)
{
	if (rc < 0 && b->placed)
		b->st->orphan = 1; /* new blobs without their events */
	free(b->ready);
	b->ready = NULL;
	pthread_mutex_lock(&b->lock);
	b->rc = rc;
	b->done = 1;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int
cs_batch_commit(struct cs_batch *b)
{
	int rc = cs_batch_sync(b);

	return rc < 0 ? rc : cs_batch_record(b);
}

int
cs_batch_sync(struct cs_batch *b)
{
	struct cs_store *st = b->st;
	struct par p = {.st = st};
	struct entry **e = NULL;
	size_t n = 0;
	int rc, placed = 0;

	pthread_mutex_lock(&b->lock);
	while (b->busy > 0)
		pthread_cond_wait(&b->idle, &b->lock);
	if (b->closed) {
		pthread_mutex_unlock(&b->lock);
		return -EINVAL;
	}
	b->closed = 1;
	pthread_mutex_unlock(&b->lock);

	if (b->live == 0)
		return 0;
	e = malloc(b->live * sizeof(*e));
	if (e == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i] != NULL)
			e[n++] = b->e[i];
	if (st->failed) {
		rc = CS_EFAILED;
		goto out;
	}

	/* The bytes: every temp file durable, then linked, then each directory durable. */
	p.e = e;
	p.n = n;
	rc = par_run(&p);
	if (rc == 0)
		rc = link_all(st, e, n, &placed);
	CS_FAILPARK("ingest-linked");
	if (rc == 0)
		rc = collect_dirs(&p, n);
	if (rc == 0) {
		p.what = 1;
		atomic_store(&p.next, 0);
		rc = par_run(&p);
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (e[i]->dirs & CS__BLOB_DIR_MID)
			cs__blob_fresh_done(st->dir_fresh, e[i]->bp.digest);
	for (size_t i = 0; i < n; i++)
		cs__blob_discard(st->rootfd, &e[i]->t);
	if (rc < 0)
		cs__ingest_blob_failed(st, rc);
out:
	free(p.dirs);
	b->ready = e;
	b->nready = n;
	b->placed = placed;
	return rc < 0 ? commit_done(b, rc) : 0;
}

int
cs_batch_record(struct cs_batch *b)
{
	struct cs_store *st = b->st;
	int rc;

	pthread_mutex_lock(&b->lock);
	if (b->done || !b->closed) {
		rc = b->closed ? b->rc : -EINVAL;
		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	pthread_mutex_unlock(&b->lock);
	if (b->nready == 0)
		return commit_done(b, 0);
	/* The records: one journal append and fdatasync, one catalog commit. */
	pthread_mutex_lock(&st->wlock);
	rc = st->failed ? CS_EFAILED : record_all(st, b->ready, b->nready);
	pthread_mutex_unlock(&st->wlock);
	return commit_done(b, rc);
}

int
cs_batch_result(struct cs_batch *b, int slot, struct cs_ingest_result *res)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	if (!b->done || slot < 0 || (size_t)slot >= b->n || b->e[slot] == NULL)
		rc = -EINVAL;
	else if ((rc = b->rc) == 0)
		*res = b->e[slot]->res;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void
cs_batch_free(struct cs_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		entry_free(b->st, b->e[i]);
	free(b->e);
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
