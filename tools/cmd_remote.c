/*
 * custos push and custos replicas: sending the store's objects to the
 * remote bucket in the foreground (lib's remote module, driven here with
 * cs_remote_poll), recording each confirmed object as a replica event, and
 * listing an item's replicas; custos verify --remote, checking that the
 * bucket still holds them as confirmed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/remote.h"
#include "custos/remote_check.h"
#include "custos/remote_purge.h"
#include "custos/remote_rebuild.h"
#include "custos/replica.h"
#include "custos/store.h"
#include "custos/upload.h"
#include "cli.h"

#define WINDOW 64 /* objects queued at once (each holds an open fd) */

static const char usage_push[] =
    "usage: custos push [ID...] [--config FILE] [--store DIR] [--json] [--quiet]\n"
    "\n"
    "Sends to the remote bucket, in the foreground, the blobs of the items named\n"
    "(of every item that has no replica there yet, when none is named) and, when no\n"
    "item is named, the ledger's records up to the newest signed checkpoint and that\n"
    "checkpoint. Each object is looked for first (HEAD) and sent only when missing;\n"
    "each one the server confirms is recorded as a \"replica\" ledger event. The\n"
    "remote is the [remote] section of FILE (default $CUSTOS_REMOTE_CONFIG, else\n"
    "<store>/remote.conf); see custos(1), REMOTE. Needs the store for writing (stop\n"
    "custosd first). Exit status: 0 every object confirmed, 1 some object failed\n"
    "(the others are recorded; run push again), 2 usage or configuration error,\n"
    "3 the store could not be used.\n";

static const char usage_replicas[] =
    "usage: custos replicas ID [--store DIR] [--json]\n"
    "\n"
    "Lists the remote copies of an item's blob that custos has confirmed: the\n"
    "remote (endpoint/bucket), key, version id, Object Lock mode and retain-until\n"
    "date, and when (the replica ledger event).\n";

struct push {
	struct cs_store *st;
	const char *dir;
	const struct cs_remote_config *cfg;
	char remote[1200];
	int json, quiet, tty;
	unsigned sent, found, failed;
	int store_rc;
	json_t *errors;
	struct cs_upload *u;
};

struct sent {
	struct push *p;
	struct cs_upload_obj o;
};

static void
progress(struct push *p, struct cs_remote *r)
{
	uint64_t s, t;

	if (!p->tty)
		return;
	cs_remote_progress(r, &s, &t);
	fprintf(stderr, "\rpush: %u sent, %u already there, %u failed; %.1f of %.1f MiB ", p->sent,
	    p->found, p->failed, (double)s / 1048576.0, (double)t / 1048576.0);
}

static void
on_done(void *ctx, const struct cs_remote_result *res)
{
	struct sent *x = ctx;
	struct push *p = x->p;
	const char *kind = x->o.kind;
	int rc = cs_upload_result(p->u, &x->o, res);

	if (res->rc != 0) {
		p->failed++;
		if (p->tty)
			fputc('\n', stderr);
		errmsg("%s %s not confirmed: %s", kind, res->key, res->why);
		if (p->errors != NULL)
			json_array_append_new(p->errors,
			    json_pack("{s:s, s:s}", "key", res->key, "error", res->why));
	} else if (rc < 0) {
		if (p->tty)
			fputc('\n', stderr);
		errmsg("%s is in the bucket but its replica event could not be written: %s",
		    res->key, cs_strerror(rc));
		p->store_rc = rc;
	}
	if (res->rc == 0) {
		if (res->skipped)
			p->found++;
		else
			p->sent++;
		if (!p->json && !p->quiet &&
		    (strcmp(kind, "blob") == 0 || strcmp(kind, "derivative") == 0 ||
		        strcmp(kind, "checkpoint") == 0)) {
			if (p->tty)
				fputc('\r', stderr);
			printf("%s\t%s\t%s%s%s\n", res->skipped ? "present" : "sent", res->key,
			    res->version_id[0] ? res->version_id : "-",
			    res->retain_until[0] ? "\tretain until " : "", res->retain_until);
			fflush(stdout);
		}
	}
	free(x);
}

/* Runs the remote until fewer than `below` objects are pending. */
static int
run_until(struct push *p, struct cs_remote *r, size_t below)
{
	while (cs_remote_pending(r) >= below && cs_remote_pending(r) > 0) {
		int rc = cs_remote_poll(r, 500);
		if (rc < 0)
			return rc;
		progress(p, r);
	}
	return 0;
}

