/*
 * custos hold and custos retention: holds on cases and items, the marks of
 * evidence used in a decision, and what is due under custosd's retention
 * classes. They speak to custosd through its control socket (custosd knows
 * the user by his uid and gives him his role); custosd decides
 * (lib/retention.c) and writes the ledger events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A hold number operand; -1 if `s` is not one. */
static long long
hold_number(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' || s[0] < '0' || s[0] > '9' ? -1 : v;
}

/*
 * A command with subcommands: *sub the subcommand, the options parsed into
 * `own` and *o, optind at its first operand in argv. -1 to go on, else the
 * exit code (after --help, or a usage message).
 */
static int
sub_parse(int argc, char **argv, const struct cli_opt *own, const char *usage,
    struct opts *o, const char **sub)
{
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	*sub = argv[1];
	argv[1] = argv[0];
	rc = cli_parse(argc - 1, argv + 1, own, usage, o);
	if (rc < 0)
		optind++; /* the operands of argv + 1, in argv */
	return rc;
}

/* ---- custos hold ---- */

static const char usage_hold[] =
    "usage: custos hold add (--case C | --item ID) --reason R [--socket PATH] [--json]\n"
    "       custos hold release HOLD --reason R [--socket PATH] [--json]\n"
    "       custos hold list [--all] [--socket PATH] [--json]\n"
    "\n"
    "A hold keeps a case file's items (all of them, as long as they are in it) or\n"
    "one item from any purge, whatever its retention class says, until it is\n"
    "released. `add` prints the hold's number; `release` ends it; `list` shows the\n"
    "holds in force (--all: released ones too, with who released them and why).\n"
    "Adding and releasing need a role of custosd's [retention] holders (legal,\n"
    "admin by default); both are ledger events.\n"
    "Exit status: 0 done, 1 refused by a rule, 2 bad request, 3 custosd failed.\n";

static void
print_hold(json_t *h)
{
	json_t *rel = json_object_get(h, "released");
	const char *c = json_string_value(json_object_get(h, "case"));

	printf("hold %lld  %s %s  since %s by %s: ", (long long)json_integer_value(
	    json_object_get(h, "hold")), c != NULL ? "case" : "item",
	    c != NULL ? c : json_string_value(json_object_get(h, "id")),
	    json_string_value(json_object_get(h, "time")),
	    json_string_value(json_object_get(json_object_get(h, "actor"), "name")));
	print_cell(stdout, json_string_value(json_object_get(h, "reason")), 0);
	putchar('\n');
	if (rel != NULL) {
		printf("         released %s by %s: ",
		    json_string_value(json_object_get(rel, "time")),
		    json_string_value(json_object_get(json_object_get(rel, "actor"), "name")));
		print_cell(stdout, json_string_value(json_object_get(rel, "reason")), 0);
		putchar('\n');
	}
}

int
cmd_hold(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *number = NULL, *id = NULL, *reason = NULL, *sub = NULL;
	int all = 0, rc;
	long long hold = -1;
	json_t *req = NULL, *ans, *h;
	size_t i;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &number), CLI_OPT("item", 0, CLI_STRING, &id),
	    CLI_OPT("reason", 0, CLI_STRING, &reason), CLI_OPT("all", 0, CLI_FLAG, &all),
	    CLI_END};

	rc = sub_parse(argc, argv, own, usage_hold, o, &sub);
	if (rc >= 0)
		return rc;
	if (strcmp(sub, "add") == 0 && optind == argc) {
		if ((number == NULL) == (id == NULL) || reason == NULL) {
			errmsg("a hold is on one case (--case C) or one item (--item ID), with "
			       "--reason R");
			return EXIT_USAGE;
		}
		req = json_pack("{s:s, s:s, s:s*, s:s*}", "cmd", "hold-add", "reason", reason,
		    "case", number, "id", id);
	} else if (strcmp(sub, "release") == 0 && optind + 1 == argc) {
		hold = hold_number(argv[optind]);
		if (hold < 0 || reason == NULL) {
			errmsg("release names the hold by its number (custos hold list) and says "
			       "why: --reason R");
			return EXIT_USAGE;
		}
		req = json_pack("{s:s, s:I, s:s}", "cmd", "hold-release", "hold",
		    (json_int_t)hold, "reason", reason);
	} else if (strcmp(sub, "list") == 0 && optind == argc) {
		req = json_pack("{s:s, s:b}", "cmd", "holds", "all", all);
	} else {
		errmsg("unknown `custos hold` command or operands: '%s'", sub);
		fputs(usage_hold, stderr);
		return EXIT_USAGE;
	}
	rc = socket_call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(ans);
	else if (sub[0] == 'a')
		printf("hold %lld added: %lld items held\n",
		    (long long)json_integer_value(json_object_get(ans, "hold")),
		    (long long)json_integer_value(json_object_get(ans, "items")));
	else if (sub[0] == 'r')
		printf("hold %lld released\n", hold);
	else {
		json_array_foreach(json_object_get(ans, "holds"), i, h)
			print_hold(h);
		if (json_array_size(json_object_get(ans, "holds")) == 0)
			printf("no holds%s\n", all ? "" : " in force");
	}
	json_decref(ans);
	return EXIT_OK;
}

