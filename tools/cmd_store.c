/*
 * custos init and pubkey: making a store with its signing key, and printing
 * the key that checks its checkpoints and proofs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/store.h"
#include "cli.h"

/* ---- init ---- */

static const char usage_init[] =
    "usage: custos init [--station NAME] [--store DIR]\n"
    "\n"
    "Creates a new evidence store in DIR (or $CUSTOS_STORE) with its catalog, ledger\n"
    "and Ed25519 signing key. NAME identifies this station in evidence ids and in\n"
    "the signed checkpoints' origin line (letters, digits, '.', '_', '-'; default:\n"
    "the host name).\n";

int
cmd_init(int argc, char **argv, struct opts *o)
{
	char host[65] = "station";
	const char *station = NULL, *dir;
	const struct cli_opt own[] = {CLI_OPT("station", 's', CLI_STRING, &station), CLI_END};
	char *vkey = NULL;
	struct cs_store *st;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_init, o);
	if (rc >= 0)
		return rc;
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
		errmsg("the store was created but its first checkpoint failed: %s",
		    cs_strerror(rc));
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

static const char usage_pubkey[] =
    "usage: custos pubkey [--store DIR]\n"
    "\n"
    "Prints the store's verifier key (C2SP signed-note format), which checks its\n"
    "checkpoints and proofs.\n";

int
cmd_pubkey(int argc, char **argv, struct opts *o)
{
	struct cs_store *st;
	char *vkey = NULL;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, NULL, usage_pubkey, o);
	if (rc >= 0)
		return rc;
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

