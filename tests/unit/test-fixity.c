/*
 * Unit tests of lib/fixity.c: a check's outcome for an intact, a damaged
 * (one byte flipped, or cut short) and a missing blob; its event; the due
 * list (oldest check first, a checked item leaving it) and the report; a
 * check stepped in small pieces giving the same outcome.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/fixity.h"
#include "custos/ingest.h"
#include "custos/store.h"
#include "tap.h"

static char base[256];
static const struct cs_fixity_agent agent = {"test", "0"};

/*
 * Waits until the millisecond clock has moved on, so the next ingest or check
 * is recorded strictly later than the last one: the schedule orders items by
 * that time (ties by id, which is random), whatever the machine's speed.
 */
static void
next_ms(void)
{
	int64_t t0 = cs_fixity_now_ms();

	while (cs_fixity_now_ms() <= t0)
		usleep(200);
}

static void
ingest(struct cs_store *st, const char *name, size_t len, struct cs_ingest_result *res)
{
	char path[512];
	char *buf = malloc(len);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(rand() & 0xff);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	free(buf);
	if (cs_store_ingest_path(st, path, &(struct cs_meta){0}, res) != 0) {
		fprintf(stderr, "ingest %s failed\n", path);
		exit(2);
	}
	next_ms();
}

static void
blob_path(const char *store, const char *sha, char *out, size_t n)
{
	snprintf(out, n, "%s/objects/sha256/%.2s/%.2s/%s", store, sha, sha + 2, sha);
}

int
main(void)
{
	struct cs_ingest_result a, b, c, d;
	enum cs_fixity_outcome o;
	struct cs_store *st = NULL;
	struct cs_fixity *f = NULL;
	char store[300], path[512];
	json_t *items = NULL, *sum = NULL;
	uint64_t due = 0, seq = 0, n, total = 0;
	int done = 0, fd;

	snprintf(base, sizeof(base), "%s/custos-fixity-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return 2;
	snprintf(store, sizeof(store), "%s/store", base);
	if (cs_store_init(store, "fx") != 0 ||
	    cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) != 0)
		return 2;
	ingest(st, "a", 5000, &a);
	ingest(st, "b", 3 << 20, &b);
	ingest(st, "c", 100, &c);
	ingest(st, "d", 100, &d);

	/* nothing is due within the period; everything with a period of 0 */
	is_int(cs_fixity_due(st, cs_fixity_now_ms(), 3600000, 10, &items, &due), 0, "due");
	is_int(due, 0, "nothing is due an hour after ingest");
	json_decref(items);
	is_int(cs_fixity_due(st, cs_fixity_now_ms(), 0, 2, &items, &due), 0, "due, period 0");
	is_int(due, 4, "every item is due with a period of 0");
	is_int(json_array_size(items), 2, "... at most `max` of them listed");
	ok(strcmp(json_string_value(json_object_get(json_array_get(items, 0), "id")), a.id) == 0,
	    "... the oldest first");
	json_decref(items);
	is_int(cs_fixity_due(st, cs_fixity_now_ms(), 0, 3, &items, NULL), 0,
	    "due, without the count (custosd's batches)");
	is_int(json_array_size(items), 3, "... the same first `max` items");
	ok(strcmp(json_string_value(json_object_get(json_array_get(items, 2), "id")), c.id) == 0,
	    "... in the same order");
	json_decref(items);

	is_int(cs_fixity_check(st, a.id, &agent, &o, &seq), 0, "check an intact item");
	is_int(o, CS_FIXITY_OK, "... ok");
	is_int(cs_fixity_due(st, cs_fixity_now_ms(), 0, 10, &items, &due), 0, "due again");
	ok(strcmp(json_string_value(json_object_get(json_array_get(items, 3), "id")), a.id) == 0,
	    "a checked item goes to the end of the schedule");
	json_decref(items);

	/* a big blob in small steps */
	is_int(cs_fixity_begin(st, b.id, &f), 0, "begin a stepped check");
	while (!done && cs_fixity_step(f, 65536, &n, &done) == 0) {
		ok(n <= 65536 || done, "a step reads at most its share");
		total += n;
		if (tap_failed)
			break;
	}
	is_int(total, 3 << 20, "the steps read the whole blob");
	is_int(cs_fixity_end(f, &agent, &o, NULL), 0, "end");
	is_int(o, CS_FIXITY_OK, "... ok");
	cs_fixity_free(f);

	/* one byte flipped */
	blob_path(store, c.sha256, path, sizeof(path));
	chmod(path, 0644);
	fd = open(path, O_RDWR);
	ok(fd >= 0 && pwrite(fd, "\xff", 1, 50) == 1, "flip a byte of c's blob");
	close(fd);
	is_int(cs_fixity_check(st, c.id, &agent, &o, NULL), 0, "check c");
	is_int(o, CS_FIXITY_DAMAGED, "... damaged");
	/* cut short */
	blob_path(store, d.sha256, path, sizeof(path));
	chmod(path, 0644);
	ok(truncate(path, 0) == 0, "cut d's blob short");
	is_int(cs_fixity_check(st, d.id, &agent, &o, NULL), 0, "check d");
	is_int(o, CS_FIXITY_DAMAGED, "... damaged");
	/* missing */
	ok(unlink(path) == 0, "remove d's blob");
	is_int(cs_fixity_check(st, d.id, &agent, &o, NULL), 0, "check d again");
	is_int(o, CS_FIXITY_MISSING, "... missing");
	is_int(cs_fixity_check(st, "fx-nosuchitem", &agent, &o, NULL), CS_ENOTFOUND,
	    "an unknown id is CS_ENOTFOUND");

	is_int(cs_fixity_report(st, cs_fixity_now_ms(), 3600000, &sum, &items), 0, "report");
	is_int(json_integer_value(json_object_get(sum, "items")), 4, "four items");
	is_int(json_integer_value(json_object_get(sum, "checked")), 4, "all checked");
	is_int(json_integer_value(json_object_get(sum, "overdue")), 0, "none overdue");
	is_int(json_array_size(json_object_get(sum, "damaged")), 2, "two damaged or missing");
	ok(json_is_string(json_object_get(sum, "last_pass")), "the latest check's time");
	json_decref(sum);
	json_decref(items);
	cs_store_close(st);
	tap_rm_rf(base);
	return tap_done();
}
