/*
 * Remote check (custos/remote_check.h): the objects the ledger says the
 * bucket holds, looked at again. The blobs and derivatives come from the
 * items' replica events, the records and the identity from the latest confirmed
 * checkpoint (meta replica_cp): records 0 .. size-1 are read from the
 * journal one at a time as they are asked about, so that memory holds the
 * items' short facts and the requests in flight, never the objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "catalog.h"
#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/remote_check.h"
#include "custos/remote_purge.h"
#include "custos/replica.h"
#include "store_internal.h"
#include "util.h"

#define WINDOW 64 /* objects asked about at once (the remote runs `parallel` of them) */

struct check {
	struct cs_store *st;
	const struct cs_remote_config *cfg;
	const struct cs_rcheck_hooks *hooks;
	char remote[1200];
	int deep;
	json_t *blobs; /* [{id, key, sha256, size, version_id, lock_mode, retain_until, purged?}] */
	json_t *purged; /* the purged items' objects, looked at last: [{id, key, derivative?}] */
	size_t next_blob;
	uint64_t cp, next_rec; /* confirmed checkpoint size; next record to ask about */
	int identity_done, cp_done;
	char cp_hex[65]; /* SHA-256 of the confirmed checkpoint's note, "" if not held here */
	char id_hex[65]; /* of custos.json */
	uint64_t id_size;
	int any_lock; /* a replica event recorded Object Lock retention */
	uint64_t total, done, problems, unanswered;
	int rc; /* a store error while making the list */
};

/* What the ledger says about one object. */
struct target {
	struct check *c;
	char object[16];
	char id[512];
	char key[1200];
	char hex[65]; /* "" when not known */
	uint64_t size;
	int have_size;
	char version[200], mode[32], until[64];
	char dkind[32]; /* a derivative's kind */
};

static void problem(struct target *t, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct target *t, const char *kind, const char *fmt, ...)
{
	struct cs_rcheck_problem p = {kind, t->object, t->id[0] ? t->id : NULL, t->key, NULL};
	char detail[1700];
	int n = 0;
	va_list ap;

	if (t->dkind[0] != '\0') /* which item's which copy */
		n = snprintf(detail, 100, "the %s copy of item %.40s: ", t->dkind, t->id);
	va_start(ap, fmt);
	vsnprintf(detail + n, sizeof(detail) - (size_t)n, fmt, ap);
	va_end(ap);
	p.detail = detail;
	t->c->problems++;
	t->c->hooks->problem(t->c->hooks->ctx, &p);
}

static const char *
str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v != NULL ? v : "";
}

/* The last replica at our remote in `obj`'s replicas into the list (as of item `id`). */
static int
add_last(struct check *c, const char *id, json_t *obj, json_t *rec, const char *dkind)
{
	json_t *r, *last = NULL, *o;
	size_t i;

	json_array_foreach(json_object_get(obj, "replicas"), i,
	    r) if (strcmp(str(r, "remote"), c->remote) == 0) last = r;
	if (last == NULL)
		return 0;
	if (str(last, "lock_mode")[0] != '\0')
		c->any_lock = 1;
	o = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s, s:s}", "id", id, "key", str(last, "key"),
	    "sha256", json_object_get(dkind != NULL ? obj : rec, "sha256"), "size",
	    json_object_get(dkind != NULL ? obj : rec, "size"), "version_id",
	    str(last, "version_id"), "lock_mode", str(last, "lock_mode"), "retain_until",
	    str(last, "retain_until"));
	if (o != NULL && json_object_get(rec, "purged") != NULL &&
	    json_object_set_new(o, "purged", json_true()) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o != NULL && dkind != NULL &&
	    json_object_set_new(o, "derivative", json_string(dkind)) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL || json_array_append_new(c->blobs, o) < 0)
		return -ENOMEM;
	return 0;
}

/* The item's blob's and each derivative's last replica at our remote into the list. */
static int
blob_cb(void *ctx, const char *id, json_t *rec)
{
	struct check *c = ctx;
	json_t *d;
	size_t i;
	int rc = add_last(c, id, rec, rec, NULL);

	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *k = json_string_value(json_object_get(d, "kind"));
		if (rc == 0 && k != NULL)
			rc = add_last(c, id, d, rec, k);
	}
	return rc;
}

/*
 * The purged items' objects out of the list into c->purged, but for those
 * an item not purged still has (the same bytes in another case): they stay.
 */
