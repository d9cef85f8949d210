/*
 * Unit tests of the store through its public API (and a few lib-internal
 * helpers): metadata validation, time parsing, catalog map growth, parallel
 * ingest from several threads, group commit (custos/batch.h), torn-tail
 * recovery and checkpoint consistency, and verify's catalog child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/batch.h"
#include "custos/error.h"
#include "custos/query.h"
#include "custos/replica.h"
#include "custos/secure.h"
#include "custos/note.h"
#include "custos/store.h"
#include "catalog.h"
#include "store_internal.h"
#include "tap.h"
#include "util.h"

static char base[256];

static void
make_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static void
test_time(void)
{
	static const struct {
		const char *in;
		const char *want; /* NULL: must be refused */
	} cases[] = {
		{"2026-11-28T08:30:00Z", "2026-11-28T08:30:00.000Z"},
		{"2026-11-28T08:30:00+08:00", "2026-11-28T00:30:00.000Z"},
		{"2026-11-28 08:30:00.5-01:30", "2026-11-28T10:00:00.500Z"},
		{"2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999Z"},
		{"2026-02-29T00:00:00Z", NULL},
		{"2026-13-01T00:00:00Z", NULL},
		{"2026-11-28T24:00:00Z", NULL},
		{"2026-11-28T08:30:00", NULL},
		{"2026-11-28", NULL},
		{"2026-11-28T08:30:00Zjunk", NULL},
		{"1969-12-31T23:59:59Z", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms;
		char buf[32];
		int rc = cs__time_parse(cases[i].in, &ms);
		if (cases[i].want == NULL) {
			ok(rc == CS_EFORMAT, "time '%s' refused", cases[i].in);
			continue;
		}
		cs__time_format(ms, buf, sizeof(buf));
		ok(rc == 0 && strcmp(buf, cases[i].want) == 0, "time '%s' -> %s (got %s)",
		    cases[i].in, cases[i].want, rc == 0 ? buf : "error");
	}
}

static void
test_meta(void)
{
	const char *officers[] = {"O1", "bad\nofficer"};
	static const struct {
		struct cs_meta m;
		const char *bad;
	} cases[] = {
		{{.case_no = "平司罚〔2020〕1号", .stage = "取证"}, NULL},
		{{.case_no = "C1", .stage = "review"}, NULL},
		{{.case_no = "C1", .stage = "Decision"}, NULL},
		{{.case_no = "C1", .stage = "arrest"}, "stage"},
		{{.case_no = "C1\x01"}, "case"},
		{{.case_no = "\xff\xfe"}, "case"},
		{{.case_no = ""}, "case"},
		{{.device = "D\x7f"}, "device"},
		{{.recorded_start = "yesterday"}, "recorded_start"},
		{{.recorded_start = "2026-11-28T09:00:00Z", .recorded_end = "2026-11-28T08:00:00Z"},
		    "recorded_end"},
	};
	struct cs_meta m = {.case_no = "C", .officers = officers, .n_officers = 2};
	const char *field = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		field = NULL;
		rc = cs_meta_check(&cases[i].m, &field);
		if (cases[i].bad == NULL)
			ok(rc == 0, "metadata case %zu accepted", i);
		else
			ok(rc == CS_EFORMAT && field != NULL && strcmp(field, cases[i].bad) == 0,
			    "metadata case %zu refused naming '%s' (got '%s')", i, cases[i].bad,
			    field ? field : "nothing");
	}
	ok(cs_meta_check(&m, &field) == CS_EFORMAT && strcmp(field, "officers") == 0,
	    "an officer id with a newline is refused");
}

/* A tiny map forces many grow-and-retry cycles; nothing may be lost. */
static void
test_map_growth(void)
{
	char root[300], path[400];
	struct cs_store *st = NULL;
	struct cs_query q = {.case_no = "GROW-1"};
	json_t *res = NULL;
	int failures = 0;

	snprintf(root, sizeof(root), "%s/grow", base);
	setenv("CUSTOS_MAP_SIZE", "65536", 1);
	ok(cs_store_init(root, "GROW") == 0, "store with a 64 KiB map created");
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0, "opened for writing");
	for (int i = 0; i < 400; i++) {
		struct cs_ingest_result r;
		char data[64];
		int n = snprintf(data, sizeof(data), "file number %d of the growth test\n", i);
		snprintf(path, sizeof(path), "%s/g%d", base, i);
		make_file(path, data, (size_t)n);
		struct cs_meta m = {.case_no = "GROW-1", .device = "DEV-GROW"};
		if (cs_store_ingest_path(st, path, &m, &r) != 0)
			failures++;
		unlink(path);
	}
	is_int(failures, 0, "400 ingests into a 64 KiB map all succeed (the map grows)");
	is_int(cs_store_size(st), 400, "ledger holds 400 events");
	ok(cs_store_find(st, &q, &res) == 0 && json_array_size(res) == 400,
	    "all 400 found by case number");
	json_decref(res);
	ok(cs_store_checkpoint(st, NULL) == 0, "checkpoint signed");
	is_int(cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL), 0, "verify finds no problem");
	cs_store_close(st);
	unsetenv("CUSTOS_MAP_SIZE");
}

struct worker {
	struct cs_store *st;
	int index;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char path[400], data[128];

