/*
 * custos fixity: when each item's blob was last re-hashed and what is
 * overdue (from the catalog), and `custos fixity check`, which re-hashes
 * items now, in the foreground, and records each check in the ledger.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/fixity.h"
#include "custos/store.h"
#include "cli.h"

static const char usage_fixity[] =
    "usage: custos fixity [--overdue] [--period DURATION] [--store DIR] [--json]\n"
    "       custos fixity check [ID...] [--store DIR] [--json]\n"
    "\n"
    "Without `check`: lists every item with the time its blob was last re-hashed\n"
    "(a \"fixity\" event in the ledger), the outcome, and when it is due again;\n"
    "--overdue lists only the items whose last check (or ingest, if never checked)\n"
    "is older than the period. The period is custosd's [fixity] period: give the\n"
    "same with --period (30d, 12h, 90m, 20s; default 30d).\n"
    "\n"
    "`check` re-hashes the items named (all of them, oldest check first, when\n"
    "none is) now and records each check; it needs the store for writing (stop\n"
    "custosd first). Exit status: 0 all intact, 1 an item is damaged or missing,\n"
    "2 a usage error or unknown id, 3 the store could not be used.\n";

/* One check of item `id`; `what` names the file found not ok ("blob", "access copy", ...). */
static int
check_one(struct cs_store *st, const char *id, const struct cs_fixity_agent *agent,
    enum cs_fixity_outcome *res, uint64_t *seq, char *what, size_t whatlen)
{
	struct cs_fixity *f = NULL;
	const char *kind = NULL, *sha = NULL;
	int rc = cs_fixity_begin(st, id, &f);

	if (rc == 0)
		rc = cs_fixity_end(f, agent, res, seq);
	if (rc == 0 && cs_fixity_problem(f, &kind, &sha) != 0 && kind != NULL)
		snprintf(what, whatlen, "%s copy (derivatives/sha256/%.2s/%.2s/%s)", kind, sha,
		    sha + 2, sha);
	else
		snprintf(what, whatlen, "blob");
	cs_fixity_free(f);
	return rc;
}

static int
parse_period(void *target, const char *v)
{
	char *end;
	unsigned long long n;
	int64_t mul = 1;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] >= '0' && v[0] <= '9' && errno == 0 && end != v) {
		if (*end != '\0')
			mul = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 :
			    *end == 'd' ? 86400 : 0;
		if (mul != 0 && (*end == '\0' || end[1] == '\0') && n > 0 &&
		    n <= (unsigned long long)(3650LL * 86400 / mul)) {
			*(int64_t *)target = (int64_t)n * mul * 1000;
			return 0;
		}
	}
	errmsg("--period must be a duration such as 30d, 12h, 90m or 20s, not '%s'", v);
	return EXIT_USAGE;
}

static int
check_items(int argc, char **argv, struct opts *o)
{
	static const struct cs_fixity_agent agent = {"custos", CUSTOS_VERSION};
	json_t *items = NULL, *sum = NULL, *out = json_array(), *it;
	struct cs_store *st;
	int code = EXIT_OK, tty = isatty(STDERR_FILENO) && !o->quiet, rc;
	size_t n, i;

	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL) {
		json_decref(out);
		return code;
	}
	if (argc == 0) {
		rc = cs_fixity_report(st, cs_fixity_now_ms(), 0, &sum, &items);
		if (rc < 0) {
			errmsg("cannot list the items: %s", cs_strerror(rc));
			code = EXIT_STORE;
			goto out;
		}
	}
	n = argc > 0 ? (size_t)argc : json_array_size(items);
	for (i = 0; i < n && out != NULL; i++) {
		const char *id = argc > 0 ? argv[i] :
		    json_string_value(json_object_get(json_array_get(items, i), "id"));
		enum cs_fixity_outcome res;
		char what[160];
		uint64_t seq;

		if (tty)
			fprintf(stderr, "\rchecking %zu of %zu: %s ", i + 1, n, id);
		rc = check_one(st, id, &agent, &res, &seq, what, sizeof(what));
		if (rc == CS_ENOTFOUND) {
			if (tty)
				fputc('\n', stderr);
			errmsg("no item %s in this store (see custos find)", id);
			code = code == EXIT_OK ? EXIT_USAGE : code;
			continue;
		}
		if (rc < 0) {
			if (tty)
				fputc('\n', stderr);
			errmsg("checking %s failed: %s", id, cs_strerror(rc));
			code = EXIT_STORE;
			break;
		}
		if (res != CS_FIXITY_OK) {
			if (tty)
				fputc('\n', stderr);
			errmsg("item %s is %s: its %s %s; the check is recorded (ledger event "
			       "%llu). Restore it from the remote copy or a backup; see "
			       "custos(1), FIXITY",
			    id, res == CS_FIXITY_MISSING ? "MISSING" : "DAMAGED", what,
			    res == CS_FIXITY_MISSING ?
				"is gone" :
				"does not match the SHA-256 recorded at ingest",
			    (unsigned long long)seq);
			if (code == EXIT_OK || code == EXIT_USAGE)
				code = EXIT_PROBLEM;
		}
		it = json_pack("{s:s, s:s, s:I}", "id", id, "outcome", cs_fixity_outcome_name(res),
		    "seq", (json_int_t)seq);
		if (it == NULL || json_array_append_new(out, it) < 0) {
			json_decref(out);
			out = NULL;
		}
		if (!o->json && !o->quiet) {
			if (tty)
				fputc('\n', stderr);
			printf("%s\t%s\n", id, cs_fixity_outcome_name(res));
		}
	}
	if (tty && n > 0)
		fprintf(stderr, "\rchecked %zu item(s)%30s\n", i, "");
	if (o->json) {
		if (out == NULL)
			output_failed = 1;
		else
			print_json(out);
	}
