/*
 * custos status and docks: asking the running custosd for its queues and
 * docked recorders through its control socket, and listing the recorder dock
 * sessions kept in the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/store.h"
#include "cli.h"

/* ---- status / docks / check-receipt ---- */

static const char usage_status[] =
    "usage: custos status [--socket PATH] [--store DIR] [--json]\n"
    "\n"
    "Asks the running custosd (through its control socket, by default\n"
    "STORE/custosd.sock) for its state: files waiting, in progress, secured and\n"
    "refused, the ledger size, orphans/ (blobs of interrupted ingests), the\n"
    "latest checkpoint, the fixity schedule (items checked since start, overdue,\n"
    "damaged) and the docked recorders.\n";

/* orphans/ as custosd reports it: what is kept there and its limits. */
static void
orphans_line(const json_t *o)
{
	json_int_t age = json_integer_value(json_object_get(o, "oldest_age_s"));
	json_int_t max_age = json_integer_value(json_object_get(o, "max_age_s"));
	json_int_t max_bytes = json_integer_value(json_object_get(o, "max_bytes"));
	json_int_t ref = json_integer_value(json_object_get(o, "referenced"));
	char lim_age[32], lim_size[32];

	if (!json_is_object(o))
		return;
	snprintf(lim_age, sizeof(lim_age), max_age > 0 ? "%.1f days" : "no age limit",
	    (double)max_age / 86400);
	snprintf(lim_size, sizeof(lim_size), max_bytes > 0 ? "%.1f MiB" : "no size limit",
	    (double)max_bytes / 1048576);
	printf("  orphans/: %lld blob(s), %.1f MiB",
	    (long long)json_integer_value(json_object_get(o, "count")),
	    (double)json_integer_value(json_object_get(o, "bytes")) / 1048576);
	if (json_is_integer(json_object_get(o, "oldest_age_s")))
		printf(", the oldest %.1f days old", (double)age / 86400);
	printf(" (kept within %s, %s)\n", lim_age, lim_size);
	if (ref > 0)
		printf("  ORPHANS: %lld file(s) in orphans/ hold the bytes of stored items: not "
		       "orphans, kept (see the log)\n",
		    (long long)ref);
}

int
cmd_status(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL;
	char buf[65536];
	json_t *ans, *docks, *k, *fx;
	size_t len = 0, i;
	int rc, fd;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock), CLI_END};

	rc = cli_parse(argc, argv, own, usage_status, o);
	if (rc >= 0)
		return rc;
	rc = cli_connect(sock, o, &fd);
	if (rc != EXIT_OK)
		return rc;
	/* MSG_NOSIGNAL: a custosd that hangs up at once is reported, not a SIGPIPE death */
	if (send(fd, "{\"cmd\":\"status\"}\n", 17, MSG_NOSIGNAL) != 17) {
		close(fd);
		if (errno == EPIPE || errno == ECONNRESET)
			errmsg("custosd closed the connection without an answer (is it stopping, "
			       "or short of memory? see its log)");
		else
			errmsg("cannot send to custosd: %s", strerror(errno));
		return EXIT_STORE;
	}
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	close(fd);
	buf[len] = '\0';
	if (len == 0) {
		errmsg("custosd closed the connection without an answer (is it stopping, or short "
		       "of memory? see its log)");
		return EXIT_STORE;
	}
	ans = json_loads(buf, 0, NULL);
	if (ans == NULL) {
		errmsg("custosd sent an answer that is not JSON");
		return EXIT_STORE;
	}
	if (o->json) {
		print_json(ans);
	} else {
		const char *state = json_string_value(json_object_get(ans, "state"));
		printf("custosd is %s (station %s)\n", state != NULL ? state : "?",
		    json_string_value(json_object_get(ans, "station")));
		if (state != NULL && strcmp(state, "disk_full") == 0)
			printf("  PAUSED: the store's disk is full: %.1f MiB free, %.1f MiB "
			       "needed;\n  free space on that disk (or lower `reserve`): it "
			       "resumes by itself\n",
			    (double)json_integer_value(json_object_get(ans, "store_free_bytes")) /
			        1048576,
			    (double)json_integer_value(json_object_get(ans, "needed_bytes")) /
			        1048576);
		else if (state != NULL && strcmp(state, "failed") == 0)
			printf("  STOPPED: the store failed (see the journal: journalctl -u "
			       "custosd);\n  repair the storage, then restart custosd\n");
		printf("  waiting to settle %lld, queued %lld, in progress %lld\n",
		    (long long)json_integer_value(json_object_get(ans, "waiting_to_settle")),
		    (long long)json_integer_value(json_object_get(ans, "queued")),
		    (long long)json_integer_value(json_object_get(ans, "in_progress")));
		printf("  secured %lld (of which already stored %lld), refused %lld since start\n",
		    (long long)json_integer_value(json_object_get(ans, "secured")),
		    (long long)json_integer_value(json_object_get(ans, "duplicates")),
		    (long long)json_integer_value(json_object_get(ans, "refused")));
		printf("  ledger: %lld events\n",
		    (long long)json_integer_value(json_object_get(ans, "ledger_size")));
		orphans_line(json_object_get(ans, "orphans"));
		fx = json_object_get(ans, "fixity");
		if (json_is_object(fx)) {
			json_t *dmg = json_object_get(fx, "damaged");
			printf("  fixity: %s, %lld checked since start, %lld overdue, latest check "
			       "%s\n",
			    json_is_true(json_object_get(fx, "enabled")) ? "on" : "OFF",
			    (long long)json_integer_value(json_object_get(fx, "checked")),
			    (long long)json_integer_value(json_object_get(fx, "overdue")),
			    json_is_string(json_object_get(fx, "last_pass")) ?
			        json_string_value(json_object_get(fx, "last_pass")) : "never");
			json_array_foreach(dmg, i, k)
				printf("  DAMAGED: item %s failed its fixity check; see `custos "
				       "fixity` and operations.md, Fixity\n",
				    json_string_value(k));
		}
		docks = json_object_get(ans, "docks");
		json_array_foreach(docks, i, k)
		{
			printf("  dock %s: recorder %s, session %s (docked %s), %s, %lld file(s) "
			       "pending%s\n",
			    json_string_value(json_object_get(k, "folder")),
			    json_string_value(json_object_get(k, "device")),
			    json_string_value(json_object_get(k, "session")),
			    json_string_value(json_object_get(k, "docked_at")),
			    json_is_true(json_object_get(k, "complete")) ? "receipt written" :
			    json_is_true(json_object_get(k, "docked")) ? "securing" : "undocked",
			    (long long)json_integer_value(json_object_get(k, "pending")),
			    json_is_true(json_object_get(k, "clock_suspect")) ?
			        ", CLOCK SUSPECT (more than a year off)" : "");
		}
	}
	json_decref(ans);
	return EXIT_OK;
}

