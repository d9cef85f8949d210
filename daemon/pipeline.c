/*
 * Securing files: settled candidates join a queue, and each is secured in
 * stages by work items on the thread pool (open beneath its tree with
 * openat2 and copy into a group commit, the batch's commit, re-read and
 * compare the digest, release). While the store's disk is full
 * no work starts; a store failure stops work for good. A recorder's part
 * (metadata from its name and DEVICE.json, the session of its jobs) comes
 * through the tree's struct tree_source: nothing here calls dock.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "custos/batch.h"
#include "custos/error.h"
#include "custos/store.h"
#include "log.h"
#include "orphans.h"
#include "pipeline.h"
#include "watch.h"

/* ---- securing a file (thread pool) ---- */

/*
 * A file on its way through the stages of cs_secure, each a work item of
 * its own, so that while the files of one batch are committed and re-read
 * (and released) the next ones are copied: COPY (open, metadata, the copy
 * into the open batch, custos/batch.h; at most `concurrency` files at
 * once); the batch's COMMIT (one work item for all of its files, COMMITS
 * batches at once, started in order: its files' bytes, directories, ledger entries
 * and catalog records made durable at once); then REREAD (at most
 * 2 × `concurrency` files at once; the re-read takes the file's result from the
 * committed batch); then RELEASE: files whose re-read matched wait in the
 * release queue, and one work item at a time releases all that wait
 * (release_work). So a file is released only once its batch is durable and
 * its own re-read matched.
 *
 * The open batch takes files while copies into it run and files wait in
 * the queue, until it holds BATCH_FILES, or its bounds (cs_batch_due: bytes,
 * and the time its first file has waited) are reached; it is closed as soon
 * as nothing more is about to join it, so a file alone is not held back.
 */
enum work_stage { WORK_COPY, WORK_REREAD, WORK_RELEASE };

/* Files released by one release work item at most. */
#define RELEASE_MAX 256
/*
 * Files in one batch at most: each holds its source, its tree's directory
 * and a temp file open until the commit.
 */
#define BATCH_FILES 64
/*
 * Commits at once: the second one's blob and directory fsyncs overlap the
 * first one's waits (the ledger appends take their turns in lib).
 */
#define COMMITS 2
/* Files in any stage at once: four batches' worth (copying, committing, re-read). */
#define PIPE_FILES (4 * BATCH_FILES)

/*
 * Files in one batch: BATCH_FILES; the test build takes a smaller cap on
 * files in any stage (four batches) from CUSTOSD_TEST_PIPE_FILES, so that a
 * test reaches it with a few dozen files.
 */
static size_t
batch_files(void)
{
#ifdef CS_FAILPOINTS
	static size_t n;
	if (n == 0) {
		const char *e = getenv("CUSTOSD_TEST_PIPE_FILES");
		long v = e != NULL ? strtol(e, NULL, 10) : 0;
		n = v >= 4 && v <= PIPE_FILES ? (size_t)v / 4 : BATCH_FILES;
	}
	return n;
#else
	return BATCH_FILES;
#endif
}

struct dbatch {
	uv_work_t req;
	struct daemon *d;
	struct cs_batch *b;
	struct work *files, *files_tail; /* copied into it, in order (work.bnext) */
	struct dbatch *next;             /* the closed batches, in order */
	size_t assigned;                 /* files given to it */
	size_t copying;                  /* of those, copies still running */
	size_t users;                    /* files that have not taken their result yet */
	int committed;                   /* its commit returned (or it had no file) */
	int rc;                          /* the commit's result */
};

struct work {
	uv_work_t req;
	struct daemon *d;
	struct cand *c;
	struct work *rnext; /* the re-read or release queue, or the files being released */
	struct dbatch *batch; /* its group commit, from the copy to its re-read */
	struct work *bnext;   /* the files copied into that batch */
	enum work_stage stage;
	/* results, written in the work callback, read in the done callback */
	int rc;
	struct cs_secure_req rq; /* the same request through every stage */
	char *key;               /* rq.job_key */
	struct cs_secured s;
	int dirfd; /* the tree's directory, duplicated for this item: a recorder's may close */
	uint64_t bytes; /* counted in d->inflight_bytes */
};

