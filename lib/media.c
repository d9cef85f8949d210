/*
 * Media records (custos/media.h): running the sandboxed worker custos-probe
 * on one blob under resource limits and a wall-clock kill, turning what it
 * says (or how it died) into the record, and writing the "media" event;
 * running it again for each derivative the policy asks for, into a temp
 * file that is then stored as a content-addressed blob under derivatives/
 * and recorded as a "derivative" event; and the catalog's projection of
 * those events (the record in the item, the media_todo index of items whose
 * media work is not done), which cs__catalog_apply calls for every ingest,
 * media and derivative event, first written or replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "catalog.h"
#include "custos/error.h"
#include "custos/media.h"
#include "store_internal.h"
#include "util.h"

#define OUT_MAX (1u << 20) /* a worker's answer longer than this is not believed */
#define WALL_MS_DEFAULT 120000
#define CPU_S_DEFAULT 60
#define MEM_DEFAULT ((uint64_t)1 << 30)
#define DERIVE_TIME_FACTOR 10 /* a derivative may take ten times the probe's limits */

/* The worker's exit statuses besides 0 (tools/custos-probe.c). */
enum { PROBE_ESANDBOX = 3, PROBE_EMAGIC = 4, PROBE_ENOMEM = 5, PROBE_ENOSPC = 6 };

#if defined(__SANITIZE_ADDRESS__)
#define NO_AS_LIMIT 1 /* the sanitizers reserve terabytes of address space */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_AS_LIMIT 1
#endif
#endif

/* ---- the projection ---- */

/* A derivative of `kind` in the record's list (made or failed), or NULL. */
static json_t *
derivative_of(json_t *rec, const char *kind, int ok_only)
{
	json_t *d, *found = NULL;
	size_t i;

	json_array_foreach(json_object_get(rec, "derivatives"), i, d) {
		const char *k = json_string_value(json_object_get(d, "kind"));
		const char *st = json_string_value(json_object_get(d, "status"));
		if (k != NULL && strcmp(k, kind) == 0 &&
		    (!ok_only || (st != NULL && strcmp(st, "ok") == 0)))
			found = d; /* the newest */
	}
	return found;
}

/* Audio and video that could be read get a fingerprint. */
static int
needs_fingerprint(json_t *m)
{
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *status = json_string_value(json_object_get(m, "status"));

	return status != NULL && strcmp(status, "ok") == 0 && kind != NULL &&
	    (strcmp(kind, "video") == 0 || strcmp(kind, "audio") == 0);
}

/*
 * The item's media work is done: a record, each derivative it planned made
 * or failed, and its fingerprint made or failed.
 */
static int
media_done(json_t *rec)
{
	json_t *m = json_object_get(rec, "media"), *k;
	size_t i;

	if (m == NULL)
		return 0;
	if (needs_fingerprint(m) && json_object_get(rec, "fingerprint") == NULL)
		return 0;
	json_array_foreach(json_object_get(json_object_get(m, "normalisation"), "derivatives"), i,
	    k) {
		if (json_is_string(k) && derivative_of(rec, json_string_value(k), 0) == NULL)
			return 0;
	}
	return 1;
}

int
cs__media_index(struct cs__catalog *c, MDB_txn *txn, const char *id)
{
	MDB_val k = {strlen(id), (void *)id}, d = {0, ""};

	return k.mv_size > 0 && k.mv_size <= 480 ?
	    mdb_put(txn, c->dbi[CS_DBI_MEDIA_TODO], &k, &d, 0) : 0;
}

