/*
 * The generator of tests/bench/aged (a bench-only program, not in the suite):
 * builds an aged store through lib, and times opening a store for writing.
 *
 *   aged-gen make ROOT DIR EVENTS CHECKPOINTS
 *       a new store at ROOT (station AGED): the files in DIR ingested into
 *       case BENCH-1 (stage 取证), 100 filler items, then pairs of events
 *       (case-open AGE-i, case-add AGE-i of a filler item) until the ledger
 *       holds EVENTS, signing a checkpoint every EVENTS/CHECKPOINTS events;
 *       prints what it made and how long it took.
 *   aged-gen event ROOT
 *       one more event (a case-open) without signing a checkpoint.
 *   aged-gen open ROOT N
 *       opens ROOT for writing and closes it N times; prints the median
 *       milliseconds of one open.
 */
#include <dirent.h>
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

static int
make(const char *root, const char *dir, uint64_t events, uint64_t checkpoints)
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
		for (int k = 0; k < 2 && seq < events; k++) {
			rc = k == 0 ? cs_case_open(st, num, NULL, &seq)
			            : cs_case_add(st, num, fill[i % 100], "取证", NULL, &seq, &what);
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
	cs_store_close(st);
	printf("aged store: %llu events, %llu checkpoints, made in %.1f s\n",
	    (unsigned long long)seq, (unsigned long long)signed_n + 1, now_s() - t0);
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

	if (argc == 6 && strcmp(argv[1], "make") == 0)
		return make(argv[2], argv[3], strtoull(argv[4], NULL, 10),
		    strtoull(argv[5], NULL, 10));
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
	fprintf(stderr, "usage: aged-gen make ROOT DIR EVENTS CHECKPOINTS | event ROOT | "
	                "open ROOT N\n");
	return 2;
}
