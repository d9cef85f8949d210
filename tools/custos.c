/*
 * custos: the command-line tool for archivists, auditors and administrators.
 * It parses arguments, calls lib/ and prints; every rule about evidence lives
 * in lib/. Exit status: 0 success, 1 a check found a problem, 2 a usage or
 * input error (the message names it), 3 the store could not be used.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/init.h"
#include "custos/merkle.h"
#include "custos/name.h"
#include "custos/note.h"
#include "custos/store.h"
#include "cli.h"
#ifdef CS_FAILPOINTS
#include "custos/failpoint.h"
#endif

static const char *prog = "custos";

static void explain_open_error(const char *dir, int rc);
static int output_failed; /* a --json answer could not be made (out of memory) */

void
errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
lib_log(void *ctx, int level, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	(void)ctx;
	if (level <= CS_LOG_INFO)
		fprintf(stderr, "%s: %s: %s\n", prog, names[level], msg);
}

/*
 * Writes JSON through a callback that fails for good after its first failure:
 * jansson (2.14) ignores a failure to write an object key, so json_dumps()
 * can return malformed JSON after one failed allocation.
 */
struct outbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static int
out_cb(const char *buf, size_t size, void *data)
{
	struct outbuf *b = data;

	if (b->failed)
		return -1;
	if (size >= b->cap - b->len) {
		size_t nc = b->cap * 2 > b->len + size + 1 ? b->cap * 2 : b->len + size + 1;
		char *np = realloc(b->p, nc);
		if (np == NULL) {
			b->failed = 1;
			return -1;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, buf, size);
	b->len += size;
	b->p[b->len] = '\0';
	return 0;
}

void
print_json(json_t *v)
{
	struct outbuf b = {NULL, 0, 0, 0};

	if (v != NULL &&
	    json_dump_callback(v, out_cb, &b, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) == 0 &&
	    !b.failed && b.p != NULL)
		puts(b.p);
	else
		output_failed = 1;
	free(b.p);
}

static const char *
store_dir(const struct opts *o)
{
	if (o->store != NULL)
		return o->store;
	return getenv("CUSTOS_STORE");
}

/* Opens the store or prints why not; returns NULL on failure. */
struct cs_store *
open_store(const struct opts *o, int flags, int *exit_code)
{
	const char *dir = store_dir(o);
	struct cs_store *st = NULL;
	int rc;

	if (dir == NULL) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		*exit_code = EXIT_USAGE;
		return NULL;
	}
	rc = cs_store_open(&st, dir, flags, lib_log, NULL);
	if (rc == 0 && (flags & CS_OPEN_WRITE))
		rc = cs_store_set_actor_process(st);
	if (rc == 0)
		return st;
	if (st != NULL) {
		cs_store_close(st);
		errmsg("out of memory");
		*exit_code = EXIT_STORE;
		return NULL;
	}
	*exit_code = EXIT_STORE;
	explain_open_error(dir, rc);
	return NULL;
}

/* Says why the store at `dir` could not be opened. */
static void
explain_open_error(const char *dir, int rc)
{
	if (rc == CS_ENOTFOUND)
		errmsg("%s is not a custos store (no custos.json); create one with `custos init`",
		    dir);
	else if (rc == CS_EBUSY)
		errmsg("the store %s is in use by another writer (custosd or another custos "
		       "command); try again when it has finished",
		    dir);
	else if (rc == CS_ESTORE)
		errmsg("the catalog of %s is damaged or missing; run `custos rebuild` to make it "
		       "again from the ledger",
		    dir);
	else if (rc == CS_ELEDGER)
		errmsg("the ledger of %s does not match its catalog; run `custos verify` to see "
		       "what is damaged",
		    dir);
	else
		errmsg("cannot open the store %s: %s", dir, cs_strerror(rc));
}

int
common_opt(int c, struct opts *o, const char *usage)
{
	switch (c) {
	case 'S':
		o->store = optarg;
		return 0;
	case 'J':
		o->json = 1;
		return 0;
	case 'q':
		o->quiet = 1;
		return 0;
	case 'h':
		fputs(usage, stdout);
		return 1;
	default:
		fputs(usage, stderr);
		return -1;
	}
}

/* ---- init ---- */

static const char usage_init[] =
    "usage: custos init [--station NAME] [--store DIR]\n"
    "\n"
    "Creates a new evidence store in DIR (or $CUSTOS_STORE) with its catalog, ledger\n"
    "and Ed25519 signing key. NAME identifies this station in evidence ids and in\n"
    "the signed checkpoints' origin line (letters, digits, '.', '_', '-'; default:\n"
    "the host name).\n";