	for (int i = 0; i < 25; i++) {
		struct cs_ingest_result r;
		struct cs_meta m = {.case_no = "PAR-1"};
		int n = snprintf(data, sizeof(data), "worker %d file %d\n", w->index, i);
		snprintf(path, sizeof(path), "%s/w%d-%d", base, w->index, i);
		make_file(path, data, (size_t)n);
		if (cs_store_ingest_path(w->st, path, &m, &r) != 0)
			w->failures++;
		unlink(path);
	}
	return NULL;
}

static void
test_parallel(void)
{
	struct worker w[4];
	pthread_t t[4];
	char root[300];
	struct cs_store *st = NULL;
	int failures = 0;

	snprintf(root, sizeof(root), "%s/par", base);
	cs_store_init(root, "PAR");
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0, "parallel store opened");
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){st, i, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	is_int(failures, 0, "4 threads x 25 ingests succeed");
	is_int(cs_store_size(st), 100, "100 events, one per file");
	ok(cs_store_checkpoint(st, NULL) == 0, "checkpoint signed");
	is_int(cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL), 0,
	    "verify: catalog == replay(ledger)");
	cs_store_close(st);
}

/* The type of event `seq` ("ingest", "sighting", ...), into buf. */
static const char *
event_type(struct cs_store *st, uint64_t seq, char *buf, size_t n)
{
	json_t *ev = NULL;

	buf[0] = '\0';
	if (cs_store_event(st, seq, &ev, NULL, NULL) == 0)
		snprintf(buf, n, "%s", json_string_value(json_object_get(ev, "event")));
	json_decref(ev);
	return buf;
}

static int
add_bytes(struct cs_batch *b, const char *name, const char *data, const struct cs_meta *m)
{
	char path[400];
	int fd, slot;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	make_file(path, data, strlen(data));
	fd = open(path, O_RDONLY);
	slot = cs_batch_add_fd(b, fd, path, m);
	close(fd);
	unlink(path);
	return slot;
}

struct adder {
	struct cs_batch *b;
	int index, failures;
};

static void *
adder_main(void *arg)
{
	struct adder *a = arg;
	char name[64], data[64];

	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "add%d-%d", a->index, i);
		snprintf(data, sizeof(data), "adder %d file %d\n", a->index, i);
		if (add_bytes(a->b, name, data, NULL) < 0)
			a->failures++;
	}
	return NULL;
}

