/*
 * The upload stage. The durable queue is the catalog: a pass (custos/upload.h)
 * takes the items with no replica at the remote, then the ledger's records
 * and checkpoint, so a restart, even after SIGKILL, resumes where the replica
 * events stop (a multipart upload begun is resumed by lib, its parts listed).
 * Catalog reads, opening blobs and writing replica events are one "step" work
 * item on the pool at a time; the transfers run on the loop thread, libcurl's
 * sockets and timer bound to uv_poll and uv_timer (custos/remote.h's hooks),
 * so the loop never waits on the network and several transfers run at once.
 * A pass with failures, or a bucket that cannot be used (credentials refused,
 * no such bucket, the endpoint unreachable), is tried again after a backoff
 * (5 s doubling to 5 min) or at once after SIGHUP; the last error is in the
 * status and the log. A new pass starts whenever the ledger has grown.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "custos/remote.h"
#include "custos/replica.h"
#include "custos/secure.h"
#include "custos/upload.h"
#include "log.h"
#include "pipeline.h"
#include "remote.h"
#include "retention.h"

#define WINDOW 64   /* objects handed to the remote at once (each holds an fd) */
#define STEP_OBJS 16 /* objects taken from the queue by one step */
#define WAIT_MAX 256 /* items with held files looked at by one step */
#define TICK_MS 1000
#define RETRY_MIN_MS 5000
#define RETRY_MAX_MS 300000

struct sock {
	struct sock *next;
	struct upload *u;
	int fd;
	uv_poll_t poll;
};

/* An object handed to the remote, and what became of it. */
struct job {
	struct job *next;
	struct upload *u;
	struct cs_upload_obj o;
	struct cs_remote_result res; /* its strings point into the buffers below */
	char version_id[256], etag[160], lock_mode[16], retain_until[40], why[512];
};

struct upload {
	struct daemon *d;
	struct cs_remote_config cfg;
	char remote[1200];
	struct cs_remote *r;
	struct cs_upload *q;
	uv_timer_t curl_timer, tick;
	struct sock *socks;
	struct job *flying;  /* handed to the remote */
	struct job *results; /* reported, waiting for the next step to record them */
	uv_work_t req;
	int working, stopping, reload;

	/* the step: in (loop → pool) and out (pool → loop) */
	struct job *recording;
	int new_pass, take;
	size_t room;
	char wait_ids[WAIT_MAX][80]; /* items of files newly held, to look at */
	size_t n_wait;
	int sweeping, forcing; /* this step looks at held files (from sweep_after on) */
	char sweep_after[80];
	int sweep_more;     /* out: more held items after sweep_after */
	size_t released;    /* out: held files released */
	int unhold_rc;      /* out: the first error releasing them */
	json_t *held_new;   /* out: held items whose new copies were confirmed (legal hold) */
	struct cs_upload_obj objs[STEP_OBJS];
	size_t n_objs;
	int finished, rc, record_rc;
	size_t backlog;
	uint64_t backlog_bytes;

	/* held files: new ones to look at (the loop's), a sweep of all of them due */
	char new_ids[WAIT_MAX][80];
	size_t n_new;
	int sweep, force;
	/* the pass */
	int passing, starved, pass_failed;
	uint64_t pass_size;   /* the ledger's size when the pass began */
	uint64_t own_events;  /* replica events written since (they start no pass) */
	uint64_t next_pass_at; /* loop time */
	uint64_t retry_ms;

	/* for the status */
	uint64_t uploaded, present, failures;
	char last_error[700], last_error_at[40];
};

static void kick(struct upload *u);

