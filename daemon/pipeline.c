/*
 * Securing files: settled candidates join a queue, and each is secured by a
 * work item on the thread pool (open beneath its tree with openat2, ingest,
 * re-read and compare the digest, release). While the store's disk is full
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

#include "custos/error.h"
#include "custos/source.h"
#include "custos/store.h"
#include "log.h"
#include "pipeline.h"
#include "watch.h"
#ifdef CS_FAILPOINTS
#include <stdatomic.h>
#endif

/* ---- securing a file (thread pool) ---- */

struct work {
	uv_work_t req;
	struct daemon *d;
	struct cand *c;
	/* results, written in the work callback, read in the done callback */
	int rc;
	int stage; /* 0 open, 1 ingest, 2 re-read, 3 release */
	struct cs_ingest_result res;
	char sidecar_error[1024];
	int dirfd; /* the tree's directory, duplicated for this item: a recorder's may close */
	char metabuf[512]; /* strings of dock metadata parsed from the file name */
	int resumed;       /* finished a file whose event was written before a crash */
	uint64_t bytes;    /* counted in d->inflight_bytes */
	json_t *extra;
};

/*
 * Reads "<rel>.json" beside the file, if there is one; untrusted input.
 * 0 with *out the sidecar (or NULL: none, or a bad one, named in
 * w->sidecar_error: the file is secured without it), or -ENOMEM: the
 * sidecar could not be read for lack of memory, and the file must wait
 * rather than lose its metadata.
 */
static int
load_sidecar(struct work *w, int dirfd, const char *rel, json_t **out)
{
	char path[PATH_MAX];
	const char *base;
	struct stat sb;
	json_error_t jerr;
	json_t *j = NULL;
	char *buf = NULL;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	/* A name of NAME_MAX - 4 bytes or more can have no sidecar: "<name>.json" is too long. */
	base = strrchr(rel, '/');
	base = base != NULL ? base + 1 : rel;
	if (strlen(base) + 5 > NAME_MAX ||
	    snprintf(path, sizeof(path), "%s.json", rel) >= (int)sizeof(path))
		return 0;
	fd = cs_source_open(dirfd, path, 1 << 16, &sb);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "%s", cs_strerror(fd));
		return 0;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n < 0) {
		free(buf);
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "unreadable");
		return 0;
	}
	rc = cs_json_parse(buf, (size_t)n, JSON_REJECT_DUPLICATES, &j, &jerr);
	free(buf);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0 || !json_is_object(j)) {
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "line %d: %s", jerr.line,
		    rc < 0 ? jerr.text : "not a JSON object");
		json_decref(j);
		return 0;
	}
	*out = j;
	return 0;
}