static void
test_batch(void)
{
	struct cs_meta m = {.case_no = "B-1"}, bad = {.stage = "nonsense"};
	struct cs_ingest_result a, r[4];
	struct cs_batch *b = NULL;
	struct cs_store *st = NULL;
	struct cs_query q = {.case_no = "B-1"};
	char root[300], path[400], t[32];
	json_t *found = NULL;
	int slot[4], fails = 0;
	uint64_t size0;

	snprintf(root, sizeof(root), "%s/batch", base);
	cs_store_init(root, "BAT");
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0, "batch store opened");
	snprintf(path, sizeof(path), "%s/a", base);
	make_file(path, "bytes stored before\n", 20);
	ok(cs_store_ingest_path(st, path, NULL, &a) == 0, "an item stored before the batch");
	size0 = cs_store_size(st);

	ok(cs_batch_new(st, NULL, &b) == 0, "a batch");
	slot[0] = add_bytes(b, "x", "new bytes x\n", &m);
	slot[1] = add_bytes(b, "y", "new bytes y\n", &m);
	slot[2] = add_bytes(b, "x2", "new bytes x\n", &m); /* the same bytes as x */
	slot[3] = add_bytes(b, "a2", "bytes stored before\n", &m);
	ok(slot[0] == 0 && slot[1] == 1 && slot[2] == 2 && slot[3] == 3, "four files added");
	is_int(add_bytes(b, "bad", "bad metadata\n", &bad), CS_EFORMAT,
	    "bad metadata refused at the add, nothing copied");
	is_int((int)cs_batch_count(b), 4, "the batch holds four files");
	is_int(cs_batch_result(b, slot[0], &r[0]), -EINVAL, "no result before the commit");
	is_int((int)cs_store_size(st), (int)size0, "nothing recorded before the commit");
	ok(cs_batch_due(b, CS_BATCH_BYTES) == 1, "due before a file that passes the byte bound");
	is_int(cs_batch_commit(b), 0, "the batch committed");
	is_int(cs_batch_commit(b), -EINVAL, "a batch commits once");
	for (int i = 0; i < 4; i++)
		fails += cs_batch_result(b, slot[i], &r[i]) != 0;
	is_int(fails, 0, "every file has its result");
	is_int((int)cs_store_size(st), (int)size0 + 4, "four events, one per file");
	ok(!r[0].duplicate && !r[1].duplicate, "new bytes: ingests");
	ok(r[2].duplicate && strcmp(r[2].id, r[0].id) == 0,
	    "the same bytes twice in a batch: a sighting of the item the first made");
	ok(r[3].duplicate && strcmp(r[3].id, a.id) == 0, "bytes stored before: a sighting");
	ok(r[0].seq == size0 && r[1].seq == size0 + 1 && r[2].seq == size0 + 2 &&
	        r[3].seq == size0 + 3,
	    "events in the order added");
	ok(strcmp(event_type(st, r[0].seq, t, sizeof(t)), "ingest") == 0, "x: an ingest");
	ok(strcmp(event_type(st, r[2].seq, t, sizeof(t)), "sighting") == 0, "x2: a sighting");
	ok(strcmp(event_type(st, r[3].seq, t, sizeof(t)), "sighting") == 0, "a2: a sighting");
	ok(cs_store_find(st, &q, &found) == 0 && json_array_size(found) == 3,
	    "the case number joins x, y and the item stored before to the case");
	json_decref(found);
	cs_batch_free(b);

	ok(cs_batch_new(st, NULL, &b) == 0 && cs_batch_commit(b) == 0, "an empty batch commits");
	cs_batch_free(b);

	/* several threads adding to one batch */
	{
		struct adder ad[4];
		pthread_t th[4];
		ok(cs_batch_new(st, NULL, &b) == 0, "a batch for four threads");
		fails = 0;
		for (int i = 0; i < 4; i++) {
			ad[i] = (struct adder){b, i, 0};
			pthread_create(&th[i], NULL, adder_main, &ad[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			fails += ad[i].failures;
		}
		is_int(fails, 0, "4 threads x 25 adds succeed");
		is_int(cs_batch_commit(b), 0, "their batch committed");
		is_int((int)cs_store_size(st), (int)size0 + 104, "100 more events");
		cs_batch_free(b);
	}
	/*
	 * Reserved slots: the events follow the order of the reservations, not
	 * of the copies; a released slot holds nothing and does not hold up the
	 * commit. The same bytes in slots 0 and 2, copied 2 first: slot 0 is the
	 * ingest, slot 2 its sighting.
	 */
	{
		static const char *const data[4] = {"reserved same\n", "reserved one\n",
			"reserved same\n", "released\n"};
		const int order[3] = {2, 1, 0};
		int rs[4], fd;
		struct cs_ingest_result rr[3];
		uint64_t size1 = cs_store_size(st);
		ok(cs_batch_new(st, NULL, &b) == 0, "a batch for reserved slots");
		for (int i = 0; i < 4; i++)
			rs[i] = cs_batch_reserve(b);
		ok(rs[0] == 0 && rs[1] == 1 && rs[2] == 2 && rs[3] == 3, "slots reserved in turn");
		cs_batch_release(b, rs[3]);
		fails = 0;
		for (int k = 0; k < 3; k++) {
			int i = order[k];
			snprintf(path, sizeof(path), "%s/res%d", base, i);
			make_file(path, data[i], strlen(data[i]));
			fd = open(path, O_RDONLY);
			fails += cs_batch_add_fd_at(b, rs[i], fd, path, NULL) != rs[i];
			close(fd);
			unlink(path);
		}
		is_int(fails, 0, "each copy lands in its reserved slot");
		is_int(cs_batch_commit(b), 0, "the batch with a released slot committed");
		fails = 0;
		for (int i = 0; i < 3; i++)
			fails += cs_batch_result(b, rs[i], &rr[i]) != 0;
		is_int(fails, 0, "the three files have their results");
		is_int(cs_batch_result(b, rs[3], &rr[0]), -EINVAL, "the released slot has none");
		ok(rr[0].seq == size1 && rr[1].seq == size1 + 1 && rr[2].seq == size1 + 2,
		    "events in the order of the slots, not of the copies");
		ok(!rr[0].duplicate && rr[2].duplicate && strcmp(rr[0].id, rr[2].id) == 0,
		    "the first slot's copy is the item, the later slot's a sighting of it");
		is_int((int)cs_store_size(st), (int)size1 + 3,
		    "three events, none for the released slot");
		cs_batch_free(b);
	}
	/* a batch never committed leaves nothing behind */
	ok(cs_batch_new(st, NULL, &b) == 0 && add_bytes(b, "z", "never committed\n", NULL) == 0,
	    "a file added to a batch that is freed without a commit");
	cs_batch_free(b);
	{
		char tmp[400];
		DIR *d;
		struct dirent *de;
		int left = 0;
		snprintf(tmp, sizeof(tmp), "%s/tmp", root);
		d = opendir(tmp);
		while (d != NULL && (de = readdir(d)) != NULL)
			left += de->d_name[0] != '.';
		if (d != NULL)
			closedir(d);
		is_int(left, 0, "its temp file is removed");
	}
	is_int((int)cs_store_size(st), (int)size0 + 107, "and nothing recorded");
	ok(cs_store_checkpoint(st, NULL) == 0, "checkpoint signed");
	is_int(cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL), 0,
	    "verify: catalog == replay(ledger), every blob matches");
	cs_store_close(st);
}

static void
test_torn_tail_and_lock(void)
{
	char root[300], path[400];
	struct cs_store *st = NULL, *st2 = NULL;
	struct cs_ingest_result r;
	struct cs_meta m = {.case_no = "TORN"};
	struct stat before, after;
	int fd;

	snprintf(root, sizeof(root), "%s/torn", base);
	cs_store_init(root, "TORN");
	cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL);
	snprintf(path, sizeof(path), "%s/t1", base);
	make_file(path, "torn tail test\n", 15);
	ok(cs_store_ingest_path(st, path, &m, &r) == 0, "ingested one file");
	is_int(cs_store_open(&st2, root, CS_OPEN_WRITE, NULL, NULL), CS_EBUSY,
	    "a second writer is refused while the first holds the store");
	ok(cs_store_open(&st2, root, CS_OPEN_READ, NULL, NULL) == 0, "a reader may open it");
	cs_store_close(st2);
	cs_store_close(st);

	/* A half-written entry, as a crash during the ledger write leaves it. */
	snprintf(path, sizeof(path), "%s/ledger/journal", root);
	stat(path, &before);
	fd = open(path, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "\x00\x00\x01\x00{\"event\":\"ing", 17) == 17,
	    "torn tail appended");
	close(fd);
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "writer opens after a torn tail");
	stat(path, &after);
	is_int(after.st_size, before.st_size, "the torn tail was cut");
	is_int(cs_store_size(st), 1, "the acknowledged event is still there");
	is_int(cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL), 0,
	    "verify passes after recovery");
	cs_store_close(st);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static void
