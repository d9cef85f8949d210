/*
 * Scheduled fixity. A one-shot timer drives a small state machine: ask the
 * catalog (on the thread pool) which items are due, oldest check first;
 * then check them one at a time in steps of about a quarter second's worth
 * of [fixity] rate, each step one work item on the pool (never more than one
 * fixity work item at a time), the next one started only when the bytes
 * read so far, at the rate, have had their time. While files are queued, in
 * flight or receipts are being written, no step starts: intake goes first.
 * Each finished check is a "fixity" event in the ledger (lib/fixity.c), so a
 * restart resumes where the events stop: an item's place in the schedule is
 * its last check. Damage is logged as an error naming the item and what to
 * do, and kept for the status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "custos/fixity.h"
#include "custos/store.h"
#include "fixity.h"
#include "log.h"
#include "pipeline.h"

#define DUE_BATCH 64
#define SUMMARY_MS 60000 /* how often the summary (overdue count, damaged) is read again */
#define STEP_MIN ((uint64_t)64 << 10)
#define STEP_MAX ((uint64_t)64 << 20)

struct fixity {
	struct daemon *d;
	uv_timer_t timer;
	uv_work_t req;
	int running;  /* a work item is on the pool */
	int stopping;
	json_t *due;  /* the due items of the last query */
	size_t next;  /* the next of them to check */
	struct cs_fixity *cur; /* the check in progress */
	uint64_t next_query;   /* loop time of the next look at the catalog when nothing is due */
	uint64_t paced_until;  /* loop time before which no step starts (the rate) */
	uint64_t checked;      /* checks made since custosd started */
	uint64_t step_start;   /* loop time the last step was queued */
	uint64_t errors_logged_at;
	json_t *summary; /* the catalog's: damaged, overdue, last_pass */

	/* the work item: in and out */
	int query;           /* 1: a look at the catalog, 0: a step of a check */
	char *id;            /* step: the item */
	uint64_t max, bytes; /* step: bytes to read at most, read */
	int done, rc;
	enum cs_fixity_outcome outcome;
	char bad_kind[16];   /* step: the derivative found not ok ("": the item's blob) */
	char bad_sha[65];    /* ... its recorded SHA-256 */
	json_t *items, *sum; /* query: due items, summary (if want_summary) */
	int want_summary;
	uint64_t summary_at; /* loop time the summary was read */
};

static void arm(struct fixity *fx, uint64_t delay_ms);

static uint64_t
period_ms(const struct daemon *d)
{
	return d->cfg.fixity_period_s * 1000;
}

/* How long to wait before looking again when nothing is due: a tenth of the period, 1 s..60 s. */
static uint64_t
idle_ms(const struct daemon *d)
{
	uint64_t t = period_ms(d) / 10;

	return t < 1000 ? 1000 : t > 60000 ? 60000 : t;
}

static void
fixity_work(uv_work_t *req)
{
	struct fixity *fx = req->data;
	struct cs_store *st = fx->d->st;
	static const struct cs_fixity_agent agent = {"custosd", CUSTOS_VERSION};

	fx->rc = 0;
	if (fx->query) {
		int64_t now = cs_fixity_now_ms();
		/*
		 * The next items due, without counting them all: the summary
		 * (which counts every overdue item) is read again only when it
		 * is a minute old, so a store that is all overdue costs one
		 * walk a minute, not one per batch.
		 */
		fx->rc = cs_fixity_due(st, now, (int64_t)period_ms(fx->d), DUE_BATCH, &fx->items,
		    NULL);
		if (fx->rc == 0 && fx->want_summary)
			fx->rc = cs_fixity_report(st, now, (int64_t)period_ms(fx->d), &fx->sum,
			    NULL);
		return;
	}
	fx->bytes = 0;
	fx->done = 0;
	if (fx->cur == NULL)
		fx->rc = cs_fixity_begin(st, fx->id, &fx->cur);
	if (fx->rc == 0)
		fx->rc = cs_fixity_step(fx->cur, fx->max, &fx->bytes, &fx->done);
	if (fx->rc == 0 && fx->done)
		fx->rc = cs_fixity_end(fx->cur, &agent, &fx->outcome, NULL);
	if (fx->rc == 0 && fx->done && fx->outcome != CS_FIXITY_OK) {
		const char *kind = NULL, *sha = "";
		(void)cs_fixity_problem(fx->cur, &kind, &sha);
		snprintf(fx->bad_kind, sizeof(fx->bad_kind), "%s", kind != NULL ? kind : "");
		snprintf(fx->bad_sha, sizeof(fx->bad_sha), "%s", sha);
	}
	if (fx->rc < 0 || fx->done) {
		cs_fixity_free(fx->cur);
		fx->cur = NULL;
	}
}

