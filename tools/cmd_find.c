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
#include "custos/store.h"
#include "cli.h"

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

int
cmd_find(int argc, char **argv, struct opts *o)
{
	struct cs_query q = {0};
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &q.case_no),
		CLI_OPT("case-prefix", 0, CLI_STRING, &q.case_prefix),
		CLI_OPT("officer", 0, CLI_STRING, &q.officer),
		CLI_OPT("device", 0, CLI_STRING, &q.device),
		CLI_OPT("sha256", 0, CLI_STRING, &q.sha256),
		CLI_OPT("from", 0, CLI_STRING, &q.from),
		CLI_OPT("to", 0, CLI_STRING, &q.to), CLI_END};
	char *key = NULL;
	struct cs_store *st;
	json_t *res = NULL, *r;
	size_t i;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_find, o);
	if (rc >= 0)
		return rc;
	if (optind != argc ||
	    (!q.case_no && !q.case_prefix && !q.officer && !q.device && !q.sha256 && !q.from &&
	        !q.to)) {
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
		print_json(j);
		json_decref(j);
	} else {
		json_object_foreach(rec, key, val)
		{
			char *s;
			if (strcmp(key, "seen") == 0 || strcmp(key, "cases") == 0 ||
			    strcmp(key, "corrections") == 0 || strcmp(key, "media") == 0)
				continue; /* printed below */
			s = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
			printf("%-16s %s\n", key,
			    json_is_string(val) ? json_string_value(val) : (s ? s : "?"));
			free(s);
		}
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