count_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	(void)phase;
	(void)done;
	(void)total;
	(*(int *)ctx)++;
}

/*
 * verify reads the catalog in a child process: the caller's handle, lock,
 * descriptors and LMDB environment come out of it as they went in, and a
 * handle without a catalog (CS_OPEN_NOCATALOG) is enough for it.
 */
static void
test_verify_child(void)
{
	char root[300], path[400];
	struct cs_store *st = NULL, *st2 = NULL;
	struct cs_ingest_result r;
	struct cs_meta m = {.case_no = "CHILD"};
	json_t *rec = NULL;
	uint64_t size = 0;
	int fds, progress = 0;

	snprintf(root, sizeof(root), "%s/child", base);
	cs_store_init(root, "CHILD");
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0, "child: writer open");
	for (int i = 0; i < 3; i++) {
		char data[32];
		int n = snprintf(data, sizeof(data), "verify child file %d\n", i);
		snprintf(path, sizeof(path), "%s/c%d", base, i);
		make_file(path, data, (size_t)n);
		ok(cs_store_ingest_path(st, path, &m, &r) == 0, "child: ingested file %d", i);
		unlink(path);
	}
	fds = count_fds();
	is_int(cs_store_verify(st, NULL, 0, NULL, count_progress, &progress, &size), 0,
	    "child: verify on the writer's handle finds no problem");
	is_int(size, 3, "child: ... and gives the ledger size");
	ok(progress > 0, "child: ... and its progress reaches the caller (%d reports)", progress);
	is_int(count_fds(), fds, "child: no descriptor is left open");
	is_int(cs_store_open(&st2, root, CS_OPEN_WRITE, NULL, NULL), CS_EBUSY,
	    "child: the writer lock is still held");
	snprintf(path, sizeof(path), "%s/c3", base);
	make_file(path, "after verify\n", 13);
	ok(cs_store_ingest_path(st, path, &m, &r) == 0, "child: the writer ingests after verify");
	unlink(path);
	is_int(cs_store_verify(st, NULL, 0, NULL, NULL, NULL, &size), 0, "child: verify again");
	is_int(size, 4, "child: ... 4 events");

	is_int(cs_store_open(&st2, root, CS_OPEN_WRITE | CS_OPEN_NOCATALOG, NULL, NULL), -EINVAL,
	    "nocatalog: refused for a writer");
	ok(cs_store_open(&st2, root, CS_OPEN_READ | CS_OPEN_NOCATALOG, NULL, NULL) == 0,
	    "nocatalog: a reader opens without the catalog");
	is_int(cs_store_get(st2, r.id, &rec), CS_ESTORE,
	    "nocatalog: reading a record is CS_ESTORE");
	size = 0;
	is_int(cs_store_verify(st2, NULL, 0, NULL, NULL, NULL, &size), 0,
	    "nocatalog: verify finds no problem");
	is_int(size, 4, "nocatalog: ... and gives the ledger size");
	cs_store_close(st2);
	cs_store_close(st);
}

/*
 * The jobs per state kept in the catalog (cs_store_job_counts) equal a full
 * recount of the jobs table after job writes (new jobs, state changes,
 * jobs without a state, deletes), "ingested" jobs written with ingest
 * events, a crash that lost the catalog's commit (the recovering writer
 * replays the event), a rebuild, and a catalog made before the counts.
 */
