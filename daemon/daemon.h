/*
 * custosd's shared state: the daemon, its watched trees and their candidate
 * files, for every file of daemon/ (main.c, log.c, watch.c, pipeline.c,
 * checkpoint.c, control.c, dock.c, orphans.c). The functions are declared per
 * concern in log.h, watch.h, pipeline.h, checkpoint.h, control.h, dock.h and
 * orphans.h.
 * Daemon-internal: nothing here is part of lib/.
 */
#ifndef CUSTOSD_DAEMON_H
#define CUSTOSD_DAEMON_H

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "custos/error.h"
#include "custos/store.h"

struct dock;
struct work;
struct dbatch;
struct upload;

/* A candidate: a file seen in a watched tree, waiting to settle. */

struct cand {
	struct cand *next;      /* hash chain */
	struct cand *qnext;     /* ready queue */
	struct inbox *ib;
	char *rel;              /* path relative to the inbox */
	off_t size;
	struct timespec mtime;
	uint64_t changed_at;    /* loop time (ms) of the last observed change */
	int queued, running, done;
};

/*
 * What a tree that is not an upload directory knows about its files: a
 * docked recorder's folder (dock.c registers one per dock). The pipeline
 * and the watches call the recorder only through this, so the dependency
 * goes one way: dock.c uses them, they never call into dock.c.
 */
struct tree_source {
	/* The session whose jobs the tree's files are: "dock/<session>/<path>". */
	const char *(*session)(const void *ctx);
	/* The opening of the folder that reads its files now (a job's "attach"). */
	const char *(*attach)(const void *ctx);
	/* 1 for a top-level name that is custos's own, not evidence. */
	int (*own_file)(const char *rel);
	/*
	 * Fills *m for file `rel` (pattern, device identity, clock); work
	 * thread. 0, or -ENOMEM when a field could not be made (none is left out).
	 */
	int (*meta)(const void *ctx, const char *rel, struct cs_meta *m, const char **officers,
	    char *bufs, size_t bufn, json_t **extra);
};

/* A watched tree: an upload directory, or a docked recorder's folder. */
struct inbox {
	int index;
	char *path;
	int dirfd;
	const struct tree_source *src; /* NULL for an upload directory */
	const void *src_ctx;           /* the source's own (a struct dock) */
	size_t pending;    /* candidates of this tree not yet secured or refused */
	uint64_t changed_at; /* loop time of the last change seen in this tree */
	int deep_logged;     /* folders below TREE_MAX_DEPTH were reported */
};

/* Folders deeper than this below a watched tree's top are not entered. */
#define TREE_MAX_DEPTH 32

struct daemon {
	uv_loop_t *loop;
	struct cs_config cfg;
	const char *config_path;
	/* command-line overrides, applied at start and again on every reload */
	const char *cli_store, *cli_docks, *cli_station;
	char *cli_inboxes[CFG_MAX_INBOXES];
	size_t n_cli_inboxes;
	struct cs_store *st;
	struct inbox inboxes[CFG_MAX_INBOXES];
	size_t n_inboxes;

	int ifd; /* inotify */
	uv_poll_t inotify_poll;
	struct wdmap {
		int wd;
		struct inbox *ib;
		char *rel; /* directory relative to the inbox ("" for the top) */
	} *wds;
	size_t n_wds, cap_wds;

	struct cand **table;
	size_t table_size, n_cands;
	struct cand *qhead, *qtail;
	size_t queued, in_flight; /* in_flight: files in any stage of securing */
	size_t copying;           /* of those, files being copied (pipeline.c) */
	/* files re-read and waiting for their release; the batch being released */
	struct work *rel_head, *rel_tail, *rel_batch;
	uv_work_t release_req;
	/*
	 * Group commit (pipeline.c): the batch files are copied into, the
	 * closed ones waiting for their commit (in order), commits running;
	 * files committed and waiting for their re-read, and those re-read now.
	 */
	struct dbatch *batch_open, *batch_head, *batch_tail;
	size_t committing;
	struct work *rr_head, *rr_tail;
	size_t rereading;

	uv_timer_t tick, rescan, checkpoint, watchdog;
	uv_signal_t sigterm, sigint, sighup;
	uv_pipe_t control;
	int control_open;

	/* recorder docks (dock.c) */
	int dock_rootfd;
	int dock_wd;
	struct dock *docks;

	struct upload *upload; /* the upload stage (remote.c) */
	struct fixity *fixity; /* scheduled fixity (fixity.c) */
	struct media *media;   /* the media stage (media.c) */
	struct purge *purge;   /* purge plans' timer (purge.c) */

	uint64_t secured, released, refused, duplicates;
	uint64_t checkpointed_size;
	int checkpoint_running;
	/*
	 * Socket exports planned on the thread pool (access.c). An export's
	 * proofs are against the checkpoint it signs, so no other is signed while
	 * one is planned: the timer and dock receipts wait for exports_planning
	 * to be 0, and `signing` is held by a checkpoint's signing (checkpoint.c),
	 * a receipt's (dock.c) and an export's whole plan.
	 */
	size_t exports_planning;
	uv_mutex_t signing;
	int stopping;
	int failed; /* the store failed: take no more work until restarted */
	/*
	 * Paused for disk space: no work starts until the store's disk has
	 * full_need bytes free; full_reopen: the store failed on the full disk
	 * and recovers (cs_store_recover) before work resumes.
	 */
	int full, full_reopen;
	uint64_t full_need;
	uint64_t full_retry_at, full_backoff_ms; /* attempts to resume back off */
	uint64_t full_resumed_at;
	int full_logged_rc;
	uint64_t inflight_bytes; /* sizes of the files being secured */
	size_t finalizing;       /* dock receipts being written */
	uv_timer_t space;

	/* orphans/ within its limits (orphans.c); the last result, for the status */
	uv_timer_t orphans_timer;
	int orphans_running, orphans_again, orphans_known;
	struct cs_orphans orphans;

	/* out of memory (log.c, out_of_memory()) */
	unsigned oom_streak; /* failures since the last progress */
	uint64_t oom_last;   /* loop time of the last one */
	int oom_stop;        /* stopping for lack of memory: exit status 4 */
	int accept_pending;  /* a control connection waits for memory to be accepted */

	/*
	 * Hooks the files above register, so that the files below (log.c,
	 * watch.c, pipeline.c) never call up into them: stop (main.c's
	 * begin_stop) and trees_changed (dock.c's dock_rescan, when there is a
	 * dock root: a watch vanished, or the dock root changed).
	 */
	void (*stop)(struct daemon *d);
	void (*trees_changed)(struct daemon *d);
	/*
	 * A recorder's tree has no file left to secure (dock.c's dock_tick, so
	 * that its receipt need not wait for the next tick).
	 */
	void (*tree_done)(struct daemon *d);
	/* A file of item `id` is held for its remote copy (remote.c's on_held). */
	void (*remote_held)(struct daemon *d, const char *id);
};

#endif