static int
split_purged(struct check *c)
{
	json_t *kept = json_object(), *b;
	size_t i;
	int rc = kept != NULL ? 0 : -ENOMEM;

	json_array_foreach(c->blobs, i, b)
	{
		if (rc == 0 && !json_is_true(json_object_get(b, "purged")))
			rc = json_object_set(kept, str(b, "key"), json_true());
	}
	for (i = json_array_size(c->blobs); rc == 0 && i-- > 0;) {
		b = json_array_get(c->blobs, i);
		if (!json_is_true(json_object_get(b, "purged")))
			continue;
		if (json_object_get(kept, str(b, "key")) == NULL &&
		    (rc = json_array_append(c->purged, b)) < 0)
			rc = -ENOMEM;
		if (rc == 0 && json_array_remove(c->blobs, i) < 0)
			rc = -ENOMEM;
	}
	json_decref(kept);
	return rc;
}

/* The list of blobs, the confirmed checkpoint and its digest. */
static int
plan(struct check *c, const char *dir)
{
	MDB_txn *txn = NULL;
	struct cs__cp *cps = NULL;
	size_t n = 0;
	char path[4096];
	int fd, rc = cs__catalog_rtxn(&c->st->cat, &txn);

	if (rc < 0)
		return rc;
	rc = cs__catalog_each_item(&c->st->cat, txn, blob_cb, c);
	if (rc == 0)
		rc = split_purged(c);
	if (rc == 0)
		rc = cs__catalog_replica_cp(&c->st->cat, txn, &c->cp);
	mdb_txn_abort(txn);
	if (rc < 0 || c->cp == 0)
		goto out;
	rc = cs__checkpoints_load(c->st, &cps, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t d[32];
		if (cps[i].size != c->cp || cps[i].note == NULL)
			continue;
		if (EVP_Digest(cps[i].note, cps[i].len, d, NULL, EVP_sha256(), NULL) != 1)
			rc = CS_ECRYPTO;
		else
			cs__hex(d, 32, c->cp_hex);
	}
	cs__checkpoints_free(cps, n);
	snprintf(path, sizeof(path), "%s/custos.json", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = cs_hash_fd(fd, c->id_hex, &c->id_size);
	if (fd >= 0)
		close(fd);
out:
	c->total = json_array_size(c->blobs) + json_array_size(c->purged) +
	    (c->cp > 0 ? c->cp + 2 : 0);
	return rc;
}

/* "2036-12-05T01:02:03.123456789Z" into seconds; -1 if it does not parse. */
static int64_t
secs(const char *s)
{
	int64_t ms;

	return s[0] != '\0' && cs__time_parse(s, &ms) == 0 ? ms / 1000 : -1;
}

static void
compare(struct target *t, const struct cs_remote_info *in)
{
	char b64[48] = "";
	uint8_t want[32];
	char got[65];

	if (!in->present) {
		if (in->versions > 0)
			problem(t, "missing",
			    "%s is deleted in the bucket: its newest version is a delete marker "
			    "(%d versions and markers; the earlier versions may still be there)",
			    t->key, in->versions);
		else
			problem(t, "missing", "%s is not in the bucket", t->key);
		return;
	}
	if (t->have_size && in->size != t->size)
		problem(t, "size", "%s holds %llu bytes, not %llu", t->key,
		    (unsigned long long)in->size, (unsigned long long)t->size);
	if (t->hex[0] != '\0' && cs__unhex(t->hex, 64, want) == 0) {
		EVP_EncodeBlock((unsigned char *)b64, want, 32);
		if (strcmp(in->meta_sha256, t->hex) != 0 && strcmp(in->checksum_sha256, b64) != 0)
			problem(t, "checksum",
			    "%s does not carry its SHA-256 %s (x-amz-meta-sha256: %s): it was "
			    "written again by something other than custos",
			    t->key, t->hex, in->meta_sha256[0] ? in->meta_sha256 : "none");
		if (in->read) {
			cs__hex(in->sha256, 32, got);
			if (strcmp(got, t->hex) != 0)
				problem(t, "checksum",
				    "%s read back (%llu bytes) hashes to %s, not %s", t->key,
				    (unsigned long long)in->got, got, t->hex);
		}
	}
	if (t->mode[0] != '\0') {
		int64_t want_s = secs(t->until), got_s = secs(in->retain_until);
		if (in->lock_mode[0] == '\0')
			problem(t, "retention",
			    "%s has no Object Lock retention; it was written with %s until %s",
			    t->key, t->mode, t->until[0] ? t->until : "?");
		else if (strcmp(t->mode, "COMPLIANCE") == 0 &&
		    strcmp(in->lock_mode, "COMPLIANCE") != 0)
			problem(t, "retention", "%s is under %s retention, not COMPLIANCE", t->key,
			    in->lock_mode);
		else if (want_s >= 0 && (got_s < 0 || got_s < want_s))
			problem(t, "retention",
			    "%s is retained until %s, earlier than the %s the replica event "
			    "records: its retention was shortened",
			    t->key, in->retain_until[0] ? in->retain_until : "no date", t->until);
	} else if (strcmp(t->object, "blob") != 0 && strcmp(t->object, "derivative") != 0 &&
	    t->c->any_lock && in->lock_mode[0] == '\0') {
		problem(t, "retention", "%s has no Object Lock retention, unlike the blobs",
		    t->key);
	}
	if (in->versions > 1)
		problem(t, "versions",
		    "%s has %d versions: it was written again after custos confirmed it", t->key,
		    in->versions);
	else if (t->version[0] != '\0' && strcmp(in->version_id, t->version) != 0)
		problem(t, "versions", "%s is now version %s, not the version %s custos confirmed",
		    t->key, in->version_id[0] ? in->version_id : "(none)", t->version);
}

static void
on_info(void *ctx, const struct cs_remote_info *in)
{
	struct target *t = ctx;
	struct check *c = t->c;

	if (in->rc != 0) {
		c->unanswered++;
		if (c->rc == 0)
			c->rc = in->rc;
		problem(t, "unanswered", "%s could not be checked: %s", t->key, in->why);
	} else {
		compare(t, in);
	}
	c->done++;
	if (c->hooks->progress != NULL)
		c->hooks->progress(c->hooks->ctx, c->done, c->total);
	free(t);
}

/* The next object to ask about into *t; 0, 1 when there is none, or the store's error. */
static int
next_target(struct check *c, struct target *t)
{
	const char *station = cs_store_station(c->st);
	int rc;

	memset(t, 0, sizeof(*t));
	t->c = c;
	if (c->next_blob < json_array_size(c->blobs)) {
		json_t *b = json_array_get(c->blobs, c->next_blob++);
		snprintf(t->object, sizeof(t->object), "%s",
		    json_object_get(b, "derivative") != NULL ? "derivative" : "blob");
		snprintf(t->dkind, sizeof(t->dkind), "%s", str(b, "derivative"));
		snprintf(t->id, sizeof(t->id), "%s", str(b, "id"));
		snprintf(t->key, sizeof(t->key), "%s", str(b, "key"));
		snprintf(t->hex, sizeof(t->hex), "%s", str(b, "sha256"));
		snprintf(t->version, sizeof(t->version), "%s", str(b, "version_id"));
		snprintf(t->mode, sizeof(t->mode), "%s", str(b, "lock_mode"));
		snprintf(t->until, sizeof(t->until), "%s", str(b, "retain_until"));
		t->size = (uint64_t)json_integer_value(json_object_get(b, "size"));
		t->have_size = 1;
		return 0;
	}
	if (c->cp == 0)
		return 1;
	if (!c->identity_done) {
		c->identity_done = 1;
		snprintf(t->object, sizeof(t->object), "identity");
		memcpy(t->hex, c->id_hex, sizeof(t->hex));
		t->size = c->id_size;
		t->have_size = 1;
		return cs_remote_key_identity(c->cfg, station, t->key, sizeof(t->key));
	}
	if (c->next_rec < c->cp) {
		uint8_t sha[32];
		int fd = -1;
		snprintf(t->object, sizeof(t->object), "record");
		rc = cs_remote_key_record(c->cfg, station, c->next_rec, t->key, sizeof(t->key));
		if (rc == 0)
			rc = cs_replica_record_fd(c->st, c->next_rec, &fd, &t->size, sha);
		if (fd >= 0)
			close(fd);
		cs__hex(sha, 32, t->hex);
		t->have_size = 1;
		c->next_rec++;
		return rc;
	}
	if (!c->cp_done) {
		c->cp_done = 1;
		snprintf(t->object, sizeof(t->object), "checkpoint");
		memcpy(t->hex, c->cp_hex, sizeof(t->hex));
		return cs_remote_key_checkpoint(c->cfg, station, c->cp, t->key, sizeof(t->key));
	}
	return 1;
}

/*
 * A purged item's object: absent, or only versions a retention or a legal
 * hold still keeps (a note, not a problem). Asked with nothing else pending.
 */
static int
check_purged(struct check *c, struct cs_remote *r, json_t *b)
{
	struct target t = {0};
	json_t *look = NULL, *v;
	char kept[1200] = "";
	size_t i, n = 0;
	int rc;

	t.c = c;
	snprintf(t.object, sizeof(t.object), "%s",
	    json_object_get(b, "derivative") != NULL ? "derivative" : "blob");
	snprintf(t.dkind, sizeof(t.dkind), "%s", str(b, "derivative"));
	snprintf(t.id, sizeof(t.id), "%s", str(b, "id"));
	snprintf(t.key, sizeof(t.key), "%s", str(b, "key"));
	rc = cs_remote_purge_look(r, t.key, &look);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		c->unanswered++;
		if (c->rc == 0)
			c->rc = rc;
		problem(&t, "unanswered", "%s could not be checked: %s", t.key, str(look, "error"));
	}
	json_array_foreach(json_object_get(look, "versions"), i, v)
	{
		const char *o = str(v, "outcome");
		size_t k = strlen(kept);
		if (strcmp(o, "locked") == 0)
			snprintf(kept + k, sizeof(kept) - k, "%sversion %.80s locked until %.64s",
			    k > 0 ? "; " : "", str(v, "version"), str(v, "retain_until"));
		else if (strcmp(o, "held") == 0)
			snprintf(kept + k, sizeof(kept) - k, "%sversion %.80s on legal hold",
			    k > 0 ? "; " : "", str(v, "version"));
		else if (strcmp(o, "failed") == 0)
			problem(&t, "unanswered", "%s version %s could not be checked: %s", t.key,
			    str(v, "version"), str(v, "error"));
		else
			n++; /* a version nothing keeps, or a delete marker: not gone */
	}
	if (n > 0)
		problem(&t, "not-purged",
		    "%s is still in the bucket (%zu version%s or delete marker%s no retention "
		    "keeps), though the item was purged",
		    t.key, n, n == 1 ? "" : "s", n == 1 ? "" : "s");
	if (kept[0] != '\0' && c->hooks->note != NULL) {
		struct cs_rcheck_problem p = {"locked", t.object, t.id, t.key, NULL};
		char detail[2600];
		snprintf(detail, sizeof(detail),
		    "%s of purged item %.40s is kept by the bucket: %s", t.key, t.id, kept);
		p.detail = detail;
		c->hooks->note(c->hooks->ctx, &p);
	}
	json_decref(look);
	c->done++;
	if (c->hooks->progress != NULL)
		c->hooks->progress(c->hooks->ctx, c->done, c->total);
	return 0;
}