static int
counts_match(struct cs_store *st, const char *what)
{
	json_t *kept = NULL, *all = json_object();
	MDB_txn *txn = NULL;
	int same;

	if (cs_store_job_counts(st, &kept) != 0 || all == NULL ||
	    cs__catalog_rtxn(&st->cat, &txn) != 0 ||
	    cs__catalog_job_counts(&st->cat, txn, 1, all) != 0) {
		same = 0;
	} else {
		same = json_equal(kept, all);
	}
	if (!same) {
		char *a = kept != NULL ? json_dumps(kept, JSON_SORT_KEYS) : NULL;
		char *b = json_dumps(all, JSON_SORT_KEYS);
		printf("# %s: kept %s, recounted %s\n", what, a ? a : "(none)", b ? b : "(none)");
		free(a);
		free(b);
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(kept);
	json_decref(all);
	return same;
}

static int
job_put_state(struct cs_store *st, const char *key, const char *state)
{
	json_t *job = state != NULL ? json_pack("{s:s, s:i}", "state", state, "n", 1) :
	                              json_pack("{s:s}", "folder", "x");
	int rc = job != NULL ? cs_store_job_put(st, key, job) : -ENOMEM;

	json_decref(job);
	return rc;
}

static int64_t
count_of(struct cs_store *st, const char *state)
{
	json_t *c = NULL;
	int64_t n = -1;

	if (cs_store_job_counts(st, &c) == 0)
		n = json_integer_value(json_object_get(c, state));
	json_decref(c);
	return n;
}

static int
ingest_with_job(struct cs_store *st, const char *dir, int i, const char *key)
{
	struct cs_meta m = {.source = "inbox", .job_key = key};
	struct cs_ingest_result r;
	char path[400], data[64];

	snprintf(path, sizeof(path), "%s/f%d", dir, i);
	snprintf(data, sizeof(data), "bytes of job file %d", i);
	make_file(path, data, strlen(data));
	return cs_store_ingest_path(st, path, &m, &r);
}

static void
test_job_counts(void)
{
	static const char *const states[] = {"discovered", "secured", "released", "refused",
		"changed", NULL};
	char root[300], cmd[1024], key[64];
	struct cs_store *st = NULL;
	unsigned seed = 7;
	int bad = 0, rc = 0;

	snprintf(root, sizeof(root), "%s/jobcounts", base);
	if (cs_store_init(root, "jc") != 0 || cs_store_open(&st, root, CS_OPEN_WRITE, NULL,
	                                           NULL) != 0) {
		ok(0, "job counts: a new store opens");
		return;
	}
	ok(st->cat.job_counts != 0, "job counts: a new catalog keeps counts");
	for (int i = 0; i < 600 && rc == 0; i++) {
		seed = seed * 1103515245u + 12345u;
		snprintf(key, sizeof(key), "inbox/0/file%u", (seed >> 8) % 50);
		if ((seed >> 20) % 5 == 0)
			rc = cs_store_job_del(st, key);
		else
			rc = job_put_state(st, key, states[(seed >> 16) % 6]);
		if (i % 50 == 0 && !counts_match(st, "puts and deletes"))
			bad++;
	}
	is_int(rc, 0, "job counts: 600 job puts, state changes and deletes written");
	is_int(bad, 0, "job counts: equal to a recount all along");
	ok(counts_match(st, "after the mix"), "job counts: equal to a recount after the mix");

	/* "ingested" jobs written with their ingest events, over jobs of other states. */
	rc = 0;
	for (int i = 0; i < 6 && rc == 0; i++) {
		snprintf(key, sizeof(key), "inbox/0/file%d", i);
		rc = ingest_with_job(st, base, i, key);
	}
	is_int(rc, 0, "job counts: six files ingested with their jobs");
	ok(count_of(st, "ingested") == 6 && counts_match(st, "after ingests"),
	    "job counts: the ingests' jobs counted as ingested, equal to a recount");

	/* A crash that lost the catalog's commit: the recovering writer replays the event. */
	(void)job_put_state(st, "inbox/0/lost", "secured");
	cs_store_close(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "cp -a '%s/catalog' '%s/catalog.before'", root, root);
	rc = system(cmd);
	if (rc == 0)
		rc = cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL);
	if (rc == 0)
		rc = ingest_with_job(st, base, 100, "inbox/0/lost");
	cs_store_close(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/catalog' && mv '%s/catalog.before' '%s/catalog'",
	    root, root, root);
	if (rc == 0)
		rc = system(cmd);
	if (rc == 0)
		rc = cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL);
	is_int(rc, 0, "job counts: a writer recovers a catalog that lost an ingest's commit");
	ok(st != NULL && count_of(st, "ingested") == 7 && count_of(st, "secured") >= 0 &&
	        counts_match(st, "after recovery"),
	    "job counts: the replayed ingest's job counted, equal to a recount");
	cs_store_close(st);
	st = NULL;

	/* A rebuild makes the catalog (and its jobs: the ingested ones) from the ledger. */
	ok(cs_store_rebuild(root, NULL, NULL) > 0 &&
	        cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "job counts: rebuilt");
	ok(st != NULL && count_of(st, "ingested") == 7 && counts_match(st, "after rebuild"),
	    "job counts: after a rebuild, equal to a recount (7 ingested)");

	/* A catalog made before the counts: a reader reads every job, a writer counts once. */
	for (int i = 0; st != NULL && i < 20; i++) {
		snprintf(key, sizeof(key), "inbox/0/again%d", i);
		(void)job_put_state(st, key, states[i % 6]);
	}
	{
		MDB_txn *txn;
		rc = st != NULL ? mdb_txn_begin(st->cat.env, NULL, 0, &txn) : -1;
		if (rc == 0 && (rc = mdb_drop(txn, st->cat.job_counts, 1)) == 0)
			rc = mdb_txn_commit(txn);
		else if (rc == 0)
			mdb_txn_abort(txn);
	}
	cs_store_close(st);
	st = NULL;
	is_int(rc, 0, "job counts: the kept counts removed, as in an older catalog");
	ok(cs_store_open(&st, root, CS_OPEN_READ, NULL, NULL) == 0 && st->cat.job_counts == 0 &&
	        count_of(st, "ingested") == 7 && counts_match(st, "old catalog, reader"),
	    "job counts: a reader of the older catalog counts by reading the jobs");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0 && st->cat.job_counts != 0 &&
	        counts_match(st, "old catalog, writer"),
	    "job counts: a writer of the older catalog counts once and keeps the counts");
	for (int i = 0; st != NULL && i < 20; i++) {
		snprintf(key, sizeof(key), "inbox/0/again%d", i);
		(void)job_put_state(st, key, states[(i + 1) % 6]);
	}
	ok(st != NULL && counts_match(st, "old catalog, changed"),
	    "job counts: ... and keeps them equal to a recount as the jobs change");
	cs_store_close(st);
}

