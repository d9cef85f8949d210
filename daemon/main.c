/*
 * custosd: the daemon that secures files arriving in upload directories and
 * on docked recorders without anyone typing a command. This file starts
 * and stops it: arguments and configuration, the store, the libuv loop and
 * its timers, signals (SIGHUP reloads, SIGTERM stops), systemd's notify and
 * watchdog. The loop decides when things run; the parts are watch.c
 * (finding files), pipeline.c (securing them), checkpoint.c, control.c (the
 * socket), dock.c (recorder docks) and log.c. Every rule about evidence
 * lives in lib/; the daemon only schedules.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include "checkpoint.h"
#include "fixity.h"
#include "purge.h"
#include "media.h"
#include "config.h"
#include "control.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/init.h"
#include "custos/store.h"
#include "daemon.h"
#include "dock.h"
#include "log.h"
#include "orphans.h"
#include "pipeline.h"
#include "remote.h"
#include "watch.h"
#ifdef CS_FAILPOINTS
#include "custos/failpoint.h"
#endif

/* Every tick: settled files are queued and work starts; receipts; a waiting connection. */
static void
on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;

	settle_tick(d);
	dock_tick(d);
	control_tick(d);
}

static void
on_rescan(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (!d->stopping) {
		rescan_all(d);
		dock_rescan(d);
	}
}

static void
on_watchdog(uv_timer_t *t)
{
	struct daemon *d = t->data;

	sd_notifyf(0, "WATCHDOG=1\nSTATUS=%s: %zu waiting, %zu in progress, %llu secured",
	    d->failed ? "STOPPED (store failure)" : d->full ? "PAUSED (the store's disk is full)" :
	                                                  "running",
	    d->queued, d->in_flight,
	    (unsigned long long)d->secured);
}

static uv_work_t pool_start;

static void
pool_start_work(uv_work_t *req)
{
	(void)req;
}

static void
pool_start_done(uv_work_t *req, int status)
{
	(void)req;
	(void)status;
}

/*
 * libuv keeps one watcher slot per descriptor number and grows that array,
 * when a higher descriptor is first watched, with a realloc() after whose
 * failure it calls abort() (uv__io_start). custosd watches descriptors while
 * it runs (control connections, numbered above the files the work items
 * hold open): the array is made large enough for every descriptor below the
 * limit (at most 4096 slots, 32 KiB) at start, by watching one descriptor
 * near the top for a moment, so that no later one makes libuv grow it.
 */
static void
probe_cb(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)status;
	(void)events;
}

static int
presize_watchers(uv_loop_t *loop)
{
	static uv_poll_t probe;
	struct rlimit rl;
	int top = 4096, efd, fd, rc;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)top)
		top = (int)rl.rlim_cur;
	efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		return -1;
	fd = fcntl(efd, F_DUPFD_CLOEXEC, top > 64 ? top - 1 : 63);
	close(efd);
	if (fd < 0)
		return errno == EINVAL || errno == EMFILE ? 0 : -1; /* nothing free up there */
	rc = uv_poll_init(loop, &probe, fd);
	if (rc == 0) {
		rc = uv_poll_start(&probe, UV_READABLE, probe_cb);
		uv_close((uv_handle_t *)&probe, NULL);
	}
	close(fd);
	if (rc < 0)
		errno = -rc;
	return rc < 0 ? -1 : 0;
}

/* ---- inboxes, signals, start and stop ---- */

static int
inboxes_open(struct daemon *d, const struct cs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_inboxes; i++) {
		struct inbox *ib = &d->inboxes[i];
		ib->index = (int)i;
		ib->path = strdup(cfg->inboxes[i]);
		ib->dirfd = open(cfg->inboxes[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ib->path == NULL || ib->dirfd < 0) {
			logmsg(0, "cannot open upload directory %s: %s", cfg->inboxes[i],
			    strerror(ib->path == NULL ? ENOMEM : errno));
			free(ib->path);
			ib->path = NULL;
			if (ib->dirfd >= 0)
				close(ib->dirfd);
			return -1;
		}
		d->n_inboxes++;
		watch_dir(d, ib, "");
	}
	return 0;
}

