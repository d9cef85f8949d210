/*
 * custos find, show and log: reading the catalog (evidence by case, officer,
 * device, digest or time; one item with its sightings and events) and the
 * ledger.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/remote_rebuild.h"
#include "custos/store.h"
#include "cli.h"

/* ---- find / show / log ---- */

static void
print_record_line(const struct cs_listing *l, const char *key, int prefix)
{
	const char *cs, *stage;

	case_columns(l, key, prefix, &cs, &stage);
	printf("%s\t%s\t%s\t%s\t%lld\t%s%s%s%s\n", l->id, cs ? cs : "-", stage ? stage : "-",
	    l->recorded_start ? l->recorded_start : "-", (long long)l->size,
	    l->name ? l->name : "-", l->n_flags > 0 ? "\tflagged" : "",
	    l->purged != NULL ? "\tpurged " : "", l->purged != NULL ? l->purged : "");
}

/* Comma-separated strings, malloc'd. */
static char *
joined(const char **v, size_t n)
{
	size_t len = 1, off = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		len += (v[i] != NULL ? strlen(v[i]) : 0) + 1;
	s = malloc(len);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t l = v[i] != NULL ? strlen(v[i]) : 0;
		if (i > 0)
			s[off++] = ',';
		memcpy(s + off, v[i] != NULL ? v[i] : "", l);
		off += l;
	}
	s[off] = '\0';
	return s;
}

static const char *const csv_head[] = {"id", "case", "stage", "recorded_start", "size", "name",
	"sha256", "officers", "device", "category", "flags"};

static void
print_record_csv(const struct cs_listing *l, const char *key, int prefix)
{
	const char *cs, *stage, *f[11];
	char size[24], *officers = joined(l->officers, l->n_officers);
	char *flags = joined(l->flags, l->n_flags);

	case_columns(l, key, prefix, &cs, &stage);
	snprintf(size, sizeof(size), "%lld", (long long)l->size);
	f[0] = l->id;
	f[1] = cs;
	f[2] = stage;
	f[3] = l->recorded_start;
	f[4] = size;
	f[5] = l->name;
	f[6] = l->sha256;
	f[7] = officers;
	f[8] = l->device;
	f[9] = l->category;
	f[10] = flags;
	if (officers == NULL || flags == NULL)
		output_failed = 1;
	csv_row(stdout, f, 11);
	free(officers);
	free(flags);
}

static const char usage_find[] =
    "usage: custos find (--case C [--exact] | --case-prefix P | --officer O | --device D |\n"
    "                    --category X | --stage S | --sha256 H | --from T --to T)...\n"
    "                   [--sort KEY] [--limit N] [--after CURSOR] [--json | --csv]\n"
    "                   [--store DIR]\n"
    "\n"
    "Lists the evidence matching every criterion given. --case matches the case\n"
    "number however its brackets and digits were typed (〔〕 [] ［］ 【】, full-width\n"
    "digits); with --exact only as first written; --case-prefix every case number\n"
    "that starts so (平司罚〔2020〕). --officer takes a certificate number, --stage\n"
    "立案 … 执行 (or filing … enforcement), --category the category as recorded.\n"
    "--from/--to select by any sighting's recording start time (RFC 3339); either\n"
    "may be left out. --sort id (default), time, ingested, case or size; -KEY\n"
    "reverses it. --limit N gives N at a time; the next page is --after the cursor\n"
    "printed on stderr (with --json the answer is {items, total, next}).\n"
    "Output columns: id, case, stage (of the matching case file, else the item's\n"
    "first), recorded start, size, original name, and 'flagged' for a recording\n"
    "whose officer is unknown or not certified then (`custos show` says why), and\n"
    "'purged TIME plan N' for an item whose bytes a purge removed (its record stays).\n"
    "--csv writes RFC 4180 CSV with a header.\n";