/*
 * The upload queue's index (upload_todo: items with no replica at any
 * remote) equals a full scan of the items after random ingests, sightings
 * and replica events, and after a rebuild; the pending list of a remote
 * read through it equals the one a scan gives, also once a second remote
 * appears (then the scan is used).
 */
struct todo_scan {
	json_t *bare;    /* ids of items with no replica */
	json_t *pending; /* ids of items with no replica at `remote` */
	const char *remote;
};

/* 1 when `obj` has a replica at `remote` (NULL: anywhere). */
static int
todo_has(json_t *obj, const char *remote)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(obj, "replicas"), i, r)
	{
		const char *rm = json_string_value(json_object_get(r, "remote"));
		if (remote == NULL || (rm != NULL && strcmp(rm, remote) == 0))
			return 1;
	}
	return 0;
}

/* The item lacks a replica at `remote` (NULL: anywhere) of its blob or a derivative made. */
static int
todo_lacks(json_t *rec, const char *remote)
{
	json_t *d;
	size_t i;

	if (!todo_has(rec, remote))
		return 1;
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *st = json_string_value(json_object_get(d, "status"));
		if (st != NULL && strcmp(st, "ok") == 0 && !todo_has(d, remote))
			return 1;
	}
	return 0;
}

static int
todo_scan_cb(void *ctx, const char *id, json_t *rec)
{
	struct todo_scan *t = ctx;

	if (todo_lacks(rec, NULL))
		json_object_set_new(t->bare, id, json_true());
	if (todo_lacks(rec, t->remote))
		json_object_set_new(t->pending, id, json_true());
	return 0;
}

/* 1 if the index equals the scan and cs_replica_pending(remote) equals it too. */
static int
todo_matches(struct cs_store *st, const char *remote, const char *what)
{
	struct todo_scan t = {json_object(), json_object(), remote};
	json_t *index = json_object(), *got = json_object(), *items = NULL, *it;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	size_t i;
	int same = 0;

	if (cs__catalog_rtxn(&st->cat, &txn) != 0 ||
	    cs__catalog_each_item(&st->cat, txn, todo_scan_cb, &t) != 0 ||
	    mdb_cursor_open(txn, st->cat.dbi[CS_DBI_UPLOAD_TODO], &cur) != 0)
		goto out;
	for (int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		char id[512];
		snprintf(id, sizeof(id), "%.*s", (int)k.mv_size, (const char *)k.mv_data);
		json_object_set_new(index, id, json_true());
	}
	mdb_cursor_close(cur);
	if (cs_replica_pending(st, remote, NULL, 0, &items, NULL) != 0)
		goto out;
	json_array_foreach(items, i, it)
		json_object_set_new(got, json_string_value(json_object_get(it, "id")), json_true());
	same = json_equal(index, t.bare) && json_equal(got, t.pending);
	if (!same)
		printf("# %s: index %zu, scan %zu; pending %zu, scan %zu\n", what,
		    json_object_size(index), json_object_size(t.bare), json_object_size(got),
		    json_object_size(t.pending));
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(t.bare);
	json_decref(t.pending);
	json_decref(index);
	json_decref(got);
	json_decref(items);
	return same;
}

static int
replica_of(struct cs_store *st, const char *id, const char *remote)
{
	char hex[65], key[200];
	json_t *rec = NULL;
	int rc = cs_store_get(st, id, &rec);

	if (rc != 0)
		return rc;
	snprintf(hex, sizeof(hex), "%s", json_string_value(json_object_get(rec, "sha256")));
	snprintf(key, sizeof(key), "p/objects/sha256/%s", hex);
	struct cs_replica rp = {.kind = "blob", .id = id, .remote = remote, .key = key,
	    .version_id = "", .sha256 = hex,
	    .size = (uint64_t)json_integer_value(json_object_get(rec, "size")), .etag = "",
	    .lock_mode = "", .retain_until = ""};
	json_decref(rec);
	return cs_replica_record(st, &rp, NULL);
}

/*
 * A derivative event of `kind` for item `id` of the store at `root`, made
 * with status ok from bytes `tag`, its file placed in derivatives/.
 */
static int
derivative_of_item(struct cs_store *st, const char *root, const char *id, const char *kind,
    unsigned tag)
{
	char hex[65], dhex[65], data[64], path[600];
	json_t *rec = NULL, *ev;
	uint64_t seq, size = 0;
	int fd, rc = cs_store_get(st, id, &rec);

	if (rc != 0)
		return rc;
	snprintf(hex, sizeof(hex), "%s", json_string_value(json_object_get(rec, "sha256")));
	json_decref(rec);
	snprintf(data, sizeof(data), "derivative %u of %.8s", tag, hex);
	snprintf(path, sizeof(path), "%s/derivatives.tmp", root);
	make_file(path, data, strlen(data));
	fd = open(path, O_RDONLY);
	rc = fd < 0 ? -errno : cs_hash_fd(fd, dhex, &size);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/derivatives", root);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/derivatives/sha256", root);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/derivatives/sha256/%.2s", root, dhex);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/derivatives/sha256/%.2s/%.2s", root, dhex, dhex + 2);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/derivatives/sha256/%.2s/%.2s/%s", root, dhex, dhex + 2,
	    dhex);
	make_file(path, data, strlen(data));
	ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:I}, s:{s:s, s:s}}", "event",
	    "derivative", "id", id, "sha256", hex, "derivative", "kind", kind, "status", "ok",
	    "sha256", dhex, "size", (json_int_t)size, "agent", "name", "test", "version", "0");
	rc = ev != NULL ? cs__store_commit_locked(st, ev, &seq) : -ENOMEM;
	json_decref(ev);
	return rc;
}