static void
alert(struct fixity *fx, const char *id, const char *sha)
{
	const char *what = fx->outcome == CS_FIXITY_MISSING ? "MISSING" : "DAMAGED";

	if (fx->bad_kind[0] != '\0') {
		const char *s = fx->bad_sha;
		logmsg(0,
		    "fixity: the %s copy of item %s is %s: derivatives/sha256/%.2s/%.2s/%s %s. "
		    "The original is intact; the ledger records it (event \"fixity\"). Restore "
		    "the copy from the remote copy or a backup, then run 'custos fixity check %s'; "
		    "see operations.md, Fixity",
		    fx->bad_kind, id, what, s, s + 2, s,
		    fx->outcome == CS_FIXITY_MISSING ? "is gone"
		                                     : "no longer has its recorded SHA-256",
		    id);
		return;
	}
	logmsg(0,
	    "fixity: item %s is %s: its blob objects/sha256/%.2s/%.2s/%s %s. The ledger "
	    "records it (event \"fixity\"). Do not delete or replace anything in the store; "
	    "restore the blob from the remote copy or a backup (custos verify shows every "
	    "damaged blob), then run 'custos fixity check %s'; see operations.md, Fixity",
	    id, what, sha, sha + 2, sha,
	    fx->outcome == CS_FIXITY_MISSING ? "is gone"
	                                     : "no longer has the SHA-256 recorded at its ingest",
	    id);
}

