/*
 * custos custody: the chain of custody of one item as lib gives it
 * (custos/custody.h), printed as text, JSON or a printable HTML report that
 * a court clerk can open in a browser. The report is one self-contained
 * file: inline CSS, no scripts, no external resources, and every value from
 * the store (metadata is hostile) HTML-escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "custos/checkpoint.h"
#include "custos/custody.h"
#include "custos/error.h"

static const char usage_custody[] =
    "usage: custos custody ID [--json | --html] [--store DIR]\n"
    "\n"
    "The chain of custody of evidence item ID, from its docking to now: every\n"
    "ledger event about it (ingest, each later sighting, case files, corrections,\n"
    "fixity checks, and the events of later kinds), who made it and when, each with\n"
    "its inclusion proof checked against the latest signed checkpoint with the\n"
    "store's verifier key. --html writes a printable, self-contained report (no\n"
    "scripts, nothing fetched) to stdout: `custos custody ID --html > report.html`.\n"
    "Exit status: 0 every proof checks (events newer than the latest checkpoint are\n"
    "listed as not yet covered), 1 a proof fails, 2 no such item, 3 store failure.\n";

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/* The event's own facts: everything but what every event has, compact JSON (malloc'd). */
static char *
details(json_t *ev)
{
	static const char *const common[] = {"seq", "time", "v", "event", "actor", NULL};
	json_t *c = json_copy(ev);
	char *s;

	if (c == NULL)
		return NULL;
	for (size_t i = 0; common[i] != NULL; i++)
		json_object_del(c, common[i]);
	s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	return s;
}

static const char *
actor_name(json_t *e)
{
	json_t *a = json_object_get(e, "actor");

	return a != NULL ? str(a, "name") : "-";
}

/* Text with & < > " ' and control characters written as HTML character references. */
static void
html(FILE *f, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&#39;", f);
		else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			fprintf(f, "&#x%X;", c);
		else
			fputc(c, f);
	}
}

static void
row(FILE *f, const char *k, const char *v)
{
	fputs("<tr><th>", f);
	html(f, k);
	fputs("</th><td>", f);
	html(f, v);
	fputs("</td></tr>\n", f);
}

static const char css[] =
    "body{font:11pt/1.4 'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em;color:#000}"
    "h1{font-size:16pt}h2{font-size:13pt;margin-top:1.5em;border-bottom:1px solid #888}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #aaa;padding:3px 6px;"
    "text-align:left;vertical-align:top;word-break:break-all}th{background:#eee;width:12em}"
    "pre{font:8pt/1.2 monospace;white-space:pre-wrap;word-break:break-all;"
    "border:1px solid #ccc;padding:4px}.ok{color:#060}.bad{color:#a00;font-weight:bold}"
    ".flag{color:#a00}@media print{body{margin:0}h2{page-break-after:avoid}"
    "tr,pre{page-break-inside:avoid}}";