static void
set_error(struct upload *u, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
set_error(struct upload *u, int level, const char *fmt, ...)
{
	char msg[sizeof(u->last_error)];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(u->last_error_at, sizeof(u->last_error_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* the same error again (each retry of a refused bucket) is logged once */
	if (strcmp(msg, u->last_error) != 0)
		logmsg(level, "remote%s%s: %s", u->remote[0] ? " " : "", u->remote, msg);
	memcpy(u->last_error, msg, sizeof(msg));
}

/* ---- custos/remote.h's hooks on the loop ---- */

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	struct upload *u = s->u;
	int what = 0;

	if (status < 0)
		what = CS_REMOTE_IN | CS_REMOTE_OUT;
	if (events & UV_READABLE)
		what |= CS_REMOTE_IN;
	if (events & UV_WRITABLE)
		what |= CS_REMOTE_OUT;
	if (u->r != NULL)
		cs_remote_action(u->r, s->fd, what);
	kick(u);
}

static void
sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
hook_socket(void *ctx, int fd, int what)
{
	struct upload *u = ctx;
	struct sock **pp = &u->socks, *s;
	int ev = 0;

	while (*pp != NULL && (*pp)->fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (what & CS_REMOTE_REMOVE) {
		if (s != NULL) {
			*pp = s->next;
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, sock_closed);
		}
		return;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL || uv_poll_init_socket(u->d->loop, &s->poll, fd) < 0) {
			/* the transfer stalls and fails by its own timeout, then is retried */
			free(s);
			return;
		}
		s->u = u;
		s->fd = fd;
		s->poll.data = s;
		s->next = u->socks;
		u->socks = s;
	}
	if (what & CS_REMOTE_IN)
		ev |= UV_READABLE;
	if (what & CS_REMOTE_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&s->poll, ev, on_poll);
}

static void
on_curl_timer(uv_timer_t *t)
{
	struct upload *u = t->data;

	if (u->r != NULL)
		cs_remote_action(u->r, -1, 0);
	kick(u);
}

static void
hook_timer(void *ctx, long ms)
{
	struct upload *u = ctx;

	if (u->stopping)
		return;
	if (ms < 0)
		uv_timer_stop(&u->curl_timer);
	else /* 0 would run again in the same timer phase, for ever if asked again */
		uv_timer_start(&u->curl_timer, on_curl_timer, ms < 1 ? 1 : (uint64_t)ms, 0);
}

/*
 * A multipart part's reading and hashing, on the thread pool: a large
 * upload never holds up the loop. Nonzero: not queued (lib hashes it now).
 */
struct hashing {
	uv_work_t req;
	struct upload *u;
	struct cs_remote_work *w;
};

static void
hash_work(uv_work_t *req)
{
	struct hashing *h = req->data;

	cs_remote_work_run(h->w);
}

static void
hash_done(uv_work_t *req, int status)
{
	struct hashing *h = req->data;
	struct upload *u = h->u;

	(void)status;
	cs_remote_work_done(h->w); /* after a drop of the transfers: only freed */
	free(h);
	if (!u->stopping)
		kick(u);
}

static int
hook_work(void *ctx, struct cs_remote_work *w)
{
	struct upload *u = ctx;
	struct hashing *h;

	if (u->stopping || (h = calloc(1, sizeof(*h))) == NULL)
		return -1;
	h->u = u;
	h->w = w;
	h->req.data = h;
	if (uv_queue_work(u->d->loop, &h->req, hash_work, hash_done) < 0) {
		free(h);
		return -1;
	}
	return 0;
}

/* ---- results ---- */

static void
copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s != NULL ? s : "");
}

static void
on_put_done(void *ctx, const struct cs_remote_result *res)
{
	struct job *j = ctx, **pp;
	struct upload *u = j->u;

	for (pp = &u->flying; *pp != NULL && *pp != j; pp = &(*pp)->next)
		;
	if (*pp == j)
		*pp = j->next;
	j->res = *res;
	copy_str(j->version_id, sizeof(j->version_id), res->version_id);
	copy_str(j->etag, sizeof(j->etag), res->etag);
	copy_str(j->lock_mode, sizeof(j->lock_mode), res->lock_mode);
	copy_str(j->retain_until, sizeof(j->retain_until), res->retain_until);
	copy_str(j->why, sizeof(j->why), res->why);
	j->res.key = j->o.key;
	j->res.version_id = j->version_id;
	j->res.etag = j->etag;
	j->res.lock_mode = j->lock_mode;
	j->res.retain_until = j->retain_until;
	j->res.why = j->why;
	if (res->rc != 0) {
		u->failures++;
		u->pass_failed = 1;
		if (u->r != NULL && cs_remote_bucket_error(u->r, NULL) < 0)
			logmsg(3, "remote: %s %s not confirmed: %s", j->o.kind, j->o.key, j->why);
		else
			set_error(u, 1, "%s %s not confirmed: %s; it is sent again later",
			    j->o.kind, j->o.key, j->why);
	} else {
		if (res->skipped)
			u->present++;
		else
			u->uploaded++;
		if (strcmp(j->o.kind, "blob") == 0)
			logmsg(2, "remote: item %s %s %s%s%s", j->o.id,
			    res->skipped ? "already at" : "sent to", j->o.key,
			    j->version_id[0] ? " version " : "", j->version_id);
		else if (strcmp(j->o.kind, "derivative") == 0)
			logmsg(2, "remote: item %s's %s copy %s %s%s%s", j->o.id, j->o.derivative,
			    res->skipped ? "already at" : "sent to", j->o.key,
			    j->version_id[0] ? " version " : "", j->version_id);
		else
			logmsg(3, "remote: %s %s %s", j->o.kind, j->o.key,
			    res->skipped ? "already there" : "sent");
	}
	j->next = u->results;
	u->results = j;
	u->starved = 0;
}

