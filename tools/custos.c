/*
 * custos: the command-line tool for archivists, auditors and administrators.
 * It parses arguments, calls lib/ and prints; every rule about evidence lives
 * in lib/. Exit status: 0 success, 1 a check found a problem, 2 a usage or
 * input error (the message names it), 3 the store could not be used.
 *
 * This file holds main: the options before the command (--store DIR, as
 * `git -C`), --help, --version and the dispatch to the commands, which live
 * one group to a file (tools/cmd_*.c, tools/case.c; tools/cli.h lists them).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "custos/init.h"
#ifdef CS_FAILPOINTS
#include "custos/failpoint.h"
#endif

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
	{"custody", cmd_custody, "an item's chain of custody with proofs (text, JSON, HTML)"},
	{"officers", cmd_officers, "import and list the officer registry"},
	{"stats", cmd_stats, "the yearly figures by category, stage, officer and device"},
	{"amend", cmd_amend, "correct a fact of a sighting, membership or case file"},
	{"verify", cmd_verify, "check blobs, ledger, checkpoints and catalog"},
	{"rebuild", cmd_rebuild, "make the catalog again from the ledger"},
	{"prove", cmd_prove, "print the inclusion proofs of an item's or a case's events"},
	{"check-proof", cmd_check_proof, "check a proof with a verifier key, without a store"},
	{"checkpoint", cmd_checkpoint, "sign and print the latest checkpoint"},
	{"tiles", cmd_tiles, "publish the ledger as C2SP tlog-tiles into a directory"},
	{"pubkey", cmd_pubkey, "print the store's verifier key"},
	{"log", cmd_log, "list ledger events"},
	{"fixity", cmd_fixity, "when each blob was last re-hashed; re-hash items now"},
	{"push", cmd_push, "send blobs, records and checkpoints to the remote bucket"},
	{"replicas", cmd_replicas, "list the confirmed remote copies of an item"},
	{"media", cmd_media, "identify and probe items; list those without a media record"},
	{"match", cmd_match, "find the items that contain a file's footage or sound"},
	{"similar", cmd_similar, "find the items that contain an item's footage or sound"},
	{"status", cmd_status, "ask the running custosd for its queues and docks"},
	{"docks", cmd_docks, "list recorder dock sessions, gaps and clock offsets"},
	{"check-receipt", cmd_check_receipt, "check a recorder's CUSTOS-RECEIPT.json"},
	{"request", cmd_request, "request to view, copy or export a case's evidence"},
	{"approve", cmd_approve, "approve a request (the approving role)"},
	{"deny", cmd_deny, "deny a request, with a reason (the approving role)"},
	{"conclusive", cmd_conclusive, "mark an item one a party or lawyer may receive"},
	{"view", cmd_view, "show an item through custosd, in the access register"},
	{"get", cmd_get, "copy an item's bytes through custosd under an approval"},
	{"search", cmd_search, "find through custosd (the search is logged)"},
	{"register", cmd_register, "print the access register (查阅登记簿)"},
	{"export", cmd_export, "write a case file as a BagIt bag under an approved request"},
	{"disclosure", cmd_disclosure, "decisions' publication records and what to withdraw"},
	{"verify-bag", cmd_verify_bag, "check an exported bag offline, naming every problem"},
	{"hold", cmd_hold, "put a case or an item on hold (never purged), release, list"},
	{"retention", cmd_retention, "what is due for purging and why; mark evidence used"},
	{"destruction-register", cmd_destruction_register,
	    "print the permanent register of destroyed evidence"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: custos [--store DIR] COMMAND [OPTIONS]\n\n"
	           "custos keeps evidence files tamper-evident: content-addressed storage,\n"
	           "a signed Merkle ledger and a catalog by case number.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nThe store is --store DIR (before or after COMMAND; after wins) or\n"
	           "$CUSTOS_STORE. `custos COMMAND --help` and `man custos` tell more.\n"
	           "--json gives machine-readable output.\n");
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	int i = 1;

#ifdef CS_FAILPOINTS
	/* Test build: OpenSSL's allocations may be made to fail (before any use of it). */
	if (cs__failalloc_init() < 0 || cs__failalloc_wanted("uv")) {
		fprintf(stderr, "custos: CUSTOS_OOM_LIB: only crypto applies to the CLI\n");
		return EXIT_USAGE;
	}
#endif
	/*
	 * --store DIR (or --store=DIR) before the command, as `git -C DIR`; a
	 * --store given after the command too wins, as a repeated option does.
	 */
	while (i < argc && strncmp(argv[i], "--store", 7) == 0 &&
	    (argv[i][7] == '\0' || argv[i][7] == '=')) {
		if (argv[i][7] == '=') {
			o.store = argv[i] + 8;
			i++;
		} else if (i + 1 < argc) {
			o.store = argv[i + 1];
			i += 2;
		} else {
			errmsg("--store needs a directory: custos --store DIR COMMAND ...");
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
	    strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[i], "--version") == 0) {
		printf("custos %s\n", CUSTOS_VERSION);
		return EXIT_OK;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (strcmp(argv[i], commands[k].name) == 0) {
			int code;
			if (cs_lib_init() < 0) {
				errmsg("out of memory");
				return EXIT_STORE;
			}
			argv[i] = argv[0];
			code = commands[k].fn(argc - i, argv + i, &o);
			if (output_failed && code == EXIT_OK) {
				errmsg("out of memory: the answer could not be printed");
				code = EXIT_STORE;
			}
			return code;
		}
	}
	errmsg("unknown command '%s'", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