static void
begin_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	sd_notify(0, "STOPPING=1");
	logmsg(2, "stopping: taking no new files; %zu in progress will finish", d->in_flight);
	uv_timer_stop(&d->tick);
	uv_timer_stop(&d->rescan);
	uv_poll_stop(&d->inotify_poll);
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->rescan, NULL);
	uv_close((uv_handle_t *)&d->checkpoint, NULL);
	uv_close((uv_handle_t *)&d->watchdog, NULL);
	uv_close((uv_handle_t *)&d->space, NULL);
	uv_close((uv_handle_t *)&d->orphans_timer, NULL);
	uv_close((uv_handle_t *)&d->inotify_poll, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	fixity_stop(d);
	purge_stop(d);
	media_stop(d);
	upload_stop(d);
	if (d->control_open)
		uv_close((uv_handle_t *)&d->control, NULL);
	/* Queued work items still run to completion; uv_run returns after them. */
}

static void
on_sigterm(uv_signal_t *s, int signum)
{
	(void)signum;
	begin_stop(s->data);
}

static void apply_cli(const struct daemon *d, struct cs_config *c);

static void
on_sighup(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	struct cs_config nc;
	char err[512];

	(void)signum;
	if (d->config_path == NULL) {
		logmsg(2, "SIGHUP: no configuration file to reload");
		return;
	}
	cs_config_init(&nc);
	if (cs_config_load(&nc, d->config_path, err, sizeof(err)) < 0 ||
	    (apply_cli(d, &nc), 0) ||
	    (nc.store == NULL && (nc.store = strdup(d->cfg.store)) == NULL) ||
	    cs_config_check(&nc, err, sizeof(err)) < 0) {
		logmsg(0, "reload refused, the running configuration stays: %s", err);
		cs_config_fini(&nc);
		return;
	}
	if (strcmp(nc.store, d->cfg.store) != 0)
		logmsg(1, "reload: a new store root takes effect only after a restart");
	/* Settings that apply at once; a changed inbox list needs a restart. */
	d->cfg.settle_ms = nc.settle_ms;
	d->cfg.concurrency = nc.concurrency;
	d->cfg.max_size = nc.max_size;
	d->cfg.reserve = nc.reserve;
	d->cfg.orphans_max_age_s = nc.orphans_max_age_s;
	d->cfg.orphans_max_bytes = nc.orphans_max_bytes;
	d->cfg.release_delete = nc.release_delete;
	d->cfg.release_remote = nc.release_remote;
	d->cfg.remote_inline = nc.remote_inline;
	free(d->cfg.remote_config);
	d->cfg.remote_config = nc.remote_config;
	nc.remote_config = NULL;
	d->cfg.log_level = nc.log_level;
	log_set_level(nc.log_level);
	cs_config_swap_access(&d->cfg, &nc); /* roles and access rules: at once */
	if (nc.rescan_s != d->cfg.rescan_s) {
		d->cfg.rescan_s = nc.rescan_s;
		uv_timer_set_repeat(&d->rescan, (uint64_t)nc.rescan_s * 1000);
	}
	logmsg(2, "configuration reloaded from %s", d->config_path);
	cs_config_fini(&nc);
	pipeline_reloaded(d);
	upload_reload(d); /* the remote's configuration and credentials read again */
	orphans_prune(d); /* the limits as configured now */
}

/* Command-line options override the configuration file, at start and on reload. */
static void
apply_cli(const struct daemon *d, struct cs_config *c)
{
	if (d->cli_store != NULL) {
		free(c->store);
		c->store = strdup(d->cli_store);
	}
	if (d->cli_docks != NULL) {
		free(c->docks);
		c->docks = strdup(d->cli_docks);
	}
	if (d->cli_station != NULL) {
		free(c->station);
		c->station = strdup(d->cli_station);
	}
	if (d->n_cli_inboxes > 0) {
		for (size_t i = 0; i < c->n_inboxes; i++)
			free(c->inboxes[i]);
		c->n_inboxes = 0;
		for (size_t i = 0; i < d->n_cli_inboxes; i++)
			c->inboxes[c->n_inboxes++] = strdup(d->cli_inboxes[i]);
	}
}