/* The one request for a file, for every stage (the loop thread, before COPY). */
static int
work_request(struct work *w)
{
	struct inbox *ib = w->c->ib;
	struct cs_secure_req *rq = &w->rq;

	w->key = job_key(ib, w->c->rel);
	if (w->key == NULL)
		return -ENOMEM;
	rq->dirfd = w->dirfd;
	rq->rel = w->c->rel;
	rq->max_size = w->d->cfg.max_size;
	rq->job_key = w->key;
	if (ib->src != NULL) {
		rq->flags = CS_SECURE_RECORDER | CS_SECURE_FROM_DEVICE;
		rq->meta.source = "dock";
		rq->meta_fn = ib->src->meta;
		rq->meta_ctx = ib->src_ctx;
		rq->attach = ib->src->attach(ib->src_ctx);
	} else {
		rq->flags = CS_SECURE_SIDECAR | CS_SECURE_FROM_DEVICE |
		    (w->d->cfg.release_delete ? CS_SECURE_DELETE : 0);
		rq->meta.source = "inbox";
	}
	return 0;
}

/*
 * Work item, off the loop thread: the copy or the re-read of a file (lib's
 * cs_secure stages). The source stays open from COPY to its release.
 */
static void
secure_work(uv_work_t *req)
{
	struct work *w = req->data;

	if (w->stage == WORK_COPY)
		w->rc = cs_secure_copy(w->d->st, w->batch->b, &w->rq, &w->s);
	else
		w->rc = cs_secure_reread(w->d->st, &w->rq, &w->s);
	/* Failed: done with the file; close it, record a refusal. */
	if (w->rc != 0)
		cs_secure_end(w->d->st, &w->rq, &w->s, w->rc);
}

/*
 * Work item: releases the batch d->rel_batch, files whose copy is durable
 * and whose re-read matched, their releases recorded in one commit.
 */
static void
release_work(uv_work_t *req)
{
	struct daemon *d = req->data;
	const struct cs_secure_req *rq[RELEASE_MAX];
	struct cs_secured *out[RELEASE_MAX];
	int rc[RELEASE_MAX];
	size_t n = 0;

	for (struct work *w = d->rel_batch; w != NULL; w = w->rnext) {
		w->stage = WORK_RELEASE;
		rq[n] = &w->rq;
		out[n++] = &w->s;
	}
	cs_secure_release_all(d->st, n, rq, out, rc);
	n = 0;
	for (struct work *w = d->rel_batch; w != NULL; w = w->rnext) {
		w->rc = rc[n++];
		cs_secure_end(d->st, &w->rq, &w->s, w->rc);
	}
}

static void finish_file(struct work *w);
static void release_done(uv_work_t *req, int status);
static void secure_done(uv_work_t *req, int status);

/* ---- group commit ---- */

/* A new open batch for the files copied next; -ENOMEM. */
static int
batch_open(struct daemon *d)
{
	struct cs_batch_limits lim = {batch_files(), 0, 0};
	struct dbatch *o = calloc(1, sizeof(*o));
	int rc;

	if (o == NULL)
		return -ENOMEM;
	rc = cs_batch_new(d->st, &lim, &o->b);
	if (rc < 0) {
		free(o);
		return rc;
	}
	o->d = d;
	o->req.data = o;
	d->batch_open = o;
	return 0;
}

/* A file is done with its batch: the last one frees a committed batch. */
static void
batch_unuse(struct dbatch *o)
{
	if (--o->users == 0 && o->committed) {
		cs_batch_free(o->b);
		free(o);
	}
}

static void
commit_work(uv_work_t *req)
{
	struct dbatch *o = req->data;

	o->rc = cs_batch_commit(o->b);
}

static void commit_done(uv_work_t *req, int status);

