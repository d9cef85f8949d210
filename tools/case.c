/*
 * custos case … and custos amend: the archivists' commands for case files
 * and corrections, and what show and find print of them. Every
 * rule is lib's (custos/case.h); this file parses arguments and prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "custos/case.h"
#include "custos/error.h"

static const char usage_case[] =
    "usage: custos case open C [--category X] [--title T] [--department D]\n"
    "                          [--party person|organisation]\n"
    "       custos case add C ID... --stage S [--reason R]\n"
    "       custos case remove C ID --reason R\n"
    "       custos case close C [--reason R]\n"
    "       custos case seal C [--reason R]\n"
    "       custos case show C [--json]\n"
    "       custos case list [--json | --csv]\n"
    "       (each also takes --store DIR)\n"
    "\n"
    "Case files (一案一档): one case, one file, one number. `open` starts the file;\n"
    "`add` puts secured items in it at an enforcement stage (立案 调查 取证 审查 决定\n"
    "送达 执行, or filing, investigation, collection, review, decision, service,\n"
    "enforcement); `remove` takes one out, with a reason; `close` marks the file no\n"
    "longer active (it can still change); `seal` archives it: nothing is added,\n"
    "removed or corrected in it afterwards. An item may be in several cases. A case\n"
    "number is found however its brackets and digits were typed (〔2020〕, [2020],\n"
    "［２０２０］, 【2020】) and is shown as first written. Every change is a signed\n"
    "ledger event naming the user who made it. `list` gives each file's number,\n"
    "state (open, closed, sealed), items, the dates it was opened, closed and\n"
    "sealed, category and title; `show` each member with its sightings and any\n"
    "officer flag (and its media status, replicas and holds where they are kept).\n"
    "Exit status: 0 done, 2 refused (the message says why), 3 store failure.\n";

static const char usage_amend[] =
    "usage: custos amend ID --set FIELD=VALUE... --reason R [--sighting SEQ]\n"
    "       custos amend ID --case C --set stage=S --reason R\n"
    "       custos amend --case C --set FIELD=VALUE... --reason R [--store DIR]\n"
    "\n"
    "Corrects descriptive facts with a reason; nothing is rewritten: the ledger\n"
    "keeps the old value and `custos show ID --history` shows where each value came\n"
    "from. Fields of a sighting (the item's only one, or the one recorded by ledger\n"
    "event SEQ): officers (comma-separated ids), device, recorded_start,\n"
    "recorded_end (RFC 3339), category, stage. Of an item's membership of case C:\n"
    "stage. Of case file C itself: category, title, department, party.\n"
    "A sealed case file (or an item in one) is not corrected.\n"
    "Exit status: 0 done, 2 refused, 3 store failure.\n";

static int
store_error(int rc)
{
	return rc == CS_EFAILED || rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS ||
	    rc == -ENOMEM || rc == CS_ECRYPTO || rc == CS_ESTORE || rc == CS_ELEDGER;
}

/* Says why a change to case `number` was refused; returns the exit code. */
static int
explain(struct cs_store *st, int rc, const char *number, const char *id, const char *what)
{
	if (rc == CS_ESEALED) {
		json_t *c = NULL;
		json_t *seal = NULL;
		const char *n = number;
		json_t *rec = NULL, *m;
		size_t i;
		(void)what;
		if (number == NULL && id != NULL && cs_store_get(st, id, &rec) == 0) {
			/* a sighting's correction: the item's sealed case */
			json_array_foreach(json_object_get(rec, "cases"), i, m)
			{
				json_t *x = NULL;
				if (c == NULL &&
				    cs_store_case_get(st,
				        json_string_value(json_object_get(m, "case")), &x) == 0 &&
				    json_object_get(x, "seal") != NULL)
					c = x;
				else
					json_decref(x);
			}
		} else if (number != NULL) {
			(void)cs_store_case_get(st, number, &c);
		}
		json_decref(rec);
		if (c != NULL) {
			seal = json_object_get(c, "seal");
			n = json_string_value(json_object_get(c, "number"));
		}
		if (seal != NULL)
			errmsg("refused: case file %s is sealed (seal: ledger event #%lld, %s, "
			       "members SHA-256 %.16s…); nothing may be added, removed or "
			       "corrected in it",
			    n, (long long)json_integer_value(json_object_get(seal, "seq")),
			    json_string_value(json_object_get(seal, "time")),
			    json_string_value(json_object_get(seal, "members_sha256")));
		else
			errmsg("refused: case file %s is sealed; nothing may be added, removed or "
			       "corrected in it",
			    n != NULL ? n : "?");
		json_decref(c);
		return EXIT_USAGE;
	}
	if (rc == CS_ENOTFOUND) {
		if (what != NULL && strcmp(what, "item") == 0)
			errmsg("no evidence item has the id '%s'", id);
		else if (what != NULL && strcmp(what, "member") == 0)
			errmsg("'%s' is not in case file %s", id, number);
		else if (what != NULL && strcmp(what, "sighting") == 0)
			errmsg("'%s' has no sighting recorded by that ledger event; `custos show "
			       "%s` lists them",
			    id, id);
		else
			errmsg("there is no case file %s; open it with `custos case open`", number);
		return EXIT_USAGE;
	}
	if (rc == CS_EEXIST) {
		if (what != NULL && strcmp(what, "sighting") == 0)
			errmsg("'%s' has several sightings: say which with --sighting SEQ (`custos "
			       "show %s` lists them)",
			    id, id);
		else if (id != NULL)
			errmsg("'%s' is already in case file %s", id, number);
		else
			errmsg("case file %s is already %s", number, what != NULL ? what : "there");
		return EXIT_USAGE;
	}
	if (rc == CS_EFORMAT) {
		if (what != NULL && strcmp(what, "stage") == 0)
			errmsg("unknown stage: use 立案, 调查, 取证, 审查, 决定, 送达 or 执行");
		else if (what != NULL && strcmp(what, "case") == 0)
			errmsg("invalid case number: 1 to 256 bytes of UTF-8 text without control "
			       "characters");
		else if (what != NULL && strcmp(what, "set") == 0)
			errmsg("nothing to correct: give --set FIELD=VALUE");
		else if (what != NULL)
			errmsg("invalid %s: %s", what,
			    strcmp(what, "reason") == 0 ?
			        "give a reason of 1 to 256 bytes of text" :
			        "not a field that can be corrected here, or not a valid value for "
			        "it (see `custos amend --help`)");
		else
			errmsg("invalid input: %s", cs_strerror(rc));
		return EXIT_USAGE;
	}
	errmsg("could not write: %s", cs_strerror(rc));
	return store_error(rc) ? EXIT_STORE : EXIT_USAGE;
}

