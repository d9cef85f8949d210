/*
 * Unit tests of lib/media.c: the items without a media record (media_todo)
 * and how a record leaves them; a worker that cannot be run writes nothing;
 * a catalog of schema 3 (no media_todo) is upgraded on open, its pending
 * items found again from the ledger; the normalisation policy's decisions
 * (cs_media_policy_action) and the policies it refuses; the fingerprint
 * index: a query among 1000 items' fingerprints finds the one it was cut
 * from, at its offset, looking at far fewer candidates than stored hashes,
 * and finds nothing for hashes it has never seen; a catalog of schema 6 (no
 * fingerprint tables) is upgraded on open and matches again.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/media.h"
#include "custos/store.h"
#include "store_internal.h"
#include "tap.h"

static char base[256];
static const struct cs_media_agent agent = {"test", "0"};

static void
ingest(struct cs_store *st, const char *name, size_t len, struct cs_ingest_result *res)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	f = fopen(path, "wb");
	for (size_t i = 0; f != NULL && i < len; i++)
		fputc(rand() & 0xff, f);
	if (f == NULL || fclose(f) != 0 ||
	    cs_store_ingest_path(st, path, &(struct cs_meta){0}, res) != 0) {
		fprintf(stderr, "ingest %s failed\n", path);
		exit(2);
	}
}

static uint64_t
pending(struct cs_store *st)
{
	json_t *ids = NULL;
	uint64_t n = 0;

	if (st == NULL || cs_media_pending(st, 10, &ids, &n) != 0)
		return UINT64_MAX;
	json_decref(ids);
	return n;
}

/*
 * Makes the catalog what an older custos wrote: schema `schema`, without the
 * `n` tables `drop`.
 */