/* Starts the oldest closed batches' commits once their copies are done, COMMITS at once. */
static void
batch_pump(struct daemon *d)
{
	struct dbatch *o;

	while ((o = d->batch_head) != NULL && d->committing < COMMITS && o->copying == 0) {
		d->batch_head = o->next;
		if (d->batch_head == NULL)
			d->batch_tail = NULL;
		if (o->files == NULL) { /* every copy failed: nothing to commit */
			o->committed = 1;
			cs_batch_free(o->b);
			free(o);
			continue;
		}
		d->committing++;
		if (uv_queue_work(d->loop, &o->req, commit_work, commit_done) < 0) {
			/* (cannot happen: libuv refuses only a bad loop) nothing committed */
			o->rc = -ENOMEM;
			commit_done(&o->req, 0);
		}
	}
}

/* No more files join the open batch: it waits for its copies, then its commit. */
static void
batch_close(struct daemon *d)
{
	struct dbatch *o = d->batch_open;

	d->batch_open = NULL;
	*(d->batch_tail != NULL ? &d->batch_tail->next : &d->batch_head) = o;
	d->batch_tail = o;
	batch_pump(d);
}

/*
 * Starts the re-reads of committed files, twice `concurrency` at once: a
 * re-read waits on the source's device (O_DIRECT) while the next batch is
 * copied, and one batch's files are re-read together.
 */
static void
reread_pump(struct daemon *d)
{
	while (d->rr_head != NULL && d->rereading < 2 * (size_t)d->cfg.concurrency) {
		struct work *w = d->rr_head;
		d->rr_head = w->rnext;
		if (d->rr_head == NULL)
			d->rr_tail = NULL;
		w->stage = WORK_REREAD;
		if (uv_queue_work(d->loop, &w->req, secure_work, secure_done) < 0) {
			/* (cannot happen: libuv refuses only a bad loop) */
			w->rc = -ENOMEM;
			cs_secure_end(d->st, &w->rq, &w->s, w->rc);
			batch_unuse(w->batch);
			w->batch = NULL;
			finish_file(w);
			continue;
		}
		d->rereading++;
	}
}

/*
 * The batch's commit returned: each of its files goes on to its re-read,
 * which takes its result (secured, or the commit's error) from the batch.
 */
static void
commit_done(uv_work_t *req, int status)
{
	struct dbatch *o = req->data;
	struct daemon *d = o->d;

	(void)status;
	d->committing--;
	o->committed = 1;
	if (o->files != NULL) {
		*(d->rr_tail != NULL ? &d->rr_tail->rnext : &d->rr_head) = o->files;
		for (struct work *w = o->files; w != NULL; w = w->bnext) {
			w->rnext = w->bnext;
			d->rr_tail = w;
		}
		o->files = NULL;
	}
	reread_pump(d);
	batch_pump(d);
	pump(d);
}

/* Starts releasing the files that wait for it, unless a release is running. */
static void
release_pump(struct daemon *d)
{
	struct work **pp = &d->rel_head;
	size_t n = 0;

	if (d->rel_batch != NULL || d->rel_head == NULL)
		return;
	d->rel_batch = d->rel_head;
	while (*pp != NULL && n < RELEASE_MAX) {
		pp = &(*pp)->rnext;
		n++;
	}
	d->rel_head = *pp;
	*pp = NULL;
	d->release_req.data = d;
	if (uv_queue_work(d->loop, &d->release_req, release_work, release_done) < 0) {
		/* (cannot happen: libuv refuses only a bad loop) nothing released */
		struct work *w = d->rel_batch, *next;
		d->rel_batch = NULL;
		for (; w != NULL; w = next) {
			next = w->rnext;
			w->rc = -ENOMEM;
			cs_secure_end(d->st, &w->rq, &w->s, w->rc);
			finish_file(w);
		}
	}
}

static void
release_done(uv_work_t *req, int status)
{
	struct daemon *d = req->data;
	struct work *w = d->rel_batch, *next;

	(void)status;
	d->rel_batch = NULL;
	for (; w != NULL; w = next) {
		next = w->rnext;
		finish_file(w);
	}
	release_pump(d);
	pump(d);
}

/* ---- the store's disk: pause when it is full, resume once space is freed ---- */

/* A little room for the ledger entry, the catalog and its map growing. */
#define SPACE_SLACK ((uint64_t)1 << 20)

