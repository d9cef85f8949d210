/*
 * custos disclosure: decisions' publication records (公开) and what must be
 * withdrawn. Writing (publish, revoke, withdraw) goes through custosd's
 * control socket, which knows the user and his role; listing (list, due)
 * reads the store directly for its own user, or asks custosd when no store
 * is given (--socket or $CUSTOS_SOCKET only). The rules are lib's
 * (custos/disclosure.h); this file parses arguments and prints.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "custos/disclosure.h"
#include "custos/error.h"

static const char usage_disclosure[] =
    "usage: custos disclosure publish --case C --decision NO [--item ID] [--at TIME]\n"
    "                                 [--party person|organisation]\n"
    "       custos disclosure publish --case C --decision NO [--item ID] --exempt REASON\n"
    "                                 [--text WHY]\n"
    "       custos disclosure revoke --case C --decision NO --reason R [--at TIME]\n"
    "       custos disclosure withdraw --case C --decision NO\n"
    "       custos disclosure list [--case C] [--json | --csv]\n"
    "       custos disclosure due [--json | --csv]\n"
    "  (each also takes --socket PATH, --store DIR)\n"
    "\n"
    "Decisions' publication records. `publish` records when decision NO (its\n"
    "document number, such as 平司罚决〔2026〕3号) of case C was published (--at, an\n"
    "RFC 3339 time; default now) and whether the party is a natural person or an\n"
    "organisation (default: the case's party); it must be withdrawn 2 years later\n"
    "for a person, 5 for an organisation (custosd.conf [disclosure]). --exempt\n"
    "records instead why it is never published: minor, state-secret, trade-secret,\n"
    "privacy, security, hinders-enforcement, or other with --text. `revoke` makes a\n"
    "published decision due for withdrawal at once; `withdraw` records that it was\n"
    "taken down. `due` lists what must be withdrawn now, oldest first, with why\n"
    "(period-over, revoked). Withdrawal dates are calendar years in UTC+08:00.\n"
    "Writing goes through custosd (roles in [disclosure] publishers, default\n"
    "legal, admin); listing reads the store, or asks custosd without one.\n";

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The CSV columns and the fields of a record they show. */
static const char *const cols[] = {"case", "decision", "item", "state", "published", "party",
    "years", "withdraw_by", "why_due", "exempt", "text", "revoked", "revoke_reason",
    "withdrawn"};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static void
print_records(json_t *recs, int csv, int due, const struct opts *o)
{
	json_t *e;
	size_t i;

	if (o->json) {
		print_json(recs);
		return;
	}
	if (csv)
		csv_row(stdout, cols, NCOLS);
	json_array_foreach(recs, i, e)
	{
		const char *f[NCOLS];
		char years[24];
		for (size_t c = 0; c < NCOLS; c++)
			f[c] = str(e, cols[c]);
		years[0] = '\0';
		if (json_is_integer(json_object_get(e, "years")))
			snprintf(years, sizeof(years), "%lld",
			    (long long)json_integer_value(json_object_get(e, "years")));
		f[6] = years[0] != '\0' ? years : NULL;
		if (csv) {
			csv_row(stdout, f, NCOLS);
		} else if (due) {
			printf("%s\t%s\t", f[7], f[8]);
			print_cell(stdout, f[0], 0);
			putchar('\t');
			print_cell(stdout, f[1], 0);
			putchar('\n');
		} else {
			print_cell(stdout, f[0], 0);
			putchar('\t');
			print_cell(stdout, f[1], 0);
			printf("\t%s\t%s\t%s\t%s\n", f[3], f[4] != NULL ? f[4] : "-",
			    f[5] != NULL ? f[5] : f[9] != NULL ? f[9] : "-",
			    f[7] != NULL ? f[7] : "-");
		}
	}
	if (json_array_size(recs) == 0 && !o->quiet && !csv)
		errmsg(due ? "nothing is due for withdrawal" : "no publication records");
}

/* list and due: from the store when one is given (and no --socket), else through custosd. */
static int
read_records(const char *sock, struct opts *o, const char *number, int csv, int due)
{
	json_t *recs = NULL, *ans = NULL, *req;
	struct cs_store *st;
	int rc, code = EXIT_OK;

	if (sock != NULL || store_dir(o) == NULL) {
		req = json_pack("{s:s}", "cmd", due ? "disclosure-due" : "disclosure-list");
		code = socket_call(sock, o, socket_with(req, "case", number), &ans);
		if (code != EXIT_OK)
			return code;
		print_records(json_object_get(ans, "records"), csv, due, o);
		json_decref(ans);
		return EXIT_OK;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = due ? cs_disclosure_due(st, cs_now_ms(), &recs)
	         : cs_disclosure_list(st, number, &recs);
	if (rc == CS_ENOTFOUND || rc == CS_EFORMAT) {
		errmsg("there is no such case: %s", number != NULL ? number : "");
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("cannot read the publication records: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		print_records(recs, csv, due, o);
	}
	json_decref(recs);
	cs_store_close(st);
	return code;
}

int
cmd_disclosure(int argc, char **argv, struct opts *o)
{
	const char *sock = NULL, *number = NULL, *decision = NULL, *item = NULL, *at = NULL,
	           *party = NULL, *exempt = NULL, *text = NULL, *reason = NULL, *sub;
	int csv = 0, rc;
	json_t *req, *ans;
	const struct cli_opt own[] = {CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("case", 0, CLI_STRING, &number), CLI_OPT("decision", 0, CLI_STRING, &decision),
	    CLI_OPT("item", 0, CLI_STRING, &item), CLI_OPT("at", 0, CLI_STRING, &at),
	    CLI_OPT("party", 0, CLI_STRING, &party), CLI_OPT("exempt", 0, CLI_STRING, &exempt),
	    CLI_OPT("text", 0, CLI_STRING, &text), CLI_OPT("reason", 0, CLI_STRING, &reason),
	    CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_disclosure, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	sub = argv[1];
	argv[1] = argv[0];
	argc--;
	argv++;
	rc = cli_parse(argc, argv, own, usage_disclosure, o);
	if (rc >= 0)
		return rc;
	if (optind != argc || (csv && o->json)) {
		fputs(usage_disclosure, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "list") == 0 || strcmp(sub, "due") == 0)
		return read_records(sock, o, number, csv, sub[0] == 'd');
	if (strcmp(sub, "publish") != 0 && strcmp(sub, "revoke") != 0 &&
	    strcmp(sub, "withdraw") != 0) {
		errmsg("unknown `custos disclosure` command '%s' (publish, revoke, withdraw, list, "
		       "due)", sub);
		return EXIT_USAGE;
	}
	if (number == NULL || decision == NULL) {
		errmsg("name the decision by its case and document number: --case C --decision NO");
		return EXIT_USAGE;
	}
	req = json_pack("{s:s+}", "cmd", "disclosure-", sub);
	{
		/* the options as the request's members (after parsing: their values) */
		const char *const keys[] = {"case", "decision", "item", "at", "party", "exempt",
		    "text", "reason"};
		const char *const vals[] = {number, decision, item, at, party, exempt, text,
		    reason};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			req = socket_with(req, keys[i], vals[i]);
	}
	rc = socket_call(sock, o, req, &ans);
	if (rc != EXIT_OK)
		return rc;
	if (o->json)
		print_json(ans);
	else if (!o->quiet)
		printf("recorded: ledger event #%lld\n",
		    (long long)json_integer_value(json_object_get(ans, "seq")));
	json_decref(ans);
	return EXIT_OK;
}
