/*
 * custos prove, check-proof and check-receipt: printing inclusion proofs of
 * an item's or a case file's events, and printing what lib's checks
 * (custos/check.h) find in a proof file or a recorder's receipt, with only
 * the verifier key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/case.h"
#include "custos/check.h"
#include "custos/error.h"
#include "custos/store.h"
#include "cli.h"

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

int
cmd_prove(int argc, char **argv, struct opts *o)
{
	struct cs_store *st;
	const char *number = NULL, *what;
	char *proof = NULL;
	int rc, code = EXIT_OK;
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &number), CLI_END};

	rc = cli_parse(argc, argv, own, usage_prove, o);
	if (rc >= 0)
		return rc;
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

int
read_input(const char *path, int dash, size_t max, char **text, size_t *len)
{
	FILE *f = dash && strcmp(path, "-") == 0 ? stdin : fopen(path, "r");

	if (f == NULL) {
		errmsg("cannot open %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	*text = malloc(max);
	if (*text != NULL)
		*len = fread(*text, 1, max - 1, f);
	if (f != stdin)
		fclose(f);
	if (*text == NULL)
		return EXIT_STORE;
	(*text)[*len] = '\0';
	return EXIT_OK;
}

/*
 * After a check (rc its return value): -1 if it ran with a well-formed key,
 * else the exit code, having said why (out of memory, a malformed key).
 */
static int
check_ran(int rc, const struct cs_check *c)
{
	if (rc < 0) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	if (c->status == CS_CHECK_BADKEY) {
		errmsg("the verifier key is malformed; it looks like name+hex+base64");
		return EXIT_USAGE;
	}
	return -1;
}

/*
 * Checks proofs text (one or more tlog-proof@v1 concatenated) with the
 * verifier key (cs_check_proofs); prints what each proves, and for a case
 * file's proof that its seals match its members. Returns an exit code.
 */
static int
check_proofs(const char *text, size_t len, const char *key, const char *name,
    const struct opts *o)
{
	struct cs_check chk = {0};
	json_t *answer = json_array();
	int code = EXIT_PROBLEM;

	code = check_ran(answer != NULL ? cs_check_proofs(text, len, key, &chk) : -ENOMEM, &chk);
	if (code >= 0)
		goto out;
	code = EXIT_PROBLEM;
	for (size_t i = 0; i < chk.n_proven; i++) {
		const struct cs_proven *pv = &chk.proven[i];
		json_array_append_new(answer,
		    json_pack("{s:s, s:I, s:I, s:o*}", "origin", pv->origin, "tree_size",
		        (json_int_t)pv->tree_size, "index", (json_int_t)pv->index, "event",
		        json_incref(pv->event)));
		if (!o->json) {
			printf("OK: event %llu is in the tree of %llu events signed by %s\n",
			    (unsigned long long)pv->index, (unsigned long long)pv->tree_size,
			    pv->origin);
			printf("%.*s\n", (int)pv->extra_len, (const char *)pv->extra);
		}
	}
	switch (chk.status) {
	case CS_CHECK_OK:
		break;
	case CS_CHECK_MALFORMED:
		if (chk.part > 0)
			errmsg("%s is not a tlog-proof@v1 file (part %zu)", name, chk.part);
		else
			errmsg("%s is not a tlog-proof@v1 file", name);
		code = EXIT_USAGE;
		goto out;
	case CS_CHECK_SIGNATURE:
		errmsg("FAILED: the checkpoint is not signed by this key (proof %zu)", chk.part);
		goto out;
	case CS_CHECK_CHECKPOINT:
		errmsg("FAILED: the proof has no event bytes or a malformed checkpoint (proof %zu)",
		    chk.part);
		goto out;
	case CS_CHECK_INCLUSION:
		errmsg("FAILED: the event is not included in the signed tree (proof %zu)",
		    chk.part);
		goto out;
	default:
		errmsg("FAILED: %s", chk.why != NULL ? chk.why : "the proofs do not check out");
		goto out;
	}
	if (chk.case_file && !o->json)
		printf("OK: the events are one case file's, %zu member(s) at the end%s\n",
		    chk.members, chk.seals > 0 ? "; the seal matches them" : "");
	code = EXIT_OK;
	if (o->json) {
		json_t *j = json_pack("{s:b, s:O}", "ok", 1, "proofs", answer);
		/* the fields of the first proof at the top level, as with one proof before */
		if (j != NULL)
			json_object_update(j, json_array_get(answer, 0));
		print_json(j);
		json_decref(j);
	}
out:
	cs_check_fini(&chk);
	json_decref(answer);
	return code;
}

int
cmd_check_proof(int argc, char **argv, struct opts *o)
{
	const char *key = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc, code;
	const struct cli_opt own[] = {CLI_OPT("key", 'k', CLI_STRING, &key), CLI_END};

	rc = cli_parse(argc, argv, own, usage_check_proof, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || key == NULL) {
		fputs(usage_check_proof, stderr);
		return EXIT_USAGE;
	}
	code = read_input(argv[optind], 1, 16 << 20, &text, &len);
	if (code != EXIT_OK)
		return code;
	code = check_proofs(text, len, key, argv[optind], o);
	free(text);
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

int
cmd_check_receipt(int argc, char **argv, struct opts *o)
{
	struct cs_check chk = {0};
	const char *key = NULL;
	json_t *r, *files, *f;
	char *text = NULL;
	size_t len = 0, i;
	int rc, code = EXIT_PROBLEM;
	const struct cli_opt own[] = {CLI_OPT("key", 'k', CLI_STRING, &key), CLI_END};

	rc = cli_parse(argc, argv, own, usage_check_receipt, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || key == NULL) {
		fputs(usage_check_receipt, stderr);
		return EXIT_USAGE;
	}
	code = read_input(argv[optind], 0, 4 << 20, &text, &len);
	if (code != EXIT_OK)
		return code;
	code = check_ran(cs_check_receipt(text, len, key, &chk), &chk);
	if (code >= 0)
		goto out;
	code = EXIT_PROBLEM;
	if (chk.status == CS_CHECK_SIGNATURE) {
		errmsg("FAILED: %s is not signed by this key or was altered; do not wipe the "
		       "recorder",
		    argv[optind]);
		goto out;
	}
	if (chk.status == CS_CHECK_RECEIPT_CP) {
		errmsg("FAILED: %s; do not wipe the recorder", chk.why);
		goto out;
	}
	if (chk.status != CS_CHECK_OK) {
		errmsg("FAILED: the signed text is not a custos receipt");
		goto out;
	}
	r = chk.receipt;
	files = json_object_get(r, "files");
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
		print_gaps(chk.gaps);
		if (json_is_true(json_object_get(r, "clock_suspect")))
			printf("WARNING: the recorder's clock was more than a year off at docking "
			       "(offset %+.0f s): its recording times are suspect; set its clock\n",
			    (double)json_integer_value(json_object_get(r, "clock_offset_ms")) /
			        1000.0);
	}
out:
	cs_check_fini(&chk);
	free(text);
	return code;
}

