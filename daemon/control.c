/*
 * custosd's control socket: a Unix stream socket that speaks one JSON
 * request per line and answers one JSON object per line ("status": the
 * daemon's counters, the jobs, the latest checkpoint, orphans/, the fixity
 * schedule and the docks; the access commands of daemon/access.c).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "access.h"
#include "purge.h"
#include "retention.h"
#include "control.h"
#include "custos/store.h"
#include "dock.h"
#include "fixity.h"
#include "media.h"
#include "remote.h"
#include "log.h"
#include "pipeline.h"

struct client {
	uv_pipe_t pipe;
	struct daemon *d;
	char buf[4096];
	size_t len;
	uid_t uid;
	struct access_conn access;
	int stalled; /* reading stopped: buf full while an export is planned */
};

/* orphans/ as the last enforcement of its limits left it (null if none ran yet). */
static json_t *
orphans_json(struct daemon *d)
{
	const struct cs_orphans *o = &d->orphans;
	int64_t age = 0;

	if (!d->orphans_known)
		return json_null();
	if (o->oldest_ms > 0) {
		age = ((int64_t)time(NULL) * 1000 - o->oldest_ms) / 1000;
		age = age < 0 ? 0 : age;
	}
	return json_pack("{s:I, s:I, s:o, s:I, s:I, s:I}", "count", (json_int_t)o->count,
	    "bytes", (json_int_t)o->bytes, "oldest_age_s",
	    o->oldest_ms > 0 ? json_integer((json_int_t)age) : json_null(), "referenced",
	    (json_int_t)o->referenced, "max_age_s", (json_int_t)d->cfg.orphans_max_age_s,
	    "max_bytes", (json_int_t)d->cfg.orphans_max_bytes);
}

static json_t *
status_json(struct daemon *d)
{
	json_t *jobs = NULL;
	char *cp = NULL;
	json_t *j;

	/* Out of memory: no answer, rather than one that leaves something out. */
	if (cs_store_job_counts(d->st, &jobs) == -ENOMEM)
		return NULL;
	if (cs_store_latest_checkpoint(d->st, &cp) == -ENOMEM) {
		json_decref(jobs);
		return NULL;
	}
	j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*, s:s*}", "state",
	    d->failed ? "failed" : d->stopping ? "stopping" : d->full ? "disk_full" : "running",
	    "station", cs_store_station(d->st), "taking_files", taking_work(d), "queued",
	    (json_int_t)d->queued, "in_progress", (json_int_t)d->in_flight, "waiting_to_settle",
	    (json_int_t)(d->n_cands - d->queued - d->in_flight), "secured",
	    (json_int_t)d->secured, "duplicates", (json_int_t)d->duplicates, "refused",
	    (json_int_t)d->refused, "ledger_size", (json_int_t)cs_store_size(d->st), "jobs", jobs,
	    "checkpoint", cp);
	free(cp);
	if (j != NULL && d->full) {
		uint64_t avail = store_free(d);
		json_object_set_new(j, "store_free_bytes",
		    avail == UINT64_MAX ? json_null() : json_integer((json_int_t)avail));
		json_object_set_new(j, "needed_bytes", json_integer((json_int_t)d->full_need));
	}
	if (j != NULL && (json_object_set_new(j, "orphans", orphans_json(d)) < 0 ||
	                     json_object_set_new(j, "fixity", fixity_status(d)) < 0 ||
	                     json_object_set_new(j, "media", media_status(d)) < 0 ||
	                     json_object_set_new(j, "remote", upload_status(d)) < 0 ||
	                     json_object_set_new(j, "purge", purge_status(d)) < 0)) {
		json_decref(j);
		j = NULL;
	}
	if (j != NULL && d->dock_rootfd >= 0 &&
	    json_object_set_new(j, "docks", dock_status(d)) < 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static void
on_client_close(uv_handle_t *h)
{
	struct client *cl = h->data;

	access_conn_end(&cl->access);
	free(cl);
}

static void
on_write(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

/* Sends `j` as one line; -1 if it could not be (the caller hangs up). */
static int
reply(struct client *cl, json_t *j)
{
	uv_write_t *req = malloc(sizeof(*req));
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	size_t n = s != NULL ? strlen(s) : 0;
	char *line = s != NULL ? realloc(s, n + 2) : NULL;
	uv_buf_t b;

	if (req == NULL || line == NULL) {
		free(req);
		free(line != NULL ? line : s);
		return -1;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	b = uv_buf_init(line, (unsigned)(n + 1));
	req->data = line;
	if (uv_write(req, (uv_stream_t *)&cl->pipe, &b, 1, on_write) < 0) {
		free(line);
		free(req);
		return -1;
	}
	return 0;
}

/* Answers one request line; -1 if no answer could be made (out of memory): hang up. */
static int
handle_request(struct client *cl, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = NULL, *ans;
	const char *cmd;
	int rc = cs_json_parse(line, len, 0, &req, &jerr);

	if (rc == -ENOMEM)
		return -1;
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (req == NULL || cmd == NULL)
		ans = json_pack("{s:b, s:s}", "ok", 0, "error",
		    "a request is one JSON object per line with a \"cmd\"");
	else if (strcmp(cmd, "status") == 0) {
		ans = status_json(cl->d);
		if (ans != NULL && json_object_set_new(ans, "ok", json_true()) < 0) {
			json_decref(ans);
			ans = NULL;
		}
	} else if (access_is_command(cmd)) {
		ans = access_command(cl->d, cl->uid, cmd, req, &cl->access);
		if (ans == NULL && cl->access.planning != NULL) {
			/* answered by on_answer once the export is planned */
			logmsg(3, "control request from uid %u: %s", (unsigned)cl->uid, cmd);
			json_decref(req);
			return 0;
		}
	} else if (purge_is_command(cmd)) {
		ans = purge_command(cl->d, cl->uid, cmd, req);
	} else if (retention_is_command(cmd)) {
		ans = retention_command(cl->d, cl->uid, cmd, req);
	} else
		ans = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "unknown command", "cmd", cmd);
	logmsg(3, "control request from uid %u: %s", (unsigned)cl->uid, cmd ? cmd : "(malformed)");
	rc = reply(cl, ans);
	json_decref(ans);
	json_decref(req);
	return rc;
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)suggested;
	*buf = uv_buf_init(cl->buf + cl->len, (unsigned)(sizeof(cl->buf) - cl->len));
}

/*
 * Answers the complete lines in buf, in order; none while an export is
 * planned (its answer comes first). -1 if the connection was closed.
 */
static int
drain(struct client *cl)
{
	uv_stream_t *s = (uv_stream_t *)&cl->pipe;
	char *nl;

	while (cl->access.planning == NULL && (nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		size_t linelen = (size_t)(nl - cl->buf);
		if (handle_request(cl, cl->buf, linelen) < 0) {
			/* Out of memory: the client sees the connection close, not a silence. */
			out_of_memory(cl->d, "answering a control request");
			uv_close((uv_handle_t *)s, on_client_close);
			return -1;
		}
		memmove(cl->buf, nl + 1, cl->len - linelen - 1);
		cl->len -= linelen + 1;
	}
	if (cl->len == sizeof(cl->buf) && cl->access.planning != NULL) {
		/* Lines wait for the export's answer: read again after it. */
		uv_read_stop(s);
		cl->stalled = 1;
	} else if (cl->len == sizeof(cl->buf)) {
		/* A line longer than any request: refuse and hang up. */
		uv_close((uv_handle_t *)s, on_client_close);
		return -1;
	}
	return 0;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;

	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_client_close);
		return;
	}
	cl->len += (size_t)n;
	(void)drain(cl);
}