uint64_t
store_free(const struct daemon *d)
{
	struct statvfs sv;

	if (statvfs(d->cfg.store, &sv) < 0)
		return UINT64_MAX; /* unknown: never pause on a guess */
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static const char *
human(uint64_t n, char buf[24])
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0) /* n < 1024: as unsigned, its digits fit the buffer (-O3 checks) */
		snprintf(buf, 24, "%u bytes", (unsigned)n);
	else
		snprintf(buf, 24, "%.1f %s", v, unit[u]);
	return buf;
}

int
taking_work(const struct daemon *d)
{
	return !d->failed && !d->full && !d->stopping;
}

static void on_space(uv_timer_t *t);

/*
 * Pauses ingest until the store's disk has `need` bytes free (beyond the
 * files still being secured). `reopen`: the store failed on the full disk
 * and must recover first.
 */
static void
pause_for_space(struct daemon *d, uint64_t need, int reopen, const char *what)
{
	char f[24], n[24];

	if (need > d->full_need)
		d->full_need = need;
	d->full_reopen |= reopen;
	if (d->full)
		return;
	d->full = 1;
	d->full_logged_rc = 0;
	/*
	 * Paused again soon after resuming (the space was not enough after all,
	 * or a quota that statvfs does not show): wait longer each time.
	 */
	if (d->full_resumed_at != 0 && uv_now(d->loop) - d->full_resumed_at < 60000) {
		d->full_retry_at = uv_now(d->loop) + d->full_backoff_ms;
		if (d->full_backoff_ms < 60000)
			d->full_backoff_ms *= 2;
	} else {
		d->full_retry_at = 0;
		d->full_backoff_ms = 1000;
	}
	logmsg(0, "the store's disk is full: %s needs %s free and %s has %s; custosd pauses "
	          "ingest and takes no files until space is freed there, then resumes by itself. "
	          "Sources stay where they are",
	    what, human(d->full_need, n), d->cfg.store, human(store_free(d), f));
	sd_notifyf(0, "STATUS=PAUSED: the store's disk is full (%s needed); free space on %s",
	    human(d->full_need, n), d->cfg.store);
	uv_timer_start(&d->space, on_space, 1000, 1000);
}

/*
 * Is this store error the disk being full? ENOSPC and EDQUOT say so; LMDB
 * reports a write the full disk cut short as EIO, and a later write finds the
 * store already failed: those count when the disk has no room left for the
 * file that was being written.
 */
static int
is_space_error(const struct daemon *d, int rc, uint64_t size)
{
	if (rc == -ENOSPC || rc == -EDQUOT)
		return 1;
	if (rc == -EIO || rc == CS_ESTORE || rc == CS_EFAILED)
		return store_free(d) < size + d->cfg.reserve + SPACE_SLACK;
	return 0;
}

void
store_failed(struct daemon *d, int rc, const char *what, uint64_t size)
{
	int cause = 0;

	if (d->failed)
		return;
	/* Failed by another file's write: judge by that first error. */
	if (rc == CS_EFAILED && cs_store_failed(d->st, &cause) > 0 && cause < 0)
		rc = cause;
	/* A failed fsync is never retried, full disk or not: restart only. */
	if (is_space_error(d, rc, size) && cs_store_failed(d->st, NULL) != 2) {
		/*
		 * Room to recover and to record what is pending; each file's own
		 * size is checked again before it starts (pump).
		 */
		pause_for_space(d, d->cfg.reserve + SPACE_SLACK, cs_store_failed(d->st, NULL),
		    what);
		return;
	}
	if (d->full && d->full_reopen && rc == CS_EFAILED)
		return; /* the failure the pause is already about */
	logmsg(0, "the store failed while %s (%s); custosd takes no more files. Sources stay "
	          "where they are. Fix the storage, then restart custosd",
	    what, cs_strerror(rc));
	d->failed = 1;
	sd_notifyf(0, "STATUS=STOPPED: store failure (%s); restart after fixing storage",
	    cs_strerror(rc));
}

