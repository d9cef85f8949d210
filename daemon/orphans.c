/*
 * custosd's bound on orphans/ (blobs of interrupted ingests, moved there by
 * recovery): lib/ removes those beyond the configured limits, oldest first,
 * never bytes the catalog holds (cs_store_orphans_prune). This file only
 * decides when: at start, after an in-place recovery, on reload and every
 * day; the work runs on the thread pool, one run at a time, and its result
 * is kept for the status (no scan of orphans/ on the loop thread).
 */
#include <stdlib.h>
#include <uv.h>

#include "custos/orphans.h"
#include "daemon.h"
#include "log.h"
#include "orphans.h"

#define ORPHANS_EVERY_MS ((uint64_t)86400 * 1000)

struct owork {
	uv_work_t req;
	struct daemon *d;
	struct cs_orphan_limits lim;
	struct cs_orphans res;
	int rc;
};

static void
report(struct daemon *d, int rc, const struct cs_orphans *o)
{
	if (rc < 0) {
		logmsg(1, "orphans/ could not be brought within its limits (%s); trying again "
		          "tomorrow or at the next reload",
		    cs_strerror(rc));
		return;
	}
	d->orphans = *o;
	d->orphans_known = 1;
	if (o->removed > 0)
		logmsg(2, "orphans/: removed %llu blob(s), %llu bytes, beyond its limits; %llu "
		          "kept",
		    (unsigned long long)o->removed, (unsigned long long)o->removed_bytes,
		    (unsigned long long)o->count);
}

static void
prune_work(uv_work_t *req)
{
	struct owork *w = req->data;

	w->rc = cs_store_orphans_prune(w->d->st, &w->lim, &w->res);
}

static void
prune_done(uv_work_t *req, int status)
{
	struct owork *w = req->data;
	struct daemon *d = w->d;

	(void)status;
	d->orphans_running = 0;
	report(d, w->rc, &w->res);
	free(w);
	if (d->orphans_again) {
		d->orphans_again = 0;
		orphans_prune(d);
	}
}

void
orphans_prune(struct daemon *d)
{
	struct owork *w;

	if (d->stopping || d->failed || d->full_reopen)
		return; /* a recovery (or the next start) prunes */
	if (d->orphans_running) {
		d->orphans_again = 1; /* new limits, say: once more after this run */
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		out_of_memory(d, "bringing orphans/ within its limits");
		return;
	}
	w->d = d;
	w->req.data = w;
	w->lim.max_age_s = d->cfg.orphans_max_age_s;
	w->lim.max_bytes = d->cfg.orphans_max_bytes;
	if (uv_queue_work(d->loop, &w->req, prune_work, prune_done) < 0) {
		free(w);
		return;
	}
	d->orphans_running = 1;
}

static void
on_orphans(uv_timer_t *t)
{
	orphans_prune(t->data);
}

int
orphans_start(struct daemon *d)
{
	struct cs_orphan_limits lim = {d->cfg.orphans_max_age_s, d->cfg.orphans_max_bytes};
	struct cs_orphans o;

	report(d, cs_store_orphans_prune(d->st, &lim, &o), &o);
	uv_timer_init(d->loop, &d->orphans_timer);
	d->orphans_timer.data = d;
	return uv_timer_start(&d->orphans_timer, on_orphans, ORPHANS_EVERY_MS, ORPHANS_EVERY_MS);
}
