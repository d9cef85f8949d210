/*
 * custos tiles: publishing the ledger as a C2SP tlog-tiles log in a
 * directory (lib/tiles.c does the work), with progress on a terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/tiles.h"
#include "cli.h"

static const char usage_tiles[] =
    "usage: custos tiles --to DIR [--store DIR] [--json] [--quiet]\n"
    "\n"
    "Publishes the ledger into DIR as a C2SP tlog-tiles log: the hash tiles\n"
    "(DIR/tile/<L>/<N>[.p/<W>]), the entry bundles holding each event's exact bytes\n"
    "(DIR/tile/entries/<N>[.p/<W>]) and the latest signed checkpoint\n"
    "(DIR/checkpoint), written last. Serve DIR from any web server, or rsync it to\n"
    "one, and anyone can audit the ledger with standard tlog-tiles clients and the\n"
    "verifier key (`custos pubkey`). Run it again to publish what was added: only\n"
    "new tiles are written; full tiles are never rewritten. It publishes the tree of\n"
    "the latest signed checkpoint (custosd signs one as the ledger grows; otherwise\n"
    "run `custos checkpoint` first) and may run beside custosd.\n";

struct tiles_out {
	int tty;
	time_t last;
};

static void
on_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct tiles_out *t = ctx;
	time_t now;

	(void)phase;
	if (!t->tty)
		return;
	now = time(NULL);
	if (now == t->last && done != total)
		return;
	t->last = now;
	fprintf(stderr, "\r\033[Kpublishing tiles: %" PRIu64 " of %" PRIu64, done, total);
	if (done == total)
		fputs("\r\033[K", stderr);
}

int
cmd_tiles(int argc, char **argv, struct opts *o)
{
	struct tiles_out t = {0};
	struct cs_tiles_result res = {0};
	struct cs_store *st;
	const char *to = NULL;
	int rc, code = EXIT_OK;
	const struct cli_opt own[] = {CLI_OPT("to", 0, CLI_STRING, &to), CLI_END};

	rc = cli_parse(argc, argv, own, usage_tiles, o);
	if (rc >= 0)
		return rc;
	if (optind != argc || to == NULL) {
		fputs(usage_tiles, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	t.tty = isatty(STDERR_FILENO) && !o->quiet;
	rc = cs_store_tiles(st, to, on_progress, &t, &res);
	if (t.tty)
		fputs("\r\033[K", stderr);
	if (rc == -ENOENT || rc == -ENOTDIR) {
		errmsg("%s is not a directory; create it (mkdir) and run again", to);
		code = EXIT_USAGE;
	} else if (rc == CS_EBUSY) {
		errmsg("another `custos tiles` is publishing into %s; wait for it and run again",
		    to);
		code = EXIT_PROBLEM;
	} else if (rc == CS_ENOTFOUND) {
		errmsg("the store has no signed checkpoint yet; run `custos checkpoint` first");
		code = EXIT_PROBLEM;
	} else if (rc == CS_ECONFLICT) {
		errmsg("nothing was published into %s (see above why)", to);
		code = EXIT_PROBLEM;
	} else if (rc == -EMSGSIZE) {
		errmsg("the ledger cannot be published as tlog-tiles: an event is too long for "
		       "an entry bundle (see above); nothing after the last whole tile was "
		       "published");
		code = EXIT_PROBLEM;
	} else if (rc == CS_ELEDGER) {
		errmsg("the ledger does not give the signed checkpoint's tree; "
		       "run `custos verify`");
		code = EXIT_STORE;
	} else if (rc < 0) {
		errmsg("cannot publish into %s: %s", to, cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "tree_size",
		    (json_int_t)res.size, "previous_size", (json_int_t)res.prev_size, "written",
		    (json_int_t)res.written, "kept", (json_int_t)res.kept, "pruned",
		    (json_int_t)res.pruned, "checkpoint_written", res.checkpoint_written);
		print_json(j);
		json_decref(j);
	} else if (!o->quiet) {
		printf("published the tree of %" PRIu64 " events (was %" PRIu64 ") to %s: "
		       "%" PRIu64 " tile(s) written, %" PRIu64 " already there, %" PRIu64
		       " partial tile(s) removed%s\n",
		    res.size, res.prev_size, to, res.written, res.kept, res.pruned,
		    res.checkpoint_written ? "" : "; the checkpoint was already there");
	}
	cs_store_close(st);
	return code;
}