static int
cmd_init(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"station", required_argument, NULL, 's'}, COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	char host[65] = "station";
	const char *station = NULL, *dir;
	char *vkey = NULL;
	struct cs_store *st;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		if (c == 's') {
			station = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_init);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (optind != argc) {
		fputs(usage_init, stderr);
		return EXIT_USAGE;
	}
	dir = store_dir(o);
	if (dir == NULL) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		return EXIT_USAGE;
	}
	if (station == NULL) {
		if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "station");
		host[strcspn(host, ".")] = '\0';
		station = host;
	}
	rc = cs_store_init(dir, station);
	if (rc == CS_EFORMAT) {
		errmsg("invalid station name '%s': use 1 to 32 letters, digits, '.', '_' or '-'",
		    station);
		return EXIT_USAGE;
	}
	if (rc == CS_EEXIST) {
		char marker[4096];
		struct stat sb;
		snprintf(marker, sizeof(marker), "%s/custos.json", dir);
		if (stat(marker, &sb) < 0)
			errmsg("%s holds an unfinished store (an earlier `custos init` was "
			       "interrupted); remove the directory and run `custos init` again",
			    dir);
		else
			errmsg("%s already holds a custos store; nothing was changed", dir);
		return EXIT_USAGE;
	}
	if (rc < 0) {
		errmsg("cannot create a store in %s: %s", dir, cs_strerror(rc));
		return EXIT_STORE;
	}
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	rc = cs_store_checkpoint(st, NULL);
	if (rc == 0)
		rc = cs_store_verifier_key(st, &vkey);
	if (rc < 0) {
		errmsg("the store was created but its first checkpoint failed: %s", cs_strerror(rc));
		cs_store_close(st);
		return EXIT_STORE;
	}
	if (o->json) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "station", cs_store_station(st), "origin",
		    cs_store_origin(st), "verifier_key", vkey);
		/* The directory is a path: bytes, kept as a name (custos/name.h). */
		if (j != NULL && cs_name_json_set(j, "store", dir, strlen(dir)) < 0) {
			json_decref(j);
			j = NULL;
		}
		print_json(j);
		json_decref(j);
	} else {
		printf("created store %s for station %s\n", dir, cs_store_station(st));
		printf("verifier key (give it to whoever checks this store's proofs):\n%s\n", vkey);
	}
	free(vkey);
	cs_store_close(st);
	return EXIT_OK;
}

/* ---- ingest ---- */

static const char usage_ingest[] =
    "usage: custos ingest FILE... [--case CASE] [--category C] [--stage S]\n"
    "                     [--officer ID]... [--device ID] [--recorded-at TIME]\n"
    "                     [--recorded-end TIME] [--store DIR] [--json]\n"
    "\n"
    "Secures each FILE in the store: its bytes are hashed while they are copied,\n"
    "written durably under their SHA-256, and recorded in the signed ledger and the\n"
    "catalog. Prints each file's evidence id. The same bytes ingested again are\n"
    "stored once and recorded as another sighting.\n"
    "\n"
    "  --case CASE        case number, e.g. 平司罚〔2020〕1号: the items join that case\n"
    "                     file (opened if new) at --stage; without it they are in no\n"
    "                     case until `custos case add` puts them in one\n"
    "  --category C       enforcement category, e.g. 行政处罚 or 行政检查\n"
    "  --stage S          立案 调查 取证 审查 决定 送达 执行 (or filing, investigation,\n"
    "                     collection, review, decision, service, enforcement)\n"
    "  --officer ID       enforcing officer's id; repeat for several\n"
    "  --device ID        recorder id\n"
    "  --recorded-at T    recording start, RFC 3339 (2026-11-28T08:30:00+08:00)\n"
    "  --recorded-end T   recording end, RFC 3339\n"
    "\n"
    "Directories, symbolic links, FIFOs and device nodes are refused.\n"
    "Exit status: 0 all secured, 2 a file or option was refused, 3 store failure.\n";

static const char *
refusal(int rc)
{
	switch (rc) {
	case -ELOOP:
		return "it is a symbolic link; give the path of the file itself";
	case -EISDIR:
		return "it is a directory; give the files inside it";
	case CS_ENOTREG:
		return "it is not a regular file (a FIFO, socket or device node)";
	case -ENOENT:
		return "no such file";
	case -EACCES:
	case -EPERM:
		return "permission denied; this user cannot read it";
	case CS_ECHANGED:
		return "it changed while it was being read; secure it again once it is complete";
	default:
		return cs_strerror(rc);
	}
}

/*
 * A file name as it is printed (one output line, JSON text): its readable
 * form (custos/name.h), control characters and bytes that are not UTF-8
 * written as \xHH. Returns malloc'd text.
 */
