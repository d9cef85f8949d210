/*
 * The generator of tests/bench/aged (a bench-only program, not in the suite):
 * builds an aged store through lib, and times opening a store for writing.
 *
 *   aged-gen make ROOT DIR EVENTS CHECKPOINTS [JOBS]
 *       a new store at ROOT (station AGED): the files in DIR ingested into
 *       case BENCH-1 (stage 取证), 100 filler items, then triples of events
 *       (case-open AGE-i, case-add AGE-i of a filler item, case-remove of it:
 *       an item's record lists the cases it is in, so a filler that stayed in
 *       thousands of cases would make each event cost more) until the ledger
 *       holds EVENTS, signing a checkpoint every EVENTS/CHECKPOINTS events;
 *       then JOBS finished jobs as custosd leaves them (lib/secure.c's
 *       "released" record of a file, daemon/dock.c's session records), each
 *       with cs_store_job_put as custosd writes them; prints what it made and
 *       how long it took.
 *   aged-gen event ROOT
 *       one more event (a case-open) without signing a checkpoint.
 *   aged-gen open ROOT N
 *       opens ROOT for writing and closes it N times; prints the median
 *       milliseconds of one open.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/checkpoint.h"
#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/jobs.h"
#include "custos/store.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
die(const char *what, int rc)
{
	fprintf(stderr, "aged-gen: %s: %s\n", what, cs_strerror(rc));
	return 1;
}

static int
open_w(struct cs_store **st, const char *root)
{
	int rc = cs_store_open(st, root, CS_OPEN_WRITE, NULL, NULL);

	if (rc == 0)
		rc = cs_store_set_actor_process(*st);
	return rc;
}

/*
 * `n` finished jobs, as custosd leaves them: alternately a file of an upload
 * directory ("inbox/<dir>/<path>") and one of a recorder's dock session
 * ("dock/<session>/<path>", with the opening that read it and its change
 * time), each "released" with the record lib/secure.c writes; every 100 dock
 * files a session closed, with its "session/<device>/<folder>" and
 * "session-done/<session>" records as daemon/dock.c writes them. Each is one
 * cs_store_job_put (its own transaction), as custosd writes it.
 */
static int
make_jobs(struct cs_store *st, char fill[][80], uint64_t n, double t0)
{
	char key[512], session[200], dev[32];
	json_t *job;
	int rc = 0;

	for (uint64_t i = 0; i < n && rc == 0; i++) {
		const char *id = fill[i % 100];
		uint64_t f = i / 2, sess = f / 100;
		json_int_t ns = (json_int_t)(1764000000000000000LL + (long long)i * 1000000000LL);

		snprintf(dev, sizeof(dev), "BWC%04llu", (unsigned long long)(sess % 50));
		snprintf(session, sizeof(session), "%s-2026-%02llu-%02lluT08:%02llu:00.000Z", dev,
		    (unsigned long long)(1 + sess / 28 % 12), (unsigned long long)(1 + sess % 28),
		    (unsigned long long)(sess / 336 % 60));
		if (i % 2 == 0) {
			snprintf(key, sizeof(key), "inbox//srv/upload/2026/%06llu/REC_%07llu.mp4",
			    (unsigned long long)(f / 1000), (unsigned long long)f);
			job = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "state", "released", "id",
			    id, "sha256", id, "size", (json_int_t)(1 << 20), "ino",
			    (json_int_t)(1000 + i), "mtime_ns", ns);
		} else {
			snprintf(key, sizeof(key), "dock/%s/DCIM/100MEDIA/%s_OF007_%04llu.MP4",
			    session, dev, (unsigned long long)(f % 100));
			job = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I}", "state",
			    "released", "id", id, "sha256", id, "size", (json_int_t)(1 << 20), "ino",
			    (json_int_t)(1000 + i), "mtime_ns", ns, "attach", "a1", "ctime_ns", ns);
		}
		if (job == NULL)
			return die("jobs", -ENOMEM);
		rc = cs_store_job_put(st, key, job);
		json_decref(job);
		if (rc == 0 && i % 2 == 1 && f % 100 == 99) {
			job = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:s, "
			                "s:s, s:i, s:[]}",
			    "session", session, "device", dev, "model", "Bench Cam 1", "officer",
			    "OF007", "state", "complete", "docked_at", "2026-11-28T08:30:00.000Z",
			    "clock_offset_ms", (json_int_t)0, "recorder_clock", "2026-11-28T08:30:00Z",
			    "identity", id, "clock_suspect", 0, "folder", "REC01", "closed_at",
			    "2026-11-28T08:40:00.000Z", "files", 100, "sequence_gaps");
			if (job == NULL)
				return die("jobs", -ENOMEM);
			snprintf(key, sizeof(key), "session/%s/REC01", dev);
			rc = cs_store_job_put(st, key, job);
			snprintf(key, sizeof(key), "session-done/%s", session);
			if (rc == 0)
				rc = cs_store_job_put(st, key, job);
			json_decref(job);
		}
		if ((i & 262143) == 0)
			fprintf(stderr, "aged-gen: %llu jobs, %.0f s\n", (unsigned long long)i,
			    now_s() - t0);
	}
	return rc < 0 ? die("job", rc) : 0;
}

