/*
 * custos verify, rebuild and checkpoint: checking the whole store (with
 * progress on a terminal), making the catalog again from the ledger, and
 * signing or showing the latest checkpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/remote_rebuild.h"
#include "custos/store.h"
#include "cli.h"

/* ---- verify / rebuild ---- */

static const char usage_verify[] =
    "usage: custos verify [ID...] [--checkpoint FILE]... [--store DIR] [--json]\n"
    "       custos verify --remote [--deep] [--config FILE] [--store DIR] [--json]\n"
    "\n"
    "Checks the store: re-reads and re-hashes the ledger, recomputes the Merkle\n"
    "root at every signed checkpoint and checks the signatures, compares the\n"
    "catalog with a replay of the ledger, and re-hashes the stored bytes of every\n"
    "item (or only of the items named). Reports each damaged or missing item by\n"
    "id and each ledger problem by position. A catalog that cannot be read (LMDB\n"
    "crashes on it or reports it damaged) is reported as a problem, and the rest\n"
    "is still checked without it.\n"
    "\n"
    "  --checkpoint FILE  also check the store against a signed checkpoint kept\n"
    "                     elsewhere (a copy of checkpoints/latest): the\n"
    "                     store's key must have signed it and the ledger must\n"
    "                     still hold the signed history. A store rolled back to\n"
    "                     an older copy passes every other check.\n"
    "  --remote           check the bucket instead (see custos(1), REMOTE): every\n"
    "                     object the ledger says it holds is asked for (HEAD):\n"
    "                     present, size, SHA-256, Object Lock retention not\n"
    "                     shortened, one version only\n"
    "  --deep             with --remote: read every object back and hash it\n"
    "Exit status: 0 all intact, 1 problems found, 3 the check could not run.\n";

struct verify_out {
	const struct opts *o;
	json_t *problems;
	int tty;
	time_t last;
};

static void
on_problem(void *ctx, const struct cs_problem *p)
{
	struct verify_out *v = ctx;

	if (v->tty)
		fputs("\r\033[K", stderr);
	if (v->o->json) {
		json_t *j = json_pack("{s:s}", "kind", p->kind);
		/* A detail can name a file given on the command line: bytes, kept as a name. */
		if (j != NULL && cs_name_json_set(j, "detail", p->detail, strlen(p->detail)) < 0) {
			json_decref(j);
			j = NULL;
		}
		if (p->id != NULL)
			json_object_set_new(j, "id", json_string(p->id));
		if (p->position >= 0)
			json_object_set_new(j, "position", json_integer(p->position));
		if (json_array_append_new(v->problems, j) < 0)
			output_failed = 1; /* out of memory: no list rather than a short one */
	} else {
		char *shown = shown_name(p->detail);
		printf("PROBLEM %s: %s\n", p->kind, shown != NULL ? shown : p->detail);
		free(shown);
		fflush(stdout);
	}
}

static void
on_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct verify_out *v = ctx;
	time_t now;

	if (!v->tty)
		return;
	now = time(NULL);
	if (now == v->last && done != total)
		return;
	v->last = now;
	if (strcmp(phase, "blobs") == 0)
		fprintf(stderr, "\r\033[Kchecking stored files: %llu of %llu",
		    (unsigned long long)done, (unsigned long long)total);
	else if (total > 0)
		fprintf(stderr, "\r\033[Kchecking the %s: %3.0f%%", phase,
		    100.0 * (double)done / (double)total);
}