static int
make_old(const char *store, uint8_t schema, const char *const *drop, size_t n)
{
	char dir[512];
	uint8_t three[8] = {0, 0, 0, 0, 0, 0, 0, schema};
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {6, "schema"}, d = {8, three};
	int rc;

	snprintf(dir, sizeof(dir), "%s/catalog", store);
	rc = mdb_env_create(&env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(env, 32);
	if (rc == 0)
		rc = mdb_env_open(env, dir, 0, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = mdb_dbi_open(txn, drop[i], 0, &dbi);
		if (rc == 0)
			rc = mdb_drop(txn, dbi, 1);
	}
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", 0, &dbi);
	if (rc == 0)
		rc = mdb_put(txn, dbi, &k, &d, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* A record with container `c` and streams "type:codec,...". */
static json_t *
record(const char *c, const char *streams)
{
	json_t *m = json_pack("{s:s, s:[]}", "container", c, "streams");
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", streams);
	for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':');
		*colon = '\0';
		json_array_append_new(json_object_get(m, "streams"),
		    json_pack("{s:s, s:s}", "type", t, "codec", colon + 1));
	}
	return m;
}

static void
policy_cases(void)
{
	static const struct {
		const char *policy, *container, *streams, *want;
	} cases[] = {
		{NULL, "mov,mp4,m4a,3gp,3g2,mj2", "video:h264,audio:aac", "keep"},
		{NULL, "matroska,webm", "video:hevc,audio:mp3", "keep"},
		{NULL, "wav", "audio:pcm_s16le", "keep"},
		{NULL, "avi", "video:mjpeg,audio:pcm_s16le", "preserve-ffv1"},
		{NULL, "mov,mp4,m4a,3gp,3g2,mj2", "video:mjpeg", "preserve-ffv1"},
		{NULL, "mpegts", "video:h264,audio:aac", "preserve-ffv1"},
		{NULL, "mov,mp4,m4a,3gp,3g2,mj2", "video:h264,data:bin_data", "keep"},
		{"mpegts=keep", "mpegts", "video:h264,audio:aac", "keep"},
		{"mjpeg=preserve-h264", "avi", "video:mjpeg,audio:pcm_s16le", "preserve-h264"},
		{"avi=preserve-h264, *=preserve-ffv1", "avi", "video:mjpeg", "preserve-h264"},
		{"*=preserve-h264", "asf", "video:wmv3", "preserve-h264"},
		{"h264=preserve-ffv1", "mov,mp4,m4a,3gp,3g2,mj2", "video:h264", "preserve-ffv1"},
		{"access_height=1080", "avi", "video:mjpeg", "preserve-ffv1"},
	};
	static const struct {
		const char *policy;
		int want;
	} checks[] = {
		{NULL, 0}, {"", 0}, {"avi=keep mjpeg=preserve-h264", 0}, {"access_height=0", 0},
		{"avi=squash", -EINVAL}, {"avi", -EINVAL}, {"=keep", -EINVAL},
		{"access_height=tall", -EINVAL}, {"access_height=99999", -EINVAL},
	};
	char act[16], why[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *m = record(cases[i].container, cases[i].streams);
		cs_media_policy_action(cases[i].policy, m, act);
		ok(strcmp(act, cases[i].want) == 0, "policy '%s', %s with %s: %s (got %s)",
		    cases[i].policy != NULL ? cases[i].policy : "(defaults)", cases[i].container,
		    cases[i].streams, cases[i].want, act);
		json_decref(m);
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		why[0] = '\0';
		is_int(cs_media_policy_check(checks[i].policy, why, sizeof(why)), checks[i].want,
		    "policy '%s' %s%s", checks[i].policy != NULL ? checks[i].policy : "(none)",
		    checks[i].want == 0 ? "accepted" : "refused: ", why);
	}
	is_int(cs_media_policy_height(NULL), 720, "access height: 720 by default");
	is_int(cs_media_policy_height("avi=keep access_height=1080"), 1080, "... or as given");
}

#define FP_ITEMS 1000
#define FP_HASHES 120

static uint64_t
rand64(void)
{
	uint64_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 16 | (uint64_t)(rand() & 0xffff);
	return v;
}

/* {"status": "ok", "video": {..., "hashes": n hashes from `h`, at start + i s}} */
static json_t *
video_fp(const uint64_t *h, size_t n, uint32_t start_ms)
{
	char *hex = malloc(n * 24 + 1);
	json_t *fp;

	for (size_t i = 0; i < n; i++)
		snprintf(hex + 24 * i, 25, "%08x%016llx", (unsigned)(start_ms + 1000 * i),
		    (unsigned long long)h[i]);
	hex[24 * n] = '\0';
	fp = json_pack("{s:s, s:{s:s, s:i, s:i, s:s}}", "status", "ok", "video", "algorithm",
	    "dhash64-keyframe", "interval_ms", 1000, "count", (int)n, "hashes", hex);
	free(hex);
	return fp;
}

static void
fingerprint_index(void)
{
	static const char *const schema6[] = {"fingerprints", "fp_bands"};
	static uint64_t h[FP_ITEMS][FP_HASHES];
	uint64_t q[40], entries, cand, seq = 0;
	struct cs_ingest_result r;
	struct cs_store *st = NULL;
	char store[300], name[32], target[80];
	json_t *fp, *res = NULL, *m;
	int okall = 1;

	snprintf(store, sizeof(store), "%s/fpstore", base);
	if (cs_store_init(store, "fp") != 0 ||
	    cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) != 0)
		exit(2);
	srand(10);
	for (int i = 0; i < FP_ITEMS && okall; i++) {
		json_t *ev;
		snprintf(name, sizeof(name), "fp%d", i);
		ingest(st, name, 64, &r);
		for (int j = 0; j < FP_HASHES; j++)
			h[i][j] = rand64();
		ev = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "event", "fingerprint", "id",
		    r.id, "sha256", r.sha256, "fingerprint", video_fp(h[i], FP_HASHES, 0), "agent",
		    "name", "test", "version", "0");
		okall = ev != NULL && cs__store_commit_locked(st, ev, &seq) == 0;
		json_decref(ev);
		if (i == 500)
			snprintf(target, sizeof(target), "%s", r.id);
	}
	ok(okall, "%d items with %d hashes each, fingerprinted", FP_ITEMS, FP_HASHES);
	/* a clip of item 500 from 30 s on, each hash with 3 bits changed (a re-encode) */
	for (int j = 0; j < 40; j++)
		q[j] = h[500][30 + j] ^ (1ull << (j % 64)) ^ (1ull << ((j * 7 + 3) % 64)) ^
		    (1ull << ((j * 13 + 5) % 64));
	fp = video_fp(q, 40, 0);
	is_int(cs_media_match(st, fp, NULL, 0.5, &res), 0, "match a clip of an item");
	m = json_array_get(json_object_get(res, "matches"), 0);
	is_int(json_array_size(json_object_get(res, "matches")), 1, "... one item matches");
	ok(m != NULL && strcmp(json_string_value(json_object_get(m, "id")), target) == 0,
	    "... the one it was cut from");
	ok(json_real_value(json_object_get(m, "score")) > 0.95, "... score %.2f",
	    json_real_value(json_object_get(m, "score")));
	ok(json_real_value(json_object_get(m, "offset_s")) > 29.5 &&
	        json_real_value(json_object_get(m, "offset_s")) < 30.5,
	    "... at offset %.1f s (30)", json_real_value(json_object_get(m, "offset_s")));
	entries = (uint64_t)json_integer_value(
	    json_object_get(json_object_get(res, "index"), "entries"));
	cand = (uint64_t)json_integer_value(
	    json_object_get(json_object_get(res, "index"), "candidates"));
	ok(entries >= (uint64_t)FP_ITEMS * FP_HASHES * 4 * 9 / 10,
	    "the index holds the items' hash bands (%llu)", (unsigned long long)entries);
	ok(cand > 0 && cand * 100 < entries,
	    "... the query looked at %llu candidates, under 1%% of them", (unsigned long long)cand);
	json_decref(res);
	json_decref(fp);
	res = NULL;
	for (int j = 0; j < 40; j++)
		q[j] = rand64();
	fp = video_fp(q, 40, 0);
	is_int(cs_media_match(st, fp, NULL, 0.1, &res), 0, "match hashes never stored");
	is_int(json_array_size(json_object_get(res, "matches")), 0, "... nothing matches");
	json_decref(res);
	json_decref(fp);
	res = NULL;
	is_int(cs_media_similar(st, target, 0.1, &res), 0, "similar to the item");
	is_int(json_array_size(json_object_get(res, "matches")), 0, "... not itself, no other");
	json_decref(res);
	is_int(cs_media_similar(st, "fp-nosuchitem", 0.1, &res), CS_ENOTFOUND,
	    "similar to an unknown item: CS_ENOTFOUND");
	cs_store_close(st);
	st = NULL;

	is_int(make_old(store, 6, schema6, 2), 0,
	    "the catalog made schema 6, no fingerprint tables");
	is_int(cs_store_open(&st, store, CS_OPEN_READ, NULL, NULL), 0, "a reader opens it");
	for (int j = 0; j < 40; j++)
		q[j] = h[500][30 + j];
	fp = video_fp(q, 40, 0);
	res = NULL;
	is_int(st != NULL ? cs_media_match(st, fp, NULL, 0.5, &res) : CS_ESTORE, 0,
	    "... upgraded: match");
	m = json_array_get(json_object_get(res, "matches"), 0);
	ok(m != NULL && strcmp(json_string_value(json_object_get(m, "id")), target) == 0,
	    "... finds the item again (the index rebuilt from the ledger)");
	json_decref(res);
	json_decref(fp);
	cs_store_close(st);
}

