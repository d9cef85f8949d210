/*
 * custos media: which items have no media record yet, and `custos media
 * process`, which makes the records now, in the foreground (the same work
 * as custosd's media stage: the sandboxed worker, then a "media" event);
 * and what `custos show` prints of a record's media.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/access.h"
#include "custos/error.h"
#include "custos/media.h"
#include "custos/store.h"
#include "cli.h"

static const char usage_media[] =
    "usage: custos media [--store DIR] [--json]\n"
    "       custos media process [ID...] [--timeout SECONDS] [--store DIR] [--json]\n"
    "       custos media get ID --access|--preservation|--poster -o FILE\n"
    "                        [--approval REQ] [--purpose P] [--store DIR | --socket PATH]\n"
    "\n"
    "Without `process`: lists the items that have no media record yet.\n"
    "\n"
    "`process` identifies and probes the items named (when none is: every item\n"
    "without a media record, as custosd does in the background) and records each\n"
    "result as a \"media\" ledger event: the file's type (libmagic) and, for audio\n"
    "and video, the container, streams, duration, creation time, make and model,\n"
    "data tracks and GPS location (libavformat); then it makes the derivatives the\n"
    "normalisation policy asks for ($CUSTOS_MEDIA_POLICY, as custosd's [media.policy]):\n"
    "an access copy (MP4, H.264 + AAC, remuxed when the streams fit) and a poster\n"
    "JPEG for every video, a preservation copy (FFV1 + FLAC in Matroska, or H.264)\n"
    "for formats not kept, each a \"derivative\" ledger event. The work runs in the sandboxed\n"
    "worker custos-probe ($CUSTOS_PROBE, else the installed one), which is killed\n"
    "after --timeout seconds (default 120). A file that cannot be read is recorded\n"
    "as unreadable, with the reason. It needs the store for writing (stop custosd\n"
    "first). `custos show ID` prints the record. Exit status: 0 every item has its\n"
    "record, 1 an item could not be probed (the worker cannot run), 2 a usage\n"
    "error or unknown id, 3 the store could not be used.\n"
    "\n"
    "`get` writes a derivative of the item to FILE (which must not exist), after\n"
    "checking its bytes against the recorded SHA-256. Fetching one is an access\n"
    "in the register, like `custos get`: the access copy and the poster are a view\n"
    "(legal staff with --purpose, others with an approved view request, --approval\n"
    "REQ), the preservation copy a copy (an approved copy request). With --store\n"
    "(or CUSTOS_STORE) the store's own user fetches directly (stop custosd first:\n"
    "it holds the store), otherwise, or with --socket, through custosd. A kept\n"
    "original is its own preservation copy: `custos get` gives it.\n";

/* A fetch of a derivative, as asked: the item, kind, file and gate. */
struct fetch {
	const char *id, *kind, *file, *purpose, *sock;
	int64_t approval; /* < 0: none */
};

/* Writes the opened derivative `in` into the new file f->file; EXIT_OK or an exit code. */
static int
write_copy(int in, const struct fetch *f)
{
	char buf[65536];
	int out = open(f->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t n = 0;

	if (out < 0) {
		errmsg("cannot create %s: %s (it must not exist yet)", f->file, strerror(errno));
		return EXIT_USAGE;
	}
	while (n >= 0 && (n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t done = 0, w; n > 0 && done < n; done += w) {
			w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				n = -1;
		}
	}
	if (n < 0 || fsync(out) < 0) {
		errmsg("writing %s failed: %s", f->file, strerror(errno));
		close(out);
		(void)unlink(f->file);
		return EXIT_PROBLEM;
	}
	if (close(out) < 0) {
		errmsg("writing %s failed: %s", f->file, strerror(errno));
		(void)unlink(f->file);
		return EXIT_PROBLEM;
	}
	return EXIT_OK;
}

static void
fetched(const struct fetch *f, const char *sha, long long entry, const struct opts *o)
{
	json_t *j;

	if (o->json) {
		j = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I}", "ok", 1, "id", f->id, "kind",
		    f->kind, "file", f->file, "sha256", sha != NULL ? sha : "", "access",
		    (json_int_t)entry);
		print_json(j);
		json_decref(j);
	} else if (!o->quiet) {
		printf("%s copy of %s written to %s (sha256 %s, access register entry %lld)\n",
		    f->kind, f->id, f->file, sha, entry);
	}
}

