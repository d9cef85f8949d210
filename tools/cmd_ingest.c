/*
 * custos ingest: securing files given on the command line, with their
 * acquisition facts and (optionally) a case file to join.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/store.h"
#include "cli.h"

/* ---- ingest ---- */

static const char usage_ingest[] =
    "usage: custos ingest FILE... [--case CASE] [--category C] [--stage S]\n"
    "                     [--officer ID]... [--device ID] [--recorded-at TIME]\n"
    "                     [--recorded-end TIME] [--store DIR] [--json]\n"
    "\n"
    "Secures each FILE in the store: its bytes are hashed while they are copied,\n"
    "written durably under their SHA-256, recorded in the signed ledger and the\n"
    "catalog, then read again from FILE: only when that second read gives the same\n"
    "digest is the file called secured. Prints each file's evidence id. The same\n"
    "bytes ingested again are stored once and recorded as another sighting.\n"
    "\n"
    "  --case CASE        case number, e.g. 平司罚〔2020〕1号: the items join that case\n"
    "                     file (opened if new) at --stage; without it they are in no\n"
    "                     case until `custos case add` puts them in one\n"
    "  --category C       enforcement category, e.g. 行政处罚 or 行政检查\n"
    "  --stage S          立案 调查 取证 审查 决定 送达 执行 (or filing, investigation,\n"
    "                     collection, review, decision, service, enforcement)\n"
    "  --officer ID       enforcing officer's id; repeat for several\n"
    "  --device ID        recorder id\n"
    "  --recorded-at T    recording start, RFC 3339 (2026-11-28T08:30:00+08:00)\n"
    "  --recorded-end T   recording end, RFC 3339\n"
    "\n"
    "Directories, symbolic links, FIFOs and device nodes are refused.\n"
    "Exit status: 0 all secured, 2 a file or option was refused, 3 store failure.\n";

static const char *
refusal(int rc)
{
	switch (rc) {
	case -ELOOP:
		return "it is a symbolic link; give the path of the file itself";
	case -EISDIR:
		return "it is a directory; give the files inside it";
	case CS_ENOTREG:
		return "it is not a regular file (a FIFO, socket or device node)";
	case -ENOENT:
		return "no such file";
	case -EACCES:
	case -EPERM:
		return "permission denied; this user cannot read it";
	case CS_ECHANGED:
		return "it changed while it was being read; secure it again once it is complete";
	case -EXDEV:
		return "it is a mount point of its own; give a file inside the mount";
	default:
		return cs_strerror(rc);
	}
}

int
cmd_ingest(int argc, char **argv, struct opts *o)
{
	const char *officers[64];
	struct cs_meta m = {0};
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &m.case_no),
		CLI_OPT("category", 0, CLI_STRING, &m.category),
		CLI_OPT("stage", 0, CLI_STRING, &m.stage),
		CLI_LIST_OPT("officer", officers, 64, &m.n_officers),
		CLI_OPT("device", 0, CLI_STRING, &m.device),
		CLI_OPT("recorded-at", 0, CLI_STRING, &m.recorded_start),
		CLI_OPT("recorded-end", 0, CLI_STRING, &m.recorded_end), CLI_END};
	struct cs_store *st;
	const char *field;
	json_t *out = NULL;
	int rc, code = EXIT_OK, secured = 0;

	m.officers = officers;
	m.source = "cli";
	rc = cli_parse(argc, argv, own, usage_ingest, o);
	if (rc >= 0)
		return rc;
	if (optind == argc) {
		errmsg("no file given");
		fputs(usage_ingest, stderr);
		return EXIT_USAGE;
	}
	rc = cs_meta_check(&m, &field);
	if (rc == -ENOMEM) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	if (rc < 0) {
		if (strcmp(field, "stage") == 0)
			errmsg("unknown --stage '%s': use 立案, 调查, 取证, 审查, 决定, 送达 or "
			       "执行", m.stage);
		else if (strncmp(field, "recorded", 8) == 0)
			errmsg("invalid --%s: give an RFC 3339 time such as "
			       "2026-11-28T08:30:00+08:00%s",
			    strcmp(field, "recorded_start") == 0 ? "recorded-at" : "recorded-end",
			    strcmp(field, "recorded_end") == 0 ? ", not before the start" : "");
		else
			errmsg("invalid --%s: it must be 1 to 256 bytes of UTF-8 text without "
			       "control characters",
			    field);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	out = json_array();
	for (int i = optind; i < argc; i++) {
		struct cs_secure_req rq = {.meta = m, .flags = CS_SECURE_LINKED_OK};
		struct cs_secured sd;
		const struct cs_ingest_result *r = &sd.res;
		char *shown = shown_name(argv[i]);
		const char *name = shown != NULL ? shown : "?";
		enum cs_fault f;
		rc = cs_secure_path(st, argv[i], &rq, &sd);
		f = cs_fault(st, rc, sd.stage);
		if (f == CS_FAULT_STORE || f == CS_FAULT_MEMORY) {
			errmsg("could not secure '%s': %s; %snothing more is ingested", name,
			    cs_strerror(rc),
			    f == CS_FAULT_MEMORY ? "" : "the store stopped taking work and ");
			code = EXIT_STORE;
			free(shown);
			break;
		}
		if (f != CS_FAULT_NONE) {
			if (rc == CS_ECHANGED && sd.stage == CS_STAGE_REREAD)
				errmsg("refused '%s': it changed after it was copied (the copy, "
				       "stored as %s, does not match the file now); secure it "
				       "again once it is complete",
				    name, r->id);
			else
				errmsg("refused '%s': %s", name, refusal(rc));
			code = EXIT_USAGE;
			free(shown);
			continue;
		}
		secured++;
		if (o->json) {
			json_t *one = json_pack("{s:s, s:s, s:I, s:I, s:b}", "id", r->id, "sha256",
			    r->sha256, "size", (json_int_t)r->size, "seq", (json_int_t)r->seq,
			    "duplicate", r->duplicate);
			if (one != NULL &&
			    cs_name_json_set(one, "file", argv[i], strlen(argv[i])) < 0) {
				json_decref(one);
				one = NULL;
			}
			/* out of memory: no list rather than a short one */
			if (json_array_append_new(out, one) < 0)
				output_failed = 1;
		} else if (!o->quiet) {
			printf("%s\t%s\t%s%s\n", r->id, r->sha256, name,
			    r->duplicate ? "\t(already stored; recorded as another sighting)" : "");
		}
		free(shown);
	}
	if (secured > 0 && m.case_no == NULL && !o->quiet)
		fprintf(stderr, "%s: secured without a case number: `custos case add C ID... "
		                "--stage S` puts the items in a case file\n",
		    prog);
	if (secured > 0 && code != EXIT_STORE) {
		rc = cs_store_checkpoint(st, NULL);
		if (rc < 0) {
			errmsg("the files are secured but signing a checkpoint failed: %s",
			    cs_strerror(rc));
			code = EXIT_STORE;
		}
	}
	if (o->json)
		print_json(out);
	json_decref(out);
	cs_store_close(st);
	return code;
}