/* A check was made: the summary's last pass is now, one item fewer is due. */
static void
summary_checked(struct fixity *fx)
{
	json_t *o = json_object_get(fx->summary, "overdue");
	struct timespec ts;
	struct tm tm;
	char buf[40];

	if (json_integer_value(o) > 0)
		json_integer_set(o, json_integer_value(o) - 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03ldZ", ts.tv_nsec / 1000000);
	if (fx->summary != NULL)
		json_object_set_new(fx->summary, "last_pass", json_string(buf));
}

static void
fixity_done(uv_work_t *req, int status)
{
	struct fixity *fx = req->data;
	struct daemon *d = fx->d;
	uint64_t now = uv_now(d->loop), delay = 0;

	(void)status;
	fx->running = 0;
	if (fx->query) {
		if (fx->rc == 0) {
			json_decref(fx->due);
			fx->due = fx->items;
			fx->next = 0;
			if (fx->sum != NULL) {
				json_decref(fx->summary);
				fx->summary = fx->sum;
				fx->summary_at = now;
			}
			if (json_array_size(fx->due) == 0)
				fx->next_query = now + idle_ms(d);
		} else {
			json_decref(fx->items);
			json_decref(fx->sum);
			if (is_oom(fx->rc))
				out_of_memory(d, "finding the items due for a fixity check");
			else
				logmsg(1, "fixity: cannot list the items due: %s; trying again in "
				          "a minute",
				    cs_strerror(fx->rc));
			fx->next_query = now + 60000;
		}
		fx->items = fx->sum = NULL;
	} else {
		json_t *it = json_array_get(fx->due, fx->next);
		const char *sha = json_string_value(json_object_get(it, "sha256"));

		/* The next step waits until the bytes read have had their time at the rate. */
		if (d->cfg.fixity_rate > 0)
			delay = fx->bytes * 1000 / d->cfg.fixity_rate;
		fx->paced_until =
		    (fx->paced_until > fx->step_start ? fx->paced_until : fx->step_start) + delay;
		if (fx->rc == CS_ENOTFOUND) {
			fx->next++; /* gone from the catalog since the query */
		} else if (fx->rc < 0) {
			if (is_oom(fx->rc)) {
				out_of_memory(d, "checking the fixity of %s", fx->id);
			} else if (cs_store_failed(d->st, NULL)) {
				store_failed(d, fx->rc, "writing a fixity event", 0);
			} else if (fx->errors_logged_at == 0 ||
			    now - fx->errors_logged_at > 600000) {
				logmsg(1, "fixity: checking item %s failed: %s; it is tried again "
				          "after the other items due",
				    fx->id, cs_strerror(fx->rc));
				fx->errors_logged_at = now;
			}
			fx->next++; /* one item that cannot be checked does not stop the rest */
			fx->paced_until = now + 1000;
		} else if (fx->done) {
			fx->checked++;
			fx->next++;
			d->oom_streak = 0;
			summary_checked(fx);
			if (fx->outcome != CS_FIXITY_OK && sha != NULL) {
				alert(fx, fx->id, sha);
				json_array_append_new(json_object_get(fx->summary, "damaged"),
				    json_string(fx->id));
			} else {
				logmsg(3, "fixity: item %s ok", fx->id);
			}
		}
		if (fx->next >= json_array_size(fx->due)) {
			json_decref(fx->due);
			fx->due = NULL;
			fx->next_query = now; /* look again for more */
		}
	}
	if (!fx->stopping)
		arm(fx, fx->paced_until > now ? fx->paced_until - now : 0);
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
	struct fixity *fx = t->data;
	struct daemon *d = fx->d;
	uint64_t now = uv_now(d->loop), step;
	json_t *it;

	if (fx->running || fx->stopping)
		return;
	if (!d->cfg.fixity_enabled || !taking_work(d) || intake_busy(d)) {
		arm(fx, d->cfg.fixity_enabled ? 250 : 5000);
		return;
	}
	if (now < fx->paced_until) {
		arm(fx, fx->paced_until - now);
		return;
	}
	fx->query = fx->cur == NULL && fx->next >= json_array_size(fx->due);
	if (fx->query && now < fx->next_query) {
		arm(fx, fx->next_query - now);
		return;
	}
	fx->want_summary = fx->query && (fx->summary == NULL || now - fx->summary_at >= SUMMARY_MS);
	if (!fx->query) {
		it = json_array_get(fx->due, fx->next);
		free(fx->id);
		fx->id = strdup(json_string_value(json_object_get(it, "id")));
		if (fx->id == NULL) {
			out_of_memory(d, "checking fixity");
			arm(fx, 1000);
			return;
		}
		step = d->cfg.fixity_rate / 4;
		fx->max = step < STEP_MIN ? STEP_MIN : step > STEP_MAX ? STEP_MAX : step;
	}
	fx->req.data = fx;
	if (uv_queue_work(d->loop, &fx->req, fixity_work, fixity_done) < 0) {
		arm(fx, 1000);
		return;
	}
	fx->running = 1;
	fx->step_start = now;
}

static void
arm(struct fixity *fx, uint64_t delay_ms)
{
	uv_timer_start(&fx->timer, on_timer, delay_ms, 0);
}

int
fixity_start(struct daemon *d)
{
	struct fixity *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -ENOMEM;
	fx->d = d;
	uv_timer_init(d->loop, &fx->timer);
	fx->timer.data = fx;
	d->fixity = fx;
	arm(fx, 1000);
	return 0;
}

void
fixity_stop(struct daemon *d)
{
	struct fixity *fx = d->fixity;

	if (fx == NULL || fx->stopping)
		return;
	fx->stopping = 1;
	uv_timer_stop(&fx->timer);
	uv_close((uv_handle_t *)&fx->timer, NULL);
}

void
fixity_free(struct daemon *d)
{
	struct fixity *fx = d->fixity;

	if (fx == NULL)
		return;
	cs_fixity_free(fx->cur);
	json_decref(fx->due);
	json_decref(fx->summary);
	json_decref(fx->items);
	json_decref(fx->sum);
	free(fx->id);
	free(fx);
	d->fixity = NULL;
}

json_t *
fixity_status(struct daemon *d)
{
	struct fixity *fx = d->fixity;
	json_t *s = fx != NULL ? fx->summary : NULL, *j;

	j = json_pack("{s:b, s:I, s:I, s:I, s:O*, s:O*, s:I}", "enabled", d->cfg.fixity_enabled,
	    "rate", (json_int_t)d->cfg.fixity_rate, "period_seconds",
	    (json_int_t)d->cfg.fixity_period_s, "checked", (json_int_t)(fx ? fx->checked : 0),
	    "damaged", json_object_get(s, "damaged"), "last_pass", json_object_get(s, "last_pass"),
	    "overdue", (json_int_t)json_integer_value(json_object_get(s, "overdue")));
	if (j != NULL && json_object_get(j, "damaged") == NULL &&
	    json_object_set_new(j, "damaged", json_array()) < 0) {
		json_decref(j);
		return NULL;
	}
	if (j != NULL && json_object_get(j, "last_pass") == NULL &&
	    json_object_set_new(j, "last_pass", json_null()) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}