/* The answer to an export planned on the thread pool (access.h), then the lines behind it. */
static void
on_answer(struct access_conn *a, json_t *ans)
{
	struct client *cl = (struct client *)((char *)a - offsetof(struct client, access));

	if (reply(cl, ans) < 0) {
		out_of_memory(cl->d, "answering a control request");
		uv_close((uv_handle_t *)&cl->pipe, on_client_close);
		return;
	}
	if (drain(cl) == 0 && cl->stalled && cl->access.planning == NULL) {
		cl->stalled = 0;
		uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, on_read);
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct daemon *d = server->data;
	struct client *cl;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL) {
		/*
		 * Not accepted, libuv stops listening until it is: the next tick
		 * accepts it (d->accept_pending), when memory allows.
		 */
		d->accept_pending = 1;
		out_of_memory(d, "accepting a control connection");
		return;
	}
	cl->d = d;
	cl->access.fd = -1;
	cl->access.answer = on_answer;
	cl->uid = (uid_t)-1;
	uv_pipe_init(d->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
		uv_close((uv_handle_t *)&cl->pipe, on_client_close);
		return;
	}
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		cl->uid = cred.uid;
	uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, on_read);
}

int
control_start(struct daemon *d)
{
	char path[PATH_MAX];
	int rc;

	if (d->cfg.socket != NULL)
		snprintf(path, sizeof(path), "%s", d->cfg.socket);
	else
		snprintf(path, sizeof(path), "%s/custosd.sock", d->cfg.store);
	{
		struct stat sb;
		/* Remove a stale socket of an earlier run, never anything else. */
		if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
			(void)unlink(path);
	}
	uv_pipe_init(d->loop, &d->control, 0);
	d->control.data = d;
	rc = uv_pipe_bind(&d->control, path);
	if (rc == 0) {
		(void)chmod(path, d->cfg.socket_mode);
		rc = uv_listen((uv_stream_t *)&d->control, 16, on_connection);
	}
	if (rc < 0) {
		logmsg(0, "cannot open the control socket %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&d->control, NULL);
		return rc;
	}
	d->control_open = 1;
	return 0;
}

void
control_tick(struct daemon *d)
{
	if (d->accept_pending && !d->stopping && d->control_open) {
		d->accept_pending = 0;
		on_connection((uv_stream_t *)&d->control, 0);
	}
}