/* A replica event for item `id`'s newest derivative made, if it has one. */
static int
derivative_replica_of(struct cs_store *st, const char *id, const char *remote)
{
	char hex[65], key[200], kind[32];
	json_t *rec = NULL, *d;
	int rc = cs_store_get(st, id, &rec);

	if (rc != 0)
		return rc;
	d = json_array_get(json_object_get(rec, "derivatives"),
	    json_array_size(json_object_get(rec, "derivatives")) - 1);
	if (d == NULL) {
		json_decref(rec);
		return 0;
	}
	snprintf(hex, sizeof(hex), "%s", json_string_value(json_object_get(d, "sha256")));
	snprintf(kind, sizeof(kind), "%s", json_string_value(json_object_get(d, "kind")));
	snprintf(key, sizeof(key), "p/objects/sha256/%s", hex);
	struct cs_replica rp = {.kind = "derivative", .id = id, .remote = remote, .key = key,
	    .version_id = "", .sha256 = hex,
	    .size = (uint64_t)json_integer_value(json_object_get(d, "size")), .etag = "",
	    .lock_mode = "", .retain_until = "", .derivative = kind};
	json_decref(rec);
	return cs_replica_record(st, &rp, NULL);
}

static void
test_upload_todo(void)
{
	char root[300], path[400], data[64];
	char ids[40][80];
	struct cs_store *st = NULL;
	unsigned seed = 11;
	size_t n = 0;
	int rc = 0, bad = 0;

	snprintf(root, sizeof(root), "%s/uploadtodo", base);
	if (cs_store_init(root, "ut") != 0 ||
	    cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) != 0) {
		ok(0, "upload queue: a new store opens");
		return;
	}
	ok(todo_matches(st, "e/b", "empty"), "upload queue: empty, index and scan agree");
	for (int i = 0; i < 90 && rc == 0; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned op = (seed >> 16) % 6;
		if (op <= 1 || n == 0) { /* an ingest, at times of bytes seen before */
			struct cs_meta m = {.source = "inbox"};
			struct cs_ingest_result r;
			snprintf(path, sizeof(path), "%s/u%d", base, i);
			snprintf(data, sizeof(data), "upload todo %u", (seed >> 8) % 40);
			make_file(path, data, strlen(data));
			rc = cs_store_ingest_path(st, path, &m, &r);
			if (rc == 0 && !r.duplicate && n < 40)
				snprintf(ids[n++], sizeof(ids[0]), "%s", r.id);
		} else if (op == 4) { /* a derivative made, at times after the blob went up */
			rc = derivative_of_item(st, root, ids[(seed >> 8) % n],
			    (seed & 0x100) ? "access" : "poster", seed >> 20);
		} else if (op == 5) { /* the newest derivative's replica */
			rc = derivative_replica_of(st, ids[(seed >> 8) % n], "e/b");
		} else { /* a replica event, at times a second one for the item */
			rc = replica_of(st, ids[(seed >> 8) % n], "e/b");
		}
		if (i % 15 == 0 && !todo_matches(st, "e/b", "random"))
			bad++;
	}
	is_int(rc, 0,
	    "upload queue: 90 ingests, sightings, derivatives and replica events written");
	is_int(bad, 0, "upload queue: the index equals a full scan all along");
	ok(todo_matches(st, "e/b", "after the mix"),
	    "upload queue: the index and the pending list equal a scan after the mix");
	{ /* a derivative made after the blob went up: the item is back; its replica: out */
		struct cs_meta m = {.source = "inbox"};
		struct cs_ingest_result r = {0};
		json_t *items = NULL;
		int back = 0, out = 0;
		snprintf(path, sizeof(path), "%s/u-late", base);
		make_file(path, "late derivative", 15);
		rc = cs_store_ingest_path(st, path, &m, &r);
		if (rc == 0)
			rc = replica_of(st, r.id, "e/b");
		if (rc == 0)
			rc = derivative_of_item(st, root, r.id, "access", 4242);
		if (rc == 0 && cs_replica_pending(st, "e/b", (const char *const[]){r.id}, 1,
		                   &items, NULL) == 0)
			back = json_array_size(items) == 1 &&
			    json_object_get(json_array_get(items, 0), "derivative") != NULL;
		json_decref(items);
		items = NULL;
		ok(back && todo_matches(st, "e/b", "derivative after the blob"),
		    "upload queue: a derivative made after the blob's replica is pending");
		if (rc == 0)
			rc = derivative_replica_of(st, r.id, "e/b");
		if (rc == 0 && cs_replica_pending(st, "e/b", (const char *const[]){r.id}, 1,
		                   &items, NULL) == 0)
			out = json_array_size(items) == 0;
		json_decref(items);
		ok(out && todo_matches(st, "e/b", "derivative's replica"),
		    "upload queue: the derivative's replica event takes the item out");
	}
	rc = replica_of(st, ids[0], "other/b");
	ok(rc == 0 && todo_matches(st, "e/b", "second remote") &&
	        todo_matches(st, "other/b", "second remote, its list"),
	    "upload queue: with a second remote, each one's pending list equals a scan");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_rebuild(root, NULL, NULL) > 0 &&
	        cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "upload queue: rebuilt");
	ok(st != NULL && todo_matches(st, "e/b", "after rebuild") &&
	        todo_matches(st, "other/b", "after rebuild, second"),
	    "upload queue: after a rebuild the index equals a scan");
	ok(st != NULL && cs_store_verify(st, NULL, 0, NULL, NULL, NULL, NULL) == 0,
	    "upload queue: verify (a replay compared with the catalog) finds no problem");
	/* A schema 5 catalog (no upload_todo, remotes or fingerprint tables) is rebuilt on open. */
	{
		MDB_txn *txn = NULL;
		uint8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 5};
		MDB_val k = {6, (void *)"schema"}, d = {8, b};
		rc = st != NULL ? mdb_txn_begin(st->cat.env, NULL, 0, &txn) : -1;
		if (rc == 0)
			rc = mdb_drop(txn, st->cat.dbi[CS_DBI_UPLOAD_TODO], 1);
		if (rc == 0)
			rc = mdb_drop(txn, st->cat.dbi[CS_DBI_REMOTES], 1);
		if (rc == 0)
			rc = mdb_drop(txn, st->cat.dbi[CS_DBI_FP], 1);
		if (rc == 0)
			rc = mdb_drop(txn, st->cat.dbi[CS_DBI_FP_BANDS], 1);
		if (rc == 0)
			rc = mdb_put(txn, st->cat.dbi[CS_DBI_META], &k, &d, 0);
		if (txn != NULL)
			rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	}
	cs_store_close(st);
	st = NULL;
	is_int(rc, 0, "upload queue: the catalog made schema 5 (its tables dropped)");
	rc = cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL);
	ok(rc == 0 && todo_matches(st, "e/b", "schema 5 upgraded") &&
	        todo_matches(st, "other/b", "schema 5 upgraded, second"),
	    "upload queue: a schema 5 catalog is rebuilt on open, its index equal to a scan");
	cs_store_close(st);
}