int
cs__media_settle(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	MDB_val k = {strlen(id), (void *)id};
	int rc;

	if (k.mv_size == 0 || k.mv_size > 480 || !media_done(rec))
		return 0;
	rc = mdb_del(txn, c->dbi[CS_DBI_MEDIA_TODO], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
cs__media_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why)
{
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *rsha = json_string_value(json_object_get(rec, "sha256"));
	json_t *m = json_object_get(ev, "media"), *copy;
	const char *status = json_string_value(json_object_get(m, "status"));

	if (status == NULL ||
	    (strcmp(status, "ok") != 0 && strcmp(status, "unreadable") != 0)) {
		*why = "media event has no valid status";
		return -1;
	}
	if (sha == NULL || rsha == NULL || strcmp(sha, rsha) != 0) {
		*why = "media event's sha256 is not the item's";
		return -1;
	}
	copy = json_deep_copy(m);
	if (copy == NULL ||
	    json_object_set_new(copy, "seq", json_integer((json_int_t)seq)) < 0 ||
	    json_object_set(copy, "time", json_object_get(ev, "time")) < 0 ||
	    json_object_set_new(rec, "media", copy) < 0)
		return ENOMEM;
	return cs__media_settle(c, txn, id, rec);
}

int
cs__media_project_derivative(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why)
{
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *rsha = json_string_value(json_object_get(rec, "sha256"));
	json_t *dv = json_object_get(ev, "derivative"), *list, *copy;
	const char *kind = json_string_value(json_object_get(dv, "kind"));
	const char *status = json_string_value(json_object_get(dv, "status"));
	const char *dsha = json_string_value(json_object_get(dv, "sha256"));

	if (kind == NULL || status == NULL ||
	    (strcmp(status, "ok") != 0 && strcmp(status, "failed") != 0) ||
	    (strcmp(status, "ok") == 0 && (dsha == NULL || strlen(dsha) != 64))) {
		*why = "derivative event has no valid kind, status or digest";
		return -1;
	}
	if (sha == NULL || rsha == NULL || strcmp(sha, rsha) != 0) {
		*why = "derivative event's sha256 is not the item's";
		return -1;
	}
	list = json_object_get(rec, "derivatives");
	if (list == NULL) {
		list = json_array();
		if (list == NULL || json_object_set_new(rec, "derivatives", list) < 0)
			return ENOMEM;
	}
	copy = json_deep_copy(dv);
	if (copy == NULL ||
	    json_object_set_new(copy, "seq", json_integer((json_int_t)seq)) < 0 ||
	    json_object_set(copy, "time", json_object_get(ev, "time")) < 0 ||
	    json_array_append_new(list, copy) < 0)
		return ENOMEM;
	return cs__media_settle(c, txn, id, rec);
}

/* ---- the worker ---- */

static int
above_stdio(int fd)
{
	int n;

	if (fd >= 3)
		return fd;
	n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return n < 0 ? -errno : n;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void
child(int blob, int out, int copy, int null, const char *probe, char *const *argv,
    const struct cs_media_limits *lim, uint64_t fsize, pid_t parent)
{
	struct rlimit r;

	/*
	 * A worker outlives no custosd killed or crashed (the forking thread is a
	 * pool thread, which lives as long as the process).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(125);

	if (dup2(blob, 0) < 0 || dup2(out, 1) < 0 || dup2(null, 2) < 0 ||
	    (copy >= 0 && dup2(copy, 3) < 0))
		_exit(125);
	for (int fd = copy >= 0 ? 4 : 3; fd < 1024; fd++)
		(void)close(fd);
	/* Limits that cannot be set: the worker does not run (fail closed). */
	r.rlim_cur = r.rlim_max = lim->cpu_s;
	if (setrlimit(RLIMIT_CPU, &r) < 0)
		_exit(125);
#ifndef NO_AS_LIMIT
	r.rlim_cur = r.rlim_max = lim->mem_bytes;
	if (setrlimit(RLIMIT_AS, &r) < 0)
		_exit(125);
#endif
	r.rlim_cur = r.rlim_max = fsize;
	if (setrlimit(RLIMIT_FSIZE, &r) < 0)
		_exit(125);
	r.rlim_cur = r.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &r) < 0)
		_exit(125);
	r.rlim_cur = r.rlim_max = 32;
	if (setrlimit(RLIMIT_NOFILE, &r) < 0)
		_exit(125);
	execv(probe, argv);
	_exit(errno == ENOENT ? 127 : 126);
}

/* The record of a worker that gave no answer: status unreadable, `reason`. */
static json_t *
failed_record(const char *reason)
{
	return json_pack("{s:s, s:s, s:s}", "status", "unreadable", "kind", "unknown", "reason",
	    reason);
}