#ifdef CS_FAILPOINTS
/* Test build: libuv's allocations, counted and failed by CUSTOS_OOM_LIB=uv. */
static void *
uv_test_malloc(size_t n)
{
	return cs__failalloc_fail() ? NULL : malloc(n);
}

static void *
uv_test_realloc(void *p, size_t n)
{
	return cs__failalloc_fail() ? NULL : realloc(p, n);
}

static void *
uv_test_calloc(size_t n, size_t size)
{
	return cs__failalloc_fail() ? NULL : calloc(n, size);
}

/* Before any use of OpenSSL or libuv: their allocators can only be replaced first. */
static int
test_hooks(void)
{
	if (cs__failalloc_init() < 0)
		return -1;
	if (cs__failalloc_wanted("uv") &&
	    uv_replace_allocator(uv_test_malloc, uv_test_realloc, uv_test_calloc, free) < 0)
		return -1;
	return 0;
}
#endif

/*
 * Releases what main() made, however far it got (the loop itself only once
 * every handle is closed); returns `status`, the exit status.
 */
static int
daemon_fini(struct daemon *d, int status)
{
	/* Candidates first: a recorder's name its tree, which dock_stop() frees. */
	for (size_t h = 0; d->table != NULL && h < d->table_size; h++)
		while (d->table[h] != NULL)
			cand_remove(d, d->table[h]);
	free(d->table);
	dock_stop(d);
	fixity_free(d);
	purge_free(d);
	media_free(d);
	upload_free(d);
	cs_store_close(d->st);
	if (d->loop != NULL)
		(void)uv_loop_close(d->loop); /* UV_EBUSY after a failed start */
	for (size_t i = 0; i < d->n_wds; i++)
		free(d->wds[i].rel);
	free(d->wds);
	for (size_t i = 0; i < d->n_inboxes; i++) {
		close(d->inboxes[i].dirfd);
		free(d->inboxes[i].path);
	}
	if (d->ifd >= 0)
		close(d->ifd);
	cs_config_fini(&d->cfg);
	return status;
}