/* Every second while paused: is there room again? */
static void
on_space(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t avail = store_free(d), now = uv_now(d->loop);
	char f[24];
	int rc;

	if (!d->full || d->failed || d->stopping) {
		uv_timer_stop(t);
		return;
	}
	if (avail == UINT64_MAX || avail < d->inflight_bytes + d->full_need ||
	    now < d->full_retry_at)
		return;
	if (d->full_reopen) {
		/* Recovery needs the store to itself, as a restart would have it. */
		if (d->in_flight > 0 || d->checkpoint_running || d->finalizing > 0 ||
		    d->orphans_running)
			return;
		rc = cs_store_recover(d->st);
		if (rc < 0) {
			if (rc != d->full_logged_rc)
				logmsg(0, "%s has %s free, but the store could not recover (%s); "
				          "trying again, at longer intervals",
				    d->cfg.store, human(avail, f), cs_strerror(rc));
			d->full_logged_rc = rc;
			d->full_retry_at = now + d->full_backoff_ms;
			if (d->full_backoff_ms < 60000)
				d->full_backoff_ms *= 2;
			return;
		}
		d->full_reopen = 0;
		orphans_prune(d); /* the recovery may have moved blobs there */
	}
	d->full = 0;
	d->full_need = 0;
	d->full_resumed_at = now;
	uv_timer_stop(t);
	logmsg(2, "%s has %s free again: ingest resumes", d->cfg.store, human(avail, f));
	sd_notifyf(0, "STATUS=running: ingest resumed after the store's disk was full");
	pump(d);
}

static void
secure_done(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct daemon *d = w->d;

	(void)status;
	if (w->stage == WORK_COPY) {
		struct dbatch *o = w->batch;
		d->copying--;
		o->copying--;
		if (w->rc == 0) {
			/* Copied into its batch: it waits for the commit; the next copy starts. */
			w->bnext = NULL;
			*(o->files != NULL ? &o->files_tail->bnext : &o->files) = w;
			o->files_tail = w;
			pump(d);
			batch_pump(d);
			return;
		}
		batch_unuse(o);
		w->batch = NULL;
	} else if (w->batch != NULL) {
		d->rereading--;
		batch_unuse(w->batch);
		w->batch = NULL;
		reread_pump(d);
	}
	if (w->stage == WORK_REREAD && w->rc == 0) {
		/*
		 * Re-read with the same digest: it waits for its release; with
		 * release_policy = remote, the "release" records it as held, and
		 * the upload stage releases it once its remote copy is confirmed
		 * (remote.c): a held file is no longer in flight.
		 */
		if (d->cfg.release_remote && w->key != NULL) {
			w->rq.flags |= CS_SECURE_HOLD;
			w->rq.tree = w->c->ib->src == NULL ? w->c->ib->path : NULL;
		}
		w->rnext = NULL;
		*(d->rel_head != NULL ? &d->rel_tail->rnext : &d->rel_head) = w;
		d->rel_tail = w;
		release_pump(d);
		return;
	}
	finish_file(w);
	pump(d);
	batch_pump(d);
}

