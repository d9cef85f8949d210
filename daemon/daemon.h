/*
 * custosd's shared state, for custosd.c (the loop, upload directories, the
 * pipeline, the control socket) and dock.c (recorder docks and their
 * sessions). Daemon-internal: nothing here is part of lib/.
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

/* A watched tree: an upload directory, or a docked recorder's folder. */
struct inbox {
	int index;
	char *path;
	int dirfd;
	struct dock *dock; /* NULL for an upload directory */
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
	size_t queued, in_flight;

	uv_timer_t tick, rescan, checkpoint, watchdog;
	uv_signal_t sigterm, sigint, sighup;
	uv_pipe_t control;
	int control_open;

	/* recorder docks (dock.c) */
	int dock_rootfd;
	int dock_wd;
	struct dock *docks;

	uint64_t secured, released, refused, duplicates;
	uint64_t checkpointed_size;
	int checkpoint_running;
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

	/* out of memory (custosd.c, out_of_memory()) */
	unsigned oom_streak; /* failures since the last progress */
	uint64_t oom_last;   /* loop time of the last one */
	int oom_stop;        /* stopping for lack of memory: exit status 4 */
	int accept_pending;  /* a control connection waits for memory to be accepted */
};


__attribute__((format(printf, 2, 3))) void logmsg(int level, const char *fmt, ...);
/*
 * An allocation failed while doing what `fmt` says: logs it; the work is
 * tried again later by its caller's usual retry. A lack of memory that
 * lasts (several failures with no progress between) stops custosd. Loop
 * thread only.
 */
__attribute__((format(printf, 2, 3))) void out_of_memory(struct daemon *d, const char *fmt, ...);
/* A failed allocation (or OpenSSL failing, for want of one): -ENOMEM or CS_ECRYPTO. */
static inline int
is_oom(int rc)
{
	return rc == -ENOMEM || rc == CS_ECRYPTO;
}
/*
 * After a store operation came back on the loop thread: if the store
 * stopped for lack of memory (cs_store_failure), custosd stops so that the
 * next start indexes what the catalog missed. 1 if it did.
 */
int store_oom_check(struct daemon *d);

/* The job key of file `rel` of a tree (malloc'd; NULL: out of memory). */
char *job_key(const struct inbox *ib, const char *rel);
void observe(struct daemon *d, struct inbox *ib, const char *rel);
void scan_dir(struct daemon *d, struct inbox *ib, const char *rel, int depth);
void watch_dir(struct daemon *d, struct inbox *ib, const char *rel);
void unwatch_tree(struct daemon *d, struct inbox *ib);
void drop_candidates(struct daemon *d, struct inbox *ib);
void pump(struct daemon *d);
/* 1 if work may start: not failed, not paused for space, not stopping. */
int taking_work(const struct daemon *d);
/*
 * A write to the store failed with rc while `what` was being done (`size`
 * bytes were to be written): pauses for space if the disk is full, else
 * stops taking work for good (the fsync rule: never retried).
 */
void store_failed(struct daemon *d, int rc, const char *what, uint64_t size);

/* dock.c */
int dock_start(struct daemon *d);
void dock_rescan(struct daemon *d);
void dock_tick(struct daemon *d);
void dock_stop(struct daemon *d);
/*
 * Fills *m for file `rel` of a dock (pattern, device identity, clock); work
 * thread. 0, or -ENOMEM when a field could not be made (none is left out).
 */
int dock_meta(const struct dock *k, const char *rel, struct cs_meta *m, const char **officers,
    char *bufs, size_t bufn, json_t **extra);
const char *dock_device(const struct dock *k);
/* The recorder's current session id, and the token of this opening of its folder. */
const char *dock_session(const struct dock *k);
const char *dock_attach(const struct dock *k);
json_t *dock_status(struct daemon *d);
/* Top-level names in a recorder folder that are custos's own, not evidence. */
int dock_own_file(const char *rel);

/* The fields a recorder file-name pattern takes from a name. */
struct name_fields {
	char device[64], officer[64], time[16];
	char seq[256]; /* as written: any length a name can hold */
};
/*
 * Matches file name `name` against `pat` (one that passed cs_pattern_check);
 * fields are copied into f. 1 on a match.
 */
int dock_match_pattern(const char *pat, const char *name, struct name_fields *f);
/*
 * For tests/fuzz: a dock of folder `dirfd` outside any daemon, its identity
 * read from DEVICE.json as a docking reads it (patterns: as in the
 * configuration, none for the default). Free it with free(). 0, or -1 with
 * the reason in why.
 */
int dock_identity_load(struct dock **out, int dirfd, char *const *patterns, size_t n_patterns,
    int offset_min, char *why, size_t whyn);

#endif
