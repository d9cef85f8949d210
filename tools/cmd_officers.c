/*
 * custos officers and custos stats: the officer registry (imported from an
 * archivist's CSV file, listed) and the yearly figures the rules ask for.
 * The registry's rules and the counting are lib's (custos/officer.h,
 * custos/custody.h); this file parses arguments and prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "custos/checkpoint.h"
#include "custos/custody.h"
#include "custos/error.h"
#include "custos/officer.h"

#define OFFICERS_MAX ((size_t)16 << 20)

static const char usage_officers[] =
    "usage: custos officers import FILE.csv [--store DIR]\n"
    "       custos officers list [--json | --csv] [--store DIR]\n"
    "\n"
    "The officer registry: who may enforce, with which certificate, valid when.\n"
    "`import` reads a CSV file (RFC 4180; UTF-8) whose first line names the columns:\n"
    "name, post (or unit; optional), certificate, valid_from, valid_to (or 姓名,\n"
    "岗位/单位, 执法证号, 有效期起, 有效期止). Dates are YYYY-MM-DD (a whole UTC day)\n"
    "or RFC 3339 times; an empty valid_to has no end. The whole file is checked\n"
    "first: on any error nothing is imported and the message names the line and\n"
    "the field. Each officer becomes a signed ledger event; importing a certificate\n"
    "again replaces its entry (the ledger keeps both). Recordings name officers by\n"
    "certificate number: once the registry holds anyone, a recording whose officer\n"
    "is not in it, or whose certificate was not valid at the recording time, is\n"
    "flagged (`custos show`, `custos find`, `custos case show`, `custos stats`).\n";

static int
officers_import(struct opts *o, const char *path)
{
	struct cs_officer_error err;
	struct cs_store *st;
	char *text = NULL;
	size_t len = 0, count = 0;
	int rc, code;

	code = read_input(path, 1, OFFICERS_MAX + 1, &text, &len);
	if (code != EXIT_OK)
		return code;
	if (len > OFFICERS_MAX - 1) {
		errmsg("%s is larger than 16 MiB: not an officer list; split it", path);
		free(text);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL) {
		free(text);
		return code;
	}
	rc = cs_officers_import(st, text, len, &count, &err);
	if (rc == CS_EFORMAT) {
		if (err.line > 0 && err.field != NULL)
			errmsg("%s, line %zu, field %s: %s; nothing was imported", path, err.line,
			    err.field, err.why);
		else if (err.line > 0)
			errmsg("%s, line %zu: %s; nothing was imported", path, err.line,
			    err.why != NULL ? err.why : "not CSV");
		else
			errmsg("%s: %s; nothing was imported", path,
			    err.why != NULL ? err.why : "not CSV");
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("could not write the registry: %s (%zu of the officers were written)",
		    cs_strerror(rc), count);
		code = EXIT_STORE;
	} else {
		if (!o->quiet)
			printf("imported %zu officers from %s\n", count, path);
		rc = cs_store_checkpoint(st, NULL);
		if (rc < 0) {
			errmsg("the officers are recorded but signing a checkpoint failed: %s",
			    cs_strerror(rc));
			code = EXIT_STORE;
		}
	}
	free(text);
	cs_store_close(st);
	return code;
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int
officers_list(struct opts *o, int csv)
{
	static const char *const head[] = {"certificate", "name", "post", "valid_from", "valid_to",
	    "seq"};
	struct cs_store *st;
	json_t *list = NULL, *e;
	size_t i;
	int rc, code = EXIT_OK;

	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_officers(st, &list);
	if (rc < 0) {
		errmsg("cannot read the registry: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		print_json(list);
	} else {
		if (csv)
			csv_row(stdout, head, 6);
		json_array_foreach(list, i, e)
		{
			char seq[24];
			const char *f[6] = {str(e, "certificate"), str(e, "name"), str(e, "post"),
			    str(e, "valid_from"), str(e, "valid_to"), seq};
			snprintf(seq, sizeof(seq), "%lld",
			    (long long)json_integer_value(json_object_get(e, "seq")));
			if (csv)
				csv_row(stdout, f, 6);
			else
				printf("%s\t%s\t%s\t%s\t%s\n", f[0], f[1], f[2] ? f[2] : "-", f[3],
				    f[4] ? f[4] : "-");
		}
		if (json_array_size(list) == 0 && !o->quiet && !csv)
			errmsg("the registry is empty; `custos officers import FILE.csv` fills it");
	}
	json_decref(list);
	cs_store_close(st);
	return code;
}

int
cmd_officers(int argc, char **argv, struct opts *o)
{
	int csv = 0, rc;
	const struct cli_opt own[] = {CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};
	const char *sub;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_officers, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	sub = argv[1];
	argv[1] = argv[0];
	argc--;
	argv++;
	rc = cli_parse(argc, argv, own, usage_officers, o);
	if (rc >= 0)
		return rc;
	if (strcmp(sub, "import") == 0 && argc - optind == 1 && !csv)
		return officers_import(o, argv[optind]);
	if (strcmp(sub, "list") == 0 && argc - optind == 0 && !(csv && o->json))
		return officers_list(o, csv);
	if (strcmp(sub, "import") != 0 && strcmp(sub, "list") != 0)
		errmsg("unknown `custos officers` command '%s'", sub);
	fputs(usage_officers, stderr);
	return EXIT_USAGE;
}

/* ---- custos stats ---- */

