/*
 * custos export and verify-bag: a case file written out as a BagIt bag
 * under an approved export request (lib/bag.c does the work and writes the
 * register entry first), with progress on a terminal; and the offline check
 * of such a bag, printing every problem with the item and file it concerns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custos/bag.h"
#include "custos/error.h"
#include "cli.h"

static const char usage_export[] =
    "usage: custos export --case C --to DIR --purpose P --approval REQ [--store DIR |\n"
    "                     --socket PATH] [--access-copies] [--json]\n"
    "\n"
    "Writes case file C as a BagIt 1.0 bag (RFC 8493) into the new directory DIR\n"
    "(it may exist if empty): the originals in DIR/data, their manifests, bag-info.txt\n"
    "(case number, date, Payload-Oxum, station, purpose, approval and register entry),\n"
    "the catalogue (catalog.json, catalog.csv), each item's record and proofs, the\n"
    "signed checkpoint, the verifier key and a README saying how to check it. An\n"
    "export always needs an approved export request REQ of yours (`custos request\n"
    "--action export`, `custos approve`); it is written to the access register before\n"
    "the first byte of the bag, and the bag cites that entry. With --store (or\n"
    "CUSTOS_STORE) the store's own user exports directly (stop custosd first: it holds\n"
    "the store); otherwise, or with --socket, custosd does the store's part for the\n"
    "user of its socket and the bytes come through it. Check it with `custos verify-bag`.\n"
    "With --access-copies, each item's access copy (`custos media`), if it has one,\n"
    "goes in too, as DIR/data/access/ID.mp4.\n"
    "Exit status 0 exported, 1 refused by a rule (named), 2 usage, 3 store error.\n";

static const char usage_verify_bag[] =
    "usage: custos verify-bag DIR [--json]\n"
    "\n"
    "Checks a bag made by `custos export` with nothing but the bag: every payload file\n"
    "against manifest-sha256.txt (and files it does not list), the other files against\n"
    "tagmanifest-sha256.txt, Payload-Oxum, each record against its file, every proof's\n"
    "signature by the bag's verifier key and inclusion in the signed checkpoint, the\n"
    "checkpoint's signature and the register entry that authorised the export. Compare\n"
    "the key it prints with the archive's (`custos pubkey`). Exit status 0 if all of it\n"
    "holds, 1 naming every problem with its item and file, 2 if DIR cannot be read.\n";

struct bar {
	int tty;
	time_t last;
};

static void
on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct bar *b = ctx;
	time_t now;

	if (!b->tty)
		return;
	now = time(NULL);
	if (now == b->last && done != total)
		return;
	b->last = now;
	fprintf(stderr, "\r\033[Kexporting: %" PRIu64 " of %" PRIu64 " bytes", done, total);
	if (done == total)
		fputs("\r\033[K", stderr);
}

/* The refusal of an export, said for the operator. */
static void
refusal(const struct cs_bag_result *res, const struct opts *o)
{
	const char *hint = "";

	if (strcmp(res->rule, CS_RULE_EXPORT_APPROVAL) == 0)
		hint = ": an export always needs an approved export request (--approval REQ; "
		       "file one with `custos request --action export` and have it approved)";
	else if (strcmp(res->rule, CS_RULE_NOT_YOURS) == 0)
		hint = ": the request was filed by another user; file your own";
	else if (strcmp(res->rule, CS_RULE_OTHER_ACTION) == 0)
		hint = ": the request is not for an export";
	else if (strcmp(res->rule, CS_RULE_PENDING) == 0)
		hint = ": the request is not approved yet";
	if (o->json) {
		json_t *j = json_pack("{s:b, s:s, s:s*}", "ok", 0, "rule", res->rule, "item",
		    res->item[0] != '\0' ? res->item : NULL);
		print_json(j);
		json_decref(j);
	}
	errmsg("refused by rule %s%s%s%s", res->rule, hint, res->item[0] != '\0' ? ": item " : "",
	    res->item);
}

