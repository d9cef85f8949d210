/*
 * What the custos command's files share: exit codes, common options and the
 * helpers of tools/custos.c that open the store, print errors and JSON.
 */
#ifndef CS_TOOLS_CLI_H
#define CS_TOOLS_CLI_H

#include <getopt.h>
#include <jansson.h>

#include "custos/store.h"

enum { EXIT_OK = 0, EXIT_PROBLEM = 1, EXIT_USAGE = 2, EXIT_STORE = 3 };

struct opts {
	const char *store;
	int json;
	int quiet;
};

/* Common options; common_opt returns 0, or 1 if --help was printed, or -1 on error. */
#define COMMON_LONGOPTS                                                                      \
	{"store", required_argument, NULL, 'S'}, {"json", no_argument, NULL, 'J'},           \
	    {"help", no_argument, NULL, 'h'}, {"quiet", no_argument, NULL, 'q'}
int common_opt(int c, struct opts *o, const char *usage);

/* "custos: <message>\n" on stderr. */
__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...);
/* Pretty JSON on stdout (notes a failure to make it). */
void print_json(json_t *v);
/*
 * Opens the store or prints why not; NULL on failure with *exit_code set.
 * A writer handle records the user running the command as the actor.
 */
struct cs_store *open_store(const struct opts *o, int flags, int *exit_code);

/* tools/case.c */
int cmd_case(int argc, char **argv, struct opts *o);
int cmd_amend(int argc, char **argv, struct opts *o);
/* show's text: the sightings, case memberships and (history) corrections of a record. */
void case_show_item(json_t *rec, int history);
/*
 * The case and stage find prints for a record: of the membership whose
 * canonical key is `key` (or starts with it, `prefix`), or the first.
 */
void case_columns(json_t *rec, const char *key, int prefix, const char **c, const char **stage);
/*
 * Checks proofs text (one or more tlog-proof@v1 concatenated) with the
 * verifier key; prints what each proves; for a case file's proof also
 * checks its seals against its members. Returns an exit code.
 */
int check_proofs(const char *text, size_t len, const char *key, const char *name,
    const struct opts *o);

#endif