/* ---- the step (thread pool) ---- */

/* 1 if the store has a replica of item `id`'s original at this remote (not a derivative's). */
static int
confirmed(struct upload *u, const char *id)
{
	json_t *list = NULL, *r;
	size_t k;
	int yes = 0;

	if (cs_replica_list(u->d->st, id, &list) < 0)
		return 0;
	json_array_foreach(list, k, r)
	{
		const char *rm = json_string_value(json_object_get(r, "remote"));
		if (rm != NULL && strcmp(rm, u->remote) == 0 &&
		    json_object_get(r, "derivative") == NULL)
			yes = 1;
	}
	json_decref(list);
	return yes;
}

/*
 * Releases the files held for item `id` once its copy at this remote is
 * confirmed (`force`: release_policy is local again, at once).
 */
static void
release_held(struct upload *u, const char *id, int force)
{
	size_t n = 0;
	int rc;

	if (!force && !confirmed(u, id))
		return;
	do {
		rc = cs_secure_unhold(u->d->st, id, 128, &n);
		u->released += n;
	} while (rc == 0 && n == 128);
	if (rc < 0 && u->unhold_rc == 0)
		u->unhold_rc = rc;
}

static int
sweep_one(void *ctx, const char *id)
{
	struct upload *u = ctx;

	snprintf(u->wait_ids[u->n_wait], sizeof(u->wait_ids[0]), "%s", id);
	return ++u->n_wait == WAIT_MAX;
}

/*
 * Looks at the held files (WAIT_MAX items a step, from sweep_after on):
 * those whose copy is confirmed are released (a copy confirmed before a
 * crash, an item that was in the bucket before its file came).
 */
static void
sweep_held(struct upload *u)
{
	int rc;

	u->n_wait = 0;
	rc = cs_secure_held_each(u->d->st, u->sweep_after, sweep_one, u);
	if (rc < 0 && u->unhold_rc == 0)
		u->unhold_rc = rc;
	for (size_t i = 0; i < u->n_wait; i++)
		release_held(u, u->wait_ids[i], u->forcing);
	u->sweep_more = rc == 0 && u->n_wait == WAIT_MAX;
	snprintf(u->sweep_after, sizeof(u->sweep_after), "%s",
	    u->sweep_more ? u->wait_ids[WAIT_MAX - 1] : "");
	u->n_wait = 0;
}

static void
step_work(uv_work_t *req)
{
	struct upload *u = req->data;
	struct cs_store *st = u->d->st;

	u->rc = u->record_rc = 0;
	u->n_objs = 0;
	u->finished = 0;
	u->released = 0;
	u->unhold_rc = 0;
	u->sweep_more = 0;
	for (struct job *j = u->recording; j != NULL; j = j->next) {
		int rc = cs_upload_result(u->q, &j->o, &j->res);
		if (rc < 0 && u->record_rc == 0)
			u->record_rc = rc;
		if (rc > 0)
			u->own_events++;
		/* A blob confirmed: the files held for its item go. */
		if (rc >= 0 && j->res.rc == 0 && strcmp(j->o.kind, "blob") == 0)
			release_held(u, j->o.id, 0);
	}
	if (u->q != NULL)
		u->held_new = cs_upload_take_held(u->q);
	for (size_t i = 0; i < u->n_wait; i++)
		release_held(u, u->wait_ids[i], 0);
	if (u->sweeping)
		sweep_held(u);
	if (u->new_pass) {
		if (u->q == NULL)
			u->rc = cs_upload_new(&u->q, st, u->d->cfg.store, &u->cfg, NULL, 0, NULL);
		else
			u->rc = cs_upload_pass(u->q);
		if (u->rc < 0)
			return;
	}
	if (u->take && u->q != NULL)
		u->rc = cs_upload_next(u->q, u->objs, u->room, &u->n_objs, &u->finished);
	if (u->q != NULL)
		cs_upload_backlog(u->q, &u->backlog, &u->backlog_bytes);
}