/* Hands one object to the remote (or reports why it cannot be sent). */
static int
queue(struct push *p, struct cs_remote *r, const struct cs_upload_obj *o)
{
	struct cs_remote_object obj = {o->key, o->fd, o->size, {0}, o->content_type};
	struct sent *x;
	int rc;

	if (o->rc < 0) {
		errmsg("%s %s: its bytes cannot be read (%s): not sent; run custos verify", o->kind,
		    o->id[0] ? o->id : o->key, cs_strerror(o->rc));
		p->failed++;
		return 0;
	}
	x = malloc(sizeof(*x));
	if (x == NULL) {
		close(o->fd);
		return -ENOMEM;
	}
	x->p = p;
	x->o = *o;
	memcpy(obj.sha256, o->sha256, 32);
	rc = cs_remote_put(r, &obj, on_done, x);
	close(o->fd);
	x->o.fd = -1;
	if (rc < 0)
		free(x);
	return rc;
}

/* One pass of custos/upload.h: blobs, then records and their checkpoint. */
static int
push_all(struct push *p, struct cs_remote *r)
{
	struct cs_upload_obj objs[8];
	int rc = 0, finished = 0;

	while (!finished && rc == 0 && cs_remote_bucket_error(r, NULL) == 0) {
		size_t n = 0, room = WINDOW - cs_remote_pending(r);
		rc = cs_upload_next(p->u, objs, room < 8 ? room : 8, &n, &finished);
		for (size_t i = 0; i < n; i++) {
			int qrc = rc == 0 ? queue(p, r, &objs[i]) : 0;
			if (rc == 0)
				rc = qrc;
			else if (objs[i].fd >= 0)
				close(objs[i].fd);
		}
		if (rc == 0 && !finished && (n == 0 || cs_remote_pending(r) >= WINDOW))
			rc = run_until(p, r, n == 0 ? cs_remote_pending(r) : WINDOW);
	}
	if (rc == 0)
		rc = run_until(p, r, 1);
	if (rc == 0 && cs_upload_no_checkpoint(p->u) && !p->quiet)
		fprintf(stderr, "custos: no signed checkpoint yet: the ledger's records are "
		                "sent with the next one (custos checkpoint)\n");
	return rc;
}

static const char *
config_path(const struct opts *o, const char *given, char *buf, size_t n)
{
	const char *env = getenv("CUSTOS_REMOTE_CONFIG");
	const char *dir = store_dir(o);

	if (given != NULL)
		return given;
	if (env != NULL && env[0] != '\0')
		return env;
	if (dir == NULL)
		return NULL;
	snprintf(buf, n, "%s/remote.conf", dir);
	return buf;
}

/* The [remote] section for a command on the store; < 0 after saying what is wrong. */
static int
load_config(const struct opts *o, const char *given, struct cs_remote_config *cfg)
{
	char why[1024], buf[4096];
	const char *path = config_path(o, given, buf, sizeof(buf));
	int rc;

	if (path == NULL) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		return -EINVAL;
	}
	rc = cs_remote_config_load(cfg, path, why, sizeof(why));
	if (rc < 0)
		errmsg("%s", why[0] ? why : cs_strerror(rc));
	return rc;
}

/* S3 legal hold on the new objects of items held now (custos/retention.h), each recorded. */
static void
legal_hold_pushed(struct push *p, const struct cs_remote_config *cfg, const struct opts *o)
{
	json_t *held = cs_upload_take_held(p->u), *h;
	const char *id, *state;
	unsigned done = 0, failed = 0;

	json_object_foreach(held, id, h)
	{
		uint64_t hold = (uint64_t)json_integer_value(h);
		if (cs_remote_hold_item(cfg, p->st, hold, id, 1, &state) < 0)
			failed++;
		else if (strcmp(state, "done") == 0)
			done++;
	}
	if (failed > 0)
		errmsg("S3 legal hold could not be set on the new objects of %u held items (see "
		       "their hold-remote events: custos show ID)",
		    failed);
	else if (done > 0 && !o->quiet && !o->json)
		fprintf(stderr, "custos: S3 legal hold set on the new objects of %u held items\n",
		    done);
	json_decref(held);
}