static const char usage_docks[] =
    "usage: custos docks [--all] [--store DIR] [--json]\n"
    "\n"
    "Lists recorder dock sessions: the latest session of every recorder (with\n"
    "--all, every closed session too), with its state (open, interrupted,\n"
    "complete), files secured, sequence gaps and the recorder's clock offset.\n";

struct docks_ctx {
	const struct opts *o;
	json_t *arr;
	int all;
};

static int
dock_row(void *ctx, const char *key, json_t *s)
{
	struct docks_ctx *dc = ctx;
	json_t *gaps = json_object_get(s, "sequence_gaps"), *g;
	char gtext[256] = "";
	size_t i;

	/* With --all, a closed latest session is listed once, from session-done/. */
	if (dc->all && strncmp(key, "session/", 8) == 0 &&
	    json_string_value(json_object_get(s, "state")) != NULL &&
	    strcmp(json_string_value(json_object_get(s, "state")), "complete") == 0)
		return 0;
	json_array_append(dc->arr, s);
	if (dc->o->json)
		return 0;
	json_array_foreach(gaps, i, g)
	{
		size_t len = strlen(gtext);
		long long a = (long long)json_integer_value(json_array_get(g, 0));
		long long b = (long long)json_integer_value(json_array_get(g, 1));
		if (a == b)
			snprintf(gtext + len, sizeof(gtext) - len, "%s%lld", i ? "," : "", a);
		else
			snprintf(gtext + len, sizeof(gtext) - len, "%s%lld-%lld", i ? "," : "", a,
			    b);
	}
	printf("%s\t%s\t%s\tfiles %lld\tgaps %s\tclock offset %+.1f s\tdocked %s\tfolder %s%s\n",
	    json_string_value(json_object_get(s, "device")),
	    json_string_value(json_object_get(s, "session")),
	    json_string_value(json_object_get(s, "state")),
	    (long long)json_integer_value(json_object_get(s, "files")), gtext[0] ? gtext : "none",
	    (double)json_integer_value(json_object_get(s, "clock_offset_ms")) / 1000.0,
	    json_string_value(json_object_get(s, "docked_at")),
	    json_string_value(json_object_get(s, "folder")),
	    json_is_true(json_object_get(s, "clock_suspect")) ? "\tCLOCK SUSPECT" : "");
	return 0;
}

int
cmd_docks(int argc, char **argv, struct opts *o)
{
	struct docks_ctx dc = {o, NULL, 0};
	struct cs_store *st;
	int rc, all = 0, code = EXIT_OK;
	const struct cli_opt own[] = {CLI_OPT("all", 0, CLI_FLAG, &all), CLI_END};

	rc = cli_parse(argc, argv, own, usage_docks, o);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fputs(usage_docks, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	dc.arr = json_array();
	dc.all = all;
	rc = cs_store_jobs_each(st, "session/", dock_row, &dc);
	if (rc == 0 && all)
		rc = cs_store_jobs_each(st, "session-done/", dock_row, &dc);
	if (rc < 0) {
		errmsg("cannot read the dock sessions: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		print_json(dc.arr);
	} else if (json_array_size(dc.arr) == 0 && !o->quiet) {
		fprintf(stderr, "%s: no dock sessions\n", prog);
	}
	json_decref(dc.arr);
	cs_store_close(st);
	return code;
}