/* The store's own user: the gate and the register entry here, then the bytes. */
static int
get_direct(const struct fetch *f, struct opts *o)
{
	struct cs_access_policy pol;
	struct cs_access_who who;
	struct cs_store *st;
	const char *rule, *item;
	char name[256];
	json_t *d = NULL;
	uint64_t entry;
	int code = EXIT_OK, in = -1, rc;

	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	rc = cs_media_derivative_open(st, f->id, f->kind, &in, &d);
	if (rc == CS_ENOTFOUND) {
		errmsg("item %s has no %s copy (see custos show %s; `custos media process` "
		       "makes the missing ones)",
		    f->id, f->kind, f->id);
		code = EXIT_USAGE;
		goto out;
	}
	if (rc < 0) {
		errmsg("the %s copy of %s cannot be read: %s (run custos verify)", f->kind, f->id,
		    cs_strerror(rc));
		code = EXIT_PROBLEM;
		goto out;
	}
	cs_access_policy_default(&pol);
	owner_who(&who, name, sizeof(name));
	rc = cs_access_grant_derivative(st, &pol, &who, f->id, f->kind, f->approval, f->purpose,
	    &entry, &rule, &item);
	if (rc == CS_EDENIED) {
		errmsg("refused by rule %s: fetching the %s copy is a %s in the access register; "
		       "cite an approved %s request (--approval REQ; `custos request --action %s`)",
		    rule, f->kind, strcmp(f->kind, "preservation") == 0 ? "copy" : "view",
		    strcmp(f->kind, "preservation") == 0 ? "copy" : "view",
		    strcmp(f->kind, "preservation") == 0 ? "copy" : "view");
		code = EXIT_PROBLEM;
		goto out;
	}
	if (rc < 0) {
		errmsg("cannot write the access register entry: %s", cs_strerror(rc));
		code = EXIT_STORE;
		goto out;
	}
	code = write_copy(in, f);
	if (code == EXIT_OK)
		fetched(f, json_string_value(json_object_get(d, "sha256")), (long long)entry, o);
out:
	if (in >= 0)
		close(in);
	json_decref(d);
	cs_store_close(st);
	return code;
}

static int
get(const struct fetch *f, struct opts *o)
{
	json_t *req, *ans = NULL;
	int code;

	if (f->sock == NULL && store_dir(o) != NULL)
		return get_direct(f, o);
	req = json_pack("{s:s, s:s, s:s, s:s*}", "cmd", "get", "id", f->id, "kind", f->kind,
	    "purpose", f->purpose);
	if (req != NULL && f->approval >= 0)
		json_object_set_new(req, "approval", json_integer((json_int_t)f->approval));
	code = get_via_socket(f->sock, o, req, f->file, &ans);
	if (code == EXIT_OK)
		fetched(f, json_string_value(json_object_get(ans, "sha256")),
		    (long long)json_integer_value(json_object_get(ans, "access")), o);
	json_decref(ans);
	return code;
}

const char *
probe_path(void)
{
	const char *p = getenv("CUSTOS_PROBE");

	return p != NULL && *p != '\0' ? p : CS_PROBE_PATH;
}

static int
process(int argc, char **argv, struct opts *o, uint64_t timeout_s)
{
	static const struct cs_media_agent agent = {"custos", CUSTOS_VERSION};
	struct cs_media_limits lim = {timeout_s * 1000, timeout_s, 0, NULL};
	json_t *ids = NULL, *out = json_array(), *rec = NULL, *it;
	struct cs_store *st;
	uint64_t pending = 0;
	int code = EXIT_OK, tty = isatty(STDERR_FILENO) && !o->quiet, rc;
	size_t n, i;

	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL) {
		json_decref(out);
		return code;
	}
	if (argc == 0) {
		rc = cs_media_pending(st, SIZE_MAX, &ids, &pending);
		if (rc < 0) {
			errmsg("cannot list the items without a media record: %s", cs_strerror(rc));
			code = EXIT_STORE;
			goto out;
		}
	}
	n = argc > 0 ? (size_t)argc : json_array_size(ids);
	for (i = 0; i < n; i++) {
		const char *id = argc > 0 ? argv[i] : json_string_value(json_array_get(ids, i));
		uint64_t seq = 0;

		if (tty)
			fprintf(stderr, "\rprobing %zu of %zu: %s ", i + 1, n, id);
		rec = NULL;
		rc = cs_media_process(st, id, probe_path(), &lim, getenv("CUSTOS_MEDIA_POLICY"),
		    &agent, &rec, &seq);
		if (rc < 0 && tty)
			fputc('\n', stderr);
		if (rc == CS_ENOTFOUND) {
			errmsg("no item %s in this store (see custos find)", id);
			code = code == EXIT_OK ? EXIT_USAGE : code;
			continue;
		}
		if (rc == -ENOENT || rc == -ENOEXEC || rc == -EACCES || rc == -EPERM) {
			errmsg("item %s was not probed: %s (the worker %s, or the item's blob; "
			       "check that custos-probe is installed or set CUSTOS_PROBE, and run "
			       "custos verify)",
			    id, cs_strerror(rc), probe_path());
			code = code == EXIT_OK || code == EXIT_USAGE ? EXIT_PROBLEM : code;
			continue;
		}
		if (rc == -ENOSPC) {
			errmsg("the store's disk is full: the copies of item %s were not made; its "
			       "original stays secured. Free space on the store's disk and run "
			       "custos media process again",
			    id);
			code = EXIT_STORE;
			break;
		}
		if (rc < 0) {
			errmsg("probing %s failed: %s", id, cs_strerror(rc));
			code = EXIT_STORE;
			break;
		}
		it = json_pack("{s:s, s:I, s:o}", "id", id, "seq", (json_int_t)seq, "media", rec);
		if (it == NULL || json_array_append_new(out, it) < 0) {
			json_decref(out);
			out = NULL;
		}
		if (!o->json && !o->quiet) {
			json_t *m = json_object_get(it, "media");
			const char *reason = json_string_value(json_object_get(m, "reason"));
			if (tty)
				fputc('\n', stderr);
			printf("%s\t%s\t%s\t%s%s%s\n", id,
			    json_string_value(json_object_get(m, "status")),
			    json_string_value(json_object_get(m, "kind")),
			    json_string_value(json_object_get(m, "mime")) ?
				json_string_value(json_object_get(m, "mime")) :
				"-",
			    reason != NULL ? "\t" : "", reason != NULL ? reason : "");
		}
	}
	if (tty && n > 0)
		fprintf(stderr, "\rprobed %zu item(s)%30s\n", i, "");
	if (o->json) {
		if (out == NULL)
			output_failed = 1;
		else
			print_json(out);
	}