int
cmd_push(int argc, char **argv, struct opts *o)
{
	struct cs_remote_config cfg = {0};
	struct push p = {0};
	struct cs_remote *r = NULL;
	const char *config = NULL, *bad = NULL, *bwhy = NULL;
	int code = EXIT_OK, rc;
	const struct cli_opt own[] = {CLI_OPT("config", 0, CLI_STRING, &config), CLI_END};

	rc = cli_parse(argc, argv, own, usage_push, o);
	if (rc >= 0)
		return rc;
	if (load_config(o, config, &cfg) < 0)
		return EXIT_USAGE;
	p.st = open_store(o, CS_OPEN_WRITE, &code);
	if (p.st == NULL)
		goto out;
	p.cfg = &cfg;
	p.dir = store_dir(o);
	p.json = o->json;
	p.quiet = o->quiet;
	p.tty = isatty(STDERR_FILENO) && !o->quiet;
	p.errors = json_array();
	cs_remote_config_name(&cfg, p.remote, sizeof(p.remote));
	rc = cs_upload_new(&p.u, p.st, p.dir, &cfg,
	    optind < argc ? (const char *const *)argv + optind : NULL, (size_t)(argc - optind),
	    &bad);
	if (rc == CS_ENOTFOUND && bad != NULL) {
		errmsg("no item %s in this store (see custos find)", bad);
		code = EXIT_USAGE;
		goto out;
	}
	if (rc == 0)
		rc = cs_remote_new(&r, &cfg, NULL);
	if (rc == 0)
		rc = push_all(&p, r);
	if (rc == 0 && cs_remote_bucket_error(r, &bwhy) < 0) {
		if (p.tty)
			fputc('\n', stderr);
		errmsg("push stopped: %s", bwhy);
	}
	if (p.tty)
		fputc('\n', stderr);
	if (rc == 0 && p.u != NULL)
		legal_hold_pushed(&p, &cfg, o);
	if (rc < 0) {
		errmsg("push stopped: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (p.store_rc < 0) {
		code = EXIT_STORE;
	} else if (p.failed > 0) {
		code = EXIT_PROBLEM;
	}
	if (o->json) {
		uint64_t bytes = 0, total = 0;
		json_t *ans;

		if (r != NULL)
			cs_remote_progress(r, &bytes, &total);
		ans = json_pack("{s:s, s:I, s:I, s:I, s:I, s:O}", "remote", p.remote, "sent",
		    (json_int_t)p.sent, "present", (json_int_t)p.found, "failed",
		    (json_int_t)p.failed, "bytes", (json_int_t)bytes, "errors",
		    p.errors != NULL ? p.errors : json_array());
		if (ans == NULL)
			output_failed = 1;
		else
			print_json(ans);
		json_decref(ans);
	} else if (!o->quiet) {
		fprintf(stderr, "custos: push to %s: %u sent, %u already there, %u failed%s\n",
		    p.remote, p.sent, p.found, p.failed,
		    p.failed > 0 ? " (the evidence is safe here; fix the cause and push again)"
		                 : "");
	}
out:
	cs_remote_free(r);
	cs_upload_free(p.u);
	json_decref(p.errors);
	cs_store_close(p.st);
	cs_remote_config_fini(&cfg);
	return code;
}

int
cmd_replicas(int argc, char **argv, struct opts *o)
{
	struct cs_store *st;
	json_t *list = NULL, *it;
	int code = EXIT_OK, rc;
	size_t i;

	rc = cli_parse(argc, argv, NULL, usage_replicas, o);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1) {
		errmsg("give one evidence id: custos replicas ID");
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_replica_list(st, argv[optind], &list);
	cs_store_close(st);
	if (rc == CS_ENOTFOUND) {
		errmsg("no item %s in this store (see custos find)", argv[optind]);
		return EXIT_USAGE;
	}
	if (rc < 0) {
		errmsg("cannot read the item: %s", cs_strerror(rc));
		return EXIT_STORE;
	}
	if (o->json) {
		print_json(list);
	} else {
		if (json_array_size(list) == 0 && !o->quiet)
			fprintf(stderr,
			    "custos: no confirmed remote copy of %s yet (custos push)\n",
			    argv[optind]);
		json_array_foreach(list, i, it)
		{
			const char *v = json_string_value(json_object_get(it, "version_id"));
			const char *m = json_string_value(json_object_get(it, "lock_mode"));
			const char *u = json_string_value(json_object_get(it, "retain_until"));
			const char *dk = json_string_value(json_object_get(it, "derivative"));
			printf("%s\t%s\tversion %s\t%s%s%s\tconfirmed %s (event %lld)%s%s\n",
			    json_string_value(json_object_get(it, "remote")),
			    json_string_value(json_object_get(it, "key")), v != NULL ? v : "-",
			    m != NULL ? m : "no lock", u != NULL ? " until " : "",
			    u != NULL ? u : "", json_string_value(json_object_get(it, "time")),
			    (long long)json_integer_value(json_object_get(it, "seq")),
			    dk != NULL ? "\tderivative " : "", dk != NULL ? dk : "");
		}
	}
	json_decref(list);
	return EXIT_OK;
}

/* ---- verify --remote ---- */

struct rcheck_out {
	const struct opts *o;
	json_t *problems;
	int tty;
	time_t last;
	json_t *notes;
};

/* A purged item's object the bucket still keeps (retention, legal hold): said, not a problem. */
static void
rcheck_note(void *ctx, const struct cs_rcheck_problem *p)
{
	struct rcheck_out *v = ctx;
	json_t *j;

	if (v->tty)
		fputs("\r\033[K", stderr);
	if (!v->o->json) {
		printf("NOTE %s: %s: %s\n", p->kind, p->id != NULL ? p->id : "", p->detail);
		fflush(stdout);
		return;
	}
	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", p->kind, "object", p->object, "key",
	    p->key, "detail", p->detail, "id", p->id != NULL ? p->id : "");
	if (j == NULL || json_array_append_new(v->notes, j) < 0)
		output_failed = 1;
}