static char *
shown_name(const char *name)
{
	size_t n = cs_name_readable(name, strlen(name), NULL, 0);
	char *s = malloc(n + 1);

	if (s != NULL)
		cs_name_readable(name, strlen(name), s, n + 1);
	return s;
}

static int
cmd_ingest(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"case", required_argument, NULL, 'c'},
		{"category", required_argument, NULL, 'C'}, {"stage", required_argument, NULL, 'g'},
		{"officer", required_argument, NULL, 'o'}, {"device", required_argument, NULL, 'd'},
		{"recorded-at", required_argument, NULL, 't'},
		{"recorded-end", required_argument, NULL, 'e'}, COMMON_LONGOPTS,
		{NULL, 0, NULL, 0}};
	const char *officers[64];
	struct cs_meta m = {0};
	struct cs_store *st;
	const char *field;
	json_t *out = NULL;
	int c, rc, code = EXIT_OK, secured = 0;

	m.officers = officers;
	m.source = "cli";
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			m.case_no = optarg;
			break;
		case 'C':
			m.category = optarg;
			break;
		case 'g':
			m.stage = optarg;
			break;
		case 'o':
			if (m.n_officers == 64) {
				errmsg("too many --officer options (at most 64)");
				return EXIT_USAGE;
			}
			officers[m.n_officers++] = optarg;
			break;
		case 'd':
			m.device = optarg;
			break;
		case 't':
			m.recorded_start = optarg;
			break;
		case 'e':
			m.recorded_end = optarg;
			break;
		default:
			rc = common_opt(c, o, usage_ingest);
			if (rc != 0)
				return rc > 0 ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (optind == argc) {
		errmsg("no file given");
		fputs(usage_ingest, stderr);
		return EXIT_USAGE;
	}
	rc = cs_meta_check(&m, &field);
	if (rc == -ENOMEM) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	if (rc < 0) {
		if (strcmp(field, "stage") == 0)
			errmsg("unknown --stage '%s': use 立案, 调查, 取证, 审查, 决定, 送达 or 执行", m.stage);
		else if (strncmp(field, "recorded", 8) == 0)
			errmsg("invalid --%s: give an RFC 3339 time such as 2026-11-28T08:30:00+08:00%s",
			    strcmp(field, "recorded_start") == 0 ? "recorded-at" : "recorded-end",
			    strcmp(field, "recorded_end") == 0 ? ", not before the start" : "");
		else
			errmsg("invalid --%s: it must be 1 to 256 bytes of UTF-8 text without control "
			       "characters",
			    field);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	out = json_array();
	for (int i = optind; i < argc; i++) {
		struct cs_ingest_result r;
		char *shown = shown_name(argv[i]);
		const char *name = shown != NULL ? shown : "?";
		rc = cs_store_ingest_path(st, argv[i], &m, &r);
		if (rc < 0) {
			if (rc == CS_EFAILED || rc == -EIO || rc == -ENOSPC || rc == -EDQUOT ||
			    rc == -EROFS || rc == -ENOMEM || rc == -EAGAIN || rc == CS_ECRYPTO) {
				errmsg("could not secure '%s': %s; %snothing more is ingested", name,
				    cs_strerror(rc),
				    rc == -ENOMEM || rc == -EAGAIN || rc == CS_ECRYPTO ?
				        "" : "the store stopped taking work and ");
				code = EXIT_STORE;
				free(shown);
				break;
			}
			errmsg("refused '%s': %s", name, refusal(rc));
			code = EXIT_USAGE;
			free(shown);
			continue;
		}
		secured++;
		if (o->json) {
			json_t *one = json_pack("{s:s, s:s, s:I, s:I, s:b}", "id", r.id, "sha256",
			    r.sha256, "size", (json_int_t)r.size, "seq", (json_int_t)r.seq,
			    "duplicate", r.duplicate);
			if (one != NULL &&
			    cs_name_json_set(one, "file", argv[i], strlen(argv[i])) < 0) {
				json_decref(one);
				one = NULL;
			}
			/* out of memory: no list rather than a short one */
			if (json_array_append_new(out, one) < 0)
				output_failed = 1;
		} else if (!o->quiet) {
			printf("%s\t%s\t%s%s\n", r.id, r.sha256, name,
			    r.duplicate ? "\t(already stored; recorded as another sighting)" : "");
		}
		free(shown);
	}
	if (secured > 0 && m.case_no == NULL && !o->quiet)
		fprintf(stderr, "%s: secured without a case number: `custos case add C ID... --stage "
		                "S` puts the items in a case file\n",
		    prog);
	if (secured > 0 && code != EXIT_STORE) {
		rc = cs_store_checkpoint(st, NULL);
		if (rc < 0) {
			errmsg("the files are secured but signing a checkpoint failed: %s",
			    cs_strerror(rc));
			code = EXIT_STORE;
		}
	}
	if (o->json)
		print_json(out);
	json_decref(out);
	cs_store_close(st);
	return code;
}