/* Says how an export ended (rc: 0 or a negative code); returns the exit code. */
static int
export_said(int rc, const struct cs_bag_result *res, const char *number, const char *to,
    const struct opts *o)
{
	if (rc == CS_EDENIED) {
		refusal(res, o);
		return EXIT_PROBLEM;
	} else if (rc == CS_ENOTFOUND) {
		errmsg("there is no case file %s; `custos case list` lists them", number);
		return EXIT_USAGE;
	} else if (rc == CS_EEXIST) {
		errmsg("%s is not an empty directory; give a new directory to export into", to);
		return EXIT_USAGE;
	} else if (rc == CS_EFORMAT) {
		errmsg("the purpose must be UTF-8 text; give it with --purpose");
		return EXIT_USAGE;
	} else if (rc == CS_EDIGEST) {
		errmsg("the original or access copy of item %s (case %s) does not match its "
		       "digest; nothing was "
		       "exported; run `custos verify` (register entry %" PRIu64 " records the "
		       "attempt)",
		    res->item, number, res->entry);
		return EXIT_STORE;
	} else if (rc < 0) {
		errmsg("cannot export case %s into %s%s%s: %s%s", number, to,
		    res->item[0] != '\0' ? " at item " : "", res->item, cs_strerror(rc),
		    res->entry > 0 ? "; nothing was left there (the register entry stays)" : "");
		/* a failure at an item is the store's (a stored file missing or unreadable) */
		return res->item[0] == '\0' &&
		        (rc == -ENOENT || rc == -ENOTDIR || rc == -EINVAL || rc == -EACCES)
		    ? EXIT_USAGE
		    : EXIT_STORE;
	} else if (o->json) {
		json_t *j = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I}", "ok", 1, "case", number,
		    "bag", to, "items", (json_int_t)res->items, "bytes", (json_int_t)res->bytes,
		    "register_entry", (json_int_t)res->entry);
		print_json(j);
		json_decref(j);
	} else if (!o->quiet) {
		printf("exported case %s: %zu item(s), %" PRIu64 " bytes, into %s\n", number,
		    res->items, res->bytes, to);
		printf("register entry %" PRIu64 "; check it with `custos verify-bag %s`\n",
		    res->entry, to);
	}
	return EXIT_OK;
}

/* A socket user's export: custosd makes the plan, this process writes the bag. */
static int
export_socket(const char *sock, const char *number, const char *to, const char *purpose,
    uint64_t approval, int copies, const struct opts *o)
{
	struct cs_bag_result res = {0};
	struct bar bar = {.tty = isatty(2)};
	json_t *req, *ans = NULL;
	int rc = cs_bag_target_free(to);

	if (rc < 0)
		return export_said(rc, &res, number, to, o);
	req = json_pack("{s:s, s:s, s:s}", "cmd", "export", "case", number, "purpose", purpose);
	if (req != NULL && approval <= INT64_MAX)
		json_object_set_new(req, "approval", json_integer((json_int_t)approval));
	if (req != NULL && copies)
		json_object_set_new(req, "access_copies", json_true());
	rc = export_via_socket(sock, o, req, to, o->quiet ? NULL : on_progress, &bar, &res, &ans);
	json_decref(ans);
	return rc > 0 ? rc : export_said(rc, &res, number, to, o);
}