static void
record_refusal(struct daemon *d, struct cand *c, int dirfd, int rc)
{
	struct stat sb;
	json_t *job;
	char *key = job_key(c->ib, c->rel);

	if (key == NULL || fstatat(dirfd, c->rel, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		free(key);
		return;
	}
	job = json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", "refused", "reason", cs_strerror(rc),
	    "size", (json_int_t)sb.st_size, "ino", (json_int_t)sb.st_ino, "mtime_ns",
	    (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	(void)cs_store_job_put(d->st, key, job);
	json_decref(job);
	free(key);
}

/* Errors that mean "this entry is not acceptable evidence", not "try again". */
static int
is_refusal(int rc)
{
	return rc < 0 && rc != CS_ECHANGED && rc != -ENOENT && rc != CS_EFAILED && rc != -EIO &&
	    rc != CS_ESOURCE && rc != -EROFS && rc != -EFBIG &&
	    rc != -ENOSPC && rc != -EDQUOT && !is_oom(rc) && rc != CS_ESTORE;
}

static void secure_file(struct work *w);

static int
is_store_error(int rc)
{
	return rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == CS_ESTORE;
}
/*
 * A job left "ingested" for exactly this file (same identity): a crash came
 * after its ledger event and before its release. Fills w->res from the job
 * and returns 1; 0 if there is no such job; -ENOMEM if it could not be
 * looked up (the file must not be taken a second time). On a recorder the
 * file's bytes (`fd`) must also have the job's digest: a folder can be
 * another copy with the same names, sizes and times.
 */
static int
resume_ingested(struct work *w, const char *key, const struct stat *sb, int fd)
{
	json_t *job = NULL;
	const char *state, *id, *sha;
	int yes = 0, rc;

	rc = cs_store_job_get(w->d->st, key, &job);
	if (rc < 0)
		return rc == -ENOMEM ? rc : 0;
	state = json_string_value(json_object_get(job, "state"));
	id = json_string_value(json_object_get(job, "id"));
	sha = json_string_value(json_object_get(job, "sha256"));
	if (state != NULL && strcmp(state, "ingested") == 0 && id != NULL && sha != NULL &&
	    strlen(sha) == 64 && strlen(id) < sizeof(w->res.id) &&
	    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb->st_size &&
	    json_integer_value(json_object_get(job, "mtime_ns")) ==
	        (json_int_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec &&
	    (w->c->ib->src != NULL ||
	        json_integer_value(json_object_get(job, "ino")) == (json_int_t)sb->st_ino)) {
		char hex[65];
		uint64_t size;
		if (w->c->ib->src != NULL) {
			rc = cs_hash_fd(fd, hex, &size);
			if (rc < 0 || strcmp(hex, sha) != 0 || size != (uint64_t)sb->st_size) {
				json_decref(job);
				/* Other bytes (or unreadable: the ingest meets and names that). */
				return is_oom(rc) ? rc : 0;
			}
		}
		memset(&w->res, 0, sizeof(w->res));
		snprintf(w->res.id, sizeof(w->res.id), "%s", id);
		memcpy(w->res.sha256, sha, 65);
		w->res.size = (uint64_t)sb->st_size;
		w->resumed = 1;
		yes = 1;
	}
	json_decref(job);
	return yes;
}

/* Work item: secure one file; a refusal is recorded here, off the loop thread. */
static void
secure_work(uv_work_t *req)
{
	struct work *w = req->data;

	secure_file(w);
	if (is_refusal(w->rc))
		record_refusal(w->d, w->c, w->dirfd, w->rc);
}

#ifdef CS_FAILPOINTS
/*
 * Test build: with CUSTOS_REREAD_GATE=DIR every file waits between its copy
 * and its re-read. custosd writes DIR/<n>.at (n counts from 1: the file's
 * path and the digest copied) and goes on once DIR/<n>.go exists, or after
 * ten minutes; a test changes the source in that window.
 */
static void
reread_gate(const struct work *w)
{
	static atomic_long seq;
	const char *dir = getenv("CUSTOS_REREAD_GATE");
	char path[PATH_MAX], line[PATH_MAX + 128];
	struct timespec ts = {0, 10000000};
	long n;
	int fd, len;

	if (dir == NULL)
		return;
	n = atomic_fetch_add(&seq, 1) + 1;
	len = snprintf(line, sizeof(line), "%s/%s %s\n", w->c->ib->path, w->c->rel, w->res.sha256);
	snprintf(path, sizeof(path), "%s/%ld.at.tmp", dir, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t r = write(fd, line, len > 0 && len < (int)sizeof(line) ? (size_t)len : 0);
		(void)r;
		close(fd);
		snprintf(line, sizeof(line), "%s/%ld.at", dir, n);
		(void)rename(path, line);
	}
	snprintf(path, sizeof(path), "%s/%ld.go", dir, n);
	for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++)
		nanosleep(&ts, NULL);
}
#endif

static void
secure_file(struct work *w)
{
	struct inbox *ib = w->c->ib;
	const char *rel = w->c->rel;
	const char *officers[64];
	struct cs_meta m = {0};
	struct stat sb, again;
	json_t *side, *job = NULL, *ident = NULL;
	char hex[65], *key = NULL;
	uint64_t size;
	int fd;

	w->stage = 0;
	fd = cs_source_open(w->dirfd, rel, w->d->cfg.max_size, &sb);
	if (fd < 0) {
		w->rc = fd;
		return;
	}
	side = NULL;
	w->rc = ib->src == NULL ? load_sidecar(w, w->dirfd, rel, &side) : 0;
	m.source = "inbox";
	m.officers = officers;
	if (ib->src != NULL)
		w->rc = ib->src->meta(ib->src_ctx, rel, &m, officers, w->metabuf,
		    sizeof(w->metabuf), &w->extra);
	if (w->rc < 0) { /* out of memory: no file is secured without its metadata */
		close(fd);
		return;
	}
	/* Bad metadata never costs the evidence: each bad field is named and left out. */
	if (side != NULL && cs_meta_from_sidecar(side, &m, officers, w->sidecar_error,
	                        sizeof(w->sidecar_error)) < 0) {
		w->rc = -ENOMEM; /* no file is secured without its metadata */
		json_decref(side);
		close(fd);
		return;
	}
	w->stage = 1;
	key = job_key(ib, rel);
	ident = json_pack("{s:I, s:I, s:I}", "ino", (json_int_t)sb.st_ino, "size",
	    (json_int_t)sb.st_size, "mtime_ns",
	    (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	if (key == NULL || ident == NULL) {
		w->rc = -ENOMEM;
		json_decref(side);
		goto out;
	}
	w->rc = resume_ingested(w, key, &sb, fd);
	if (w->rc > 0) {
		/* Its event was written before a crash: finish it, take nothing again. */
		w->rc = 0;
	} else if (w->rc == 0) {
		m.job_key = key;
		m.job_ident = ident;
		w->rc = cs_store_ingest_fd(w->d->st, fd, rel, &m, &w->res);
	}
	json_decref(side);
	if (w->rc < 0)
		goto out;

	/*
	 * Nothing leaves the inbox unproven: re-read the source, same digest.
	 * The cached pages of the first read are dropped first, so that the
	 * second read comes from the device (a recorder's card) where it can.
	 */
	w->stage = 2;
#ifdef CS_FAILPOINTS
	reread_gate(w);
#endif
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	w->rc = cs_hash_fd(fd, hex, &size);
	if (w->rc == 0 && (strcmp(hex, w->res.sha256) != 0 || size != w->res.size)) {
		/*
		 * Its copy stays stored, but proves nothing about the source now:
		 * the job is no longer "ingested" (which a retake would finish
		 * without copying again), so the file is copied anew once it
		 * settles, even with its size and mtime unchanged. Should this
		 * record fail, the retake only finds the change again.
		 */
		job = json_pack("{s:s, s:s, s:s, s:I}", "state", "changed", "id", w->res.id,
		    "sha256", w->res.sha256, "size", (json_int_t)w->res.size);
		if (job != NULL)
			(void)cs_store_job_put(w->d->st, key, job);
		w->rc = CS_ECHANGED;
	}
	if (w->rc < 0)
		goto out;

	w->stage = 3;
	job = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "state", "released", "id", w->res.id,
	    "sha256", w->res.sha256, "size", (json_int_t)sb.st_size, "ino", (json_int_t)sb.st_ino,
	    "mtime_ns", (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	/*
	 * On a recorder: which opening of the folder read these bytes, and the
	 * inode's change time, so that the receipt's walk knows what it need not
	 * read again (dock.c).
	 */
	if (job != NULL && ib->src != NULL &&
	    (json_object_set_new(job, "attach", json_string(ib->src->attach(ib->src_ctx))) < 0 ||
	        json_object_set_new(job, "ctime_ns", json_integer((json_int_t)sb.st_ctim.tv_sec *
	            1000000000 + sb.st_ctim.tv_nsec)) < 0)) {
		json_decref(job);
		job = NULL;
	}
	if (job == NULL) { /* released the next time, not deleted without its record */
		w->rc = -ENOMEM;
		goto out;
	}
	if (w->d->cfg.release_delete && ib->src == NULL) {
		/* Delete only the very file that was read (same inode, unchanged). */
		if (fstatat(w->dirfd, rel, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
		    again.st_ino == sb.st_ino && again.st_dev == sb.st_dev &&
		    again.st_size == sb.st_size && again.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
		    again.st_mtim.tv_sec == sb.st_mtim.tv_sec) {
			if (unlinkat(w->dirfd, rel, 0) == 0) {
				char side_path[PATH_MAX];
				if (snprintf(side_path, sizeof(side_path), "%s.json", rel) <
				    (int)sizeof(side_path))
					(void)unlinkat(w->dirfd, side_path, 0);
			}
		}
	}
	w->rc = cs_store_job_put(w->d->st, key, job);
out:
	json_decref(job);
	json_decref(ident);
	free(key);
	close(fd);
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
		if (d->in_flight > 0 || d->checkpoint_running || d->finalizing > 0)
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
	struct cand *c = w->c;

	(void)status;
	d->in_flight--;
	d->inflight_bytes -= w->bytes;
	c->running = 0;
	if (w->sidecar_error[0])
		logmsg(1, "%s/%s.json: sidecar problem (%s); the file is secured with the rest",
		    c->ib->path, c->rel, w->sidecar_error);
	if (w->rc == 0) {
		d->secured++;
		d->released++;
		if (w->res.duplicate)
			d->duplicates++;
		logmsg(2, "secured %s/%s as %s (%llu bytes, sha256 %s)%s", c->ib->path, c->rel,
		    w->res.id, (unsigned long long)w->res.size, w->res.sha256,
		    w->resumed ? ", finishing an ingest interrupted by a crash" :
		    w->res.duplicate ? ", already stored: recorded as another sighting" : "");
		cand_remove(d, c);
		d->oom_streak = 0;
	} else if (is_oom(w->rc) || (w->rc == CS_EFAILED && is_oom(cs_store_failure(d->st)))) {
		/* Out of memory: nothing refused or released; the file waits to be taken again. */
		c->size = -1;
		if (!store_oom_check(d))
			out_of_memory(d, "securing %s/%s", c->ib->path, c->rel);
	} else if (w->rc == CS_ECHANGED || w->rc == -ENOENT) {
		/* Still being written, or replaced: wait for it to settle again. */
		if (w->rc == CS_ECHANGED && w->stage == 2)
			logmsg(1, "%s/%s changed while it was being read: its re-read does not "
			          "match the copy stored as %s (sha256 %s), so it is not released "
			          "on that copy; it will be taken again once it settles",
			    c->ib->path, c->rel, w->res.id, w->res.sha256);
		else if (w->rc == CS_ECHANGED)
			logmsg(2, "%s/%s changed while it was being read; it will be taken again "
			          "once it settles",
			    c->ib->path, c->rel);
		if (w->rc == -ENOENT)
			cand_remove(d, c);
		else
			c->size = -1;
	} else if (w->rc == CS_EFAILED ||
	    (is_store_error(w->rc) && w->stage != 0 && w->stage != 2)) {
		/* Stages 1 and 3 write the store; stages 0 and 2 only read the source. */
		char what[PATH_MAX + 64];
		if (w->stage == 3)
			logmsg(0, "secured %s/%s as %s, but recording its release failed (%s)",
			    c->ib->path, c->rel, w->res.id, cs_strerror(w->rc));
		snprintf(what, sizeof(what), "securing %s/%s", c->ib->path, c->rel);
		store_failed(d, w->rc, what, w->bytes);
		c->size = -1; /* taken again once it settles, when work resumes */
	} else {
		logmsg(1, "refused %s/%s: %s; it stays in the inbox untouched", c->ib->path, c->rel,
		    cs_strerror(w->rc));
		d->refused++;
		cand_remove(d, c);
	}
	json_decref(w->extra);
	close(w->dirfd);
	free(w);
	pump(d);
}

void
pump(struct daemon *d)
{
	while (taking_work(d) && d->in_flight < d->cfg.concurrency && d->qhead != NULL) {
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
		c->running = 1;
		rc = uv_queue_work(d->loop, &w->req, secure_work, secure_done);
		if (rc < 0) {
			c->running = 0;
			close(w->dirfd);
			free(w);
			return;
		}
		d->in_flight++;
		w->bytes = size;
		d->inflight_bytes += size;
	}
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