/* ---- find / show / log ---- */

static void
print_record_line(json_t *r, const char *key, int prefix)
{
	const char *start = json_string_value(json_object_get(r, "recorded_start"));
	const char *cs, *stage;

	case_columns(r, key, prefix, &cs, &stage);
	printf("%s\t%s\t%s\t%s\t%lld\t%s\n", json_string_value(json_object_get(r, "id")),
	    cs ? cs : "-", stage ? stage : "-", start ? start : "-",
	    (long long)json_integer_value(json_object_get(r, "size")),
	    json_string_value(json_object_get(r, "name")));
}

static const char usage_find[] =
    "usage: custos find (--case C | --case-prefix P | --officer O | --device D |\n"
    "                    --sha256 H | --from T --to T) [--store DIR] [--json]\n"
    "\n"
    "Lists the evidence matching every criterion given. --case matches the case\n"
    "number however its brackets and digits were typed (〔〕 [] ［］ 【】, full-width\n"
    "digits); --case-prefix every case number that starts so (平司罚〔2020〕).\n"
    "--from/--to select by any sighting's recording start time (RFC 3339); either\n"
    "may be left out. Output columns: id, case, stage (of the matching case file,\n"
    "else the item's first), recorded start, size, original name.\n";

static int
cmd_find(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"case", required_argument, NULL, 'c'},
		{"case-prefix", required_argument, NULL, 'p'},
		{"officer", required_argument, NULL, 'o'}, {"device", required_argument, NULL, 'd'},
		{"sha256", required_argument, NULL, 's'}, {"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'}, COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_query q = {0};
	char *key = NULL;
	struct cs_store *st;
	json_t *res = NULL, *r;
	size_t i;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': q.case_no = optarg; break;
		case 'p': q.case_prefix = optarg; break;
		case 'o': q.officer = optarg; break;
		case 'd': q.device = optarg; break;
		case 's': q.sha256 = optarg; break;
		case 'f': q.from = optarg; break;
		case 't': q.to = optarg; break;
		default:
			rc = common_opt(c, o, usage_find);
			if (rc != 0)
				return rc > 0 ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (optind != argc || (!q.case_no && !q.case_prefix && !q.officer && !q.device && !q.sha256 &&
	                          !q.from && !q.to)) {
		fputs(usage_find, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_find(st, &q, &res);
	if (rc == 0 && (q.case_no != NULL || q.case_prefix != NULL))
		rc = cs_case_key(q.case_no != NULL ? q.case_no : q.case_prefix, &key);
	if (rc == CS_EFORMAT) {
		errmsg("invalid query: --sha256 takes 64 hex digits, --from/--to RFC 3339 times, "
		       "--case and --case-prefix 1 to 256 bytes of text");
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("search failed: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		print_json(res);
	} else {
		json_array_foreach(res, i, r)
			print_record_line(r, key, q.case_no == NULL && q.case_prefix != NULL);
		if (json_array_size(res) == 0 && !o->quiet)
			fprintf(stderr, "%s: no evidence matches\n", prog);
	}
	json_decref(res);
	free(key);
	cs_store_close(st);
	return code;
}

static const char usage_show[] =
    "usage: custos show ID [--history] [--store DIR] [--json]\n"
    "\n"
    "Prints the evidence record ID: its facts, every sighting (each arrival of the\n"
    "bytes) with its current values, every case file it is in with its stage, and\n"
    "every ledger event about it. --history also shows where each corrected value\n"
    "came from: the old value, the correcting ledger event, its time, who made it\n"
    "and why.\n";

static int
cmd_show(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"history", no_argument, NULL, 'H'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_store *st;
	json_t *rec = NULL, *evs = NULL, *e;
	const char *key;
	json_t *val;
	size_t i;
	int c, rc, code = EXIT_OK, history = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'H') {
			history = 1;
			continue;
		}
		rc = common_opt(c, o, usage_show);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		fputs(usage_show, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_get(st, argv[optind], &rec);
	if (rc == 0)
		rc = cs_store_item_events(st, argv[optind], &evs);
	if (rc == CS_ENOTFOUND) {
		errmsg("no evidence item has the id '%s'; `custos find` searches by case number",
		    argv[optind]);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("cannot read '%s': %s", argv[optind], cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		json_t *j = json_pack("{s:O, s:O}", "record", rec, "events", evs);
		print_json(j);
		json_decref(j);
	} else {
		json_object_foreach(rec, key, val)
		{
			char *s;
			if (strcmp(key, "seen") == 0 || strcmp(key, "cases") == 0 ||
			    strcmp(key, "corrections") == 0)
				continue; /* printed below */
			s = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
			printf("%-16s %s\n", key,
			    json_is_string(val) ? json_string_value(val) : (s ? s : "?"));
			free(s);
		}
		case_show_item(rec, history);
		printf("events:\n");
		json_array_foreach(evs, i, e)
		{
			json_t *ev = json_object_get(e, "event");
			printf("  #%lld  %s  %s\n", (long long)json_integer_value(json_object_get(e, "seq")),
			    json_string_value(json_object_get(ev, "time")),
			    json_string_value(json_object_get(ev, "event")));
		}
	}
	json_decref(rec);
	json_decref(evs);
	cs_store_close(st);
	return code;
}

static const char usage_log[] =
    "usage: custos log [--from N] [--limit N] [--store DIR] [--json]\n"
    "\n"
    "Lists ledger events in order, starting at index N (default 0).\n";

struct logctx {
	const struct opts *o;
	json_t *arr;
};

static int
log_one(void *ctx, uint64_t seq, json_t *ev)
{
	struct logctx *l = ctx;
	const char *id = json_string_value(json_object_get(ev, "id"));

	if (id == NULL)
		id = json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
	if (l->o->json) {
		json_array_append(l->arr, ev);
	} else {
		printf("%llu\t%s\t%s\t%s\n", (unsigned long long)seq,
		    json_string_value(json_object_get(ev, "time")),
		    json_string_value(json_object_get(ev, "event")), id ? id : "-");
	}
	return 0;
}

static int
cmd_log(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"from", required_argument, NULL, 'f'},
		{"limit", required_argument, NULL, 'l'}, COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	uint64_t from = 0, limit = UINT64_MAX;
	struct logctx l = {o, NULL};
	struct cs_store *st;
	char *end;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
		case 'l':
			errno = 0;
			if (c == 'f')
				from = strtoull(optarg, &end, 10);
			else
				limit = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || optarg[0] == '\0') {
				errmsg("--%s takes a non-negative number, not '%s'",
				    c == 'f' ? "from" : "limit", optarg);
				return EXIT_USAGE;
			}
			break;
		default:
			rc = common_opt(c, o, usage_log);
			if (rc != 0)
				return rc > 0 ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage_log, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	l.arr = json_array();
	rc = cs_store_log(st, from, limit, log_one, &l);
	if (rc < 0) {
		errmsg("reading the ledger failed: %s; run `custos verify`", cs_strerror(rc));
		code = EXIT_PROBLEM;
	}
	if (o->json)
		print_json(l.arr);
	json_decref(l.arr);
	cs_store_close(st);
	return code;
}

/* ---- verify / rebuild ---- */

static const char usage_verify[] =
    "usage: custos verify [ID...] [--checkpoint FILE]... [--store DIR] [--json]\n"
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
    "                     elsewhere (a copy of a checkpoints/<size> file): the\n"
    "                     store's key must have signed it and the ledger must\n"
    "                     still hold the signed history. A store rolled back to\n"
    "                     an older copy passes every other check.\n"
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
		fprintf(stderr, "\r\033[Kchecking stored files: %llu of %llu", (unsigned long long)done,
		    (unsigned long long)total);
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

static int
cmd_verify(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"checkpoint", required_argument, NULL, 'k'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct verify_out v = {o, NULL, 0, 0};
	const char *outside[16], *dir;
	size_t n_outside = 0;
	struct cs_store *st = NULL;
	uint64_t size = 0;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'k') {
			if (n_outside == 16) {
				errmsg("too many --checkpoint options (at most 16)");
				return EXIT_USAGE;
			}
			outside[n_outside++] = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_verify);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
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
			json_t *j = json_pack("{s:b, s:i, s:O}", "ok", 0, "problem_count", 1, "problems",
			    v.problems);
			print_json(j);
			json_decref(j);
		} else {
			printf("1 problem(s) found; the store is damaged: keep it as it is and report it\n");
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
			json_t *j = json_pack("{s:b, s:i, s:I, s:O}", "ok", rc == 0, "problem_count", rc,
			    "ledger_size", (json_int_t)size, "problems", v.problems);
			print_json(j);
			json_decref(j);
		} else if (rc == 0) {
			printf("all intact: %llu ledger events, every stored file matches its digest\n",
			    (unsigned long long)size);
		} else {
			printf("%d problem(s) found; the store is damaged: keep it as it is and report "
			       "it\n",
			    rc);
		}
	}
	json_decref(v.problems);
	cs_store_close(st);
	return code;
}