static void
rcheck_problem(void *ctx, const struct cs_rcheck_problem *p)
{
	struct rcheck_out *v = ctx;

	if (v->tty)
		fputs("\r\033[K", stderr);
	if (v->o->json) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "kind", p->kind, "object", p->object,
		    "key", p->key, "detail", p->detail);
		if (j != NULL && p->id != NULL)
			json_object_set_new(j, "id", json_string(p->id));
		if (j == NULL || json_array_append_new(v->problems, j) < 0)
			output_failed = 1;
	} else {
		printf("PROBLEM %s: %s%s%s\n", p->kind, p->id != NULL ? p->id : "",
		    p->id != NULL ? ": " : "", p->detail);
		fflush(stdout);
	}
}

static void
rcheck_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct rcheck_out *v = ctx;
	time_t now = time(NULL);

	if (!v->tty || (now == v->last && done != total))
		return;
	v->last = now;
	fprintf(stderr, "\r\033[Kchecking the bucket: %llu of %llu objects",
	    (unsigned long long)done, (unsigned long long)total);
}

int
verify_remote(struct opts *o, const char *config, int deep)
{
	struct cs_remote_config cfg = {0};
	struct rcheck_out v = {o, NULL, 0, 0, NULL};
	struct cs_rcheck_hooks hooks = {rcheck_problem, rcheck_progress, &v, rcheck_note};
	struct cs_store *st = NULL;
	char remote[1200];
	uint64_t checked = 0, problems = 0;
	int code = EXIT_OK, rc;

	if (load_config(o, config, &cfg) < 0)
		return EXIT_USAGE;
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		goto out;
	cs_remote_config_name(&cfg, remote, sizeof(remote));
	v.problems = json_array();
	v.notes = json_array();
	v.tty = isatty(STDERR_FILENO) && !o->quiet;
	rc = cs_remote_check(st, store_dir(o), &cfg, deep, &hooks, &checked, &problems);
	if (v.tty)
		fputs("\r\033[K", stderr);
	if (rc < 0 && rc != CS_EREMOTE && rc != CS_EREMOTEIO) {
		errmsg("the check could not run: %s", cs_strerror(rc));
		code = EXIT_STORE;
		goto out;
	}
	code = rc < 0 ? EXIT_STORE : problems > 0 ? EXIT_PROBLEM : EXIT_OK;
	if (o->json) {
		json_t *j = json_pack("{s:b, s:s, s:b, s:I, s:I, s:O, s:O}", "ok", code == EXIT_OK,
		    "remote", remote, "deep", deep, "checked", (json_int_t)checked,
		    "problem_count", (json_int_t)problems, "problems", v.problems, "notes",
		    v.notes);
		if (j == NULL)
			output_failed = 1;
		else
			print_json(j);
		json_decref(j);
	} else if (code == EXIT_OK) {
		printf("all intact at %s: %llu objects %s\n", remote, (unsigned long long)checked,
		    deep ? "read back and matching their SHA-256" : "present as confirmed");
	} else if (rc < 0) {
		printf("%llu object(s) could not be checked at %s (see above): the check is "
		       "incomplete; fix the cause and run it again\n",
		    (unsigned long long)problems, remote);
	} else {
		printf("%llu problem(s) found at %s among %llu objects: keep the local copies "
		       "as they are and report it\n",
		    (unsigned long long)problems, remote, (unsigned long long)checked);
	}
out:
	json_decref(v.problems);
	json_decref(v.notes);
	cs_store_close(st);
	cs_remote_config_fini(&cfg);
	return code;
}