int
cmd_export(int argc, char **argv, struct opts *o)
{
	struct cs_bag_export x = {.approval = -1};
	struct cs_bag_result res;
	struct cs_access_policy pol;
	struct cs_access_who who;
	struct bar bar = {.tty = isatty(2)};
	const char *to = NULL, *number = NULL, *purpose = NULL, *sock = NULL;
	uint64_t approval = UINT64_MAX;
	char uname[256];
	struct cs_store *st;
	int rc, code = EXIT_OK, copies = 0;
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &number),
	    CLI_OPT("to", 0, CLI_STRING, &to), CLI_OPT("purpose", 0, CLI_STRING, &purpose),
	    CLI_OPT("approval", 0, CLI_NUMBER, &approval), CLI_OPT("socket", 0, CLI_STRING, &sock),
	    CLI_OPT("access-copies", 0, CLI_FLAG, &copies), CLI_END};

	rc = cli_parse(argc, argv, own, usage_export, o);
	if (rc >= 0)
		return rc;
	if (optind != argc || number == NULL || to == NULL || purpose == NULL) {
		fputs(usage_export, stderr);
		return EXIT_USAGE;
	}
	if (sock != NULL || store_dir(o) == NULL)
		return export_socket(sock, number, to, purpose, approval, copies, o);
	owner_who(&who, uname, sizeof(uname));
	cs_access_policy_default(&pol);
	x.number = number;
	x.purpose = purpose;
	x.approval = approval <= INT64_MAX ? (int64_t)approval : -1;
	x.pol = &pol;
	x.who = &who;
	x.access_copies = copies;
	x.progress = o->quiet ? NULL : on_progress;
	x.ctx = &bar;
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	rc = cs_bag_export(st, &x, to, &res);
	code = export_said(rc, &res, number, to, o);
	cs_store_close(st);
	return code;
}

struct vout {
	json_t *problems;
	int json;
};

static void
on_problem(void *ctx, const char *item, const char *file, const char *what)
{
	struct vout *v = ctx;

	json_array_append_new(v->problems,
	    json_pack("{s:s*, s:s*, s:s}", "item", item, "file", file, "problem", what));
	if (v->json)
		return;
	if (item != NULL)
		printf("FAILED: item %s: %s: %s\n", item, file != NULL ? file : "-", what);
	else
		printf("FAILED: %s: %s\n", file != NULL ? file : "-", what);
}

int
cmd_verify_bag(int argc, char **argv, struct opts *o)
{
	struct vout v = {.problems = json_array()};
	json_t *info = NULL;
	int rc, code;
	const struct cli_opt own[] = {CLI_END};

	rc = cli_parse(argc, argv, own, usage_verify_bag, o);
	if (rc >= 0) {
		json_decref(v.problems);
		return rc;
	}
	if (optind + 1 != argc) {
		json_decref(v.problems);
		fputs(usage_verify_bag, stderr);
		return EXIT_USAGE;
	}
	v.json = o->json;
	rc = v.problems != NULL ? cs_bag_verify(argv[optind], on_problem, &v, &info) : -ENOMEM;
	if (rc < 0) {
		errmsg("cannot check the bag %s: %s", argv[optind], cs_strerror(rc));
		json_decref(v.problems);
		return rc == -ENOMEM ? EXIT_STORE : EXIT_USAGE;
	}
	code = rc == 0 ? EXIT_OK : EXIT_PROBLEM;
	if (o->json) {
		json_object_set_new(info, "ok", json_boolean(rc == 0));
		json_object_set(info, "problems", v.problems);
		print_json(info);
	} else if (rc == 0) {
		printf("OK: bag of case %s: %lld item(s), %lld bytes; manifests, records and "
		       "proofs check out against the checkpoint of %lld events\n",
		    json_string_value(json_object_get(info, "case")),
		    (long long)json_integer_value(json_object_get(info, "items")),
		    (long long)json_integer_value(json_object_get(info, "bytes")),
		    (long long)json_integer_value(json_object_get(info, "tree_size")));
		printf("OK: the export is register entry %lld\n",
		    (long long)json_integer_value(json_object_get(info, "register_entry")));
		printf("signed by %s\ncompare this key with the archive's (`custos pubkey`)\n",
		    json_string_value(json_object_get(info, "key")));
	} else {
		fflush(stdout);
		errmsg("FAILED: %d problem(s) in the bag %s", rc, argv[optind]);
	}
	json_decref(info);
	json_decref(v.problems);
	return code;
}