/*
 * Runs the worker `probe` with `argv` on `blob` (and `copy` as its
 * descriptor 3 when >= 0, output up to `fsize` bytes): *rec is its answer,
 * or a record saying why there is none (`who`: "probe" or "transcoder", in
 * the reason). Returns 0, -ENOMEM, or -errno when the worker could not be
 * started or confined (no record: try again later).
 */
static int
run_worker(int blob, int copy, const char *probe, char *const *argv, const char *who,
    const struct cs_media_limits *lim, uint64_t fsize, json_t **rec)
{
	char *buf = NULL, why[256];
	int p[2] = {-1, -1}, null = -1, st = 0, rc = 0, killed = 0, over = 0;
	size_t len = 0;
	uint64_t deadline = mono_ms() + lim->wall_ms;
	pid_t pid, parent;
	json_t *j = NULL;

	buf = malloc(OUT_MAX + 1);
	if (buf == NULL)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0 || (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		rc = -errno;
		goto out;
	}
	if ((p[0] = above_stdio(p[0])) < 0 || (p[1] = above_stdio(p[1])) < 0 ||
	    (null = above_stdio(null)) < 0) {
		rc = -EMFILE;
		goto out;
	}
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		child(blob, p[1], copy, null, probe, argv, lim, fsize, parent);
	close(p[1]);
	p[1] = -1;
	for (;;) {
		struct pollfd pf = {p[0], POLLIN, 0};
		uint64_t now = mono_ms();
		ssize_t n;
		int pr;

		if (now >= deadline) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (lim->stop != NULL && __atomic_load_n(lim->stop, __ATOMIC_RELAXED)) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			rc = -ECANCELED; /* no record: the step is done again later */
			goto out;
		}
		pr = poll(&pf, 1, (int)(deadline - now < 1000 ? deadline - now : 1000));
		if (pr < 0 && errno != EINTR) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (pr <= 0)
			continue;
		n = read(p[0], buf + len, OUT_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == OUT_MAX) {
			kill(pid, SIGKILL);
			over = 1;
			break;
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	if (killed) {
		snprintf(why, sizeof(why), "the %s did not finish within its time limit of "
		                           "%llu s and was killed",
		    who, (unsigned long long)(lim->wall_ms / 1000));
	} else if (over) {
		snprintf(why, sizeof(why), "the %s's answer was larger than %u bytes", who,
		    OUT_MAX);
	} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU) {
		snprintf(why, sizeof(why), "the %s used more than its CPU time limit of %llu "
		                           "s and was killed",
		    who, (unsigned long long)lim->cpu_s);
	} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ) {
		snprintf(why, sizeof(why), "the %s's output grew past its limit of %llu MiB and "
		                           "it was killed",
		    who, (unsigned long long)(fsize >> 20));
	} else if (WIFSIGNALED(st)) {
		const char *s = sigabbrev_np(WTERMSIG(st));
		snprintf(why, sizeof(why), "the %s crashed (signal %d, SIG%s)%s", who, WTERMSIG(st),
		    s != NULL ? s : "?",
		    WTERMSIG(st) == SIGABRT || WTERMSIG(st) == SIGKILL ?
		        "; it may have run out of its memory limit" : "");
	} else if (WEXITSTATUS(st) == PROBE_ENOMEM) {
		snprintf(why, sizeof(why), "the %s ran out of its memory limit (%llu MiB)", who,
		    (unsigned long long)(lim->mem_bytes >> 20));
	} else if (copy >= 0 && WEXITSTATUS(st) == PROBE_ENOSPC) {
		rc = -ENOSPC;
		goto out; /* no record: the store's disk is full, the copy is made again later */
	} else if (WEXITSTATUS(st) == PROBE_ESANDBOX || WEXITSTATUS(st) == PROBE_EMAGIC ||
	    WEXITSTATUS(st) >= 126) {
		rc = WEXITSTATUS(st) == PROBE_ESANDBOX || WEXITSTATUS(st) == 125 ? -EPERM :
		    WEXITSTATUS(st) == 127 ? -ENOENT : -ENOEXEC;
		goto out; /* no record: the worker could not run, the file was not read */
	} else if (WEXITSTATUS(st) != 0) {
		snprintf(why, sizeof(why), "the %s failed (exit status %d)", who,
		    WEXITSTATUS(st));
	} else {
		int oom = 0;
		j = cs__json_load(buf, len, JSON_REJECT_DUPLICATES, &oom);
		if (j == NULL && oom) {
			rc = -ENOMEM;
			goto out;
		}
		if (!json_is_object(j) || !json_is_string(json_object_get(j, "status"))) {
			json_decref(j);
			j = NULL;
			snprintf(why, sizeof(why), "the %s's answer is not a record", who);
		}
	}
	if (j == NULL)
		j = failed_record(why);
	if (j == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*rec = j;
out:
	free(buf);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (null >= 0)
		close(null);
	return rc;
}