/* A file's way ends (released, refused, to be taken again, or the store failed). */
static void
finish_file(struct work *w)
{
	struct daemon *d = w->d;
	struct cand *c = w->c;
	struct inbox *ib = c->ib;
	const struct cs_ingest_result *res = &w->s.res;
	int stage = w->s.stage;

	d->in_flight--;
	d->inflight_bytes -= w->bytes;
	c->running = 0;
	if (w->s.sidecar_problem[0])
		logmsg(1, "%s/%s.json: sidecar problem (%s); the file is secured with the rest",
		    c->ib->path, c->rel, w->s.sidecar_problem);
	switch (cs_fault(d->st, w->rc, w->s.stage)) {
	case CS_FAULT_NONE:
		d->secured++;
		if ((w->rq.flags & CS_SECURE_HOLD) && d->remote_held != NULL)
			d->remote_held(d, res->id);
		else if (!(w->rq.flags & CS_SECURE_HOLD))
			d->released++;
		if (res->duplicate)
			d->duplicates++;
		logmsg(2, "secured %s/%s as %s (%llu bytes, sha256 %s)%s%s", c->ib->path, c->rel,
		    res->id, (unsigned long long)res->size, res->sha256,
		    w->s.resumed ? ", finishing an ingest whose release was not recorded (a crash "
		                   "or a rebuild came between)" :
		    res->duplicate ? ", already stored: recorded as another sighting" : "",
		    (w->rq.flags & CS_SECURE_HOLD) ? "; held until its remote copy is confirmed" :
		                                     "");
		cand_remove(d, c);
		d->oom_streak = 0;
		break;
	case CS_FAULT_MEMORY:
		/* Out of memory: nothing refused or released; the file waits to be taken again. */
		c->size = -1;
		if (!store_oom_check(d))
			out_of_memory(d, "securing %s/%s", c->ib->path, c->rel);
		break;
	case CS_FAULT_WAIT:
		/* Still being written, or replaced: wait for it to settle again. */
		if (w->rc == CS_ECHANGED && stage == CS_STAGE_REREAD)
			logmsg(1, "%s/%s changed while it was being read: its re-read does not "
			          "match the copy stored as %s (sha256 %s), so it is not released "
			          "on that copy; it will be taken again once it settles",
			    c->ib->path, c->rel, res->id, res->sha256);
		else if (w->rc == CS_ECHANGED)
			logmsg(2, "%s/%s changed while it was being read; it will be taken again "
			          "once it settles",
			    c->ib->path, c->rel);
		if (w->rc == -ENOENT)
			cand_remove(d, c);
		else
			c->size = -1;
		break;
	case CS_FAULT_STORE: {
		char what[PATH_MAX + 64];
		if (stage == CS_STAGE_RELEASE)
			logmsg(0, "secured %s/%s as %s, but recording its release failed (%s)",
			    c->ib->path, c->rel, res->id, cs_strerror(w->rc));
		snprintf(what, sizeof(what), "securing %s/%s", c->ib->path, c->rel);
		store_failed(d, w->rc, what, w->bytes);
		c->size = -1; /* taken again once it settles, when work resumes */
		break;
	}
	case CS_FAULT_REFUSED:
	case CS_FAULT_SOURCE:
		logmsg(1, "refused %s/%s: %s; it stays in the inbox untouched", c->ib->path, c->rel,
		    cs_strerror(w->rc));
		d->refused++;
		cand_remove(d, c);
		break;
	}
	close(w->dirfd);
	free(w->key);
	free(w);
	/* A recorder's last file: its receipt now rather than at the next tick. */
	if (ib->src != NULL && ib->pending == 0 && d->tree_done != NULL)
		d->tree_done(d);
}

void
pump(struct daemon *d)
{
	/*
	 * `concurrency` files copied at once, and the batches before them
	 * committed and re-read; a new batch only with room for a whole one, so
	 * that batches stay large when the later stages are the slower ones.
	 */
	while (taking_work(d) && d->copying < d->cfg.concurrency && d->qhead != NULL &&
	    (d->batch_open != NULL || d->in_flight + batch_files() <= 4 * batch_files())) {
		struct cand *c = d->qhead;
		uint64_t size = c->size > 0 ? (uint64_t)c->size : 0;
		uint64_t avail = store_free(d);
		struct work *w;
		int rc;

		/* Room for the file, the reserve and the files being secured? */
		if (avail != UINT64_MAX &&
		    avail < d->inflight_bytes + size + d->cfg.reserve + SPACE_SLACK) {
			char what[PATH_MAX + 64];
			snprintf(what, sizeof(what), "securing %s/%s", c->ib->path, c->rel);
			pause_for_space(d, size + d->cfg.reserve + SPACE_SLACK, 0, what);
			return;
		}
		/* A full batch is closed; the file starts the next one. */
		if (d->batch_open != NULL && (d->batch_open->assigned == batch_files() ||
		                                 cs_batch_due(d->batch_open->b, size))) {
			batch_close(d);
			continue; /* is there room for the next one? */
		}
		if (d->batch_open == NULL && batch_open(d) < 0) {
			out_of_memory(d, "starting to secure %s/%s", c->ib->path, c->rel);
			return;
		}
		d->qhead = c->qnext;
		if (d->qhead == NULL)
			d->qtail = NULL;
		d->queued--;
		c->queued = 0;
		w = calloc(1, sizeof(*w));
		if (w == NULL) { /* c is queued again at the next tick */
			out_of_memory(d, "starting to secure %s/%s", c->ib->path, c->rel);
			return;
		}
		w->d = d;
		w->c = c;
		w->req.data = w;
		w->dirfd = fcntl(c->ib->dirfd, F_DUPFD_CLOEXEC, 0);
		if (w->dirfd < 0) {
			free(w);
			c->size = -1; /* out of descriptors: back off, try again later */
			return;
		}
		w->stage = WORK_COPY;
		w->s.fd = -1;
		if (work_request(w) < 0) { /* c is queued again at the next tick */
			close(w->dirfd);
			free(w);
			out_of_memory(d, "starting to secure %s/%s", c->ib->path, c->rel);
			return;
		}
		c->running = 1;
		w->batch = d->batch_open;
		rc = uv_queue_work(d->loop, &w->req, secure_work, secure_done);
		if (rc < 0) {
			c->running = 0;
			close(w->dirfd);
			free(w->key);
			free(w);
			break;
		}
		w->batch->assigned++;
		w->batch->copying++;
		w->batch->users++;
		d->in_flight++;
		d->copying++;
		w->bytes = size;
		d->inflight_bytes += size;
	}
	/*
	 * The open batch waits for more files only while copies into it run and
	 * more files wait for a copy: else nothing is about to join it, and it is
	 * committed (once its copies are done) rather than held back.
	 */
	if (d->batch_open != NULL &&
	    (d->batch_open->copying == 0 || d->qhead == NULL || !taking_work(d) ||
	        cs_batch_due(d->batch_open->b, 0)))
		batch_close(d);
}

