/*
 * Checkpoints from custosd: every two seconds, if the ledger grew, a work
 * item on the thread pool signs one (cs_store_checkpoint); one at a time,
 * and none while a socket export is planned (daemon.h, exports_planning).
 */
#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#include "checkpoint.h"
#include "custos/store.h"
#include "log.h"
#include "pipeline.h"

struct cpwork {
	uv_work_t req;
	struct daemon *d;
	int rc;
};

static void
checkpoint_work(uv_work_t *req)
{
	struct cpwork *w = req->data;

	uv_mutex_lock(&w->d->signing);
	w->rc = cs_store_checkpoint(w->d->st, NULL);
	uv_mutex_unlock(&w->d->signing);
}

static void
checkpoint_done(uv_work_t *req, int status)
{
	static int no_room; /* the last checkpoint found no room on the store's disk */
	struct cpwork *w = req->data;

	(void)status;
	w->d->checkpoint_running = 0;
	if (w->rc == 0) {
		w->d->oom_streak = 0;
		if (no_room)
			logmsg(2, "a checkpoint of the ledger's %llu events is signed again",
			    (unsigned long long)w->d->checkpointed_size);
		no_room = 0;
	} else if ((w->rc == -ENOSPC || w->rc == -EDQUOT) && !cs_store_failed(w->d->st, NULL)) {
		/* Nothing written, the store sound: tried again at every timer. */
		w->d->checkpointed_size = 0;
		if (!no_room)
			logmsg(1, "signing a checkpoint of the ledger failed: %s on %s; the ledger "
			          "is whole and custosd signs it once there is room (it tries "
			          "every 2 s). Free space there",
			    cs_strerror(w->rc), w->d->cfg.store);
		no_room = 1;
	} else if (!store_oom_check(w->d)) {
		if (is_oom(w->rc)) {
			w->d->checkpointed_size = 0; /* signed at the next timer */
			out_of_memory(w->d, "signing a checkpoint");
		} else if (cs_store_failed(w->d->st, NULL)) {
			store_failed(w->d, w->rc, "signing a checkpoint", 0);
		} else {
			logmsg(0, "signing a checkpoint failed: %s", cs_strerror(w->rc));
		}
	}
	free(w);
}

void
on_checkpoint(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t size = cs_store_size(d->st);
	struct cpwork *w;

	/*
	 * Paused for a full disk, events secured before the pause are still
	 * signed (a checkpoint is a small file), unless the store failed and
	 * waits to recover.
	 */
	if (d->checkpoint_running || size == d->checkpointed_size || d->failed ||
	    (d->full && d->full_reopen) || d->exports_planning > 0)
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		out_of_memory(d, "signing a checkpoint");
		return;
	}
	w->d = d;
	w->req.data = w;
	d->checkpoint_running = 1;
	d->checkpointed_size = size;
	if (uv_queue_work(d->loop, &w->req, checkpoint_work, checkpoint_done) < 0) {
		d->checkpoint_running = 0;
		free(w);
	}
}
