/*
 * The media stage. A one-shot timer drives it: ask the catalog (on the
 * thread pool) for items without a media record, then make each one's
 * record (cs_media_process: the sandboxed worker, then the "media" event),
 * one work item at a time. Nothing starts while files are queued, being
 * secured or receipts written: securing and releasing go first, and a slow
 * or hung worker holds one pool thread at most until its time limit. An
 * unreadable file is logged as a warning and recorded; a worker that cannot
 * run at all (missing, no sandbox) is logged and tried again a minute later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "custos/error.h"
#include "custos/media.h"
#include "custos/store.h"
#include "log.h"
#include "media.h"
#include "pipeline.h"

#define BATCH 64
#define IDLE_MS 1000
#define RETRY_MS 60000

struct media {
	struct daemon *d;
	uv_timer_t timer;
	uv_work_t req;
	int running, stopping;
	int stop_worker; /* read by the work item (cs_media_limits.stop) */
	json_t *todo;        /* ids of the last query */
	size_t next;
	uint64_t next_query; /* loop time */
	uint64_t processed, unreadable, pending;
	uint64_t errors_logged_at;

	/* the work item: in and out (copies: a reload may change the configuration meanwhile) */
	int query;
	char *id, *probe, *policy;
	struct cs_media_limits lim;
	int rc;
	json_t *rec, *ids;
	uint64_t n_pending;
};

static void arm(struct media *m, uint64_t delay_ms);

const char *
media_probe_path(const struct daemon *d)
{
	const char *p = getenv("CUSTOS_PROBE");

	if (p != NULL && *p != '\0')
		return p;
	return d->cfg.media_probe != NULL ? d->cfg.media_probe : CS_PROBE_PATH;
}

static void
media_work(uv_work_t *req)
{
	struct media *m = req->data;
	struct cs_store *st = m->d->st;
	static const struct cs_media_agent agent = {"custosd", CUSTOS_VERSION};

	if (m->query)
		m->rc = cs_media_pending(st, BATCH, &m->ids, &m->n_pending);
	else
		m->rc = cs_media_process(st, m->id, m->probe, &m->lim, m->policy, &agent, &m->rec,
		    NULL);
}

static void
log_failure(struct media *m, uint64_t now)
{
	struct daemon *d = m->d;

	if (is_oom(m->rc)) {
		out_of_memory(d, "making the media record of %s", m->id);
	} else if (cs_store_failed(d->st, NULL)) {
		store_failed(d, m->rc, "writing a media event", 0);
	} else if (m->errors_logged_at == 0 || now - m->errors_logged_at > 600000) {
		if (m->rc == -ENOSPC)
			logmsg(1, "media: the store's disk is full: the copies of item %s wait "
			          "and are tried again in a minute (the original is secured; free "
			          "space on the store's disk)",
			    m->id);
		else if (m->rc == -ENOENT || m->rc == -ENOEXEC || m->rc == -EACCES ||
		    m->rc == -EPERM)
			logmsg(1, "media: the worker %s cannot run (%s) for item %s; check "
			          "[media] probe and that custos-probe is installed; media "
			          "records wait and are tried again in a minute",
			    m->probe, cs_strerror(m->rc), m->id);
		else
			logmsg(1, "media: item %s has no media record yet: %s; tried again in a "
			          "minute",
			    m->id, cs_strerror(m->rc));
		m->errors_logged_at = now;
	}
}

