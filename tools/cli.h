/*
 * What the custos command's files share: exit codes, the options every
 * command takes and the table-driven parser of a command's options, and the
 * helpers of tools/cli.c that open the store, print errors and JSON. Each
 * tools/cmd_*.c file holds one group of commands; tools/custos.c dispatches.
 */
#ifndef CS_TOOLS_CLI_H
#define CS_TOOLS_CLI_H

#include <getopt.h> /* optind: where a command's operands start after cli_parse */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "custos/store.h"

enum { EXIT_OK = 0, EXIT_PROBLEM = 1, EXIT_USAGE = 2, EXIT_STORE = 3 };

/* The options every command takes: --store DIR, --json, --quiet (and --help). */
struct opts {
	const char *store;
	int json;
	int quiet;
};

/* The program's name in messages. */
extern const char *const prog;
/* A --json answer could not be made (out of memory): main turns success into EXIT_STORE. */
extern int output_failed;

/* What a command-specific option does with its argument (struct cli_opt). */
enum cli_kind {
	CLI_STRING, /* stores the argument in *(const char **)target */
	CLI_FLAG,   /* sets *(int *)target to 1; takes no argument */
	CLI_LIST,   /* appends the argument to (const char **)target, at most `max` (*count) */
	CLI_NUMBER, /* a non-negative decimal number into *(uint64_t *)target */
	CLI_CALL,   /* call(target, argument): returns 0, or an exit code to stop with */
};

/* One option of a command's table, which ends with a NULL name. */
struct cli_opt {
	const char *name;  /* the long name, without "--" */
	int short_name;    /* a one-letter alias (-k), or 0 */
	enum cli_kind kind;
	void *target;
	size_t max;     /* CLI_LIST: the capacity of target */
	size_t *count;  /* CLI_LIST: how many are in target */
	int (*call)(void *target, const char *arg);
};
/* Table entries: an option of a kind, a list (CLI_LIST), a call (CLI_CALL), the end. */
#define CLI_OPT(name, short_name, kind, target) \
	{(name), (short_name), (kind), (target), 0, NULL, NULL}
#define CLI_LIST_OPT(name, target, max, count) {(name), 0, CLI_LIST, (target), (max), (count), NULL}
#define CLI_CALL_OPT(name, target, fn) {(name), 0, CLI_CALL, (target), 0, NULL, (fn)}
#define CLI_END {NULL, 0, CLI_STRING, NULL, 0, NULL, NULL}

/*
 * Parses argv[1..] (argv[0] is the command, for getopt's messages): the
 * command's own options from `own` and the common ones into *o. Prints
 * `usage` on --help (stdout) or on an unknown option (stderr). Returns -1
 * when the command should go on (its operands start at optind), else the
 * exit code to return: EXIT_OK after --help, EXIT_USAGE on a bad option.
 */
int cli_parse(int argc, char **argv, const struct cli_opt *own, const char *usage,
    struct opts *o);

/* "custos: <message>\n" on stderr. */
__attribute__((format(printf, 1, 2))) void errmsg(const char *fmt, ...);
/* lib's log callback: errors, warnings and information on stderr. */
void lib_log(void *ctx, int level, const char *msg);
/* Pretty JSON on stdout (notes a failure to make it). */
void print_json(json_t *v);
/* The store directory: --store, else $CUSTOS_STORE; NULL if neither. */
const char *store_dir(const struct opts *o);
struct cs_access_who;
/*
 * The store's own user as the gate (custos/access.h) knows him when he uses
 * the store directly: uid, name (in buf, n bytes) and role "owner".
 */
void owner_who(struct cs_access_who *who, char *buf, size_t n);
/*
 * Connects to custosd's control socket: `sock`, else $CUSTOS_SOCKET, else
 * STORE/custosd.sock; *fd the stream. EXIT_OK, or an exit code after a message.
 */
int cli_connect(const char *sock, const struct opts *o, int *fd);
/*
 * Opens the store or prints why not; NULL on failure with *exit_code set.
 * A writer handle records the user running the command as the actor.
 */
struct cs_store *open_store(const struct opts *o, int flags, int *exit_code);
/* Says why the store at `dir` could not be opened. */
void explain_open_error(const char *dir, int rc);
/*
 * A file name as it is printed (one output line, JSON text): its readable
 * form (custos/name.h), control characters and bytes that are not UTF-8
 * written as \xHH. Returns malloc'd text.
 */
char *shown_name(const char *name);
/*
 * Prints metadata text `s` as shown_name does, then spaces up to `width`
 * terminal columns (a wide CJK character counts two), for text tables.
 */
void print_cell(FILE *f, const char *s, int width);
/* The terminal columns print_cell takes for `s` without padding. */
int cell_width(const char *s);

/*
 * One CSV record (RFC 4180: quoted where needed, CRLF) of n fields; a NULL
 * field is written empty. tools/csv.c.
 */
void csv_row(FILE *f, const char *const *fields, size_t n);

/*
 * Reads the file `path` (or with `dash`, "-": stdin) whole into *text, NUL
 * terminated, at most max - 1 bytes; EXIT_OK, or the exit code after saying
 * why not. tools/cmd_proof.c.
 */
int read_input(const char *path, int dash, size_t max, char **text, size_t *len);