out:
	json_decref(out);
	json_decref(ids);
	cs_store_close(st);
	return code;
}

static int
list_pending(struct opts *o)
{
	struct cs_store *st;
	json_t *ids = NULL, *id;
	uint64_t pending = 0;
	int code = EXIT_OK, rc;
	size_t i;

	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_media_pending(st, SIZE_MAX, &ids, &pending);
	if (rc < 0) {
		errmsg("cannot list the items without a media record: %s", cs_strerror(rc));
		code = EXIT_STORE;
	} else if (o->json) {
		json_t *j = json_pack("{s:I, s:O}", "pending", (json_int_t)pending, "ids", ids);
		if (j == NULL)
			output_failed = 1;
		else
			print_json(j);
		json_decref(j);
	} else {
		json_array_foreach(ids, i, id)
			printf("%s\n", json_string_value(id));
		if (!o->quiet)
			fprintf(stderr, "%s: %llu item(s) without a media record%s\n", prog,
			    (unsigned long long)pending,
			    pending > 0 ? "; `custos media process` makes them" : "");
	}
	json_decref(ids);
	cs_store_close(st);
	return code;
}

int
cmd_media(int argc, char **argv, struct opts *o)
{
	uint64_t timeout_s = 120;
	int sub_process = argc > 1 && strcmp(argv[1], "process") == 0, rc;
	int acc = 0, pres = 0, post = 0;
	uint64_t approval = UINT64_MAX;
	struct fetch f = {.approval = -1};
	const struct cli_opt own[] = {CLI_OPT("timeout", 0, CLI_NUMBER, &timeout_s), CLI_END};
	const struct cli_opt own_get[] = {CLI_OPT("access", 0, CLI_FLAG, &acc),
	    CLI_OPT("preservation", 0, CLI_FLAG, &pres), CLI_OPT("poster", 0, CLI_FLAG, &post),
	    CLI_OPT("output", 'o', CLI_STRING, &f.file),
	    CLI_OPT("approval", 0, CLI_NUMBER, &approval),
	    CLI_OPT("purpose", 0, CLI_STRING, &f.purpose),
	    CLI_OPT("socket", 0, CLI_STRING, &f.sock), CLI_END};

	if (argc > 1 && strcmp(argv[1], "get") == 0) {
		rc = cli_parse(argc - 1, argv + 1, own_get, usage_media, o);
		if (rc >= 0)
			return rc;
		if (optind + 1 != argc - 1 || f.file == NULL || acc + pres + post != 1) {
			errmsg("media get takes one ID, one of --access, --preservation or "
			       "--poster, and -o FILE");
			fputs(usage_media, stderr);
			return EXIT_USAGE;
		}
		f.id = argv[optind + 1];
		f.kind = acc ? "access" : pres ? "preservation" : "poster";
		f.approval = approval <= INT64_MAX ? (int64_t)approval : -1;
		return get(&f, o);
	}
	if (sub_process) {
		argc--;
		argv++;
	}
	rc = cli_parse(argc, argv, sub_process ? own : own + 1, usage_media, o);
	if (rc >= 0)
		return rc;
	if (sub_process) {
		if (timeout_s == 0 || timeout_s > 86400) {
			errmsg("--timeout must be 1 to 86400 seconds");
			return EXIT_USAGE;
		}
		return process(argc - optind, argv + optind, o, timeout_s);
	}
	if (optind != argc) {
		fputs(usage_media, stderr);
		return EXIT_USAGE;
	}
	return list_pending(o);
}