static void
put(struct upload *u, struct cs_upload_obj *o)
{
	struct cs_remote_object obj = {o->key, o->fd, o->size, {0}, o->content_type};
	struct job *j;
	int rc;

	if (o->rc < 0) {
		u->failures++;
		u->pass_failed = 1;
		set_error(u, 1, "%s %s cannot be read (%s): not sent; run custos verify", o->kind,
		    o->id[0] ? o->id : o->key, cs_strerror(o->rc));
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		close(o->fd);
		u->pass_failed = 1; /* reported as never handed out: the pass ends short */
		out_of_memory(u->d, "queueing %s for upload", o->key);
		return;
	}
	j->u = u;
	j->o = *o;
	memcpy(obj.sha256, o->sha256, 32);
	rc = cs_remote_put(u->r, &obj, on_put_done, j);
	close(o->fd);
	j->o.fd = -1;
	if (rc < 0) {
		struct cs_remote_result res = {.rc = rc, .key = o->key, .why = "out of memory"};
		on_put_done(j, &res); /* recorded as a failure: the pass accounts for it */
		return;
	}
	j->next = u->flying;
	u->flying = j;
}

/* The next pass after a failed one: 5 s, doubling up to 5 min. */
static void
back_off(struct upload *u, uint64_t now)
{
	u->next_pass_at = now + u->retry_ms;
	u->retry_ms = u->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : u->retry_ms * 2;
}

static void
step_done(uv_work_t *req, int status)
{
	struct upload *u = req->data;
	struct daemon *d = u->d;
	struct job *j, *next;

	(void)status;
	u->working = 0;
	retention_pushed_held(d, u->held_new);
	u->held_new = NULL;
	for (j = u->recording; j != NULL; j = next) {
		next = j->next;
		free(j);
	}
	u->recording = NULL;
	if (u->stopping) {
		for (size_t i = 0; i < u->n_objs; i++)
			if (u->objs[i].fd >= 0)
				close(u->objs[i].fd);
		return;
	}
	if (u->record_rc < 0) {
		if (cs_store_failed(d->st, NULL))
			store_failed(d, u->record_rc, "recording a replica event", 0);
		else
			set_error(u, 0, "a confirmed copy could not be recorded (%s); it is found "
			                "in the bucket and recorded next time",
			    cs_strerror(u->record_rc));
	}
	u->n_wait = 0;
	if (u->sweep_more)
		u->sweep = 1;
	else if (u->sweeping)
		u->force = 0;
	u->sweeping = 0;
	if (u->released > 0) {
		d->released += u->released;
		logmsg(2, "remote %s: %zu held file(s) released, their remote copy confirmed",
		    u->remote, u->released);
	}
	if (u->unhold_rc < 0) {
		if (cs_store_failed(d->st, NULL))
			store_failed(d, u->unhold_rc, "releasing held files", 0);
		else if (is_oom(u->unhold_rc))
			out_of_memory(d, "releasing held files");
		else
			set_error(u, 0, "held files could not be released (%s); tried again later",
			    cs_strerror(u->unhold_rc));
		u->sweep = 1;
	}
	if (u->rc < 0) {
		u->passing = 0;
		u->next_pass_at = uv_now(d->loop) + RETRY_MIN_MS;
		if (is_oom(u->rc))
			out_of_memory(d, "listing what to upload");
		else
			set_error(u, 1, "cannot list what to send: %s; trying again shortly",
			    cs_strerror(u->rc));
	} else {
		if (u->new_pass)
			u->passing = 1;
		for (size_t i = 0; i < u->n_objs; i++)
			put(u, &u->objs[i]);
		if (u->take && u->n_objs == 0 && !u->finished)
			u->starved = 1; /* nothing until a result comes */
		if (u->finished) {
			uint64_t now = uv_now(d->loop);
			u->passing = 0;
			if (u->pass_failed) {
				back_off(u, now);
			} else {
				u->retry_ms = RETRY_MIN_MS;
				if (u->last_error[0])
					logmsg(2, "remote %s: uploads work again", u->remote);
				u->last_error[0] = '\0';
				u->next_pass_at = now;
			}
		}
	}
	u->new_pass = 0;
	kick(u);
}

/* ---- scheduling ---- */