/*
 * A held file (CS_SECURE_HOLD): its job "held" and its index entry are
 * written together, counted as held, the file kept; cs_secure_unhold()
 * deletes it (it was taken with delete), makes the job "released" and
 * removes the entry; the kept counts equal a recount throughout.
 */
static int
held_cb(void *ctx, const char *id)
{
	snprintf(ctx, 80, "%s", id);
	return 0;
}

static void
test_held(void)
{
	char root[300], dir[300], path[400], id[80] = "", seen[80] = "";
	struct cs_store *st = NULL;
	struct cs_secured out;
	struct stat sb;
	json_t *job = NULL;
	size_t n = 0;
	int dirfd, rc;

	snprintf(root, sizeof(root), "%s/held", base);
	snprintf(dir, sizeof(dir), "%s/held-inbox", base);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/h.bin", dir);
	make_file(path, "held bytes", 10);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dirfd < 0 || cs_store_init(root, "hd") != 0 ||
	    cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) != 0) {
		ok(0, "held: a new store opens");
		return;
	}
	struct cs_secure_req rq = {.dirfd = dirfd, .rel = "h.bin", .job_key = "inbox/x/h.bin",
	    .flags = CS_SECURE_HOLD | CS_SECURE_DELETE, .tree = dir, .meta = {.source = "inbox"}};
	rc = cs_secure(st, &rq, &out);
	snprintf(id, sizeof(id), "%s", out.res.id);
	is_int(rc, 0, "held: secured with CS_SECURE_HOLD");
	ok(cs_store_job_get(st, "inbox/x/h.bin", &job) == 0 &&
	        strcmp(json_string_value(json_object_get(job, "state")), "held") == 0,
	    "held: its job is held");
	json_decref(job);
	job = NULL;
	ok(stat(path, &sb) == 0, "held: the file stays (release = delete waits)");
	ok(count_of(st, "held") == 1 && counts_match(st, "held"),
	    "held: counted as held, equal to a recount");
	ok(cs_secure_held_each(st, NULL, held_cb, seen) == 0 && strcmp(seen, id) == 0,
	    "held: the index names its item");
	rc = cs_secure_unhold(st, "no-such-item", 10, &n);
	ok(rc == 0 && n == 0 && stat(path, &sb) == 0, "held: another item's release leaves it");
	rc = cs_secure_unhold(st, id, 10, &n);
	ok(rc == 0 && n == 1, "held: released once its item's copy is confirmed");
	ok(stat(path, &sb) != 0, "held: ... the file deleted");
	ok(cs_store_job_get(st, "inbox/x/h.bin", &job) == 0 &&
	        strcmp(json_string_value(json_object_get(job, "state")), "released") == 0 &&
	        json_object_get(job, "tree") == NULL,
	    "held: ... its job released");
	json_decref(job);
	seen[0] = '\0';
	ok(count_of(st, "held") == 0 && count_of(st, "released") == 1 &&
	        counts_match(st, "released") && cs_secure_held_each(st, NULL, held_cb, seen) == 0 &&
	        seen[0] == '\0',
	    "held: no longer counted nor indexed; counts equal a recount");
	close(dirfd);
	cs_store_close(st);
}

int
main(void)
{
	snprintf(base, sizeof(base), "%s/custos-test-store.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_time();
	test_meta();
	test_map_growth();
	test_parallel();
	test_batch();
	test_torn_tail_and_lock();
	test_verify_child();
	test_job_counts();
	test_upload_todo();
	test_held();
	tap_rm_rf(base);
	return tap_done();
}