/* ---- custos retention ---- */

static const char usage_retention[] =
    "usage: custos retention used ID --case C --reason R [--undo] [--socket PATH] [--json]\n"
    "       custos retention plan [--write] [--socket PATH] [--json]\n"
    "       custos retention plans [--socket PATH] [--json]\n"
    "       custos retention show PLAN [--socket PATH] [--json]\n"
    "       custos retention approve PLAN [--socket PATH] [--json]\n"
    "       custos retention cancel PLAN --reason R [--socket PATH] [--json]\n"
    "       custos retention execute PLAN [--config FILE] [--store DIR]\n"
    "\n"
    "`used` marks item ID as used as evidence in a decision of case file C: it is\n"
    "then kept for ever (--undo takes the mark away); the roles of custosd's\n"
    "[retention] holders may. `plan` shows what is due for purging now under\n"
    "custosd's retention classes ([retention] class.NAME): each item with the\n"
    "class that keeps it longest, the time its period counts from and when it\n"
    "ran out; then the items whose period is over but that something blocks (a\n"
    "hold, an open case, a use in a decision, a plan already), and why. Nothing\n"
    "is written: a purge plan is made and approved apart. --json gives\n"
    "{\"time\", \"due\": [...], \"blocked\": [...], \"kept\"}. The purge plans\n"
    "(`plan --write`, `plans`, `show`, `approve`, `cancel`, `execute`): `custos\n"
    "retention plans --help`.\n"
    "Exit status: 0 done, 1 refused by a rule, 2 bad request, 3 custosd failed.\n";

static void
print_items(const char *title, json_t *items)
{
	json_t *it, *c;
	size_t i, j;

	printf("%s: %zu\n", title, json_array_size(items));
	if (json_array_size(items) == 0)
		return;
	printf("  %-24s %-10s %-10s %-10s %s\n", "ITEM", "CLASS", "FROM", "DUE", "CASES");
	json_array_foreach(items, i, it)
	{
		const char *due = json_string_value(json_object_get(it, "due"));
		const char *why = json_string_value(json_object_get(it, "why"));
		const char *cls = json_string_value(json_object_get(it, "class"));
		const char *from = json_string_value(json_object_get(it, "from"));
		printf("  %-24s ", json_string_value(json_object_get(it, "id")));
		print_cell(stdout, cls != NULL ? cls : "-", 10);
		printf(" %-10s %-10.10s ", from != NULL ? from : "-", due != NULL ? due : "-");
		json_array_foreach(json_object_get(it, "cases"), j, c)
		{
			print_cell(stdout, json_string_value(c), 0);
			putchar(' ');
		}
		if (json_array_size(json_object_get(it, "cases")) == 0)
			fputs("(none)", stdout);
		putchar('\n');
		if (why != NULL) {
			fputs("      why: ", stdout);
			print_cell(stdout, why, 0);
			putchar('\n');
		}
	}
}

int
cmd_retention(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *number = NULL, *reason = NULL, *sub = NULL;
	int undo = 0, rc;
	json_t *req, *ans, *plan;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &number), CLI_OPT("reason", 0, CLI_STRING, &reason),
	    CLI_OPT("undo", 0, CLI_FLAG, &undo), CLI_END};

	if (purge_is_sub(argc, argv))
		return cmd_purge(argc, argv, o); /* plans and their execution (cmd_purge.c) */
	rc = sub_parse(argc, argv, own, usage_retention, o, &sub);
	if (rc >= 0)
		return rc;
	if (strcmp(sub, "used") == 0 && optind + 1 == argc) {
		if (number == NULL || reason == NULL) {
			errmsg("used names the case of the decision (--case C) and says why "
			       "(--reason R)");
			return EXIT_USAGE;
		}
		req = json_pack("{s:s, s:s, s:s, s:s, s:b}", "cmd", "retention-used", "id",
		    argv[optind], "case", number, "reason", reason, "undo", undo);
	} else if (strcmp(sub, "plan") == 0 && optind == argc) {
		req = json_pack("{s:s}", "cmd", "retention-compute");
	} else {
		errmsg("unknown `custos retention` command or operands: '%s'", sub);
		fputs(usage_retention, stderr);
		return EXIT_USAGE;
	}
	rc = socket_call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	plan = json_object_get(ans, "plan");
	if (o->json && plan != NULL)
		print_json(plan);
	else if (o->json)
		print_json(ans);
	else if (plan == NULL)
		printf("item %s %s as evidence in a decision of case %s\n", argv[optind],
		    undo ? "no longer marked used" : "marked used", number);
	else {
		printf("retention at %s\n", json_string_value(json_object_get(plan, "time")));
		print_items("due", json_object_get(plan, "due"));
		print_items("blocked", json_object_get(plan, "blocked"));
		printf("kept (not due yet, or for ever): %lld\n",
		    (long long)json_integer_value(json_object_get(plan, "kept")));
	}
	json_decref(ans);
	return EXIT_OK;
}