/* Signs a checkpoint after a change, as ingest does, so the change can be proven. */
static int
sign_after(struct cs_store *st)
{
	int rc = cs_store_checkpoint(st, NULL);

	if (rc < 0) {
		errmsg("the change is recorded but signing a checkpoint failed: %s",
		    cs_strerror(rc));
		return EXIT_STORE;
	}
	return EXIT_OK;
}

static void
print_actor(json_t *o)
{
	json_t *a = json_object_get(o, "actor");

	if (a == NULL)
		return;
	printf(" by %s", json_string_value(json_object_get(a, "name")));
	if (json_object_get(a, "uid") != NULL)
		printf(" (uid %lld)", (long long)json_integer_value(json_object_get(a, "uid")));
}

/* "#seq time by actor" of where something came from. */
static void
print_origin(json_t *o)
{
	printf("#%lld %s", (long long)json_integer_value(json_object_get(o, "seq")),
	    json_string_value(json_object_get(o, "time")));
	print_actor(o);
}

static void
print_value(json_t *v)
{
	if (json_is_string(v)) {
		fputs(json_string_value(v), stdout);
	} else if (json_is_array(v)) {
		json_t *e;
		size_t i;
		json_array_foreach(v, i, e)
			printf("%s%s", i ? "," : "",
			    json_string_value(e) ? json_string_value(e) : "?");
	} else if (v == NULL || json_is_null(v)) {
		fputs("-", stdout);
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		fputs(s != NULL ? s : "?", stdout);
		free(s);
	}
}

