/*
 * custos match FILE and custos similar ID: which secured evidence contains
 * the same footage or sound, by the fingerprint index (custos/media.h,
 * cs_media_match). FILE is fingerprinted by the sandboxed worker and never
 * stored; what is printed: each matching item with its score and the offset
 * in it of FILE's start, best first; and what `custos show` prints of an
 * item's fingerprint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/media.h"
#include "custos/store.h"
#include "cli.h"

#define THRESHOLD_DEFAULT 0.5

static const char usage_match[] =
    "usage: custos match FILE [--threshold X] [--timeout SECONDS] [--store DIR] [--json]\n"
    "\n"
    "Lists the secured items that contain the footage (or sound) of FILE, even\n"
    "re-encoded at another bitrate or scaled: each with its score (the fraction\n"
    "of FILE's keyframe hashes, or of its Chromaprint audio values, found in the\n"
    "item at one offset; 0 to 1) and that offset (where in the item FILE's start\n"
    "is, in seconds), best first; only scores of at least --threshold (default\n"
    "0.5). FILE is read by the sandboxed worker custos-probe ($CUSTOS_PROBE),\n"
    "killed after --timeout seconds (default 120), and is not stored.\n"
    "Items are matched through an index of their fingerprints, which custosd and\n"
    "`custos media process` make for every audio and video item.\n"
    "Exit status: 0 a match was found, 1 none (or FILE has no usable\n"
    "fingerprint), 2 a usage error or FILE cannot be read, 3 the store could\n"
    "not be used.\n";

static const char usage_similar[] =
    "usage: custos similar ID [--threshold X] [--store DIR] [--json]\n"
    "\n"
    "Lists the other items that contain the footage (or sound) of item ID, as\n"
    "`custos match` does for a file, from ID's stored fingerprint. Exit status:\n"
    "0 a match was found, 1 none, 2 a usage error or ID has no fingerprint,\n"
    "3 the store could not be used.\n";

static int
threshold_arg(void *target, const char *arg)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
		errmsg("--threshold must be a number from 0 to 1, such as 0.5 (got '%s')", arg);
		return EXIT_USAGE;
	}
	*(double *)target = v;
	return 0;
}

/* Prints the answer of cs_media_match; the exit code. */
static int
print_matches(json_t *res, const char *what, struct opts *o)
{
	json_t *list = json_object_get(res, "matches"), *m;
	size_t i;

	if (o->json) {
		print_json(res);
		return json_array_size(list) > 0 ? EXIT_OK : EXIT_PROBLEM;
	}
	json_array_foreach(list, i, m) {
		json_t *v = json_object_get(m, "video"), *a = json_object_get(m, "audio");
		printf("%s\tscore %.2f\toffset %.1f s", json_string_value(json_object_get(m, "id")),
		    json_real_value(json_object_get(m, "score")),
		    json_real_value(json_object_get(m, "offset_s")));
		if (v != NULL)
			printf("\tvideo %lld/%lld",
			    (long long)json_integer_value(json_object_get(v, "matched")),
			    (long long)json_integer_value(json_object_get(v, "of")));
		if (a != NULL)
			printf("\taudio %lld/%lld",
			    (long long)json_integer_value(json_object_get(a, "matched")),
			    (long long)json_integer_value(json_object_get(a, "of")));
		printf("\n");
	}
	if (json_array_size(list) == 0 && !o->quiet)
		fprintf(stderr, "%s: no secured item matches %s\n", prog, what);
	return json_array_size(list) > 0 ? EXIT_OK : EXIT_PROBLEM;
}

