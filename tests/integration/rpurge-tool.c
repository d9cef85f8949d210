/*
 * The test driver of remote-purge.sh: lib/remote_purge.c's calls run on an
 * item record given as a JSON file, their outcome printed as JSON.
 *   rpurge-tool purge CONF RECORD        cs_remote_purge_item
 *   rpurge-tool hold CONF RECORD on|off  cs_remote_legal_hold
 *   rpurge-tool mark STORE ID            item ID's catalog record gets "purged"
 *     ({seq, time, plan}, as the purge's projection writes it), so that
 *     `custos verify --remote` can be tested before that projection exists.
 * Exit 0 when the call returned 0, 1 otherwise (its error on stderr), 2 on
 * bad use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "custos/error.h"
#include "custos/remote_purge.h"
#include "custos/store.h"
#include "store_internal.h"

static int
mark(const char *dir, const char *id)
{
	struct cs_store *st = NULL;
	MDB_txn *txn = NULL;
	json_t *rec = NULL;
	int rc = cs_store_open(&st, dir, CS_OPEN_WRITE, NULL, NULL);

	if (rc == 0)
		rc = mdb_txn_begin(st->cat.env, NULL, 0, &txn) == 0 ? 0 : CS_ESTORE;
	if (rc == 0)
		rc = cs__catalog_get_item(&st->cat, txn, id, &rec);
	if (rc == 0 && json_object_set_new(rec, "purged",
	                   json_pack("{s:i, s:s, s:i}", "seq", 1, "time", "2030-01-01T00:00:00Z",
	                       "plan", 1)) < 0)
		rc = -ENOMEM;
	if (rc == 0)
		rc = cs__cat_put_item(&st->cat, txn, id, rec);
	if (rc == 0)
		rc = mdb_txn_commit(txn) == 0 ? 0 : CS_ESTORE;
	else if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(rec);
	cs_store_close(st);
	return rc;
}

int
main(int argc, char **argv)
{
	struct cs_remote_config cfg = {0};
	json_t *rec = NULL, *out = NULL;
	json_error_t jerr;
	char why[512] = "";
	int rc;

	if (argc == 4 && strcmp(argv[1], "mark") == 0) {
		rc = mark(argv[2], argv[3]);
		if (rc < 0)
			fprintf(stderr, "rpurge-tool: mark: %s\n", cs_strerror(rc));
		return rc < 0;
	}
	if (argc < 4 || (strcmp(argv[1], "purge") != 0 && strcmp(argv[1], "hold") != 0) ||
	    (strcmp(argv[1], "hold") == 0 && argc != 5)) {
		fprintf(stderr, "usage: rpurge-tool purge CONF RECORD | hold CONF RECORD on|off | "
		                "mark STORE ID\n");
		return 2;
	}
	rc = cs_remote_config_load(&cfg, argv[2], why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "rpurge-tool: %s: %s\n", argv[2], why[0] ? why : cs_strerror(rc));
		return 2;
	}
	rec = json_load_file(argv[3], 0, &jerr);
	if (rec == NULL) {
		fprintf(stderr, "rpurge-tool: %s: %s\n", argv[3], jerr.text);
		cs_remote_config_fini(&cfg);
		return 2;
	}
	if (strcmp(argv[1], "purge") == 0)
		rc = cs_remote_purge_item(&cfg, rec, &out);
	else
		rc = cs_remote_legal_hold(&cfg, rec, strcmp(argv[4], "on") == 0, &out);
	if (out != NULL) {
		char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
		if (s != NULL)
			puts(s);
		free(s);
	}
	if (rc < 0)
		fprintf(stderr, "rpurge-tool: %s: %s\n", argv[1], cs_strerror(rc));
	json_decref(out);
	json_decref(rec);
	cs_remote_config_fini(&cfg);
	return rc < 0;
}