void
case_show_item(json_t *rec, int history)
{
	static const char *const fields[] = {"source", "name", "case", "category", "stage",
		"officers", "device", "recorded_start", "recorded_end", NULL};
	json_t *s, *m, *c;
	size_t i, j;

	printf("sightings:\n");
	json_array_foreach(json_object_get(rec, "seen"), i, s)
	{
		printf("  sighting #%lld  %s",
		    (long long)json_integer_value(json_object_get(s, "seq")),
		    json_string_value(json_object_get(s, "time")));
		print_actor(s);
		printf("\n");
		for (size_t f = 0; fields[f] != NULL; f++) {
			json_t *v = json_object_get(s, fields[f]);
			if (v == NULL)
				continue;
			printf("    %-15s ", fields[f]);
			print_value(v);
			printf("\n");
			if (!history)
				continue;
			/* where each value came from: the sighting, then every correction */
			json_array_foreach(json_object_get(rec, "corrections"), j, c)
			{
				const char *t = json_string_value(json_object_get(c, "target"));
				if (t == NULL || strcmp(t, "sighting") != 0 ||
				    json_integer_value(json_object_get(c, "sighting")) !=
				        json_integer_value(json_object_get(s, "seq")) ||
				    strcmp(json_string_value(json_object_get(c, "field")),
				        fields[f]) != 0)
					continue;
				printf("      was ");
				print_value(json_object_get(c, "from"));
				printf(", set to ");
				print_value(json_object_get(c, "to"));
				printf(" by ledger event ");
				print_origin(c);
				printf(": %s\n", json_string_value(json_object_get(c, "reason")));
			}
		}
	}
	printf("cases:\n");
	if (json_array_size(json_object_get(rec, "cases")) == 0)
		printf("  (none: `custos case add C %s --stage S` puts it in one)\n",
		    json_string_value(json_object_get(rec, "id")));
	json_array_foreach(json_object_get(rec, "cases"), i, m)
	{
		printf("  %s  stage %s  since ledger event #%lld\n",
		    json_string_value(json_object_get(m, "case")),
		    json_string_value(json_object_get(m, "stage")) ?
		        json_string_value(json_object_get(m, "stage")) : "-",
		    (long long)json_integer_value(json_object_get(m, "since")));
		if (!history)
			continue;
		json_array_foreach(json_object_get(rec, "corrections"), j, c)
		{
			const char *t = json_string_value(json_object_get(c, "target"));
			if (t == NULL || strcmp(t, "membership") != 0 ||
			    strcmp(json_string_value(json_object_get(c, "case")),
			        json_string_value(json_object_get(m, "case"))) != 0)
				continue;
			printf("      stage was ");
			print_value(json_object_get(c, "from"));
			printf(", set to ");
			print_value(json_object_get(c, "to"));
			printf(" by ledger event ");
			print_origin(c);
			printf(": %s\n", json_string_value(json_object_get(c, "reason")));
		}
	}
	if (!history && json_array_size(json_object_get(rec, "corrections")) > 0)
		printf("corrections: %zu (`--history` shows them)\n",
		    json_array_size(json_object_get(rec, "corrections")));
}

void
case_columns(const struct cs_listing *l, const char *key, int prefix, const char **c,
    const char **stage)
{
	const struct cs_listing_case *hit = NULL;

	for (size_t i = 0; i < l->n_cases && hit == NULL; i++) {
		const char *k = l->cases[i].key;
		if (key == NULL || (k != NULL && (prefix ? strncmp(k, key, strlen(key)) == 0 :
		                                           strcmp(k, key) == 0)))
			hit = &l->cases[i];
	}
	*c = hit != NULL ? hit->number : NULL;
	*stage = hit != NULL ? hit->stage : NULL;
}