/* A member of a JSON object as text (NULL when absent or not a string), or as an integer. */
#define STR(o, k) json_string_value(json_object_get((o), (k)))
#define INT(o, k) ((long long)json_integer_value(json_object_get((o), (k))))

static void
show_stream(json_t *s)
{
	printf("  stream %-6lld %s %s", INT(s, "index"), STR(s, "type"), STR(s, "codec"));
	if (STR(s, "codec_tag") != NULL)
		printf(" [%s]", STR(s, "codec_tag"));
	if (json_object_get(s, "width") != NULL)
		printf(" %lldx%lld", INT(s, "width"), INT(s, "height"));
	if (STR(s, "frame_rate") != NULL)
		printf(" %s fps", STR(s, "frame_rate"));
	if (json_object_get(s, "sample_rate") != NULL)
		printf(" %lld Hz", INT(s, "sample_rate"));
	if (json_object_get(s, "channels") != NULL)
		printf(" %lld ch", INT(s, "channels"));
	printf("\n");
}

void
media_show_item(json_t *rec)
{
	json_t *m = json_object_get(rec, "media"), *s, *t = json_object_get(m, "tool");
	size_t i, ndata = json_array_size(json_object_get(m, "data_tracks"));

	if (m == NULL) {
		printf("media:           none yet (`custos media process` makes it)\n");
		return;
	}
	printf("media:           %s, %s, %s\n", STR(m, "status"), STR(m, "kind"),
	    STR(m, "mime") != NULL ? STR(m, "mime") : "type unknown");
	if (STR(m, "reason") != NULL)
		printf("  reason:        %s\n", STR(m, "reason"));
	if (STR(m, "type") != NULL)
		printf("  type:          %s\n", STR(m, "type"));
	if (STR(m, "container") != NULL)
		printf("  container:     %s (%s)\n", STR(m, "container"), STR(m, "container_name"));
	if (json_object_get(m, "duration_us") != NULL)
		printf("  duration:      %.3f s\n", (double)INT(m, "duration_us") / 1e6);
	if (STR(m, "creation_time") != NULL)
		printf("  created:       %s\n", STR(m, "creation_time"));
	if (STR(m, "make") != NULL || STR(m, "model") != NULL)
		printf("  device:        %s %s\n", STR(m, "make") ? STR(m, "make") : "",
		    STR(m, "model") ? STR(m, "model") : "");
	if (json_object_get(m, "location") != NULL)
		printf("  location:      %s\n", STR(json_object_get(m, "location"), "iso6709"));
	json_array_foreach(json_object_get(m, "streams"), i, s)
		show_stream(s);
	if (ndata > 0)
		printf("  data tracks:   %zu\n", ndata);
	if (json_object_get(m, "normalisation") != NULL)
		printf("  policy:        %s\n",
		    STR(json_object_get(m, "normalisation"), "action"));
	json_array_foreach(json_object_get(rec, "derivatives"), i, s) {
		const char *enc = NULL;
		json_t *x;
		size_t k;
		json_array_foreach(json_object_get(s, "streams"), k, x)
			if (k == 0)
				enc = STR(x, "encoder") != NULL ? STR(x, "encoder") :
								  STR(x, "parameters");
		printf("  derivative:    %s %s", STR(s, "kind"), STR(s, "status"));
		if (STR(s, "sha256") != NULL)
			printf(" %s %s %lld bytes", STR(s, "format"), STR(s, "sha256"),
			    INT(s, "size"));
		printf(" (%s%s%s), event #%lld\n", STR(s, "method") ? STR(s, "method") : "-",
		    enc != NULL ? ", " : "", enc != NULL ? enc : "", INT(s, "seq"));
		if (STR(s, "reason") != NULL)
			printf("    reason:      %s\n", STR(s, "reason"));
		json_array_foreach(json_object_get(s, "replicas"), k, x)
			printf("    replica:     %s %s, event #%lld\n", STR(x, "remote"),
			    STR(x, "key"), INT(x, "seq"));
	}
	if (t != NULL)
		printf("  tool:          %s %s (libavformat %s, libavcodec %s, libmagic %s), "
		       "event #%lld\n",
		    STR(t, "name"), STR(t, "version"), STR(t, "libavformat"), STR(t, "libavcodec"),
		    STR(t, "libmagic"), INT(m, "seq"));
	match_show_item(rec);
}