static void
media_done(uv_work_t *req, int status)
{
	struct media *m = req->data;
	struct daemon *d = m->d;
	uint64_t now = uv_now(d->loop), delay = 0;

	(void)status;
	m->running = 0;
	if (m->query) {
		json_decref(m->todo);
		m->todo = NULL;
		m->next = 0;
		if (m->rc == 0) {
			m->todo = m->ids;
			m->pending = m->n_pending;
		} else if (is_oom(m->rc)) {
			out_of_memory(d, "listing the items without a media record");
		} else {
			logmsg(1, "media: cannot list the items without a media record: %s; "
			          "trying again in a minute",
			    cs_strerror(m->rc));
		}
		m->ids = NULL;
		if (json_array_size(m->todo) == 0)
			m->next_query = now + (m->rc == 0 ? IDLE_MS : RETRY_MS);
	} else {
		const char *st = json_string_value(json_object_get(m->rec, "status"));
		m->next++;
		if (m->rc == 0) {
			m->processed++;
			d->oom_streak = 0;
			if (m->pending > 0)
				m->pending--;
			if (st != NULL && strcmp(st, "unreadable") == 0) {
				m->unreadable++;
				logmsg(1, "media: item %s is unreadable as media: %s. It is "
				          "secured and recorded all the same (event \"media\", "
				          "status unreadable)",
				    m->id, json_string_value(json_object_get(m->rec, "reason")));
			} else {
				logmsg(2, "media: item %s: %s %s", m->id,
				    json_string_value(json_object_get(m->rec, "kind")),
				    json_string_value(json_object_get(m->rec, "mime")));
			}
		} else if (m->rc == -ECANCELED && m->stopping) {
			logmsg(2, "media: the work on item %s stopped; done at the next start",
			    m->id);
		} else if (m->rc != CS_ENOTFOUND) {
			log_failure(m, now);
			/* the rest of the batch waits: the worker or the store has a problem */
			json_decref(m->todo);
			m->todo = NULL;
			m->next_query = now + RETRY_MS;
		}
		json_decref(m->rec);
		m->rec = NULL;
		if (m->next >= json_array_size(m->todo)) {
			json_decref(m->todo);
			m->todo = NULL;
			if (m->rc == 0 || m->rc == CS_ENOTFOUND)
				m->next_query = now;
		}
	}
	if (!m->stopping)
		arm(m, delay);
}

/* Intake has priority: files queued or being secured, or receipts being written. */
static int
intake_busy(const struct daemon *d)
{
	return d->queued > 0 || d->in_flight > 0 || d->finalizing > 0;
}

static void
on_timer(uv_timer_t *t)
{
	struct media *m = t->data;
	struct daemon *d = m->d;
	uint64_t now = uv_now(d->loop);

	if (m->running || m->stopping)
		return;
	if (!d->cfg.media_enabled || !taking_work(d) || intake_busy(d)) {
		arm(m, d->cfg.media_enabled ? 250 : 5000);
		return;
	}
	m->query = m->next >= json_array_size(m->todo);
	if (m->query && now < m->next_query) {
		arm(m, m->next_query - now);
		return;
	}
	if (!m->query) {
		free(m->id);
		free(m->probe);
		free(m->policy);
		m->id = strdup(json_string_value(json_array_get(m->todo, m->next)));
		m->probe = strdup(media_probe_path(d));
		m->policy = strdup(d->cfg.media_policy != NULL ? d->cfg.media_policy : "");
		m->lim.wall_ms = d->cfg.media_timeout_s * 1000;
		m->lim.cpu_s = d->cfg.media_timeout_s;
		m->lim.mem_bytes = d->cfg.media_memory;
		m->lim.stop = &m->stop_worker;
		if (m->id == NULL || m->probe == NULL || m->policy == NULL) {
			out_of_memory(d, "making a media record");
			arm(m, 1000);
			return;
		}
	}
	m->req.data = m;
	if (uv_queue_work(d->loop, &m->req, media_work, media_done) < 0) {
		arm(m, 1000);
		return;
	}
	m->running = 1;
}

static void
arm(struct media *m, uint64_t delay_ms)
{
	uv_timer_start(&m->timer, on_timer, delay_ms, 0);
}

int
media_start(struct daemon *d)
{
	struct media *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -ENOMEM;
	m->d = d;
	uv_timer_init(d->loop, &m->timer);
	m->timer.data = m;
	d->media = m;
	arm(m, 1000);
	return 0;
}

void
media_stop(struct daemon *d)
{
	struct media *m = d->media;

	if (m == NULL || m->stopping)
		return;
	m->stopping = 1;
	/* a worker still running (a long transcode) is killed: the step is redone next start */
	__atomic_store_n(&m->stop_worker, 1, __ATOMIC_RELAXED);
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, NULL);
}

void
media_free(struct daemon *d)
{
	struct media *m = d->media;

	if (m == NULL)
		return;
	json_decref(m->todo);
	json_decref(m->rec);
	json_decref(m->ids);
	free(m->id);
	free(m->probe);
	free(m->policy);
	free(m);
	d->media = NULL;
}

json_t *
media_status(struct daemon *d)
{
	struct media *m = d->media;

	return json_pack("{s:b, s:I, s:I, s:I, s:b}", "enabled", d->cfg.media_enabled, "processed",
	    (json_int_t)(m ? m->processed : 0), "unreadable", (json_int_t)(m ? m->unreadable : 0),
	    "pending", (json_int_t)(m ? m->pending : 0), "busy",
	    m != NULL && m->running && !m->query);
}