static const char usage_stats[] =
    "usage: custos stats --year Y [--json | --csv] [--store DIR]\n"
    "\n"
    "The year's figures (the rules' yearly statistics): the recordings with a\n"
    "sighting recorded in year Y (recording start, UTC), their count and bytes, by\n"
    "enforcement category, stage (of the recording or of a case file holding it),\n"
    "officer (certificate number) and device; an item counts once under each value\n"
    "it has, '(none)' when it has none. Flagged: recordings whose officer is unknown\n"
    "or whose certificate was not valid then. Accesses by requester kind: the year's\n"
    "entries of the access register (views, copies, exports let through) by the kind\n"
    "of requester they name (internal-legal, police, party, lawyer, ...). --csv\n"
    "writes rows dimension,value,items,bytes (for requester_kind, items is the\n"
    "number of accesses).\n";

static int
year_arg(void *target, const char *arg)
{
	char *end;
	long y;

	errno = 0;
	y = strtol(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg || y < 1970 || y > 9999) {
		errmsg("--year takes a year from 1970 to 9999, e.g. --year 2026");
		return EXIT_USAGE;
	}
	*(int *)target = (int)y;
	return 0;
}

/* The widest name in the stats' tables (at least 30 columns), so that the counts line up. */
static int
key_width(json_t *s, const char *const *dims)
{
	const char *sets[] = {"flags", dims[0], dims[1], dims[2], dims[3],
	    "accesses_by_requester_kind"};
	const char *k;
	json_t *v;
	int w = 30;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
		json_object_foreach(json_object_get(s, sets[i]), k, v)
		{
			(void)v;
			if (cell_width(k) > w)
				w = cell_width(k);
		}
	return w;
}

int
cmd_stats(int argc, char **argv, struct opts *o)
{
	static const char *const dims[] = {"by_category", "by_stage", "by_officer", "by_device",
	    "flags"};
	int year = 0, csv = 0, rc, code = EXIT_OK;
	const struct cli_opt own[] = {CLI_CALL_OPT("year", &year, year_arg),
	    CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};
	struct cs_store *st;
	json_t *s = NULL, *v;
	const char *k;

	rc = cli_parse(argc, argv, own, usage_stats, o);
	if (rc >= 0)
		return rc;
	if (optind != argc || year == 0 || (csv && o->json)) {
		fputs(usage_stats, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_stats(st, year, &s);
	if (rc < 0) {
		errmsg("cannot count: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		print_json(s);
	} else if (csv) {
		static const char *const head[] = {"dimension", "value", "items", "bytes"};
		char items[24], bytes[24];
		const char *f[4] = {"total", "", items, bytes};
		csv_row(stdout, head, 4);
		snprintf(items, sizeof(items), "%lld",
		    (long long)json_integer_value(json_object_get(s, "items")));
		snprintf(bytes, sizeof(bytes), "%lld",
		    (long long)json_integer_value(json_object_get(s, "bytes")));
		csv_row(stdout, f, 4);
		for (size_t d = 0; d < 5; d++) {
			json_object_foreach(json_object_get(s, dims[d]), k, v)
			{
				f[0] = d == 4 ? "flagged" : dims[d] + 3;
				f[1] = k;
				snprintf(items, sizeof(items), "%lld",
				    (long long)(d == 4
				            ? json_integer_value(v)
				            : json_integer_value(json_object_get(v, "items"))));
				if (d == 4)
					bytes[0] = '\0';
				else
					snprintf(bytes, sizeof(bytes), "%lld",
					    (long long)json_integer_value(
					        json_object_get(v, "bytes")));
				csv_row(stdout, f, 4);
			}
		}
		bytes[0] = '\0';
		f[0] = "requester_kind";
		json_object_foreach(json_object_get(s, "accesses_by_requester_kind"), k, v)
		{
			f[1] = k;
			snprintf(items, sizeof(items), "%lld",
			    (long long)json_integer_value(json_object_get(v, "accesses")));
			csv_row(stdout, f, 4);
		}
	} else {
		int w = key_width(s, dims);

		printf("year            %d\n", year);
		printf("recordings      %lld (%lld bytes)\n",
		    (long long)json_integer_value(json_object_get(s, "items")),
		    (long long)json_integer_value(json_object_get(s, "bytes")));
		printf("flagged         %lld\n",
		    (long long)json_integer_value(json_object_get(s, "flagged")));
		json_object_foreach(json_object_get(s, "flags"), k, v)
		{
			printf("  ");
			print_cell(stdout, k, w);
			printf(" %lld\n", (long long)json_integer_value(v));
		}
		for (size_t d = 0; d < 4; d++) {
			printf("%s:\n", dims[d] + 3);
			json_object_foreach(json_object_get(s, dims[d]), k, v)
			{
				printf("  ");
				print_cell(stdout, k, w);
				printf(" %8lld items %14lld bytes\n",
				    (long long)json_integer_value(json_object_get(v, "items")),
				    (long long)json_integer_value(json_object_get(v, "bytes")));
			}
		}
		printf("accesses by requester kind (the access register):\n");
		json_object_foreach(json_object_get(s, "accesses_by_requester_kind"), k, v)
		{
			printf("  ");
			print_cell(stdout, k, w);
			printf(" %8lld (view %lld, copy %lld, export %lld)\n",
			    (long long)json_integer_value(json_object_get(v, "accesses")),
			    (long long)json_integer_value(json_object_get(v, "view")),
			    (long long)json_integer_value(json_object_get(v, "copy")),
			    (long long)json_integer_value(json_object_get(v, "export")));
		}
	}
	json_decref(s);
	cs_store_close(st);
	return code;
}