int
cmd_match(int argc, char **argv, struct opts *o)
{
	double threshold = THRESHOLD_DEFAULT;
	uint64_t timeout_s = 120;
	const struct cli_opt own[] = {CLI_CALL_OPT("threshold", &threshold, threshold_arg),
	    CLI_OPT("timeout", 0, CLI_NUMBER, &timeout_s), CLI_END};
	struct cs_media_limits lim = {0, 0, 0, NULL};
	struct cs_store *st = NULL;
	json_t *fp = NULL, *res = NULL;
	const char *file, *status;
	struct stat sb;
	int code = EXIT_OK, fd = -1, rc;

	rc = cli_parse(argc, argv, own, usage_match, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		errmsg("match takes one FILE");
		fputs(usage_match, stderr);
		return EXIT_USAGE;
	}
	if (timeout_s == 0 || timeout_s > 86400) {
		errmsg("--timeout must be 1 to 86400 seconds");
		return EXIT_USAGE;
	}
	lim.wall_ms = timeout_s * 1000;
	lim.cpu_s = timeout_s;
	file = argv[optind];
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		errmsg("cannot read %s: %s", file, fd < 0 ? strerror(errno) : "not a regular file");
		code = EXIT_USAGE;
		goto out;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		goto out;
	rc = cs_media_fingerprint(fd, probe_path(), &lim, &fp);
	if (rc < 0) {
		errmsg("%s was not fingerprinted: %s (the worker %s; check that custos-probe is "
		       "installed or set CUSTOS_PROBE)",
		    file, cs_strerror(rc), probe_path());
		code = EXIT_PROBLEM;
		goto out;
	}
	status = json_string_value(json_object_get(fp, "status"));
	if (status == NULL || strcmp(status, "ok") != 0) {
		errmsg("%s has no usable fingerprint: %s", file,
		    json_string_value(json_object_get(fp, "reason")) ?
			json_string_value(json_object_get(fp, "reason")) :
			"the worker gave no reason");
		code = EXIT_PROBLEM;
		goto out;
	}
	rc = cs_media_match(st, fp, NULL, threshold, &res);
	if (rc < 0) {
		errmsg("matching %s failed: %s", file, cs_strerror(rc));
		code = EXIT_STORE;
		goto out;
	}
	code = print_matches(res, file, o);
out:
	if (fd >= 0)
		close(fd);
	json_decref(fp);
	json_decref(res);
	cs_store_close(st);
	return code;
}

int
cmd_similar(int argc, char **argv, struct opts *o)
{
	double threshold = THRESHOLD_DEFAULT;
	const struct cli_opt own[] = {CLI_CALL_OPT("threshold", &threshold, threshold_arg),
	    CLI_END};
	struct cs_store *st;
	json_t *res = NULL;
	int code = EXIT_OK, rc;

	rc = cli_parse(argc, argv, own, usage_similar, o);
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc) {
		errmsg("similar takes one ID");
		fputs(usage_similar, stderr);
		return EXIT_USAGE;
	}
	st = open_store(o, CS_OPEN_READ, &code);
	if (st == NULL)
		return code;
	rc = cs_media_similar(st, argv[optind], threshold, &res);
	if (rc == CS_ENOTFOUND) {
		errmsg("item %s has no fingerprint (no such item, not audio or video, or not "
		       "processed yet: see custos show %s; `custos media process` makes it)",
		    argv[optind], argv[optind]);
		code = EXIT_USAGE;
	} else if (rc < 0) {
		errmsg("matching %s failed: %s", argv[optind], cs_strerror(rc));
		code = EXIT_STORE;
	} else {
		code = print_matches(res, argv[optind], o);
	}
	json_decref(res);
	cs_store_close(st);
	return code;
}

void
match_show_item(json_t *rec)
{
	json_t *f = json_object_get(rec, "fingerprint"), *v, *a;

	if (f == NULL)
		return;
	v = json_object_get(f, "video");
	a = json_object_get(f, "audio");
	printf("fingerprint:     %s", json_string_value(json_object_get(f, "status")));
	if (v != NULL)
		printf(", %lld keyframe hashes (%s)",
		    (long long)json_integer_value(json_object_get(v, "count")),
		    json_string_value(json_object_get(v, "algorithm")));
	if (a != NULL)
		printf(", %lld audio values (%s %s)",
		    (long long)json_integer_value(json_object_get(a, "count")),
		    json_string_value(json_object_get(a, "algorithm")),
		    json_string_value(json_object_get(a, "chromaprint")));
	printf(", event #%lld\n", (long long)json_integer_value(json_object_get(f, "seq")));
	if (json_object_get(f, "reason") != NULL)
		printf("  reason:        %s\n", json_string_value(json_object_get(f, "reason")));
}