/* The record's tool: the worker's library versions, and custos's own version. */
static int
tool_of(json_t *rec, const struct cs_media_agent *agent)
{
	json_t *tool = json_object_get(rec, "tool");

	if (!json_is_object(tool)) {
		tool = json_pack("{s:s}", "name", "custos-probe");
		if (tool == NULL || json_object_set_new(rec, "tool", tool) < 0)
			return -ENOMEM;
	}
	return json_object_set_new(tool, "version", json_string(agent->version)) < 0 ? -ENOMEM :
										    0;
}

/* Item `id`'s record (new reference): 0, CS_ENOTFOUND, -ENOMEM or CS_ESTORE. */
static int
item_get(struct cs_store *st, const char *id, json_t **rec)
{
	MDB_txn *txn = NULL;
	int rc = cs__catalog_rtxn(&st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), rec);
	mdb_txn_abort(txn);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	return 0;
}

/* Item `id`'s event `type` (new reference, NULL: no memory) with `body` under the type's name. */
static json_t *
item_event(const char *type, const char *id, const char *sha, json_t *body,
    const struct cs_media_agent *agent)
{
	return json_pack("{s:s, s:s, s:s, s:O, s:{s:s, s:s}}", "event", type, "id", id, "sha256",
	    sha, type, body, "agent", "name", agent->name, "version", agent->version);
}

/* Links the finished temp file `tmp` into derivatives/sha256/ab/cd/<hex>, durably. */
int
cs__derivative_place(int rootfd, const char *tmp, const char *hex)
{
	char dir[48], path[128];
	int rc;

	snprintf(dir, sizeof(dir), "derivatives");
	rc = cs__mkdir_durable(rootfd, dir, 0750);
	snprintf(dir, sizeof(dir), "derivatives/sha256");
	if (rc == 0)
		rc = cs__mkdir_durable(rootfd, dir, 0750);
	snprintf(dir, sizeof(dir), "derivatives/sha256/%.2s", hex);
	if (rc == 0)
		rc = cs__mkdir_durable(rootfd, dir, 0750);
	snprintf(dir, sizeof(dir), "derivatives/sha256/%.2s/%.2s", hex, hex + 2);
	if (rc == 0)
		rc = cs__mkdir_durable(rootfd, dir, 0750);
	snprintf(path, sizeof(path), "%s/%s", dir, hex);
	/* never replaces: the same name holds the same bytes */
	if (rc == 0 && linkat(rootfd, tmp, rootfd, path, 0) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0)
		rc = cs__fsync_dir(rootfd, dir);
	return rc;
}

static const char *
format_of(const char *what)
{
	return strcmp(what, "poster") == 0 ? "jpeg" :
	    strcmp(what, "preservation-ffv1") == 0 ? "matroska" : "mp4";
}

/*
 * Makes derivative `kind` (`what`: the worker's name for it) of the blob
 * open on `blob` and writes its "derivative" event. 0, -ENOMEM, the store's
 * error, or -errno when the worker could not run (no event: tried again).
 */