int
cmd_find(int argc, char **argv, struct opts *o)
{
	struct cs_query q = {0};
	int csv = 0;
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &q.case_no),
		CLI_OPT("case-prefix", 0, CLI_STRING, &q.case_prefix),
		CLI_OPT("exact", 0, CLI_FLAG, &q.case_exact),
		CLI_OPT("officer", 0, CLI_STRING, &q.officer),
		CLI_OPT("device", 0, CLI_STRING, &q.device),
		CLI_OPT("category", 0, CLI_STRING, &q.category),
		CLI_OPT("stage", 0, CLI_STRING, &q.stage),
		CLI_OPT("sha256", 0, CLI_STRING, &q.sha256),
		CLI_OPT("from", 0, CLI_STRING, &q.from),
		CLI_OPT("to", 0, CLI_STRING, &q.to),
		CLI_OPT("sort", 0, CLI_STRING, &q.sort),
		CLI_OPT("limit", 0, CLI_NUMBER, &q.limit),
		CLI_OPT("after", 0, CLI_STRING, &q.after),
		CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};
	char *key = NULL;
	struct cs_store *st;
	struct cs_list *list = NULL;
	json_t *page = NULL;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_find, o);
	if (rc >= 0)
		return rc;
	if (optind != argc ||
	    (!q.case_no && !q.case_prefix && !q.officer && !q.device && !q.sha256 && !q.from &&
	        !q.to && !q.category && !q.stage)) {
		fputs(usage_find, stderr);
		return EXIT_USAGE;
	}
	if (q.case_exact && q.case_no == NULL) {
		errmsg("--exact goes with --case");
		return EXIT_USAGE;
	}
	if (csv && o->json) {
		errmsg("give --json or --csv, not both");
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	/* text and CSV from the items' listings; --json gives their whole records */
	if (o->json)
		rc = cs_store_find_page(st, &q, &page);
	else
		rc = cs_store_list(st, &q, &list);
	if (rc == 0 && (q.case_no != NULL || q.case_prefix != NULL))
		rc = cs_case_key(q.case_no != NULL ? q.case_no : q.case_prefix, &key);
	if (rc == CS_EFORMAT) {
		errmsg("invalid query: --sha256 takes 64 hex digits, --from/--to RFC 3339 times, "
		       "--case and --case-prefix 1 to 256 bytes of text, --stage 立案 … 执行, "
		       "--sort id, time, ingested, case or size, --after a cursor printed by an "
		       "earlier page");
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("search failed: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		print_json(q.limit > 0 || q.after != NULL ? page : json_object_get(page, "items"));
	} else {
		int prefix = q.case_no == NULL && q.case_prefix != NULL;
		if (csv)
			csv_row(stdout, csv_head, 11);
		for (size_t i = 0; i < list->n; i++) {
			if (csv)
				print_record_csv(&list->items[i], key, prefix);
			else
				print_record_line(&list->items[i], key, prefix);
		}
		if (list->n == 0 && !o->quiet)
			fprintf(stderr, "%s: no evidence matches\n", prog);
		if (list->next != NULL && !o->quiet)
			fprintf(stderr, "%s: %llu matches; the next page: --after %s\n", prog,
			    (unsigned long long)list->total, list->next);
	}
	cs_list_free(list);
	json_decref(page);
	free(key);
	cs_store_close(st);
	return code;
}

static const char usage_show[] =
    "usage: custos show ID [--history] [--store DIR] [--json]\n"
    "\n"
    "Prints the evidence record ID: its facts, every sighting (each arrival of the\n"
    "bytes) with its current values, every case file it is in with its stage, its\n"
    "media record (custos media) and every ledger event about it. --history also\n"
    "shows where each corrected value came from: the old value, the correcting\n"
    "ledger event, its time, who made it and why.\n";

int
cmd_show(int argc, char **argv, struct opts *o)
{
	struct cs_store *st;
	json_t *rec = NULL, *evs = NULL, *e;
	const char *key;
	json_t *val;
	size_t i;
	int rc, code = EXIT_OK, history = 0;
	const struct cli_opt own[] = {CLI_OPT("history", 0, CLI_FLAG, &history), CLI_END};

	rc = cli_parse(argc, argv, own, usage_show, o);
	if (rc >= 0)
		return rc;
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
		char remote[1200];
		if (j != NULL &&
		    cs_store_remote_only(st, json_string_value(json_object_get(rec, "sha256")),
		        remote, sizeof(remote)) == 1)
			json_object_set_new(j, "remote_only", json_string(remote));
		print_json(j);
		json_decref(j);
	} else {
		json_object_foreach(rec, key, val)
		{
			char *s;
			if (strcmp(key, "seen") == 0 || strcmp(key, "cases") == 0 ||
			    strcmp(key, "corrections") == 0 || strcmp(key, "media") == 0 ||
			    strcmp(key, "fingerprint") == 0)
				continue; /* printed below */
			s = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
			printf("%-16s %s\n", key,
			    json_is_string(val) ? json_string_value(val) : (s ? s : "?"));
			free(s);
		}
		remote_show_item(st, rec);
		case_show_item(rec, history);
		media_show_item(rec);
		printf("events:\n");
		json_array_foreach(evs, i, e)
		{
			json_t *ev = json_object_get(e, "event");
			printf("  #%lld  %s  %s\n",
			    (long long)json_integer_value(json_object_get(e, "seq")),
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

int
cmd_log(int argc, char **argv, struct opts *o)
{
	uint64_t from = 0, limit = UINT64_MAX;
	const struct cli_opt own[] = {CLI_OPT("from", 0, CLI_NUMBER, &from),
		CLI_OPT("limit", 0, CLI_NUMBER, &limit), CLI_END};
	struct logctx l = {o, NULL};
	struct cs_store *st;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_log, o);
	if (rc >= 0)
		return rc;
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