/* Reads a whole small file (a checkpoint note); NULL with a message on failure. */
static char *
read_small(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (f == NULL) {
		errmsg("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 1);
	*len = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
	fclose(f);
	if (buf == NULL || *len > max) {
		if (buf == NULL)
			errmsg("out of memory");
		else
			errmsg("%s is too large to be a checkpoint", path);
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

int
cmd_verify(int argc, char **argv, struct opts *o)
{
	struct verify_out v = {o, NULL, 0, 0};
	const char *outside[16], *dir;
	size_t n_outside = 0;
	const char *config = NULL;
	int remote = 0, deep = 0;
	const struct cli_opt own[] = {CLI_LIST_OPT("checkpoint", outside, 16, &n_outside),
		CLI_OPT("remote", 0, CLI_FLAG, &remote), CLI_OPT("deep", 0, CLI_FLAG, &deep),
		CLI_OPT("config", 0, CLI_STRING, &config), CLI_END};
	struct cs_store *st = NULL;
	uint64_t size = 0;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_verify, o);
	if (rc >= 0)
		return rc;
	if (remote || deep || config != NULL) {
		if (!remote || optind != argc || n_outside > 0) {
			errmsg("--deep and --config go with --remote, which takes no ID or "
			       "--checkpoint: custos verify --remote [--deep]");
			return EXIT_USAGE;
		}
		return verify_remote(o, config, deep);
	}
	dir = store_dir(o);
	if (dir == NULL) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		return EXIT_USAGE;
	}
	/* verify reads the catalog in a child process: a damaged one can crash LMDB. */
	rc = cs_store_open(&st, dir, CS_OPEN_READ | CS_OPEN_NOCATALOG, lib_log, NULL);
	if (rc == CS_ELEDGER) {
		/* A reader's open fails so only when ledger/journal is not a ledger journal. */
		struct cs_problem p = {"ledger-damaged", NULL, 0,
		    "ledger/journal does not begin with the custos ledger header (its first 16 "
		    "bytes are damaged, or it is not a regular file): no entry can be read"};
		v.problems = json_array();
		on_problem(&v, &p);
		if (o->json) {
			json_t *j = json_pack("{s:b, s:i, s:O}", "ok", 0, "problem_count", 1,
			    "problems", v.problems);
			print_json(j);
			json_decref(j);
		} else {
			printf("1 problem(s) found; the store is damaged: keep it as it is and "
			       "report it\n");
		}
		json_decref(v.problems);
		return EXIT_PROBLEM;
	}
	if (rc < 0) {
		explain_open_error(dir, rc);
		return EXIT_STORE;
	}
	v.problems = json_array();
	v.tty = isatty(STDERR_FILENO) && !o->quiet;
	rc = cs_store_verify(st, (const char *const *)argv + optind, (size_t)(argc - optind),
	    on_problem, on_progress, &v, &size);
	for (size_t i = 0; i < n_outside && rc >= 0; i++) {
		size_t len;
		char *note = read_small(outside[i], 1 << 16, &len);
		int r;
		if (note == NULL) {
			json_decref(v.problems);
			cs_store_close(st);
			return EXIT_USAGE;
		}
		r = cs_store_verify_checkpoint(st, outside[i], note, len, on_problem, &v);
		free(note);
		rc = r < 0 ? r : rc + r;
	}
	if (v.tty)
		fputs("\r\033[K", stderr);
	if (rc < 0) {
		errmsg("the check could not run: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		code = rc > 0 ? EXIT_PROBLEM : EXIT_OK;
		if (o->json) {
			json_t *j = json_pack("{s:b, s:i, s:I, s:O}", "ok", rc == 0,
			    "problem_count", rc, "ledger_size", (json_int_t)size, "problems",
			    v.problems);
			print_json(j);
			json_decref(j);
		} else if (rc == 0) {
			char bucket[1200];
			printf("all intact: %llu ledger events, every stored file matches its "
			       "digest\n",
			    (unsigned long long)size);
			if (cs_store_remote_only(st, NULL, bucket, sizeof(bucket)) == 1)
				printf("this store was rebuilt without blobs: the bytes it lacks "
				       "are in the bucket %s (custos verify --remote checks "
				       "them)\n",
				    bucket);
		} else {
			printf("%d problem(s) found; the store is damaged: keep it as it is and "
			       "report it\n",
			    rc);
		}
	}
	json_decref(v.problems);
	cs_store_close(st);
	return code;
}

static const char usage_rebuild[] =
    "usage: custos rebuild [--store DIR] [--json]\n"
    "       custos rebuild --from-remote DIR --key KEY [--station S] [--blobs]\n"
    "                      [--config FILE] [--json]\n"
    "\n"
    "Makes the catalog again from the ledger journal alone and replaces the old\n"
    "one (use it when the catalog was lost or damaged). Needs the writer lock.\n"
    "\n"
    "With --from-remote, makes a new store in DIR (new or empty) from the bucket\n"
    "of the [remote] section of FILE (default $CUSTOS_REMOTE_CONFIG): the\n"
    "station's newest checkpoint, checked against KEY (the station's verifier\n"
    "key, or a file holding it, as `custos pubkey` printed it: the bucket alone\n"
    "proves nothing), and every ledger record up to it, which must hash to the\n"
    "signed root. With --blobs every item's bytes are downloaded and checked\n"
    "too; without, the items are remote-only. A run that was stopped is run\n"
    "again and finishes. The store has no private key: it reads, and signs again\n"
    "only once keys/ledger.key is restored. See custos(1), REMOTE.\n"
    "Exit status: 0 done, 1 the bucket does not match the key or the checkpoint,\n"
    "2 usage, 3 the rebuild could not run.\n";

int
cmd_rebuild(int argc, char **argv, struct opts *o)
{
	struct verify_out v = {o, NULL, 0, 0};
	const char *dir;
	int64_t n;
	int rc, blobs = 0;
	const char *from = NULL, *key = NULL, *station = NULL, *config = NULL;
	const struct cli_opt own[] = {CLI_OPT("from-remote", 0, CLI_STRING, &from),
		CLI_OPT("key", 0, CLI_STRING, &key), CLI_OPT("station", 0, CLI_STRING, &station),
		CLI_OPT("blobs", 0, CLI_FLAG, &blobs), CLI_OPT("config", 0, CLI_STRING, &config),
		CLI_END};

	rc = cli_parse(argc, argv, own, usage_rebuild, o);
	if (rc >= 0)
		return rc;
	if (from != NULL || key != NULL || station != NULL || blobs || config != NULL) {
		if (from == NULL || optind != argc) {
			errmsg("--key, --station, --blobs and --config go with --from-remote DIR: "
			       "custos rebuild --from-remote DIR --key KEY");
			return EXIT_USAGE;
		}
		return rebuild_remote(o, from, key, station, config, blobs);
	}
	dir = store_dir(o);
	if (dir == NULL || optind != argc) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		return EXIT_USAGE;
	}
	v.tty = isatty(STDERR_FILENO) && !o->quiet;
	n = cs_store_rebuild(dir, on_progress, &v);
	if (v.tty)
		fputs("\r\033[K", stderr);
	if (n < 0) {
		if (n == CS_EBUSY)
			errmsg("the store %s is in use by another writer; stop it first", dir);
		else if (n == CS_ELEDGER)
			errmsg("the ledger is damaged part-way; the old catalog was kept. Run "
			       "`custos verify` to see where");
		else
			errmsg("rebuild failed: %s", cs_strerror((int)n));
		return n == CS_ELEDGER ? EXIT_PROBLEM : EXIT_STORE;
	}
	if (o->json) {
		json_t *j = json_pack("{s:I}", "events", (json_int_t)n);
		print_json(j);
		json_decref(j);
	} else {
		printf("rebuilt the catalog from %lld ledger events\n", (long long)n);
	}
	return EXIT_OK;
}

/* ---- checkpoint / pubkey / prove / check-proof ---- */

static const char usage_checkpoint[] =
    "usage: custos checkpoint [--store DIR]\n"
    "\n"
    "Signs a checkpoint of the ledger if it grew since the last one (when no other\n"
    "writer holds the store) and prints the latest signed checkpoint.\n";

int
cmd_checkpoint(int argc, char **argv, struct opts *o)
{
	struct cs_store *st = NULL;
	char *note = NULL;
	const char *dir;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, NULL, usage_checkpoint, o);
	if (rc >= 0)
		return rc;
	dir = store_dir(o);
	rc = dir != NULL ? cs_store_open(&st, dir, CS_OPEN_WRITE, lib_log, NULL) : CS_EBUSY;
	if (rc == 0) {
		rc = cs_store_checkpoint(st, &note);
	} else if (rc != CS_EBUSY) {
		/* Not merely busy: recovery found a problem; say so, never retry it. */
		explain_open_error(dir, rc);
		return EXIT_STORE;
	} else {
		/* custosd holds the store and signs its own checkpoints: show the latest. */
		st = open_store(o, CS_OPEN_READ, &code);
		if (st == NULL)
			return code;
		rc = cs_store_latest_checkpoint(st, &note);
	}
	if (rc < 0) {
		errmsg("no checkpoint: %s", cs_strerror(rc));
		code = rc == CS_ECONFLICT ? EXIT_PROBLEM : EXIT_STORE;
	} else {
		fputs(note, stdout);
	}
	free(note);
	cs_store_close(st);
	return code;
}
