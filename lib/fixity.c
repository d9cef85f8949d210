/*
 * Fixity checks (custos/fixity.h): re-reading an item's blob, comparing it
 * with its record, writing the "fixity" event; and the catalog's projection
 * of those events (the fixity_due index of items by the time of their last
 * check, the damaged items and the latest check), which cs__catalog_apply
 * calls for every ingest and fixity event, first written or replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "catalog.h"
#include "custos/error.h"
#include "custos/fixity.h"
#include "store_internal.h"
#include "util.h"

#define STEP_BUF (1u << 20)
#define DUE_KEY_MAX (8 + 480)
#define DAMAGED_PREFIX "damaged:"

/* One file a check reads: the item's blob, or one of its derivatives. */
struct fx_file {
	char kind[16]; /* "" for the item's blob, else the derivative's kind */
	char sha[65];  /* recorded */
	uint64_t size; /* recorded */
	enum cs_fixity_outcome o;
	json_t *found; /* what a damaged one held, or NULL */
};

struct cs_fixity {
	struct cs_store *st;
	char *id;
	struct fx_file *files; /* [0]: the blob; then each derivative made (status ok) */
	size_t nfiles, cur;
	char sha[65];  /* the current file's, recorded */
	uint64_t size; /* the current file's, recorded */
	int fd;        /* -1 when missing */
	int read_err;  /* a read of the file failed: -errno */
	int file_done; /* the current file has been read (or is missing) */
	EVP_MD_CTX *md;
	uint8_t *buf;
	uint64_t off; /* bytes of the current file read so far */
	int done;     /* every file read */
};

static const char *const outcome_names[] = {"ok", "damaged", "missing"};

const char *
cs_fixity_outcome_name(enum cs_fixity_outcome o)
{
	return (unsigned)o < 3 ? outcome_names[o] : "?";
}

int64_t
cs_fixity_now_ms(void)
{
	return cs__now_ms();
}

/* ---- the projection ---- */

static void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The fixity_due key of item `id` last checked (or ingested) at `ms`; its length, 0 if none. */
static size_t
due_key(uint8_t *k, int64_t ms, const char *id)
{
	size_t n = strlen(id);

	if (ms < 0 || n == 0 || n > DUE_KEY_MAX - 8)
		return 0;
	be64(k, (uint64_t)ms);
	memcpy(k + 8, id, n);
	return 8 + n;
}

/* The time the item's place in the schedule counts from: its last check, else its ingest. */
static int
since_ms(json_t *rec, int64_t *ms)
{
	const char *t = json_string_value(json_object_get(json_object_get(rec, "fixity"), "time"));

	if (t == NULL)
		t = json_string_value(json_object_get(rec, "ingested_at"));
	return t != NULL ? cs__time_parse(t, ms) : CS_EFORMAT;
}

int
cs__fixity_index(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	uint8_t kb[DUE_KEY_MAX];
	MDB_val k, d = {0, ""};
	int64_t ms;

	if (since_ms(rec, &ms) < 0)
		return 0; /* no valid ingest time: not scheduled (verify still checks it) */
	k.mv_size = due_key(kb, ms, id);
	k.mv_data = kb;
	return k.mv_size > 0 ? mdb_put(txn, c->dbi[CS_DBI_FIXITY_DUE], &k, &d, 0) : 0;
}