/* The commands, by file. */
int cmd_init(int argc, char **argv, struct opts *o);        /* cmd_store.c */
int cmd_pubkey(int argc, char **argv, struct opts *o);
int cmd_status(int argc, char **argv, struct opts *o);      /* cmd_daemon.c */
int cmd_docks(int argc, char **argv, struct opts *o);
int cmd_ingest(int argc, char **argv, struct opts *o);      /* cmd_ingest.c */
int cmd_find(int argc, char **argv, struct opts *o);        /* cmd_find.c */
int cmd_show(int argc, char **argv, struct opts *o);
int cmd_log(int argc, char **argv, struct opts *o);
int cmd_verify(int argc, char **argv, struct opts *o);      /* cmd_verify.c */
/* custos verify --remote (cmd_remote.c); `config` may be NULL. */
int verify_remote(struct opts *o, const char *config, int deep);
/* custos rebuild --from-remote (cmd_remote.c); key, station, config may be NULL. */
int rebuild_remote(struct opts *o, const char *dir, const char *key, const char *station,
    const char *config, int blobs);
int cmd_rebuild(int argc, char **argv, struct opts *o);
int cmd_checkpoint(int argc, char **argv, struct opts *o);
int cmd_prove(int argc, char **argv, struct opts *o);       /* cmd_proof.c */
int cmd_check_proof(int argc, char **argv, struct opts *o);
int cmd_check_receipt(int argc, char **argv, struct opts *o);
int cmd_tiles(int argc, char **argv, struct opts *o);       /* cmd_tiles.c */
int cmd_case(int argc, char **argv, struct opts *o);        /* case.c */
int cmd_amend(int argc, char **argv, struct opts *o);
int cmd_fixity(int argc, char **argv, struct opts *o);      /* cmd_fixity.c */
int cmd_push(int argc, char **argv, struct opts *o);        /* cmd_remote.c */
int cmd_replicas(int argc, char **argv, struct opts *o);
int cmd_media(int argc, char **argv, struct opts *o);       /* cmd_media.c */
/* show's text: the item's media record (cmd_media.c). */
void media_show_item(json_t *rec);
/* custos show: where an item's bytes are when the store holds them remote only (cmd_remote.c). */
void remote_show_item(struct cs_store *st, json_t *rec);
/* The media worker custos-probe: $CUSTOS_PROBE, else the installed one (cmd_media.c). */
const char *probe_path(void);
int cmd_match(int argc, char **argv, struct opts *o);       /* cmd_match.c */
int cmd_similar(int argc, char **argv, struct opts *o);
/* show's text: the item's fingerprint (cmd_match.c). */
void match_show_item(json_t *rec);
int cmd_request(int argc, char **argv, struct opts *o);     /* cmd_access.c */
int cmd_approve(int argc, char **argv, struct opts *o);
int cmd_deny(int argc, char **argv, struct opts *o);
int cmd_conclusive(int argc, char **argv, struct opts *o);
int cmd_view(int argc, char **argv, struct opts *o);
int cmd_get(int argc, char **argv, struct opts *o);
int cmd_search(int argc, char **argv, struct opts *o);
int cmd_register(int argc, char **argv, struct opts *o);
int cmd_officers(int argc, char **argv, struct opts *o);    /* cmd_officers.c */
int cmd_stats(int argc, char **argv, struct opts *o);
int cmd_custody(int argc, char **argv, struct opts *o);     /* cmd_custody.c */
int cmd_export(int argc, char **argv, struct opts *o);      /* cmd_bag.c */
struct cs_bag_result;
/*
 * A "get" through custosd's socket (cmd_access.c): sends `req` (consumed),
 * writes the granted bytes into the new file `out`, checked against the
 * digest custosd gives (a file that does not match is removed). EXIT_OK with
 * *ans custosd's answer (the caller's), or an exit code (a refusal printed).
 */
int get_via_socket(const char *sock, const struct opts *o, json_t *req, const char *out,
    json_t **ans);
/*
 * custos export through custosd's socket (cmd_access.c): sends `req`
 * (consumed), writes the bag from custosd's plan into `to`, calling
 * `progress` (if not NULL) as payload bytes arrive. Returns EXIT_OK,
 * an exit code after an answer said why (*ans: custosd's answer, the
 * caller's), or a negative code from writing the bag.
 */
int export_via_socket(const char *sock, const struct opts *o, json_t *req, const char *to,
    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *pctx,
    struct cs_bag_result *res, json_t **ans);
int cmd_verify_bag(int argc, char **argv, struct opts *o);
/*
 * One request to custosd's socket, one answer (cmd_access.c): `req`
 * consumed; a refusal or error printed (EXIT_PROBLEM for a rule,
 * EXIT_USAGE, EXIT_STORE), else EXIT_OK with *ans the answer (the caller's).
 */
int socket_call(const char *sock, const struct opts *o, json_t *req, json_t **ans);
/* `req` with key = value (value NULL: as it is); NULL (req freed) when out of memory. */
json_t *socket_with(json_t *req, const char *key, const char *value);
int cmd_hold(int argc, char **argv, struct opts *o);        /* cmd_retention.c */
int cmd_retention(int argc, char **argv, struct opts *o);
int cmd_disclosure(int argc, char **argv, struct opts *o);  /* cmd_disclosure.c */
/* custos retention approve|cancel|plans|show|execute|plan --write (cmd_purge.c) */
int cmd_purge(int argc, char **argv, struct opts *o);
int purge_is_sub(int argc, char **argv);
int cmd_destruction_register(int argc, char **argv, struct opts *o);

/* tools/case.c */
/* show's text: the sightings, case memberships and (history) corrections of a record. */
void case_show_item(json_t *rec, int history);
/*
 * The case and stage find prints for a record: of the membership whose
 * canonical key is `key` (or starts with it, `prefix`), or the first.
 */
void case_columns(const struct cs_listing *l, const char *key, int prefix, const char **c,
    const char **stage);

#endif