char *
remote_config_path(const struct daemon *d)
{
	if (d->cfg.remote_config == NULL && !d->cfg.remote_inline)
		return NULL;
	return strdup(d->cfg.remote_config != NULL ? d->cfg.remote_config : d->config_path);
}

static int
load(struct upload *u)
{
	struct daemon *d = u->d;
	const char *path = d->cfg.remote_config != NULL ? d->cfg.remote_config : d->config_path;
	struct cs_remote_config nc;
	const struct cs_remote_hooks hooks = {hook_socket, hook_timer, u};
	char why[1024];
	int rc;

	rc = cs_remote_config_load(&nc, path, why, sizeof(why));
	if (rc < 0) {
		cs_remote_config_fini(&nc);
		set_error(u, 0, "its configuration cannot be used: %s; uploads wait until it is "
		                "fixed and custosd reloaded (SIGHUP)",
		    why[0] ? why : cs_strerror(rc));
		return rc;
	}
	cs_remote_free(u->r);
	u->r = NULL;
	cs_upload_free(u->q);
	u->q = NULL;
	cs_remote_config_fini(&u->cfg);
	u->cfg = nc;
	cs_remote_config_name(&u->cfg, u->remote, sizeof(u->remote));
	rc = cs_remote_new(&u->r, &u->cfg, &hooks);
	if (rc == 0)
		cs_remote_set_work(u->r, hook_work);
	if (rc < 0)
		set_error(u, 0, "cannot be set up: %s", cs_strerror(rc));
	return rc;
}

/*
 * Drops every transfer (their jobs unreported: a new pass sends them again)
 * and, with `queue` (never while a step runs), the pass.
 */
static void
drop_transfers(struct upload *u, int queue)
{
	struct job *j, *next;

	cs_remote_free(u->r);
	u->r = NULL;
	for (j = u->flying; j != NULL; j = next) {
		next = j->next;
		free(j);
	}
	for (j = u->results; j != NULL; j = next) {
		next = j->next;
		free(j);
	}
	u->flying = u->results = NULL;
	if (queue) {
		cs_upload_free(u->q);
		u->q = NULL;
	}
	u->passing = u->starved = 0;
}

static void
kick(struct upload *u)
{
	struct daemon *d = u->d;
	uint64_t now = uv_now(d->loop);
	const char *why;
	int bucket;

	if (u->working || u->stopping || d->failed)
		return;
	if (u->reload) {
		u->reload = 0;
		drop_transfers(u, 1);
		if (load(u) < 0) {
			cs_remote_free(u->r);
			u->r = NULL;
		}
		u->next_pass_at = now;
		u->retry_ms = RETRY_MIN_MS;
	}
	if (u->r == NULL)
		return;
	bucket = cs_remote_bucket_error(u->r, &why) < 0;
	u->take = 0;
	u->new_pass = 0;
	if (u->passing && bucket) {
		if (cs_remote_pending(u->r) == 0 && u->results == NULL) {
			/* the bucket cannot be used: the pass ends; tried again after a wait */
			set_error(u, 0, "%s; the evidence is safe here, uploads are tried again "
			                "every few minutes and at once after SIGHUP",
			    why);
			u->passing = 0;
			u->pass_failed = 1;
			back_off(u, now);
		}
	} else if (u->passing) {
		/* a step that records results asks for more after them */
		u->take = (!u->starved || u->results != NULL) && cs_remote_pending(u->r) < WINDOW;
	} else if (now >= u->next_pass_at && taking_work(d)) {
		uint64_t size = cs_store_size(d->st);
		/*
		 * Only a ledger grown by more than this stage's own replica events
		 * starts a pass: a pass's last events (and the checkpoint covering
		 * them) go up with the next change, or there would be no end.
		 */
		if (u->q == NULL || size > u->pass_size + u->own_events || u->pass_failed) {
			u->new_pass = u->take = 1;
			u->sweep = 1; /* and the held files are looked at again */
			u->pass_failed = 0;
			u->pass_size = size;
			u->own_events = 0;
		}
	}
	if (!u->take && u->results == NULL && u->n_new == 0 && !u->sweep)
		return;
	/* The step looks at the newly held items, or at all held ones (a sweep). */
	u->sweeping = u->sweep;
	u->forcing = u->force;
	u->sweep = 0;
	u->n_wait = u->n_new;
	memcpy(u->wait_ids, u->new_ids, u->n_wait * sizeof(u->wait_ids[0]));
	u->n_new = 0;
	if (u->take) {
		size_t p = cs_remote_pending(u->r);
		u->room = WINDOW - p < STEP_OBJS ? WINDOW - p : STEP_OBJS;
	}
	u->recording = u->results;
	u->results = NULL;
	u->req.data = u;
	if (uv_queue_work(d->loop, &u->req, step_work, step_done) < 0) {
		u->results = u->recording; /* (libuv refuses only a bad loop) */
		u->recording = NULL;
		return;
	}
	u->working = 1;
}