static int
make(const char *root, const char *dir, uint64_t events, uint64_t checkpoints, uint64_t jobs)
{
	struct cs_meta meta = {.case_no = "BENCH-1", .stage = "取证", .source = "cli"};
	struct cs_ingest_result res;
	struct cs_store *st = NULL;
	char fill[100][80], path[4096], num[64];
	struct dirent *de;
	uint64_t seq = 0, every, signed_n = 0, i, next_cp;
	double t0 = now_s();
	DIR *d;
	int rc;

	rc = cs_store_init(root, "AGED");
	if (rc < 0)
		return die("init", rc);
	rc = open_w(&st, root);
	if (rc < 0)
		return die("open", rc);
	d = opendir(dir);
	if (d == NULL) {
		perror(dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		rc = cs_store_ingest_path(st, path, &meta, &res);
		if (rc < 0)
			return die(path, rc);
	}
	closedir(d);
	meta.case_no = NULL;
	for (i = 0; i < 100; i++) {
		FILE *f;
		snprintf(path, sizeof(path), "%s/../filler", dir);
		f = fopen(path, "w");
		if (f == NULL || fprintf(f, "filler item %llu\n", (unsigned long long)i) < 0 ||
		    fclose(f) != 0) {
			perror(path);
			return 1;
		}
		rc = cs_store_ingest_path(st, path, &meta, &res);
		if (rc < 0)
			return die("filler", rc);
		snprintf(fill[i], sizeof(fill[i]), "%s", res.id);
		seq = res.seq + 1;
	}
	rc = cs_store_checkpoint(st, NULL);
	if (rc < 0)
		return die("checkpoint", rc);
	signed_n++;
	every = checkpoints > 0 ? events / checkpoints : events + 1;
	if (every == 0)
		every = 1;
	next_cp = seq + every;
	for (i = 0; seq < events; i++) {
		const char *what = NULL;
		snprintf(num, sizeof(num), "AGE-%llu", (unsigned long long)i);
		for (int k = 0; k < 3 && seq < events; k++) {
			rc = k == 0 ? cs_case_open(st, num, NULL, &seq)
			    : k == 1 ? cs_case_add(st, num, fill[i % 100], "取证", NULL, &seq, &what)
			             : cs_case_remove(st, num, fill[i % 100], "bench", &seq, &what);
			if (rc < 0)
				return die(num, rc);
			seq++;
			if (seq >= next_cp && signed_n < checkpoints) {
				rc = cs_store_checkpoint(st, NULL);
				if (rc < 0)
					return die("checkpoint", rc);
				signed_n++;
				next_cp += every;
			}
		}
		if ((i & 65535) == 0)
			fprintf(stderr, "aged-gen: %llu events, %llu checkpoints, %.0f s\n",
			    (unsigned long long)seq, (unsigned long long)signed_n, now_s() - t0);
	}
	rc = cs_store_checkpoint(st, NULL);
	if (rc < 0)
		return die("checkpoint", rc);
	if (make_jobs(st, fill, jobs, t0) != 0)
		return 1;
	cs_store_close(st);
	printf("aged store: %llu events, %llu checkpoints, %llu jobs, made in %.1f s\n",
	    (unsigned long long)seq, (unsigned long long)signed_n + 1, (unsigned long long)jobs,
	    now_s() - t0);
	return 0;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct cs_store *st = NULL;
	int rc;

	if ((argc == 6 || argc == 7) && strcmp(argv[1], "make") == 0)
		return make(argv[2], argv[3], strtoull(argv[4], NULL, 10),
		    strtoull(argv[5], NULL, 10), argc == 7 ? strtoull(argv[6], NULL, 10) : 0);
	if (argc == 3 && strcmp(argv[1], "event") == 0) {
		char num[64];
		rc = open_w(&st, argv[2]);
		if (rc < 0)
			return die("open", rc);
		snprintf(num, sizeof(num), "EXTRA-%lld", (long long)(now_s() * 1e6));
		rc = cs_case_open(st, num, NULL, NULL);
		cs_store_close(st);
		return rc < 0 ? die("case open", rc) : 0;
	}
	if (argc == 4 && strcmp(argv[1], "open") == 0) {
		int n = atoi(argv[3]);
		double *t = calloc((size_t)(n > 0 ? n : 1), sizeof(*t));
		if (t == NULL || n < 1)
			return 2;
		for (int i = 0; i < n; i++) {
			double t0 = now_s();
			rc = cs_store_open(&st, argv[2], CS_OPEN_WRITE, NULL, NULL);
			if (rc < 0)
				return die("open", rc);
			cs_store_close(st);
			t[i] = (now_s() - t0) * 1e3;
		}
		qsort(t, (size_t)n, sizeof(*t), cmp_d);
		printf("%.3f\n", t[n / 2]);
		free(t);
		return 0;
	}
	fprintf(stderr, "usage: aged-gen make ROOT DIR EVENTS CHECKPOINTS [JOBS] | event ROOT | "
	                "open ROOT N\n");
	return 2;
}