int
cs__fixity_unindex(struct cs__catalog *c, MDB_txn *txn, const char *id, json_t *rec)
{
	uint8_t kb[DUE_KEY_MAX];
	MDB_val k;
	int64_t ms;
	int rc;

	if (since_ms(rec, &ms) < 0 || (k.mv_size = due_key(kb, ms, id)) == 0)
		return 0;
	k.mv_data = kb;
	rc = mdb_del(txn, c->dbi[CS_DBI_FIXITY_DUE], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * A derivative's check: it must name one of the item's derivatives by kind
 * and SHA-256. It leaves the schedule (the item's blob event keeps it); one
 * found not ok lists the item as damaged, with the derivative named. It
 * follows the blob's event of the same check, which cleared the list.
 */
static int
project_derivative(struct cs__catalog *c, MDB_txn *txn, json_t *ev, const char *id,
    json_t *rec, const char **why)
{
	const char *kind = json_string_value(json_object_get(ev, "derivative"));
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *outcome = json_string_value(json_object_get(ev, "outcome"));
	char dkey[sizeof(DAMAGED_PREFIX) + 480];
	json_t *d, *fx;
	size_t i;
	int found = 0, rc;

	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *dk = json_string_value(json_object_get(d, "kind"));
		const char *dsha = json_string_value(json_object_get(d, "sha256"));

		found |= kind != NULL && sha != NULL && dk != NULL && dsha != NULL &&
		    strcmp(kind, dk) == 0 && strcmp(sha, dsha) == 0;
	}
	if (!found) {
		*why = "fixity event names no derivative of the item";
		return -1;
	}
	if (strcmp(outcome, "ok") == 0 || strlen(id) > 480)
		return 0;
	snprintf(dkey, sizeof(dkey), "%s%s", DAMAGED_PREFIX, id);
	fx = json_pack("{s:O, s:s, s:s}", "time", json_object_get(ev, "time"), "outcome", outcome,
	    "derivative", kind);
	rc = fx != NULL ? cs__cat_put(txn, c->dbi[CS_DBI_FIXITY], dkey, strlen(dkey), fx) : ENOMEM;
	json_decref(fx);
	return rc;
}

int
cs__fixity_project(struct cs__catalog *c, MDB_txn *txn, json_t *ev, uint64_t seq,
    const char *id, json_t *rec, const char **why)
{
	const char *outcome = json_string_value(json_object_get(ev, "outcome"));
	const char *sha = json_string_value(json_object_get(ev, "sha256"));
	const char *rsha = json_string_value(json_object_get(rec, "sha256"));
	json_t *time = json_object_get(ev, "time"), *fx = NULL, *last = NULL;
	uint8_t kb[DUE_KEY_MAX];
	char dkey[sizeof(DAMAGED_PREFIX) + 480];
	MDB_val k, d = {0, ""};
	int64_t old_ms, ms;
	int known = 0, rc;

	for (int i = 0; outcome != NULL && i < 3; i++)
		known |= strcmp(outcome, outcome_names[i]) == 0;
	if (!known) {
		*why = "fixity event has no valid outcome";
		return -1;
	}
	if (json_object_get(ev, "derivative") != NULL)
		return project_derivative(c, txn, ev, id, rec, why);
	if (sha == NULL || rsha == NULL || strcmp(sha, rsha) != 0) {
		*why = "fixity event's sha256 is not the item's";
		return -1;
	}
	if (cs__time_parse(json_string_value(time), &ms) < 0) {
		*why = "fixity event has no valid time";
		return -1;
	}
	/* Out of the schedule at the old time, into it at this check's. */
	if (since_ms(rec, &old_ms) == 0 && (k.mv_size = due_key(kb, old_ms, id)) > 0) {
		k.mv_data = kb;
		rc = mdb_del(txn, c->dbi[CS_DBI_FIXITY_DUE], &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	fx = json_pack("{s:O, s:s, s:I}", "time", time, "outcome", outcome, "seq",
	    (json_int_t)seq);
	if (fx == NULL || json_object_set_new(rec, "fixity", fx) < 0)
		return ENOMEM;
	k.mv_size = json_object_get(rec, "purged") == NULL ? due_key(kb, ms, id) : 0;
	k.mv_data = kb;
	rc = k.mv_size > 0 ? mdb_put(txn, c->dbi[CS_DBI_FIXITY_DUE], &k, &d, 0) : 0;
	if (rc != 0)
		return rc;
	if (strlen(id) > 480)
		return 0;
	snprintf(dkey, sizeof(dkey), "%s%s", DAMAGED_PREFIX, id);
	if (strcmp(outcome, "ok") != 0) {
		rc = cs__cat_put(txn, c->dbi[CS_DBI_FIXITY], dkey, strlen(dkey), fx);
	} else {
		k.mv_size = strlen(dkey);
		k.mv_data = dkey;
		rc = mdb_del(txn, c->dbi[CS_DBI_FIXITY], &k, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (rc != 0)
		return rc;
	last = json_pack("{s:s, s:O, s:s, s:I}", "id", id, "time", time, "outcome", outcome,
	    "seq", (json_int_t)seq);
	rc = last != NULL ? cs__cat_put(txn, c->dbi[CS_DBI_FIXITY], "last", 4, last) : ENOMEM;
	json_decref(last);
	return rc;
}

/* ---- a check ---- */

void
cs_fixity_free(struct cs_fixity *f)
{
	if (f == NULL)
		return;
	if (f->fd >= 0)
		close(f->fd);
	EVP_MD_CTX_free(f->md);
	for (size_t i = 0; i < f->nfiles; i++)
		json_decref(f->files[i].found);
	free(f->files);
	free(f->buf);
	free(f->id);
	free(f);
}

/* The files a check of item `rec` reads: its blob, then each derivative made. */
static int
list_files(struct cs_fixity *f, json_t *rec, const char *sha)
{
	json_t *ds = json_object_get(rec, "derivatives"), *d;
	size_t i;

	f->files = calloc(1 + json_array_size(ds), sizeof(*f->files));
	if (f->files == NULL)
		return -ENOMEM;
	memcpy(f->files[0].sha, sha, 65);
	f->files[0].size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
	f->nfiles = 1;
	json_array_foreach(ds, i, d)
	{
		const char *dsha = json_string_value(json_object_get(d, "sha256"));
		const char *kind = json_string_value(json_object_get(d, "kind"));
		const char *status = json_string_value(json_object_get(d, "status"));
		struct fx_file *x = &f->files[f->nfiles];

		if (status == NULL || strcmp(status, "ok") != 0 || dsha == NULL ||
		    strlen(dsha) != 64 || kind == NULL || strlen(kind) >= sizeof(x->kind))
			continue; /* no bytes made, or nothing to compare with (verify says so) */
		memcpy(x->sha, dsha, 65);
		snprintf(x->kind, sizeof(x->kind), "%s", kind);
		x->size = (uint64_t)json_integer_value(json_object_get(d, "size"));
		f->nfiles++;
	}
	return 0;
}

/* Opens file f->cur for reading (a missing one is read at once, as missing). */
static int
open_file(struct cs_fixity *f)
{
	const struct fx_file *x = &f->files[f->cur];
	char path[CS_BLOB_PATH_MAX + 16];
	struct stat sb;

	memcpy(f->sha, x->sha, 65);
	f->size = x->size;
	f->off = 0;
	f->read_err = 0;
	f->file_done = 0;
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1)
		return CS_ECRYPTO;
	snprintf(path, sizeof(path), "%s/sha256/%.2s/%.2s/%s",
	    x->kind[0] != '\0' ? "derivatives" : "objects", x->sha, x->sha + 2, x->sha);
	f->fd = openat(f->st->rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (f->fd < 0) {
		if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
			return -errno; /* not an answer about the file: try again later */
		f->file_done = 1; /* missing */
	} else if (fstat(f->fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(f->fd);
		f->fd = -1;
		f->file_done = 1; /* not a blob: missing */
	} else {
		(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	return 0;
}

/* The current file read: its outcome kept, the next one opened (or the check done). */
static int
finish_file(struct cs_fixity *f)
{
	struct fx_file *x = &f->files[f->cur];
	uint8_t digest[32], want[32];
	char hex[65];

	if (f->fd < 0) {
		x->o = CS_FIXITY_MISSING;
	} else if (f->read_err < 0) {
		x->o = CS_FIXITY_DAMAGED;
		x->found = json_pack("{s:s, s:I}", "error", cs_strerror(f->read_err), "read",
		    (json_int_t)f->off);
	} else {
		if (EVP_DigestFinal_ex(f->md, digest, NULL) != 1)
			return CS_ECRYPTO;
		if (cs__unhex(f->sha, 64, want) < 0)
			return CS_ESTORE;
		x->o = f->off == f->size && memcmp(digest, want, 32) == 0 ? CS_FIXITY_OK
		                                                          : CS_FIXITY_DAMAGED;
		if (x->o == CS_FIXITY_DAMAGED) {
			cs__hex(digest, 32, hex);
			x->found = json_pack("{s:s, s:I}", "sha256", hex, "size",
			    (json_int_t)f->off);
		}
	}
	if (x->o == CS_FIXITY_DAMAGED && x->found == NULL)
		return -ENOMEM;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (++f->cur == f->nfiles) {
		f->done = 1;
		return 0;
	}
	return open_file(f);
}

int
cs_fixity_begin(struct cs_store *st, const char *id, struct cs_fixity **out)
{
	struct cs_fixity *f = NULL;
	json_t *rec = NULL;
	MDB_txn *txn = NULL;
	const char *sha;
	int rc;

	if (st->lockfd < 0)
		return -EBADF;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	f->fd = -1;
	f->st = st;
	f->id = strdup(id);
	f->buf = malloc(STEP_BUF);
	f->md = EVP_MD_CTX_new();
	if (f->id == NULL || f->buf == NULL || f->md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		goto out;
	rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), &rec);
	mdb_txn_abort(txn);
	if (rc != 0) {
		rc = rc == MDB_NOTFOUND ? CS_ENOTFOUND : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
		goto out;
	}
	sha = json_string_value(json_object_get(rec, "sha256"));
	if (sha == NULL || strlen(sha) != 64 || !json_is_integer(json_object_get(rec, "size"))) {
		rc = CS_ESTORE;
		goto out;
	}
	rc = list_files(f, rec, sha);
	if (rc == 0)
		rc = open_file(f);
	if (rc < 0)
		goto out;
	rc = 0;
out:
	json_decref(rec);
	if (rc < 0) {
		cs_fixity_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int
cs_fixity_step(struct cs_fixity *f, uint64_t max, uint64_t *bytes, int *done)
{
	uint64_t got = 0;
	int rc = 0;

	while (!f->done && (got == 0 || got < max)) {
		size_t want = STEP_BUF;
		ssize_t n;

		if (f->file_done) {
			rc = finish_file(f);
			if (rc < 0)
				break;
			continue;
		}
		if (max > got && max - got < want)
			want = (size_t)(max - got);
		n = cs__pread_all(f->fd, f->buf, want, (off_t)f->off);
		if (n <= 0) {
			f->read_err = (int)n;
			f->file_done = 1;
			continue;
		}
		if (EVP_DigestUpdate(f->md, f->buf, (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			break;
		}
		f->off += (uint64_t)n;
		got += (uint64_t)n;
	}
	*bytes = got;
	*done = f->done;
	return rc;
}

/* The "fixity" event of file `x` of the check (a derivative's names its kind). */
static json_t *
file_event(const struct cs_fixity *f, const struct fx_file *x, const struct cs_fixity_agent *agent)
{
	json_t *ev = json_pack("{s:s, s:s, s:s, s:I, s:s, s:{s:s, s:s}}", "event", "fixity", "id",
	    f->id, "sha256", x->sha, "size", (json_int_t)x->size, "outcome",
	    cs_fixity_outcome_name(x->o), "agent", "name", agent->name, "version", agent->version);

	if (ev != NULL &&
	    ((x->kind[0] != '\0' &&
	         json_object_set_new(ev, "derivative", json_string(x->kind)) < 0) ||
	        (x->found != NULL && json_object_set(ev, "found", x->found) < 0))) {
		json_decref(ev);
		ev = NULL;
	}
	return ev;
}

int
cs_fixity_end(struct cs_fixity *f, const struct cs_fixity_agent *agent,
    enum cs_fixity_outcome *outcome, uint64_t *seq)
{
	enum cs_fixity_outcome o = CS_FIXITY_OK;
	json_t **evs = NULL;
	uint64_t n, s = 0;
	int done, rc = 0;

	while (!f->done) {
		rc = cs_fixity_step(f, UINT64_MAX, &n, &done);
		if (rc < 0)
			return rc; /* nothing learnt about the files */
	}
	evs = calloc(f->nfiles, sizeof(*evs));
	if (evs == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < f->nfiles; i++) {
		evs[i] = file_event(f, &f->files[i], agent);
		if (evs[i] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (o == CS_FIXITY_OK)
			o = f->files[i].o;
	}
	/* one commit: the blob's event, then each derivative's */
	rc = cs__store_commit_locked_n(f->st, evs, f->nfiles, &s);
	if (rc < 0)
		goto out;
	if (outcome != NULL)
		*outcome = o;
	if (seq != NULL)
		*seq = s;
out:
	for (size_t i = 0; i < f->nfiles; i++)
		json_decref(evs[i]);
	free(evs);
	return rc;
}

int
cs_fixity_problem(const struct cs_fixity *f, const char **kind, const char **sha)
{
	for (size_t i = 0; i < f->cur && i < f->nfiles; i++)
		if (f->files[i].o != CS_FIXITY_OK) {
			*kind = f->files[i].kind[0] != '\0' ? f->files[i].kind : NULL;
			*sha = f->files[i].sha;
			return (int)f->files[i].o;
		}
	return 0;
}

int
cs_fixity_check(struct cs_store *st, const char *id, const struct cs_fixity_agent *agent,
    enum cs_fixity_outcome *outcome, uint64_t *seq)
{
	struct cs_fixity *f = NULL;
	int rc = cs_fixity_begin(st, id, &f);

	if (rc == 0)
		rc = cs_fixity_end(f, agent, outcome, seq);
	cs_fixity_free(f);
	return rc;
}

/* ---- the schedule ---- */

static int
from_mdb(int rc)
{
	if (rc == 0 || rc == MDB_NOTFOUND)
		return 0;
	if (rc == ENOMEM)
		return -ENOMEM;
	return rc > 0 ? -rc : CS_ESTORE;
}

/*
 * Walks fixity_due from the oldest: cb(ctx, txn, id, since_ms) for each
 * item; stops when cb returns nonzero (< 0: that error).
 */
static int
each_due(struct cs_store *st, MDB_txn *txn,
    int (*cb)(void *ctx, MDB_txn *txn, const char *id, int64_t ms), void *ctx)
{
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int rc;

	rc = mdb_cursor_open(txn, st->cat.dbi[CS_DBI_FIXITY_DUE], &cur);
	if (rc != 0)
		return from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		char id[DUE_KEY_MAX];
		int r;

		if (k.mv_size <= 8 || k.mv_size > DUE_KEY_MAX) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(id, (char *)k.mv_data + 8, k.mv_size - 8);
		id[k.mv_size - 8] = '\0';
		r = cb(ctx, txn, id, (int64_t)get64(k.mv_data));
		if (r != 0) {
			mdb_cursor_close(cur);
			return r < 0 ? r : 0;
		}
	}
	mdb_cursor_close(cur);
	return from_mdb(rc);
}

static json_t *
time_json(int64_t ms)
{
	char buf[32];

	cs__time_format(ms, buf, sizeof(buf));
	return json_string(buf);
}

struct due_ctx {
	struct cs_store *st;
	int64_t cutoff, period;
	size_t max;
	json_t *items;  /* due: the items listed; report: every item */
	uint64_t due, checked, n;
	int all;        /* report: list every item */
	int stop;       /* due: stop at max (the count is not wanted) */
};

static int
get_rec(struct cs_store *st, MDB_txn *txn, const char *id, json_t **rec)
{
	int rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_ITEMS], id, strlen(id), rec);

	return rc == 0 ? 0 : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
}

static int
due_cb(void *ctx, MDB_txn *txn, const char *id, int64_t ms)
{
	struct due_ctx *c = ctx;
	json_t *rec = NULL, *o;
	int rc;

	if (ms > c->cutoff)
		return 1;
	c->due++;
	if (json_array_size(c->items) >= c->max)
		return c->stop; /* go on counting all that are due, or stop */
	rc = get_rec(c->st, txn, id, &rec);
	if (rc < 0)
		return rc;
	o = json_pack("{s:s, s:O, s:O, s:o}", "id", id, "sha256", json_object_get(rec, "sha256"),
	    "size", json_object_get(rec, "size"), "since", time_json(ms));
	json_decref(rec);
	return o != NULL && json_array_append_new(c->items, o) == 0 ? 0 : -ENOMEM;
}

int
cs_fixity_due(struct cs_store *st, int64_t now_ms, int64_t period_ms, size_t max,
    json_t **items, uint64_t *due)
{
	struct due_ctx c = {st, now_ms - period_ms, period_ms, max, json_array(), 0, 0, 0, 0, 0};
	MDB_txn *txn = NULL;
	int rc;

	if (c.items == NULL)
		return -ENOMEM;
	c.stop = due == NULL; /* count every due item, or stop at max */
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0)
		rc = each_due(st, txn, due_cb, &c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc < 0) {
		json_decref(c.items);
		return rc;
	}
	*items = c.items;
	if (due != NULL)
		*due = c.due;
	return 0;
}

static int
report_cb(void *ctx, MDB_txn *txn, const char *id, int64_t ms)
{
	struct due_ctx *c = ctx;
	json_t *rec = NULL, *fx, *o;
	int overdue = ms <= c->cutoff, rc;

	c->n++;
	if (overdue)
		c->due++;
	rc = get_rec(c->st, txn, id, &rec);
	if (rc < 0)
		return rc;
	fx = json_object_get(rec, "fixity");
	if (fx != NULL)
		c->checked++;
	o = json_pack("{s:s, s:O, s:O*, s:O*, s:o, s:o, s:b}", "id", id, "size",
	    json_object_get(rec, "size"), "last_checked", json_object_get(fx, "time"), "outcome",
	    json_object_get(fx, "outcome"), "since", time_json(ms), "due_at",
	    time_json(ms + c->period), "overdue", overdue);
	json_decref(rec);
	if (o != NULL && json_object_get(o, "last_checked") == NULL)
		json_object_set_new(o, "last_checked", json_null());
	if (o != NULL && json_object_get(o, "outcome") == NULL)
		json_object_set_new(o, "outcome", json_null());
	return o != NULL && json_array_append_new(c->items, o) == 0 ? 0 : -ENOMEM;
}

static int
damaged_list(struct cs_store *st, MDB_txn *txn, json_t *out)
{
	static const char p[] = DAMAGED_PREFIX;
	MDB_cursor *cur = NULL;
	MDB_val k = {sizeof(p) - 1, (void *)p}, d;
	int rc;

	rc = mdb_cursor_open(txn, st->cat.dbi[CS_DBI_FIXITY], &cur);
	if (rc != 0)
		return from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size < sizeof(p) - 1 || memcmp(k.mv_data, p, sizeof(p) - 1) != 0)
			break;
		if (json_array_append_new(out, json_stringn((char *)k.mv_data + sizeof(p) - 1,
		                                   k.mv_size - (sizeof(p) - 1))) < 0) {
			rc = ENOMEM;
			break;
		}
	}
	mdb_cursor_close(cur);
	return from_mdb(rc);
}

int
cs_fixity_report(struct cs_store *st, int64_t now_ms, int64_t period_ms, json_t **summary,
    json_t **items)
{
	struct due_ctx c = {st, now_ms - period_ms, period_ms, SIZE_MAX, NULL, 0, 0, 0, 0, 0};
	json_t *sum = NULL, *damaged = json_array(), *last = NULL;
	MDB_txn *txn = NULL;
	int rc;

	c.all = items != NULL;
	c.items = json_array();
	if (damaged == NULL || c.items == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	c.max = 0; /* due_cb counts only */
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0)
		rc = each_due(st, txn, c.all ? report_cb : due_cb, &c);
	if (rc == 0)
		rc = damaged_list(st, txn, damaged);
	if (rc == 0) {
		rc = cs__cat_get(txn, st->cat.dbi[CS_DBI_FIXITY], "last", 4, &last);
		rc = rc == MDB_NOTFOUND ? 0 : rc == 0 ? 0 : rc == ENOMEM ? -ENOMEM : CS_ESTORE;
	}
	if (rc < 0)
		goto out;
	sum = json_pack("{s:O, s:I, s:O}", "damaged", damaged, "overdue", (json_int_t)c.due,
	    "last_pass", last != NULL ? json_object_get(last, "time") : json_null());
	if (sum != NULL && c.all &&
	    (json_object_set_new(sum, "items", json_integer((json_int_t)c.n)) < 0 ||
	        json_object_set_new(sum, "checked", json_integer((json_int_t)c.checked)) < 0)) {
		json_decref(sum);
		sum = NULL;
	}
	if (sum == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*summary = sum;
	if (items != NULL) {
		*items = c.items;
		c.items = NULL;
	}
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(c.items);
	json_decref(damaged);
	json_decref(last);
	return rc;
}