int
cs_remote_check(struct cs_store *st, const char *dir, const struct cs_remote_config *cfg, int deep,
    const struct cs_rcheck_hooks *hooks, uint64_t *checked, uint64_t *problems)
{
	struct check c = {0};
	struct cs_remote *r = NULL;
	int rc, more = 1;

	c.st = st;
	c.cfg = cfg;
	c.hooks = hooks;
	c.deep = deep;
	c.blobs = json_array();
	c.purged = json_array();
	if (c.blobs == NULL || c.purged == NULL) {
		json_decref(c.blobs);
		json_decref(c.purged);
		return -ENOMEM;
	}
	cs_remote_config_name(cfg, c.remote, sizeof(c.remote));
	rc = plan(&c, dir);
	if (rc == 0)
		rc = cs_remote_new(&r, cfg, NULL);
	while (rc == 0 && (more || cs_remote_pending(r) > 0)) {
		while (rc == 0 && more && cs_remote_pending(r) < WINDOW) {
			struct target *t = malloc(sizeof(*t));
			if (t == NULL) {
				rc = -ENOMEM;
				break;
			}
			rc = next_target(&c, t);
			if (rc != 0) {
				free(t);
				more = rc < 0 ? more : 0;
				rc = rc < 0 ? rc : 0;
				continue;
			}
			rc = cs_remote_stat(r, t->key,
			    CS_REMOTE_STAT_VERSIONS | (deep ? CS_REMOTE_STAT_READ : 0), -1, on_info,
			    t);
			if (rc < 0)
				free(t);
		}
		if (rc == 0 && cs_remote_pending(r) > 0)
			rc = cs_remote_poll(r, 500);
	}
	for (size_t i = 0; rc == 0 && i < json_array_size(c.purged); i++)
		rc = check_purged(&c, r, json_array_get(c.purged, i));
	cs_remote_free(r);
	json_decref(c.blobs);
	json_decref(c.purged);
	*checked = c.done;
	*problems = c.problems;
	if (rc == 0 && c.unanswered > 0)
		rc = c.rc;
	return rc;
}