static const char usage_rebuild[] =
    "usage: custos rebuild [--store DIR] [--json]\n"
    "\n"
    "Makes the catalog again from the ledger journal alone and replaces the old\n"
    "one (use it when the catalog was lost or damaged). Needs the writer lock.\n";

static int
cmd_rebuild(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct verify_out v = {o, NULL, 0, 0};
	const char *dir;
	int64_t n;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		rc = common_opt(c, o, usage_rebuild);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
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

static int
cmd_checkpoint(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_store *st = NULL;
	char *note = NULL;
	const char *dir;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		rc = common_opt(c, o, usage_checkpoint);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
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

static const char usage_pubkey[] =
    "usage: custos pubkey [--store DIR]\n"
    "\n"
    "Prints the store's verifier key (C2SP signed-note format), which checks its\n"
    "checkpoints and proofs.\n";

static int
cmd_pubkey(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_store *st;
	char *vkey = NULL;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		rc = common_opt(c, o, usage_pubkey);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_verifier_key(st, &vkey);
	if (rc < 0) {
		errmsg("cannot read the verifier key: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		printf("%s\n", vkey);
	}
	free(vkey);
	cs_store_close(st);
	return code;
}

static const char usage_prove[] =
    "usage: custos prove ID [--store DIR]\n"
    "       custos prove --case C [--store DIR]\n"
    "\n"
    "Prints inclusion proofs in the latest signed checkpoint, in the C2SP\n"
    "tlog-proof@v1 format, one after another: of every ledger event of item ID (its\n"
    "ingest, sightings, case memberships and corrections), or with --case of every\n"
    "event of case file C (opened, items added and removed, corrections, closed,\n"
    "sealed). Each event's exact bytes are on its 'extra' line, so the proofs and\n"
    "the verifier key are all a checker needs (see `custos check-proof`).\n";

static int
cmd_prove(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"case", required_argument, NULL, 'c'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_store *st;
	const char *number = NULL, *what;
	char *proof = NULL;
	int c, rc, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'c') {
			number = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_prove);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (optind + (number == NULL ? 1 : 0) != argc) {
		fputs(usage_prove, stderr);
		return EXIT_USAGE;
	}
	what = number != NULL ? number : argv[optind];
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = number != NULL ? cs_store_prove_case(st, number, &proof) :
	                      cs_store_prove_item(st, argv[optind], &proof);
	if (rc == CS_ENOTFOUND) {
		if (number != NULL)
			errmsg("there is no case file %s; `custos case list` lists them", number);
		else
			errmsg("no evidence item has the id '%s'", argv[optind]);
		code = EXIT_USAGE;
	} else if (rc == -EAGAIN) {
		errmsg("'%s' is not yet covered by a signed checkpoint; run `custos checkpoint` "
		       "and try again",
		    what);
		code = EXIT_PROBLEM;
	} else if (rc < 0) {
		errmsg("cannot prove '%s': %s", what, cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		fputs(proof, stdout);
	}
	free(proof);
	cs_store_close(st);
	return code;
}

static const char usage_check_proof[] =
    "usage: custos check-proof PROOF-FILE --key VERIFIER-KEY [--json]\n"
    "\n"
    "Checks a file made by `custos prove` without any store: for each tlog-proof@v1\n"
    "in it, the checkpoint's signature by the key and the event's inclusion in the\n"
    "signed tree. For a case file's proofs (`custos prove --case`) it also checks\n"
    "that every seal matches the members the events before it give. Prints the\n"
    "proven events. Exit status 0 if all of it holds, 1 if not.\n";

static int
cmd_check_proof(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"key", required_argument, NULL, 'k'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	const char *key = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int c, rc, code;

	while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
		if (c == 'k') {
			key = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_check_proof);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (optind + 1 != argc || key == NULL) {
		fputs(usage_check_proof, stderr);
		return EXIT_USAGE;
	}
	f = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "r");
	if (f == NULL) {
		errmsg("cannot open %s: %s", argv[optind], strerror(errno));
		return EXIT_USAGE;
	}
	text = malloc(16 << 20);
	if (text != NULL)
		len = fread(text, 1, (16 << 20) - 1, f);
	if (f != stdin)
		fclose(f);
	if (text == NULL)
		return EXIT_STORE;
	text[len] = '\0';
	code = check_proofs(text, len, key, argv[optind], o);
	free(text);
	return code;
}

/* ---- status / docks / check-receipt ---- */

static const char usage_status[] =
    "usage: custos status [--socket PATH] [--store DIR] [--json]\n"
    "\n"
    "Asks the running custosd (through its control socket, by default\n"
    "STORE/custosd.sock) for its state: files waiting, in progress, secured and\n"
    "refused, the ledger size, the latest checkpoint and the docked recorders.\n";

static int
cmd_status(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"socket", required_argument, NULL, 'k'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *sock = NULL, *dir;
	char path[sizeof(sa.sun_path)], buf[65536];
	json_t *ans, *docks, *k;
	size_t len = 0, i;
	int c, rc, fd;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'k') {
			sock = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_status);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	dir = store_dir(o);
	if (sock == NULL && dir == NULL) {
		errmsg("no store given: use --store DIR, set CUSTOS_STORE, or give --socket PATH");
		return EXIT_USAGE;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s%s", sock ? sock : dir,
	        sock ? "" : "/custosd.sock") >= sizeof(path)) {
		errmsg("the control socket path is too long");
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, path, sizeof(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		errmsg("custosd is not answering at %s (%s); is it running for this store?", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_STORE;
	}
	if (write(fd, "{\"cmd\":\"status\"}\n", 17) != 17) {
		close(fd);
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
			printf("  PAUSED: the store's disk is full: %.1f MiB free, %.1f MiB needed;\n"
			       "  free space on that disk (or lower `reserve`): it resumes by itself\n",
			    (double)json_integer_value(json_object_get(ans, "store_free_bytes")) / 1048576,
			    (double)json_integer_value(json_object_get(ans, "needed_bytes")) / 1048576);
		else if (state != NULL && strcmp(state, "failed") == 0)
			printf("  STOPPED: the store failed (see the journal: journalctl -u custosd);\n"
			       "  repair the storage, then restart custosd\n");
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
			snprintf(gtext + len, sizeof(gtext) - len, "%s%lld-%lld", i ? "," : "", a, b);
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

static int
cmd_docks(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"all", no_argument, NULL, 'a'}, COMMON_LONGOPTS,
		{NULL, 0, NULL, 0}};
	struct docks_ctx dc = {o, NULL, 0};
	struct cs_store *st;
	int c, rc, all = 0, code = EXIT_OK;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'a') {
			all = 1;
			continue;
		}
		rc = common_opt(c, o, usage_docks);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
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

static const char usage_check_receipt[] =
    "usage: custos check-receipt RECEIPT --key VERIFIER-KEY [--json]\n"
    "\n"
    "Checks a CUSTOS-RECEIPT.json written by custosd into a recorder's folder: the\n"
    "signature by the station's key, then lists what it says was secured. A\n"
    "recorder may be wiped only when its receipt checks out. Exit 0 if it does.\n";

/*
 * A receipt's sequence gaps, each to be explained before the recorder is
 * wiped: "sequence gaps: 13, 20-22" or "sequence gaps: none".
 */
static void
print_gaps(const json_t *gaps)
{
	const json_t *g;
	size_t i;

	printf("sequence gaps:");
	json_array_foreach(gaps, i, g)
	{
		long long a = (long long)json_integer_value(json_array_get(g, 0));
		long long b = (long long)json_integer_value(json_array_get(g, 1));
		if (a == b)
			printf("%s %lld", i ? "," : "", a);
		else
			printf("%s %lld-%lld", i ? "," : "", a, b);
	}
	if (json_array_size(gaps) == 0)
		printf(" none\n");
	else
		printf(" (sequence numbers never secured from this recorder: explain each before "
		       "wiping it)\n");
}

static int
cmd_check_receipt(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"key", required_argument, NULL, 'k'},
		COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	struct cs_verifier *v = NULL;
	const char *key = NULL;
	json_t *r = NULL, *files, *f;
	char *text = NULL;
	size_t len = 0, tl, i;
	FILE *fp;
	int c, rc, code = EXIT_PROBLEM;

	while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
		if (c == 'k') {
			key = optarg;
			continue;
		}
		rc = common_opt(c, o, usage_check_receipt);
		if (rc != 0)
			return rc > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (optind + 1 != argc || key == NULL) {
		fputs(usage_check_receipt, stderr);
		return EXIT_USAGE;
	}
	fp = fopen(argv[optind], "r");
	if (fp == NULL) {
		errmsg("cannot open %s: %s", argv[optind], strerror(errno));
		return EXIT_USAGE;
	}
	text = malloc(4 << 20);
	if (text != NULL)
		len = fread(text, 1, (4 << 20) - 1, fp);
	fclose(fp);
	if (text == NULL)
		return EXIT_STORE;
	text[len] = '\0';
	if (cs_verifier_parse(&v, key, strlen(key)) < 0) {
		errmsg("the verifier key is malformed; it looks like name+hex+base64");
		code = EXIT_USAGE;
		goto out;
	}
	if (cs_note_verify(v, text, len, &tl) < 0) {
		errmsg("FAILED: %s is not signed by this key or was altered; do not wipe the "
		       "recorder",
		    argv[optind]);
		goto out;
	}
	r = json_loadb(text, tl, 0, NULL);
	files = json_object_get(r, "files");
	if (r == NULL || !json_is_array(files)) {
		errmsg("FAILED: the signed text is not a custos receipt");
		goto out;
	}
	code = EXIT_OK;
	if (o->json) {
		json_object_set_new(r, "ok", json_true());
		print_json(r);
	} else {
		printf("OK: receipt of session %s for recorder %s, signed by %s\n",
		    json_string_value(json_object_get(r, "session")),
		    json_string_value(json_object_get(r, "device")),
		    json_string_value(json_object_get(r, "origin")));
		json_array_foreach(files, i, f)
			printf("  %s\t%lld\t%s\t%s\n", json_string_value(json_object_get(f, "id")),
			    (long long)json_integer_value(json_object_get(f, "size")),
			    json_string_value(json_object_get(f, "sha256")),
			    json_string_value(json_object_get(f, "name")));
		printf("%zu file(s) secured (custody: %s)\n", json_array_size(files),
		    json_string_value(json_object_get(r, "release_policy")));
		print_gaps(json_object_get(r, "sequence_gaps"));
		if (json_is_true(json_object_get(r, "clock_suspect")))
			printf("WARNING: the recorder's clock was more than a year off at docking "
			       "(offset %+.0f s): its recording times are suspect; set its clock\n",
			    (double)json_integer_value(json_object_get(r, "clock_offset_ms")) / 1000.0);
	}
out:
	json_decref(r);
	cs_verifier_free(v);
	free(text);
	return code;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*fn)(int, char **, struct opts *);
	const char *summary;
} commands[] = {
	{"init", cmd_init, "create a store and its signing key"},
	{"ingest", cmd_ingest, "secure files as evidence (of a case, if given)"},
	{"find", cmd_find, "find evidence by case, officer, device, digest or time"},
	{"show", cmd_show, "show one item and its ledger events"},
	{"case", cmd_case, "open, fill, close, seal, show and list case files"},
	{"amend", cmd_amend, "correct a fact of a sighting, membership or case file"},
	{"verify", cmd_verify, "check blobs, ledger, checkpoints and catalog"},
	{"rebuild", cmd_rebuild, "make the catalog again from the ledger"},
	{"prove", cmd_prove, "print the inclusion proofs of an item's or a case's events"},
	{"check-proof", cmd_check_proof, "check a proof with a verifier key, without a store"},
	{"checkpoint", cmd_checkpoint, "sign and print the latest checkpoint"},
	{"pubkey", cmd_pubkey, "print the store's verifier key"},
	{"log", cmd_log, "list ledger events"},
	{"status", cmd_status, "ask the running custosd for its queues and docks"},
	{"docks", cmd_docks, "list recorder dock sessions, gaps and clock offsets"},
	{"check-receipt", cmd_check_receipt, "check a recorder's CUSTOS-RECEIPT.json"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: custos COMMAND [OPTIONS]\n\n"
	           "custos keeps evidence files tamper-evident: content-addressed storage,\n"
	           "a signed Merkle ledger and a catalog by case number.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nThe store is --store DIR or $CUSTOS_STORE. `custos COMMAND --help` and\n"
	           "`man custos` tell more. --json gives machine-readable output.\n");
}

int
main(int argc, char **argv)
{
	struct opts o = {0};

#ifdef CS_FAILPOINTS
	/* Test build: OpenSSL's allocations may be made to fail (before any use of it). */
	if (cs__failalloc_init() < 0 || cs__failalloc_wanted("uv")) {
		fprintf(stderr, "custos: CUSTOS_OOM_LIB: only crypto applies to the CLI\n");
		return EXIT_USAGE;
	}
#endif
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("custos %s\n", CUSTOS_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			int code;
			if (cs_lib_init() < 0) {
				errmsg("out of memory");
				return EXIT_STORE;
			}
			argv[1] = argv[0];
			code = commands[i].fn(argc - 1, argv + 1, &o);
			if (output_failed && code == EXIT_OK) {
				errmsg("out of memory: the answer could not be printed");
				code = EXIT_STORE;
			}
			return code;
		}
	}
	errmsg("unknown command '%s'", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