out:
	json_decref(out);
	json_decref(items);
	json_decref(sum);
	cs_store_close(st);
	return code;
}

int
cmd_fixity(int argc, char **argv, struct opts *o)
{
	int64_t period = (int64_t)30 * 86400 * 1000;
	json_t *sum = NULL, *items = NULL, *it, *shown = NULL;
	struct cs_store *st;
	int overdue = 0, code = EXIT_OK, rc;
	const struct cli_opt own[] = {CLI_OPT("overdue", 0, CLI_FLAG, &overdue),
	    CLI_CALL_OPT("period", &period, parse_period), CLI_END};
	size_t i;

	rc = cli_parse(argc, argv, own, usage_fixity, o);
	if (rc >= 0)
		return rc;
	if (optind < argc && strcmp(argv[optind], "check") == 0)
		return check_items(argc - optind - 1, argv + optind + 1, o);
	if (optind < argc) {
		errmsg("unexpected '%s': custos fixity [--overdue] or custos fixity check [ID...]",
		    argv[optind]);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_fixity_report(st, cs_fixity_now_ms(), period, &sum, &items);
	cs_store_close(st);
	if (rc < 0) {
		errmsg("cannot read the fixity schedule: %s", cs_strerror(rc));
		return EXIT_STORE;
	}
	shown = json_array();
	json_array_foreach(items, i, it)
	{
		if ((!overdue || json_is_true(json_object_get(it, "overdue"))) && shown != NULL &&
		    json_array_append(shown, it) < 0) {
			json_decref(shown);
			shown = NULL;
		}
	}
	if (o->json) {
		json_t *ans = shown != NULL ?
		    json_pack("{s:O, s:O}", "summary", sum, "items", shown) : NULL;
		if (ans == NULL)
			output_failed = 1;
		else
			print_json(ans);
		json_decref(ans);
	} else {
		json_t *dmg = json_object_get(sum, "damaged");
		printf("%lld item(s), %lld checked at least once, %lld overdue, %zu damaged or "
		       "missing; latest check %s\n",
		    (long long)json_integer_value(json_object_get(sum, "items")),
		    (long long)json_integer_value(json_object_get(sum, "checked")),
		    (long long)json_integer_value(json_object_get(sum, "overdue")),
		    json_array_size(dmg),
		    json_is_string(json_object_get(sum, "last_pass")) ?
		        json_string_value(json_object_get(sum, "last_pass")) : "never");
		json_array_foreach(shown, i, it)
		{
			const char *last = json_string_value(json_object_get(it, "last_checked"));
			const char *res = json_string_value(json_object_get(it, "outcome"));
			printf("%s\t%s\t%s\tdue %s%s\n",
			    json_string_value(json_object_get(it, "id")),
			    last != NULL ? last : "never checked", res != NULL ? res : "-",
			    json_string_value(json_object_get(it, "due_at")),
			    json_is_true(json_object_get(it, "overdue")) ? "\tOVERDUE" : "");
		}
		if (shown == NULL)
			output_failed = 1;
	}
	json_decref(shown);
	json_decref(items);
	json_decref(sum);
	return code;
}