static int
derive(struct cs_store *st, const char *id, const char *sha, int blob, uint64_t blob_size,
    const char *kind, const char *what, int height, const char *probe,
    const struct cs_media_limits *lim, const struct cs_media_agent *agent)
{
	static unsigned counter;
	struct cs_media_limits l = *lim;
	char tmp[64], hbuf[16], hex[65];
	char *argv[] = {(char *)"custos-probe", (char *)"--derive", (char *)what,
	    (char *)"--max-height", hbuf, NULL};
	uint64_t fsize = blob_size * 16 + ((uint64_t)256 << 20), size = 0, seq = 0;
	uint8_t digest[32];
	json_t *d = NULL, *ev = NULL;
	const char *status;
	int out = -1, rc;

	l.wall_ms *= DERIVE_TIME_FACTOR;
	l.cpu_s *= DERIVE_TIME_FACTOR;
	snprintf(hbuf, sizeof(hbuf), "%d", height);
	snprintf(tmp, sizeof(tmp), "tmp/derive-%ld-%u", (long)getpid(),
	    __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
	out = openat(st->rootfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return -errno;
	rc = above_stdio(out);
	out = rc;
	if (out < 0)
		goto out;
	rc = run_worker(blob, out, probe, argv, "transcoder", &l, fsize, &d);
	if (rc == 0)
		rc = tool_of(d, agent);
	if (rc < 0)
		goto out;
	status = json_string_value(json_object_get(d, "status"));
	if (status == NULL || strcmp(status, "ok") != 0) {
		/* a worker that died: its record says "unreadable"; a derivative just failed */
		rc = json_object_set_new(d, "status", json_string("failed"));
	} else {
		rc = cs__fsync(out, 0);
		if (rc == 0)
			rc = cs__hash_fd(out, digest, &size);
		if (rc == 0 && size == 0) {
			rc = json_object_set_new(d, "status", json_string("failed")) < 0 ||
			    json_object_set_new(d, "reason",
			        json_string("the transcoder wrote nothing")) < 0 ? -ENOMEM : 0;
		} else if (rc == 0) {
			cs__hex(digest, 32, hex);
			(void)fchmod(out, 0444);
			rc = cs__derivative_place(st->rootfd, tmp, hex);
			if (rc == 0 &&
			    (json_object_set_new(d, "sha256", json_string(hex)) < 0 ||
			        json_object_set_new(d, "size", json_integer((json_int_t)size)) < 0))
				rc = -ENOMEM;
		}
	}
	if (rc < 0)
		goto out;
	if (json_object_set_new(d, "kind", json_string(kind)) < 0 ||
	    json_object_set_new(d, "format", json_string(format_of(what))) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	ev = item_event("derivative", id, sha, d, agent);
	rc = ev == NULL ? -ENOMEM : cs__store_commit_locked(st, ev, &seq);
out:
	if (out >= 0)
		close(out);
	(void)unlinkat(st->rootfd, tmp, 0);
	json_decref(ev);
	json_decref(d);
	return rc;
}

/* `lim` with its defaults filled in. */
static struct cs_media_limits
limits_of(const struct cs_media_limits *lim)
{
	struct cs_media_limits l = {WALL_MS_DEFAULT, CPU_S_DEFAULT, MEM_DEFAULT, NULL};

	if (lim != NULL) {
		l.wall_ms = lim->wall_ms ? lim->wall_ms : l.wall_ms;
		l.cpu_s = lim->cpu_s ? lim->cpu_s : l.cpu_s;
		l.mem_bytes = lim->mem_bytes ? lim->mem_bytes : l.mem_bytes;
		l.stop = lim->stop;
	}
	return l;
}

/* The fingerprinter's limits: the derivatives' (it decodes the audio and the keyframes). */
static struct cs_media_limits
fp_limits(const struct cs_media_limits *lim)
{
	struct cs_media_limits l = *lim;

	l.wall_ms *= DERIVE_TIME_FACTOR;
	l.cpu_s *= DERIVE_TIME_FACTOR;
	return l;
}

/* Runs the worker's --fingerprint on `fd`: its answer (status "ok", or not, with a reason). */
static int
run_fingerprint(int fd, const char *probe, const struct cs_media_limits *lim, json_t **fp)
{
	char *const argv[] = {(char *)"custos-probe", (char *)"--fingerprint", NULL};
	struct cs_media_limits l = fp_limits(lim);
	const char *status;
	json_t *d = NULL;
	int rc = run_worker(fd, -1, probe, argv, "fingerprinter", &l, 0, &d);

	if (rc < 0)
		return rc;
	status = json_string_value(json_object_get(d, "status"));
	if ((status == NULL || strcmp(status, "ok") != 0) &&
	    json_object_set_new(d, "status", json_string("failed")) < 0) {
		json_decref(d);
		return -ENOMEM;
	}
	*fp = d;
	return 0;
}

/* Fingerprints the blob open on `blob` and writes item `id`'s "fingerprint" event. */
static int
fingerprint(struct cs_store *st, const char *id, const char *sha, int blob, const char *probe,
    const struct cs_media_limits *lim, const struct cs_media_agent *agent)
{
	json_t *d = NULL, *ev = NULL;
	uint64_t seq = 0;
	int rc = run_fingerprint(blob, probe, lim, &d);

	if (rc == 0)
		rc = tool_of(d, agent);
	if (rc < 0)
		goto out;
	ev = item_event("fingerprint", id, sha, d, agent);
	rc = ev == NULL ? -ENOMEM : cs__store_commit_locked(st, ev, &seq);
out:
	json_decref(ev);
	json_decref(d);
	return rc;
}

int
cs_media_fingerprint(int fd, const char *probe, const struct cs_media_limits *lim, json_t **fp)
{
	struct cs_media_limits l = limits_of(lim);
	int in, rc;

	/* the worker's 0, 1 and 2 are set from it and the pipe: a copy above them */
	in = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (in < 0)
		return -errno;
	rc = run_fingerprint(in, probe, &l, fp);
	close(in);
	return rc;
}

/* The derivatives the policy asks for, recorded in the media record as "normalisation". */
static int
plan(json_t *m, const char *policy)
{
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *status = json_string_value(json_object_get(m, "status"));
	char act[16];
	json_t *n, *list;

	if (status == NULL || strcmp(status, "ok") != 0 || kind == NULL ||
	    (strcmp(kind, "video") != 0 && strcmp(kind, "audio") != 0))
		return 0;
	cs_media_policy_action(policy, m, act);
	list = strcmp(kind, "video") == 0 ? json_pack("[s, s]", "access", "poster") :
					    json_array();
	if (list != NULL && strcmp(act, "keep") != 0)
		json_array_append_new(list, json_string("preservation"));
	n = json_pack("{s:s, s:o*}", "action", act, "derivatives", list);
	return n == NULL || json_object_set_new(m, "normalisation", n) < 0 ? -ENOMEM : 0;
}

int
cs_media_process(struct cs_store *st, const char *id, const char *probe,
    const struct cs_media_limits *lim, const char *policy, const struct cs_media_agent *agent,
    json_t **record, uint64_t *seq)
{
	struct cs_media_limits l = limits_of(lim);
	char path[CS_BLOB_PATH_MAX], why[200];
	char *const argv[] = {(char *)"custos-probe", NULL};
	json_t *rec = NULL, *m = NULL, *ev = NULL, *k;
	const char *sha;
	struct stat sb;
	uint64_t s = 0;
	size_t i;
	int fd = -1, rc;

	if (st->lockfd < 0)
		return -EBADF;
	if (cs_media_policy_check(policy, why, sizeof(why)) < 0)
		return -EINVAL;
	rc = item_get(st, id, &rec);
	if (rc < 0)
		return rc;
	sha = json_string_value(json_object_get(rec, "sha256"));
	if (sha == NULL || strlen(sha) != 64) {
		rc = CS_ESTORE;
		goto out;
	}
	/* Only the blob, secured before: its record exists, so the bytes are durable. */
	cs__blob_path(sha, path, sizeof(path));
	fd = openat(st->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd >= 0)
		fd = above_stdio(fd); /* the worker's 0, 1 and 2 are set from it and the pipe */
	if (fd < 0) {
		rc = errno == ELOOP || errno == ENOTDIR ? -ENOENT : -errno;
		goto out;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = -ENOENT;
		goto out;
	}
	m = json_object_get(rec, "media");
	if (m != NULL && !media_done(rec)) {
		/* probed before, derivatives pending (interrupted): only what is missing */
		m = json_deep_copy(m);
		if (m == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		s = (uint64_t)json_integer_value(json_object_get(m, "seq"));
	} else {
		/* not probed yet, or asked again: a new record (and what its plan lacks) */
		m = NULL;
		rc = run_worker(fd, -1, probe, argv, "probe", &l, 0, &m);
		if (rc == 0)
			rc = tool_of(m, agent);
		if (rc == 0)
			rc = plan(m, policy);
		if (rc < 0)
			goto out;
		ev = item_event("media", id, sha, m, agent);
		if (ev == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = cs__store_commit_locked(st, ev, &s);
		if (rc < 0)
			goto out;
		if (json_object_set_new(m, "seq", json_integer((json_int_t)s)) < 0 ||
		    json_object_set(m, "time", json_object_get(ev, "time")) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	json_array_foreach(json_object_get(json_object_get(m, "normalisation"), "derivatives"), i,
	    k) {
		const char *kind = json_string_value(k), *what = kind;
		char act[16];
		if (kind == NULL || derivative_of(rec, kind, 0) != NULL)
			continue;
		if (strcmp(kind, "preservation") == 0) {
			snprintf(act, sizeof(act), "%s",
			    json_string_value(json_object_get(json_object_get(m, "normalisation"),
			        "action")));
			what = strcmp(act, "preserve-h264") == 0 ? "preservation-h264" :
								  "preservation-ffv1";
		}
		rc = derive(st, id, sha, fd, (uint64_t)sb.st_size, kind, what,
		    cs_media_policy_height(policy), probe, &l, agent);
		if (rc < 0)
			goto out;
	}
	if (needs_fingerprint(m) && json_object_get(rec, "fingerprint") == NULL) {
		rc = fingerprint(st, id, sha, fd, probe, &l, agent);
		if (rc < 0)
			goto out;
	}
	if (record != NULL) {
		*record = m;
		m = NULL;
	}
	if (seq != NULL)
		*seq = s;
out:
	if (fd >= 0)
		close(fd);
	json_decref(ev);
	json_decref(m);
	json_decref(rec);
	return rc;
}

int
cs_media_derivative_open(struct cs_store *st, const char *id, const char *kind, int *out,
    json_t **entry)
{
	char path[CS_BLOB_PATH_MAX + 16];
	json_t *rec = NULL, *d;
	const char *hex;
	uint8_t digest[32];
	uint64_t size = 0;
	int fd = -1, rc;

	rc = item_get(st, id, &rec);
	if (rc < 0)
		return rc;
	d = derivative_of(rec, kind, 1);
	hex = json_string_value(json_object_get(d, "sha256"));
	if (hex == NULL || strlen(hex) != 64) {
		rc = CS_ENOTFOUND;
		goto out;
	}
	snprintf(path, sizeof(path), "derivatives/sha256/%.2s/%.2s/%s", hex, hex + 2, hex);
	fd = openat(st->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = errno == ENOENT || errno == ELOOP ? -ENOENT : -errno;
		goto out;
	}
	/* what leaves is what was recorded */
	rc = cs__hash_fd(fd, digest, &size);
	if (rc == 0) {
		char got[65];
		cs__hex(digest, 32, got);
		rc = strcmp(got, hex) == 0 ? 0 : CS_EDIGEST;
	}
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc < 0)
		goto out;
	if (entry != NULL)
		*entry = json_incref(d);
	*out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	json_decref(rec);
	return rc;
}

/* ---- catch-up ---- */

int
cs_media_pending(struct cs_store *st, size_t max, json_t **ids, uint64_t *pending)
{
	json_t *arr = json_array();
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	MDB_stat ms = {0};
	int rc;

	if (arr == NULL)
		return -ENOMEM;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		goto out;
	rc = mdb_stat(txn, st->cat.dbi[CS_DBI_MEDIA_TODO], &ms);
	if (rc == 0)
		rc = mdb_cursor_open(txn, st->cat.dbi[CS_DBI_MEDIA_TODO], &cur);
	for (rc = rc == 0 ? mdb_cursor_get(cur, &k, &d, MDB_FIRST) : rc;
	     rc == 0 && json_array_size(arr) < max; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (json_array_append_new(arr, json_stringn(k.mv_data, k.mv_size)) < 0) {
			rc = ENOMEM;
			break;
		}
	}
	rc = rc == 0 || rc == MDB_NOTFOUND ? 0 : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*ids = arr;
	*pending = ms.ms_entries;
	return 0;
}