static void
print_html(json_t *c, const char *vkey)
{
	json_t *rec = json_object_get(c, "record"), *e, *v, *cp = json_object_get(c, "checkpoint");
	size_t i;
	char buf[64];

	fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'\">\n<title>Chain of custody ",
	    stdout);
	html(stdout, str(c, "id"));
	printf("</title>\n<style>%s</style></head><body>\n<h1>Chain of custody of evidence item ",
	    css);
	html(stdout, str(c, "id"));
	fputs("</h1>\n<h2>The item</h2>\n<table>\n", stdout);
	row(stdout, "id", str(rec, "id"));
	row(stdout, "SHA-256", str(rec, "sha256"));
	snprintf(buf, sizeof(buf), "%lld",
	    (long long)json_integer_value(json_object_get(rec, "size")));
	row(stdout, "size (bytes)", buf);
	row(stdout, "original name", str(rec, "name"));
	row(stdout, "secured at", str(rec, "ingested_at"));
	row(stdout, "recorded from", str(rec, "recorded_start"));
	row(stdout, "recorded to", str(rec, "recorded_end"));
	row(stdout, "device", str(rec, "device"));
	json_array_foreach(json_object_get(rec, "officers"), i, v)
	    row(stdout, "officer", json_string_value(v));
	json_array_foreach(json_object_get(rec, "cases"), i, v)
	{
		char *t = NULL;
		size_t n = strlen(str(v, "case")) + strlen(str(v, "stage")) + 16;
		if ((t = malloc(n)) != NULL) {
			snprintf(t, n, "%s (stage %s)", str(v, "case"),
			    *str(v, "stage") ? str(v, "stage") : "-");
			row(stdout, "case file", t);
		}
		free(t);
	}
	json_array_foreach(json_object_get(rec, "flags"), i, v)
	{
		fputs("<tr><th class=\"flag\">flag</th><td class=\"flag\">", stdout);
		html(stdout, str(v, "flag"));
		fputs(": ", stdout);
		html(stdout, str(v, "why"));
		if (json_object_get(v, "officer") != NULL) {
			fputs(" (officer ", stdout);
			html(stdout, str(v, "officer"));
			fputs(")", stdout);
		}
		fputs("</td></tr>\n", stdout);
	}
	fputs("</table>\n<h2>Events, from docking to now</h2>\n<table>\n<tr><th>ledger #</th>"
	      "<th>time (UTC)</th><th>event</th><th>by</th><th>details</th><th>proof</th></tr>\n",
	    stdout);
	json_array_foreach(json_object_get(c, "events"), i, e)
	{
		char *d = details(json_object_get(e, "event"));
		const char *ps = str(e, "proof_status");
		printf("<tr><td>%lld</td><td>",
		    (long long)json_integer_value(json_object_get(e, "seq")));
		html(stdout, str(e, "time"));
		fputs("</td><td>", stdout);
		html(stdout, str(e, "type"));
		fputs("</td><td>", stdout);
		html(stdout, actor_name(e));
		fputs("</td><td>", stdout);
		html(stdout, d != NULL ? d : "?");
		printf("</td><td class=\"%s\">", strcmp(ps, "failed") == 0 ? "bad" : "ok");
		html(stdout,
		    strcmp(ps, "verified") == 0     ? "included in the signed ledger"
		        : strcmp(ps, "failed") == 0 ? "FAILED"
		                                    : "not yet in a signed checkpoint");
		fputs("</td></tr>\n", stdout);
		free(d);
	}
	fputs("</table>\n<h2>The signed checkpoint</h2>\n", stdout);
	if (cp != NULL) {
		fputs("<pre>", stdout);
		html(stdout, str(cp, "note"));
		fputs("</pre>\n", stdout);
	} else {
		fputs("<p>No checkpoint has been signed yet.</p>\n", stdout);
	}
	fputs("<p>Verifier key:</p><pre>", stdout);
	html(stdout, vkey);
	fputs("</pre>\n<h2>How to check this report</h2>\n<p>Each event below is a C2SP "
	      "tlog-proof: the event's exact bytes (the 'extra' line, base64), the hashes that "
	      "lead from it to the ledger's Merkle root, and the checkpoint signed with the key "
	      "above. Copy the proofs into a file and run <code>custos check-proof FILE --key "
	      "KEY</code>, or any checker of the C2SP tlog-proof and signed-note formats.</p>\n",
	    stdout);
	json_array_foreach(json_object_get(c, "events"), i, e)
	{
		if (json_object_get(e, "proof") == NULL)
			continue;
		printf("<p>Proof of ledger event #%lld:</p><pre>",
		    (long long)json_integer_value(json_object_get(e, "seq")));
		html(stdout, str(e, "proof"));
		fputs("</pre>\n", stdout);
	}
	fputs("</body></html>\n", stdout);
}

static void
print_text(json_t *c)
{
	json_t *rec = json_object_get(c, "record"), *e, *v;
	size_t i;

	printf("item            %s\n", str(c, "id"));
	printf("sha256          %s\n", str(rec, "sha256"));
	printf("size            %lld\n",
	    (long long)json_integer_value(json_object_get(rec, "size")));
	printf("name            %s\n", str(rec, "name"));
	json_array_foreach(json_object_get(rec, "flags"), i, v)
	    printf("FLAGGED         %s: %s%s%s\n", str(v, "flag"), str(v, "why"),
	        json_object_get(v, "officer") != NULL ? ", officer " : "", str(v, "officer"));
	if (json_object_get(c, "checkpoint") != NULL)
		printf("checkpoint      tree size %lld\n",
		    (long long)json_integer_value(
		        json_object_get(json_object_get(c, "checkpoint"), "size")));
	printf("events:\n");
	json_array_foreach(json_object_get(c, "events"), i, e)
	{
		char *d = details(json_object_get(e, "event"));
		printf("  #%lld  %s  %-12s by %s  proof %s\n      %s\n",
		    (long long)json_integer_value(json_object_get(e, "seq")), str(e, "time"),
		    str(e, "type"), actor_name(e), str(e, "proof_status"), d != NULL ? d : "?");
		free(d);
	}
}

int
cmd_custody(int argc, char **argv, struct opts *o)
{
	int as_html = 0, rc, code = EXIT_OK;
	const struct cli_opt own[] = {CLI_OPT("html", 0, CLI_FLAG, &as_html), CLI_END};
	struct cs_store *st;
	json_t *c = NULL, *e;
	char *vkey = NULL;
	size_t i;

	rc = cli_parse(argc, argv, own, usage_custody, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || (as_html && o->json)) {
		fputs(usage_custody, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_store_custody(st, argv[optind], &c);
	if (rc == 0)
		rc = cs_store_verifier_key(st, &vkey);
	if (rc == CS_ENOTFOUND) {
		errmsg("no evidence item has the id '%s'; `custos find` searches by case number",
		    argv[optind]);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("cannot read the custody of '%s': %s", argv[optind], cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		if (o->json)
			print_json(c);
		else if (as_html)
			print_html(c, vkey);
		else
			print_text(c);
		json_array_foreach(json_object_get(c, "events"), i, e)
		{
			if (strcmp(str(e, "proof_status"), "failed") == 0) {
				errmsg("the proof of ledger event #%lld does not check: %s; run "
				       "`custos verify`",
				    (long long)json_integer_value(json_object_get(e, "seq")),
				    str(e, "why"));
				code = EXIT_PROBLEM;
			}
		}
	}
	json_decref(c);
	free(vkey);
	cs_store_close(st);
	return code;
}