static void
enqueue(struct daemon *d, struct cand *c)
{
	c->queued = 1;
	c->qnext = NULL;
	if (d->qtail != NULL)
		d->qtail->qnext = c;
	else
		d->qhead = c;
	d->qtail = c;
	d->queued++;
}

/* Drops a tree's candidates that are not being secured right now. */
void
drop_candidates(struct daemon *d, struct inbox *ib)
{
	struct cand **pp;

	for (pp = &d->qhead; *pp != NULL;) {
		if ((*pp)->ib == ib) {
			(*pp)->queued = 0;
			*pp = (*pp)->qnext;
			d->queued--;
		} else {
			pp = &(*pp)->qnext;
		}
	}
	d->qtail = NULL;
	for (struct cand *c = d->qhead; c != NULL; c = c->qnext)
		d->qtail = c;
	for (size_t h = 0; h < d->table_size; h++) {
		struct cand *c = d->table[h], *next;
		for (; c != NULL; c = next) {
			next = c->next;
			if (c->ib == ib && !c->running)
				cand_remove(d, c);
		}
	}
}
/* Every tick: files unchanged for the settle time join the queue. */
void
settle_tick(struct daemon *d)
{
	uint64_t now = uv_now(d->loop);

	for (size_t h = 0; h < d->table_size; h++) {
		struct cand *c = d->table[h], *next;
		for (; c != NULL; c = next) {
			struct stat sb;
			next = c->next;
			if (c->queued || c->running)
				continue;
			if (fstatat(c->ib->dirfd, c->rel, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
				cand_remove(d, c);
				continue;
			}
			if (sb.st_size != c->size || sb.st_mtim.tv_sec != c->mtime.tv_sec ||
			    sb.st_mtim.tv_nsec != c->mtime.tv_nsec) {
				c->size = sb.st_size;
				c->mtime = sb.st_mtim;
				c->changed_at = now;
				continue;
			}
			if (now - c->changed_at < d->cfg.settle_ms)
				continue;
			/* "x.json" seen before "x" arrived is x's sidecar after all. */
			if (c->ib->src == NULL && is_sidecar(c->ib->dirfd, c->rel)) {
				cand_remove(d, c);
				continue;
			}
			enqueue(d, c);
		}
	}
	pump(d);
}

void
pipeline_reloaded(struct daemon *d)
{
	if (d->full && !d->full_reopen) {
		/* Paused before a file, under the old reserve: look again now. */
		d->full_need = d->cfg.reserve + SPACE_SLACK +
		    (d->qhead != NULL && d->qhead->size > 0 ? (uint64_t)d->qhead->size : 0);
		on_space(&d->space);
	}
	pump(d);
}