/* ---- custos case ---- */

static int
case_write(int argc, char **argv, struct opts *o, const char *sub)
{
	struct cs_case_info info = {0};
	const char *stage = NULL, *reason = NULL, *number, *what = NULL;
	const struct cli_opt own[] = {CLI_OPT("category", 0, CLI_STRING, &info.category),
		CLI_OPT("title", 0, CLI_STRING, &info.title),
		CLI_OPT("department", 0, CLI_STRING, &info.department),
		CLI_OPT("party", 0, CLI_STRING, &info.party),
		CLI_OPT("stage", 0, CLI_STRING, &stage),
		CLI_OPT("reason", 0, CLI_STRING, &reason), CLI_END};
	struct cs_store *st;
	uint64_t seq = 0;
	int rc, code = EXIT_OK, nargs;

	rc = cli_parse(argc, argv, own, usage_case, o);
	if (rc >= 0)
		return rc;
	nargs = argc - optind;
	if (nargs < 1 || (strcmp(sub, "add") == 0 && nargs < 2) ||
	    (strcmp(sub, "remove") == 0 && nargs != 2) ||
	    (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0 && nargs != 1)) {
		fputs(usage_case, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "open") != 0 && (info.category || info.title || info.department ||
	                                    info.party)) {
		errmsg("--category, --title, --department and --party go with `case open` (or "
		       "`custos amend --case C`)");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "add") == 0 && stage == NULL) {
		errmsg("--stage is required: the enforcement stage the items belong to (立案, "
		       "调查, 取证, 审查, 决定, 送达 or 执行)");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "add") != 0 && stage != NULL) {
		errmsg(
		    "--stage goes with `case add` (or `custos amend ID --case C --set stage=S`)");
		return EXIT_USAGE;
	}
	if (strcmp(sub, "remove") == 0 && reason == NULL) {
		errmsg("--reason is required: say why the item leaves the case file");
		return EXIT_USAGE;
	}
	number = argv[optind];
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	if (strcmp(sub, "open") == 0) {
		rc = cs_case_open(st, number, &info, &seq);
		if (rc == CS_EFORMAT)
			what = info.party != NULL && strcmp(info.party, "person") != 0 &&
			        strcmp(info.party, "organisation") != 0 ?
			    "--party (person or organisation)" : "case number or text field";
		json_t *had = NULL;
		if (rc == CS_EEXIST) {
			/* say what the file is now: open, closed or sealed */
			what = "there";
			if (cs_store_case_get(st, number, &had) == 0 &&
			    json_string_value(json_object_get(had, "state")) != NULL)
				what = json_string_value(json_object_get(had, "state"));
		}
		code = rc < 0 ? explain(st, rc, number, NULL, what) : EXIT_OK;
		json_decref(had);
		if (rc == 0 && !o->quiet)
			printf("opened case file %s (ledger event #%llu)\n", number,
			    (unsigned long long)seq);
	} else if (strcmp(sub, "add") == 0) {
		for (int i = optind + 1; i < argc && code != EXIT_STORE; i++) {
			what = NULL;
			rc = cs_case_add(st, number, argv[i], stage, reason, &seq, &what);
			if (rc < 0) {
				code = explain(st, rc, number, argv[i], what);
				if (rc == CS_ESEALED ||
				    (what != NULL && strcmp(what, "case") == 0) ||
				    (what != NULL && strcmp(what, "stage") == 0))
					break;
				continue;
			}
			if (!o->quiet)
				printf("added %s to case file %s (ledger event #%llu)\n", argv[i],
				    number, (unsigned long long)seq);
		}
	} else if (strcmp(sub, "remove") == 0) {
		rc = cs_case_remove(st, number, argv[optind + 1], reason, &seq, &what);
		code = rc < 0 ? explain(st, rc, number, argv[optind + 1], what) : EXIT_OK;
		if (rc == 0 && !o->quiet)
			printf("removed %s from case file %s (ledger event #%llu)\n",
			    argv[optind + 1], number, (unsigned long long)seq);
	} else if (strcmp(sub, "close") == 0) {
		rc = cs_case_close(st, number, reason, &seq);
		code = rc < 0 ? explain(st, rc, number, NULL, rc == CS_EEXIST ? "closed" : NULL) :
		                EXIT_OK;
		if (rc == 0 && !o->quiet)
			printf("closed case file %s (ledger event #%llu)\n", number,
			    (unsigned long long)seq);
	} else {
		rc = cs_case_seal(st, number, reason, &seq);
		code = rc < 0 ? explain(st, rc, number, NULL, NULL) : EXIT_OK;
		if (rc == 0 && !o->quiet)
			printf("sealed case file %s (ledger event #%llu)\n", number,
			    (unsigned long long)seq);
	}
	if (seq > 0 || code == EXIT_OK) {
		int s = sign_after(st);
		if (s != EXIT_OK)
			code = s;
	}
	cs_store_close(st);
	return code;
}