/* ---- rebuild --from-remote ---- */

static void
rebuild_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct rcheck_out *v = ctx;
	time_t now = time(NULL);

	if (!v->tty || (now == v->last && done != total))
		return;
	v->last = now;
	fprintf(stderr, "\r\033[Krebuilding from the bucket: %s %llu of %llu", phase,
	    (unsigned long long)done, (unsigned long long)total);
}

/* The verifier key: the text given, or the first line of the file it names. */
static char *
key_text(const char *given)
{
	FILE *f = strchr(given, '+') == NULL ? fopen(given, "r") : NULL;
	char line[1024];

	if (f == NULL)
		return strdup(given);
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return strdup(line);
}

int
rebuild_remote(struct opts *o, const char *dir, const char *key, const char *station,
    const char *config, int blobs)
{
	struct cs_remote_config cfg = {0};
	struct rcheck_out v = {o, NULL, 0, 0, NULL};
	struct cs_rrebuild_result res;
	const char *env = getenv("CUSTOS_REMOTE_CONFIG");
	char why[1600], *vkey = NULL;
	int code, rc;

	if (key == NULL) {
		errmsg("give the station's verifier key with --key (custos pubkey prints it; "
		       "keep a copy away from the station): the bucket alone proves nothing");
		return EXIT_USAGE;
	}
	if (config == NULL)
		config = env != NULL && env[0] != '\0' ? env : NULL;
	if (config == NULL) {
		errmsg("give the bucket's configuration with --config FILE (a [remote] section) "
		       "or set CUSTOS_REMOTE_CONFIG");
		return EXIT_USAGE;
	}
	rc = cs_remote_config_load(&cfg, config, why, sizeof(why));
	if (rc < 0) {
		errmsg("%s", why[0] ? why : cs_strerror(rc));
		return EXIT_USAGE;
	}
	vkey = key_text(key);
	if (vkey == NULL) {
		cs_remote_config_fini(&cfg);
		errmsg("out of memory");
		return EXIT_STORE;
	}
	v.tty = isatty(STDERR_FILENO) && !o->quiet;
	rc = cs_remote_rebuild(dir, &cfg, station, vkey, blobs, rebuild_progress, &v, &res, why,
	    sizeof(why));
	if (v.tty)
		fputs("\r\033[K", stderr);
	if (rc < 0) {
		errmsg("rebuild from the bucket stopped: %s", why[0] ? why : cs_strerror(rc));
		code = rc == CS_ESIG || rc == CS_EPROOF || rc == CS_EDIGEST || rc == CS_ELEDGER
		    ? EXIT_PROBLEM
		    : rc == CS_EEXIST || rc == CS_ENOTFOUND ? EXIT_USAGE
		                                            : EXIT_STORE;
		if (code == EXIT_STORE)
			fprintf(stderr, "custos: what was downloaded is kept in %s; run the same "
			                "command again to finish\n",
			    dir);
	} else {
		code = EXIT_OK;
		if (res.completed_before && !o->json) {
			printf("the rebuild of station %s in %s had completed; the downloads it "
			       "left are removed\n",
			    res.station, dir);
		} else if (o->json) {
			json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:b}", "store", dir,
			    "station", res.station, "events", (json_int_t)res.records, "items",
			    (json_int_t)res.items, "blobs", blobs, "blobs_stored",
			    (json_int_t)res.blobs, "completed_before", res.completed_before);
			if (j == NULL)
				output_failed = 1;
			else
				print_json(j);
			json_decref(j);
		} else {
			printf("rebuilt station %s in %s from the bucket: %llu ledger events "
			       "checked against the signed checkpoint, %llu items%s\n",
			    res.station, dir, (unsigned long long)res.records,
			    (unsigned long long)res.items,
			    blobs ? ", every blob downloaded and checked"
			          : " (remote-only: their bytes are in the bucket)");
		}
	}
	free(vkey);
	cs_remote_config_fini(&cfg);
	return code;
}

void
remote_show_item(struct cs_store *st, json_t *rec)
{
	char remote[1200];

	if (cs_store_remote_only(st, json_string_value(json_object_get(rec, "sha256")), remote,
	        sizeof(remote)) == 1)
		printf("%-16s remote-only: in the bucket %s, not in this store (rebuilt without "
		       "--blobs; custos verify --remote checks it)\n",
		    "bytes", remote);
}