int
main(void)
{
	static const char *const schema4[] = {"media_todo", "access", "by_category", "by_stage",
	    "officers"};
	struct cs_ingest_result a, b, c;
	struct cs_store *st = NULL;
	const char *probe = getenv("CUSTOS_PROBE");
	json_t *rec = NULL, *ids = NULL;
	char store[300], missing[320];
	uint64_t seq = 0, n = 0;

	snprintf(base, sizeof(base), "%s/custos-media-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (probe == NULL || mkdtemp(base) == NULL)
		return 2;
	policy_cases();
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(missing, sizeof(missing), "%s/no-such-probe", base);
	if (cs_store_init(store, "md") != 0 ||
	    cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) != 0)
		return 2;
	ingest(st, "a", 5000, &a);
	ingest(st, "b", 100, &b);
	ingest(st, "c", 0, &c);
	is_int(pending(st), 3, "three items without a media record");
	is_int(cs_media_pending(st, 2, &ids, &n), 0, "pending, at most 2");
	is_int(json_array_size(ids), 2, "... two listed");
	is_int(n, 3, "... three in all");
	json_decref(ids);

	is_int(cs_media_process(st, a.id, missing, NULL, NULL, &agent, &rec, &seq), -ENOENT,
	    "a worker that does not exist: -ENOENT");
	is_int(pending(st), 3, "... and no record written");
	is_int(cs_media_process(st, "md-nosuchitem", probe, NULL, NULL, &agent, &rec, &seq),
	    CS_ENOTFOUND, "an unknown id: CS_ENOTFOUND");

	is_int(cs_media_process(st, a.id, probe, NULL, NULL, &agent, &rec, &seq), 0, "probe a");
	ok(strcmp(json_string_value(json_object_get(rec, "status")), "unreadable") == 0,
	    "random bytes are unreadable");
	ok(json_string_value(json_object_get(rec, "reason")) != NULL, "... with a reason");
	ok(json_integer_value(json_object_get(rec, "seq")) == (json_int_t)seq && seq == 3,
	    "... the record names its event");
	json_decref(rec);
	is_int(pending(st), 2, "a left the pending items");
	is_int(cs_media_process(st, c.id, probe, NULL, NULL, &agent, &rec, &seq), 0, "probe c");
	ok(strstr(json_string_value(json_object_get(rec, "reason")), "empty") != NULL,
	    "an empty file: unreadable, empty");
	json_decref(rec);
	is_int(pending(st), 1, "one pending");
	cs_store_close(st);
	st = NULL;

	is_int(make_old(store, 3, schema4, sizeof(schema4) / sizeof(schema4[0])), 0,
	    "the catalog made schema 3, without media_todo");
	is_int(cs_store_open(&st, store, CS_OPEN_READ, NULL, NULL), 0, "a reader opens it");
	is_int(pending(st), 1, "... upgraded: the one item without a record is pending");
	cs_store_close(st);
	st = NULL;
	is_int(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL), 0, "a writer opens it");
	is_int(pending(st), 1, "... one pending");
	is_int(cs_media_process(st, b.id, probe, NULL, NULL, &agent, NULL, NULL), 0, "probe b");
	is_int(pending(st), 0, "none pending");
	cs_store_close(st);
	fingerprint_index();
	return tap_done();
}