/* The time of a case record's "opened", "closed" or "seal", or NULL. */
static const char *
when(json_t *crec, const char *what)
{
	return json_string_value(json_object_get(json_object_get(crec, what), "time"));
}

/* A member's flags and, once they are kept, its media status, replicas and holds. */
static void
print_member_extra(json_t *rec)
{
	static const char *const later[] = {"media", "replicas", "holds", NULL};
	json_t *f;
	size_t k;

	json_array_foreach(json_object_get(rec, "flags"), k, f)
		printf("    FLAGGED %s: %s%s%s\n", json_string_value(json_object_get(f, "flag")),
		    json_string_value(json_object_get(f, "why")),
		    json_object_get(f, "officer") != NULL ? ", officer " : "",
		    json_object_get(f, "officer") != NULL ?
		        json_string_value(json_object_get(f, "officer")) : "");
	for (size_t n = 0; later[n] != NULL; n++) {
		if (json_object_get(rec, later[n]) == NULL)
			continue; /* not known (not kept by this store yet): not shown */
		printf("    %-8s ", later[n]);
		print_value(json_object_get(rec, later[n]));
		printf("\n");
	}
}

static int
case_read(int argc, char **argv, struct opts *o, const char *sub)
{
	json_t *crec = NULL, *members = NULL, *list = NULL, *e;
	struct cs_store *st;
	size_t i;
	int rc, code = EXIT_OK, csv = 0;
	const struct cli_opt own[] = {CLI_OPT("csv", 0, CLI_FLAG, &csv), CLI_END};

	rc = cli_parse(argc, argv, own, usage_case, o);
	if (rc >= 0)
		return rc;
	if (csv && (strcmp(sub, "list") != 0 || o->json)) {
		errmsg("--csv goes with `case list`, without --json");
		return EXIT_USAGE;
	}
	if (argc - optind != (strcmp(sub, "show") == 0 ? 1 : 0)) {
		fputs(usage_case, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	if (strcmp(sub, "list") == 0) {
		rc = cs_store_case_list(st, &list);
		if (rc < 0) {
			errmsg("cannot list the case files: %s", cs_strerror(rc));
			code = EXIT_STORE;
		} else if (o->json) {
			print_json(list);
		} else {
			static const char *const head[] = {"number", "state", "items", "opened",
				"closed", "sealed", "category", "title"};
			if (csv)
				csv_row(stdout, head, 8);
			json_array_foreach(list, i, e)
			{
				char items[24];
				const char *f[8] = {json_string_value(json_object_get(e, "number")),
					json_string_value(json_object_get(e, "state")), items,
					when(e, "opened"), when(e, "closed"), when(e, "seal"),
					json_string_value(json_object_get(e, "category")),
					json_string_value(json_object_get(e, "title"))};
				snprintf(items, sizeof(items), "%lld",
				    (long long)json_integer_value(json_object_get(e, "members")));
				if (csv) {
					csv_row(stdout, f, 8);
					continue;
				}
				for (size_t k = 0; k < 8; k++)
					printf("%s%s", k ? "\t" : "", f[k] != NULL ? f[k] : "-");
				printf("\n");
			}
			if (json_array_size(list) == 0 && !o->quiet)
				errmsg("no case files yet");
		}
		json_decref(list);
		cs_store_close(st);
		return code;
	}
	rc = cs_store_case_get(st, argv[optind], &crec);
	if (rc == 0)
		rc = cs_store_case_members(st, argv[optind], &members);
	/* each member with its item's record */
	json_array_foreach(members, i, e)
	{
		json_t *rec = NULL;
		if (rc == 0 &&
		    cs_store_get(st, json_string_value(json_object_get(e, "id")), &rec) == 0)
			json_object_set_new(e, "record", rec);
	}
	if (rc == CS_ENOTFOUND) {
		errmsg("there is no case file %s; `custos case list` lists them", argv[optind]);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("cannot read case file %s: %s", argv[optind], cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		json_t *j = json_pack("{s:O, s:O}", "case", crec, "members", members);
		print_json(j);
		json_decref(j);
	} else {
		static const char *const facts[] = {"category", "title", "department", "party",
		    NULL};
		printf("case file       %s\n", json_string_value(json_object_get(crec, "number")));
		printf("state           %s\n", json_string_value(json_object_get(crec, "state")));
		for (size_t f = 0; facts[f] != NULL; f++)
			if (json_object_get(crec, facts[f]) != NULL)
				printf("%-15s %s\n", facts[f],
				    json_string_value(json_object_get(crec, facts[f])));
		if (json_object_get(crec, "opened") != NULL) {
			printf("opened          ");
			print_origin(json_object_get(crec, "opened"));
			printf("\n");
		}
		if (json_object_get(crec, "closed") != NULL) {
			printf("closed          ");
			print_origin(json_object_get(crec, "closed"));
			printf("\n");
		}
		if (json_object_get(crec, "seal") != NULL) {
			printf("sealed          ");
			print_origin(json_object_get(crec, "seal"));
			printf("\n                members SHA-256 %s\n",
			    json_string_value(json_object_get(json_object_get(crec, "seal"),
			        "members_sha256")));
		}
		printf("members         %zu\n", json_array_size(members));
		for (int rank = 0; rank <= 7; rank++) {
			const char *name = cs_stage_name(rank);
			int header = 0;
			json_array_foreach(members, i, e)
			{
				const char *s = json_string_value(json_object_get(e, "stage"));
				int match = name != NULL ? s != NULL && strcmp(s, name) == 0 :
				    s == NULL;
				json_t *rec = json_object_get(e, "record");
				if (!match)
					continue;
				if (!header)
					printf("\n%s\n", name != NULL ? name : "(no stage)");
				header = 1;
				printf("  %s  added by ledger event ",
				    json_string_value(json_object_get(e, "id")));
				print_origin(e);
				if (json_object_get(e, "reason") != NULL)
					printf(": %s",
					    json_string_value(json_object_get(e, "reason")));
				printf("\n");
				if (rec != NULL) {
					json_t *s2;
					size_t k;
					json_array_foreach(json_object_get(rec, "seen"), k, s2)
					{
						printf("    sighting #%lld %s  %s  officers ",
						    (long long)json_integer_value(
						        json_object_get(s2, "seq")),
						    json_string_value(
						        json_object_get(s2, "source")) ?
						        json_string_value(
						            json_object_get(s2, "source")) : "-",
						    json_string_value(json_object_get(s2, "name")));
						print_value(json_object_get(s2, "officers"));
						printf("  recorded ");
						print_value(json_object_get(s2, "recorded_start"));
						printf("\n");
					}
					print_member_extra(rec);
					if (json_array_size(
					        json_object_get(rec, "corrections")) > 0)
						printf("    corrections: %zu (`custos show %s "
						       "--history`)\n",
						    json_array_size(
						        json_object_get(rec, "corrections")),
						    json_string_value(json_object_get(e, "id")));
				}
			}
		}
	}
	json_decref(crec);
	json_decref(members);
	cs_store_close(st);
	return code;
}

int
cmd_case(int argc, char **argv, struct opts *o)
{
	const char *sub;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_case, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	sub = argv[1];
	argv[1] = argv[0];
	if (strcmp(sub, "open") == 0 || strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0 ||
	    strcmp(sub, "close") == 0 || strcmp(sub, "seal") == 0)
		return case_write(argc - 1, argv + 1, o, sub);
	if (strcmp(sub, "show") == 0 || strcmp(sub, "list") == 0)
		return case_read(argc - 1, argv + 1, o, sub);
	errmsg("unknown `custos case` command '%s'", sub);
	fputs(usage_case, stderr);
	return EXIT_USAGE;
}

/* ---- custos amend ---- */

/* The --set FIELD=VALUE options of amend, their field names copied. */
struct amend_sets {
	const char *fields[16], *values[16];
	char *owned[16];
	size_t n;
};

static int
amend_set(void *target, const char *arg)
{
	struct amend_sets *s = target;
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg) {
		errmsg("--set takes FIELD=VALUE, e.g. --set officers=3301-0457");
		return EXIT_USAGE;
	}
	if (s->n == 16) {
		errmsg("too many --set options (at most 16)");
		return EXIT_USAGE;
	}
	s->owned[s->n] = strndup(arg, (size_t)(eq - arg));
	if (s->owned[s->n] == NULL) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	s->fields[s->n] = s->owned[s->n];
	s->values[s->n++] = eq + 1;
	return 0;
}

static int
amend_sighting(void *target, const char *arg)
{
	long long *sighting = target;
	char *end;

	errno = 0;
	*sighting = strtoll(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg || *sighting < 0) {
		errmsg("--sighting takes the ledger event number of a sighting");
		return EXIT_USAGE;
	}
	return 0;
}

int
cmd_amend(int argc, char **argv, struct opts *o)
{
	struct amend_sets sets = {.n = 0};
	const char *reason = NULL, *number = NULL, *id = NULL;
	const char *what = NULL;
	struct cs_store *st;
	long long sighting = -1;
	const struct cli_opt own[] = {CLI_CALL_OPT("set", &sets, amend_set),
		CLI_OPT("reason", 0, CLI_STRING, &reason), CLI_OPT("case", 0, CLI_STRING, &number),
		CLI_CALL_OPT("sighting", &sighting, amend_sighting), CLI_END};
	uint64_t seq = 0;
	int rc, code = EXIT_OK;

	rc = cli_parse(argc, argv, own, usage_amend, o);
	if (rc >= 0) {
		code = rc;
		goto out;
	}
	if (argc - optind > 1 || (argc - optind == 0 && number == NULL)) {
		fputs(usage_amend, stderr);
		goto usage_fail;
	}
	if (argc - optind == 1)
		id = argv[optind];
	if (reason == NULL) {
		errmsg("--reason is required: a correction says why");
		goto usage_fail;
	}
	if (sets.n == 0) {
		errmsg("nothing to correct: give --set FIELD=VALUE");
		goto usage_fail;
	}
	if (sighting >= 0 && (id == NULL || number != NULL)) {
		errmsg("--sighting goes with an item id and without --case");
		goto usage_fail;
	}
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		goto out;
	rc = cs_amend(st, id, sighting, number, sets.fields, sets.values, sets.n, reason, &seq,
	    &what);
	if (rc == -EINVAL) {
		fputs(usage_amend, stderr);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		code = explain(st, rc, number, id, what);
	} else {
		if (!o->quiet)
			printf("corrected %s%s%s (ledger event #%llu)\n",
			    id != NULL ? id : "case file ",
			    id != NULL && number != NULL ? " in case file " : "",
			    number != NULL ? number : "", (unsigned long long)seq);
		code = sign_after(st);
	}
	cs_store_close(st);
	goto out;
usage_fail:
	code = EXIT_USAGE;
out:
	for (size_t i = 0; i < sets.n; i++)
		free(sets.owned[i]);
	return code;
}