static const char usage[] =
    "usage: custosd [--config FILE] [--store DIR] [--inbox DIR]... [--docks DIR]\n"
    "               [--station NAME] [--foreground] [--check-config]\n"
    "\n"
    "Watches upload directories and secures every complete file that arrives:\n"
    "hashes and stores it, records it in the signed ledger, re-reads the source to\n"
    "prove the copy, then releases it. Runs in the foreground (under systemd,\n"
    "Type=notify). SIGHUP reloads the configuration; SIGTERM finishes the files in\n"
    "progress and exits.\n"
    "\n"
    "  --config FILE   INI configuration (see custosd(8))\n"
    "  --store DIR     store root (created on first start)\n"
    "  --inbox DIR     an upload directory to watch; repeat for several\n"
    "  --docks DIR     recorder dock root\n"
    "  --station NAME  station id when the store is created\n"
    "  --foreground    accepted for clarity; custosd never forks\n"
    "  --check-config  validate the configuration, print the first error, exit\n";

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
		{"store", required_argument, NULL, 's'}, {"inbox", required_argument, NULL, 'i'},
		{"docks", required_argument, NULL, 'd'}, {"station", required_argument, NULL, 'S'},
		{"foreground", no_argument, NULL, 'f'}, {"check-config", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct daemon d;
	int check_only = 0, c, rc;
	char err[512];
	struct stat sb;
	uint64_t wd_usec = 0;

#ifdef CS_FAILPOINTS
	if (test_hooks() < 0)
		return 2;
#endif
	memset(&d, 0, sizeof(d));
	d.ifd = d.dock_rootfd = d.dock_wd = -1;
	cs_config_init(&d.cfg);
	log_to_journal(getenv("JOURNAL_STREAM") != NULL);
	d.stop = begin_stop;
	while ((c = getopt_long(argc, argv, "c:s:i:d:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 's': d.cli_store = optarg; break;
		case 'i':
			if (d.n_cli_inboxes == CFG_MAX_INBOXES) {
				fprintf(stderr, "custosd: too many --inbox options\n");
				return 2;
			}
			d.cli_inboxes[d.n_cli_inboxes++] = optarg;
			break;
		case 'd': d.cli_docks = optarg; break;
		case 'S': d.cli_station = optarg; break;
		case 'f': break;
		case 'k': check_only = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (d.config_path != NULL &&
	    (rc = cs_config_load(&d.cfg, d.config_path, err, sizeof(err))) < 0) {
		fprintf(stderr, "custosd: %s\n", err);
		return daemon_fini(&d, rc == -ENOMEM ? 3 : 2);
	}
	apply_cli(&d, &d.cfg);
	if (cs_config_check(&d.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "custosd: %s\n", err);
		return daemon_fini(&d, 2);
	}
	if (check_only) {
		printf("configuration is valid\n");
		cs_config_fini(&d.cfg);
		return 0;
	}
	log_set_level(d.cfg.log_level);
	if (cs_lib_init() < 0) {
		logmsg(0, "cannot start: out of memory initialising OpenSSL");
		return daemon_fini(&d, 3);
	}

	/* First start: create the store on its default. */
	{
		char marker[PATH_MAX];
		snprintf(marker, sizeof(marker), "%s/custos.json", d.cfg.store);
		if (stat(marker, &sb) < 0) {
			rc = cs_store_init(d.cfg.store,
			    d.cfg.station != NULL ? d.cfg.station : "station");
			if (rc < 0) {
				logmsg(0, "cannot create the store %s: %s", d.cfg.store,
				    cs_strerror(rc));
				return daemon_fini(&d, 3);
			}
			logmsg(2, "created store %s", d.cfg.store);
		}
	}
	/* orphans/ within the configured limits, not lib's defaults (orphans_start) */
	rc = cs_store_open(&d.st, d.cfg.store, CS_OPEN_WRITE | CS_OPEN_KEEP_ORPHANS, lib_log,
	    NULL);
	if (rc < 0) {
		logmsg(0, "cannot open the store %s: %s%s", d.cfg.store, cs_strerror(rc),
		    rc == CS_EBUSY ? " (another custosd or custos command holds it)" : "");
		return daemon_fini(&d, 3);
	}
	/* the daemon's own events (what it secures from inbox and docks) name it */
	if (cs_store_set_actor(d.st, "daemon", "custosd", (long)getuid()) < 0) {
		logmsg(0, "out of memory");
		return daemon_fini(&d, 3);
	}
	d.checkpointed_size = cs_store_size(d.st);

	/*
	 * Room in libuv's pool for `concurrency` files being copied and twice
	 * as many being re-read, two batch commits, a release, checkpoints,
	 * receipts, fixity and the media stage.
	 */
	if (getenv("UV_THREADPOOL_SIZE") == NULL) {
		char n[16];
		snprintf(n, sizeof(n), "%u", 3 * d.cfg.concurrency + 7);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	/*
	 * glibc gives each pool thread an arena of its own, and each keeps the
	 * copy and re-read buffers of its last file: with twice `concurrency`
	 * threads, that alone was 25 MiB after a dock. Only `concurrency` files
	 * are copied at once: as many arenas (and the loop's) suffice.
	 */
	if (getenv("MALLOC_ARENA_MAX") == NULL)
		(void)mallopt(M_ARENA_MAX, (int)d.cfg.concurrency + 1);
	d.loop = uv_default_loop();
	if (uv_mutex_init(&d.signing) < 0) {
		logmsg(0, "cannot start: out of memory");
		return daemon_fini(&d, 3);
	}
	d.table_size = 16381;
	d.table = calloc(d.table_size, sizeof(*d.table));
	d.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.loop == NULL || d.table == NULL || d.ifd < 0 || presize_watchers(d.loop) < 0) {
		logmsg(0, "cannot start: %s", strerror(d.loop == NULL ? ENOMEM : errno));
		return daemon_fini(&d, 3);
	}
	uv_poll_init(d.loop, &d.inotify_poll, d.ifd);
	d.inotify_poll.data = &d;
	uv_poll_start(&d.inotify_poll, UV_READABLE, on_inotify);
	if (inboxes_open(&d, &d.cfg) < 0 || (d.cfg.docks != NULL && dock_start(&d) < 0))
		return daemon_fini(&d, 3);

	uv_timer_init(d.loop, &d.tick);
	uv_timer_init(d.loop, &d.rescan);
	uv_timer_init(d.loop, &d.checkpoint);
	uv_timer_init(d.loop, &d.watchdog);
	uv_timer_init(d.loop, &d.space);
	d.tick.data = d.rescan.data = d.checkpoint.data = d.watchdog.data = d.space.data = &d;
	uv_timer_start(&d.tick, on_tick, 200, d.cfg.settle_ms < 1000 ? 200 : 1000);
	uv_timer_start(&d.rescan, on_rescan, (uint64_t)d.cfg.rescan_s * 1000,
	    (uint64_t)d.cfg.rescan_s * 1000);
	uv_timer_start(&d.checkpoint, on_checkpoint, 2000, 2000);
	if (orphans_start(&d) < 0)
		return daemon_fini(&d, 3);
	if (fixity_start(&d) < 0 || media_start(&d) < 0 || upload_start(&d) < 0 ||
	    purge_start(&d) < 0) {
		logmsg(0, "cannot start: out of memory");
		return daemon_fini(&d, 3);
	}
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		uv_timer_start(&d.watchdog, on_watchdog, 0, wd_usec / 2000);
	else
		uv_timer_start(&d.watchdog, on_watchdog, 0, 10000);

	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, on_sigterm, SIGTERM);
	uv_signal_start(&d.sigint, on_sigterm, SIGINT);
	uv_signal_start(&d.sighup, on_sighup, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	/* Without its socket custosd runs on (custos status fails), but not for lack of memory. */
	if (control_start(&d) == UV_ENOMEM)
		return daemon_fini(&d, 3);

	/*
	 * libuv starts its thread pool at the first work item and calls abort()
	 * if it cannot create a thread (out of memory, say): start it now, before
	 * READY=1, rather than in the middle of taking files.
	 */
	if (uv_queue_work(d.loop, &pool_start, pool_start_work, pool_start_done) < 0)
		return daemon_fini(&d, 3);
	rescan_all(&d); /* files that arrived while custosd was down */
	logmsg(2, "watching %zu upload director%s%s%s; store %s (station %s)", d.n_inboxes,
	    d.n_inboxes == 1 ? "y" : "ies", d.cfg.docks ? " and the dock root " : "",
	    d.cfg.docks ? d.cfg.docks : "", d.cfg.store, cs_store_station(d.st));
	sd_notifyf(0, "READY=1\nSTATUS=watching %zu upload directories", d.n_inboxes);

	uv_run(d.loop, UV_RUN_DEFAULT);

	/* Every work item has finished: sign what was secured, then close. */
	rc = cs_store_checkpoint(d.st, NULL);
	if (rc < 0 && !d.failed && !(rc == CS_EFAILED && is_oom(cs_store_failure(d.st))))
		logmsg(0, "final checkpoint failed: %s", cs_strerror(rc));
	if (cs_store_failed(d.st, NULL) && !d.oom_stop)
		d.failed = 1; /* stopped while paused on a full disk: recovery at the next start */
	logmsg(2, "stopped: %llu file(s) secured in this run", (unsigned long long)d.secured);
	return daemon_fini(&d, d.failed ? 1 : d.oom_stop ? 4 : 0);
}