static void
on_tick(uv_timer_t *t)
{
	struct upload *u = t->data;

	/* retries fall due on lib's timer; a nudge a second makes sure none waits longer */
	if (u->r != NULL && cs_remote_pending(u->r) > 0)
		cs_remote_action(u->r, -1, 0);
	kick(u);
}

/*
 * A file of item `id` is held (pipeline.c): the item is looked at by the
 * next step (in the bucket already?); more than a step takes: a sweep.
 */
static void
on_held(struct daemon *d, const char *id)
{
	struct upload *u = d->upload;

	if (u == NULL || u->stopping)
		return;
	if (u->n_new < WAIT_MAX)
		snprintf(u->new_ids[u->n_new++], sizeof(u->new_ids[0]), "%s", id);
	else
		u->sweep = 1;
	kick(u);
}

int
upload_start(struct daemon *d)
{
	struct upload *u;

	if (d->cfg.remote_config == NULL && !d->cfg.remote_inline)
		return 0;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	u->d = d;
	u->retry_ms = RETRY_MIN_MS;
	uv_timer_init(d->loop, &u->curl_timer);
	uv_timer_init(d->loop, &u->tick);
	u->curl_timer.data = u->tick.data = u;
	d->upload = u;
	d->remote_held = on_held;
	u->sweep = 1; /* files held before a restart */
	if (load(u) < 0) {
		cs_remote_free(u->r);
		u->r = NULL;
	}
	uv_timer_start(&u->tick, on_tick, TICK_MS, TICK_MS);
	return 0;
}

void
upload_reload(struct daemon *d)
{
	struct upload *u = d->upload;

	if (u == NULL) {
		if ((d->cfg.remote_config != NULL || d->cfg.remote_inline) && upload_start(d) < 0)
			out_of_memory(d, "starting uploads");
		return;
	}
	if (!d->cfg.release_remote) {
		/* release_policy is local again: the files held are released now */
		u->sweep = u->force = 1;
		snprintf(u->sweep_after, sizeof(u->sweep_after), "%s", "");
	}
	u->reload = 1;
	kick(u);
}

void
upload_stop(struct daemon *d)
{
	struct upload *u = d->upload;

	if (u == NULL || u->stopping)
		return;
	drop_transfers(u, !u->working);
	u->stopping = 1;
	uv_timer_stop(&u->tick);
	uv_timer_stop(&u->curl_timer);
	uv_close((uv_handle_t *)&u->tick, NULL);
	uv_close((uv_handle_t *)&u->curl_timer, NULL);
}

void
upload_free(struct daemon *d)
{
	struct upload *u = d->upload;

	if (u == NULL)
		return;
	drop_transfers(u, 1);
	cs_remote_config_fini(&u->cfg);
	free(u);
	d->upload = NULL;
}

json_t *
upload_status(struct daemon *d)
{
	struct upload *u = d->upload;

	json_t *jobs = NULL;
	json_int_t held = 0;

	if (u == NULL)
		return json_pack("{s:b}", "enabled", 0);
	/* held files are jobs in state "held", counted as the jobs change */
	if (cs_store_job_counts(d->st, &jobs) == 0)
		held = json_integer_value(json_object_get(jobs, "held"));
	json_decref(jobs);
	return json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?, s:s?}",
	    "enabled", 1, "remote", u->remote, "release_policy",
	    d->cfg.release_remote ? "remote" : "local", "queue", (json_int_t)u->backlog,
	    "bytes_pending", (json_int_t)u->backlog_bytes, "in_flight",
	    (json_int_t)(u->r != NULL ? cs_remote_pending(u->r) : 0), "uploaded",
	    (json_int_t)u->uploaded, "present", (json_int_t)u->present, "failures",
	    (json_int_t)u->failures, "held",
	    held, "last_error",
	    u->last_error[0] ? u->last_error : NULL, "last_error_time",
	    u->last_error[0] ? u->last_error_at : NULL);
}
