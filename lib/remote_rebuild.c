/*
 * Rebuild from the bucket (custos/remote_rebuild.h). Everything downloaded
 * goes first to <root>/tmp/from-remote/ (each object to a ".part" file,
 * renamed when whole), so that a run that was killed is run again and
 * downloads only what it lacks; the ledger journal is written from the
 * records only once they hash to the signed root; the catalog is made by
 * the local rebuild's code (cs__rebuild_locked); custos.json is written
 * last, as `custos init` does, so that its presence marks a complete store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "catalog.h"
#include "custos/error.h"
#include "custos/keys.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "custos/remote_rebuild.h"
#include "custos/tlog.h"
#include "journal.h"
#include "store_internal.h"
#include "util.h"

#define WINDOW 32 /* downloads queued at once (the remote runs `parallel`) */
#define STAGE "tmp/from-remote"
#define RECORD_MAX (16u << 20) /* a ledger event's largest size (docs/formats.md 4) */

struct rb {
	const struct cs_remote_config *cfg;
	struct cs_remote *r;
	const char *root;
	int rootfd;
	char *why;
	size_t whyn;
	cs_progress_fn progress;
	void *ctx;
	int rc; /* the first download that failed */
	uint64_t done, total;
	atomic_uchar *fresh;
	struct dl *live; /* downloads queued and not done (freed at the end if left) */
};

static int fail(struct rb *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Keeps the first failure's sentence; returns rc. */
static int
fail(struct rb *b, int rc, const char *fmt, ...)
{
	va_list ap;

	if (b->rc == 0 || b->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(b->why, b->whyn, fmt, ap);
		va_end(ap);
	}
	if (b->rc == 0)
		b->rc = rc;
	return rc;
}

/* ---- downloads ---- */

/* One object being downloaded into STAGE/<name>.part, renamed STAGE/<name> when whole. */
struct dl {
	struct rb *b;
	char key[1200];
	char name[80];
	char hex[65]; /* expected SHA-256, "" if none (a record: the root checks it) */
	uint8_t sha[32];
	uint64_t size;
	char id[512]; /* blob, derivative: the item */
	char dkind[32]; /* a derivative: its kind */
	int fd;
	int done;
	struct dl *next, **prev; /* in b->live */
};

/* Takes d out of b->live. */
static void
dl_unlink(struct dl *d)
{
	if (d->prev == NULL)
		return;
	*d->prev = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->prev = NULL;
}

static void
dl_done(void *ctx, const struct cs_remote_info *in)
{
	struct dl *d = ctx;
	struct rb *b = d->b;
	char part[128], fin[128], got[65] = "";
	struct cs__blob_put put = {0};

	d->done = 1;
	snprintf(part, sizeof(part), STAGE "/%s.part", d->name);
	snprintf(fin, sizeof(fin), STAGE "/%s", d->name);
	if (in->rc != 0) {
		fail(b, in->rc, "cannot download %s: %s", d->key, in->why);
	} else if (!in->present) {
		/* the bucket lacks what its ledger says it holds: it does not match */
		fail(b, d->id[0] ? CS_EDIGEST : CS_EPROOF, "%s is not in the bucket%s%s", d->key,
		    d->id[0] ? ": the bytes of item " : "", d->id);
	} else if (d->hex[0] != '\0' &&
	    (!in->read || in->got != d->size || memcmp(in->sha256, d->sha, 32) != 0)) {
		cs__hex(in->sha256, 32, got);
		fail(b, CS_EDIGEST,
		    "%s in the bucket (%llu bytes) hashes to %s, not to item %s's%s%s SHA-256 %s "
		    "(%llu bytes): the bucket's copy was altered",
		    d->key, (unsigned long long)in->got, got, d->id, d->dkind[0] ? " " : "",
		    d->dkind[0] ? d->dkind : "", d->hex, (unsigned long long)d->size);
	} else if (d->dkind[0] != '\0') {
		/* a derivative: under derivatives/ as the media stage places one */
		int rc = cs__fsync(d->fd, 0);
		if (rc == 0)
			rc = fchmod(d->fd, 0444) < 0 ? -errno : 0;
		if (rc == 0)
			rc = cs__derivative_place(b->rootfd, part, d->hex);
		if (rc < 0)
			fail(b, rc, "cannot store the %s copy of item %s: %s", d->dkind, d->id,
			    cs_strerror(rc));
		unlinkat(b->rootfd, part, 0);
	} else if (d->id[0] != '\0') {
		/* a blob: into the store as ingest places one (hashed again, fsynced, linked) */
		int rc = lseek(d->fd, 0, SEEK_SET) < 0 ? -errno : 0;
		if (rc == 0)
			rc = cs__blob_put(b->rootfd, d->fd, b->fresh, &put);
		cs__hex(put.digest, 32, got);
		if (rc == 0 && strcmp(got, d->hex) != 0)
			rc = CS_EDIGEST;
		if (rc < 0)
			fail(b, rc, "cannot store the bytes of item %s: %s", d->id,
			    cs_strerror(rc));
		unlinkat(b->rootfd, part, 0);
	} else if (cs__fsync(d->fd, 1) < 0 || renameat(b->rootfd, part, b->rootfd, fin) < 0) {
		fail(b, -errno, "cannot keep %s: %s", fin, strerror(errno));
	}
	close(d->fd);
	d->fd = -1;
	b->done++;
	if (b->progress != NULL)
		b->progress(b->ctx, d->id[0] ? "blobs" : "records", b->done, b->total);
	dl_unlink(d);
	free(d);
}

/* Queues the download of d (taken over: freed when done). */
static int
dl_start(struct rb *b, struct dl *d)
{
	char part[128];
	int rc;

	snprintf(part, sizeof(part), STAGE "/%s.part", d->name);
	d->b = b;
	d->fd = openat(b->rootfd, part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->fd < 0) {
		rc = -errno;
		free(d);
		return fail(b, rc, "cannot write %s/%s: %s", b->root, part, cs_strerror(rc));
	}
	rc = cs_remote_stat(b->r, d->key, CS_REMOTE_STAT_READ, d->fd, dl_done, d);
	if (rc < 0) {
		close(d->fd);
		free(d);
		return fail(b, rc, "out of memory");
	}
	d->next = b->live;
	if (d->next != NULL)
		d->next->prev = &d->next;
	d->prev = &b->live;
	b->live = d;
	return 0;
}

/* Runs the remote until at most `below` objects are pending, or one failed. */
static int
run_until(struct rb *b, size_t below)
{
	while (b->rc == 0 && cs_remote_pending(b->r) > below) {
		int rc = cs_remote_poll(b->r, 500);
		if (rc < 0)
			return fail(b, rc, "the network could not be polled");
	}
	return b->rc;
}

/* A whole small object into *buf (malloc'd, NUL-terminated), through the stage. */
static int
get_small(struct rb *b, const char *key, const char *name, size_t max, char **buf, size_t *len)
{
	struct dl *d = calloc(1, sizeof(*d));
	char fin[128];
	int rc;

	if (d == NULL)
		return -ENOMEM;
	snprintf(d->key, sizeof(d->key), "%s", key);
	snprintf(d->name, sizeof(d->name), "%s", name);
	rc = dl_start(b, d);
	if (rc == 0)
		rc = run_until(b, 0);
	if (rc < 0)
		return rc;
	snprintf(fin, sizeof(fin), STAGE "/%s", name);
	return cs__read_file(b->rootfd, fin, max, buf, len);
}

/* ---- listing ---- */

struct listing {
	const char *prefix;
	int done, rc;
	char why[800];
	char names[8][40]; /* stations found */
	size_t nnames;
	uint64_t best; /* the largest checkpoint size */
	int any;
};

static void
station_cb(void *ctx, const char *key, uint64_t size, int rc, const char *why)
{
	struct listing *l = ctx;
	const char *s = key != NULL ? key + strlen(l->prefix) : NULL, *slash;

	if (key == NULL) {
		l->done = 1;
		l->rc = rc;
		snprintf(l->why, sizeof(l->why), "%s", why != NULL ? why : "");
		return;
	}
	slash = strchr(s, '/');
	if (slash == NULL || strcmp(slash, "/custos.json") != 0 || slash - s >= 40)
		return;
	if (l->nnames < 8)
		snprintf(l->names[l->nnames], sizeof(l->names[0]), "%.*s", (int)(slash - s), s);
	l->nnames++;
}

static void
checkpoint_cb(void *ctx, const char *key, uint64_t size, int rc, const char *why)
{
	struct listing *l = ctx;
	const char *s = key != NULL ? key + strlen(l->prefix) : NULL;
	char *end;
	uint64_t n;

	if (key == NULL) {
		l->done = 1;
		l->rc = rc;
		snprintf(l->why, sizeof(l->why), "%s", why != NULL ? why : "");
		return;
	}
	n = strtoull(s, &end, 10);
	if (strlen(s) == 16 && *end == '\0' && (!l->any || n > l->best)) {
		l->best = n;
		l->any = 1;
	}
}

static int
list_keys(struct rb *b, const char *prefix, cs_remote_list_fn fn, struct listing *l)
{
	int rc;

	l->prefix = prefix;
	rc = cs_remote_list(b->r, prefix, fn, l);
	while (rc == 0 && !l->done)
		rc = cs_remote_poll(b->r, 500);
	if (rc == 0 && l->rc != 0)
		rc = fail(b, l->rc, "cannot list %s in the bucket: %s", prefix, l->why);
	return rc;
}

static void unstage(struct rb *b);

/* ---- the steps ---- */

/* The root: created, locked, and either empty or left by an interrupted run of this. */
static int
prepare(struct rb *b, int *lockfd)
{
	/* the stage first: once it is there, a run that was stopped is resumed */
	static const char *const dirs[] = {"tmp", STAGE, "objects", "objects/sha256", "ledger",
	    "checkpoints", "keys"};
	struct stat sb;
	DIR *dir;
	struct dirent *e;
	int resumed, rc = 0;

	if (mkdir(b->root, 0750) < 0 && errno != EEXIST)
		return fail(b, -errno, "cannot make %s: %s", b->root, strerror(errno));
	b->rootfd = open(b->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->rootfd < 0)
		return fail(b, -errno, "cannot open %s: %s", b->root, strerror(errno));
	if (fstatat(b->rootfd, "custos.json", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstatat(b->rootfd, STAGE, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		/* stopped after its last step (custos.json): only the downloads are left */
		unstage(b);
		return 1;
	}
	if (fstatat(b->rootfd, "custos.json", &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return fail(b, CS_EEXIST,
		    "%s already holds a store: rebuild from the bucket into a new, empty "
		    "directory",
		    b->root);
	resumed = fstatat(b->rootfd, STAGE, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if (!resumed) {
		dir = fdopendir(dup(b->rootfd));
		if (dir == NULL)
			return fail(b, -errno, "cannot read %s: %s", b->root, strerror(errno));
		while ((e = readdir(dir)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
			    strcmp(e->d_name, "lock") != 0 && strcmp(e->d_name, "tmp") != 0)
				rc = fail(b, CS_EEXIST,
				    "%s is not empty (it holds %s): rebuild from the bucket into a "
				    "new, empty directory",
				    b->root, e->d_name);
		closedir(dir);
		if (rc < 0)
			return rc;
	}
	*lockfd = openat(b->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*lockfd < 0)
		return fail(b, -errno, "cannot make %s/lock: %s", b->root, strerror(errno));
	if (flock(*lockfd, LOCK_EX | LOCK_NB) < 0)
		return fail(b, CS_EBUSY, "%s is in use by another custos", b->root);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		rc = cs__mkdir_durable(b->rootfd, dirs[i],
		    strcmp(dirs[i], "keys") == 0 ? 0700 : 0750);
		if (rc < 0)
			return fail(b, rc, "cannot make %s/%s: %s", b->root, dirs[i],
			    cs_strerror(rc));
	}
	return 0;
}

/* custos.json of the station: its verifier key must be the one given. */
static int
identity(struct rb *b, const char *station, const char *vkey, char **idtext, size_t *idlen)
{
	char key[1200];
	json_t *j = NULL;
	const char *k, *st;
	size_t vl = strlen(vkey);
	int rc, oom = 0;

	rc = cs_remote_key_identity(b->cfg, station, key, sizeof(key));
	if (rc == 0)
		rc = get_small(b, key, "custos.json", 1 << 16, idtext, idlen);
	if (rc < 0)
		return rc;
	j = cs__json_load(*idtext, *idlen, 0, &oom);
	k = json_string_value(json_object_get(j, "verifier_key"));
	st = json_string_value(json_object_get(j, "station"));
	while (vl > 0 && (vkey[vl - 1] == '\n' || vkey[vl - 1] == '\r' || vkey[vl - 1] == ' '))
		vl--;
	if (j == NULL || k == NULL || st == NULL || strcmp(st, station) != 0)
		rc = fail(b, CS_ELEDGER, "%s is not a custos.json of station %s", key, station);
	else if (strlen(k) != vl || strncmp(k, vkey, vl) != 0)
		rc = fail(b, CS_ESIG,
		    "station %s in the bucket has the verifier key %s, not the key given: "
		    "nothing was rebuilt",
		    station, k);
	json_decref(j);
	return rc;
}

/* The newest checkpoint of the station, signed by `v`: its size and root. */
static int
checkpoint(struct rb *b, const char *station, struct cs_verifier *v, struct cs_checkpoint *cp,
    char **note, size_t *len)
{
	struct listing l = {0};
	char prefix[1200], key[1200];
	size_t tl = 0;
	int rc;

	rc = cs_remote_key_checkpoint(b->cfg, station, 0, prefix, sizeof(prefix));
	if (rc < 0)
		return rc;
	prefix[strlen(prefix) - 16] = '\0'; /* ".../checkpoints/" */
	rc = list_keys(b, prefix, checkpoint_cb, &l);
	if (rc < 0)
		return rc;
	if (!l.any)
		return fail(b, CS_ENOTFOUND,
		    "the bucket holds no checkpoint of station %s (%s): push from the station "
		    "after a checkpoint first",
		    station, prefix);
	rc = cs_remote_key_checkpoint(b->cfg, station, l.best, key, sizeof(key));
	if (rc == 0)
		rc = get_small(b, key, "checkpoint", 1 << 16, note, len);
	if (rc < 0)
		return rc;
	rc = cs_note_verify(v, *note, *len, &tl);
	if (rc < 0)
		return fail(b, CS_ESIG,
		    "%s is not signed by the key given (%s): nothing was rebuilt", key,
		    rc == CS_ESIG ? "no signature verifies" : "not a signed note");
	rc = cs_checkpoint_parse(cp, *note, tl);
	if (rc < 0 || cp->size != l.best || strcmp(cp->origin, cs_verifier_name(v)) != 0)
		return fail(b, CS_ESIG,
		    "%s is signed but is not the station's checkpoint of size %llu", key,
		    (unsigned long long)l.best);
	return 0;
}

/* Every record 0 .. n-1 into the stage (those already there from an earlier run kept). */
static int
records(struct rb *b, const char *station, uint64_t n)
{
	char name[80];
	struct stat sb;
	int rc = 0;

	b->done = 0;
	b->total = n;
	for (uint64_t seq = 0; seq < n && rc == 0; seq++) {
		struct dl *d;
		snprintf(name, sizeof(name), STAGE "/%016llu", (unsigned long long)seq);
		if (fstatat(b->rootfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			b->done++;
			continue;
		}
		d = calloc(1, sizeof(*d));
		if (d == NULL)
			return fail(b, -ENOMEM, "out of memory");
		snprintf(d->name, sizeof(d->name), "%016llu", (unsigned long long)seq);
		rc = cs_remote_key_record(b->cfg, station, seq, d->key, sizeof(d->key));
		if (rc < 0) {
			free(d);
			return rc;
		}
		rc = dl_start(b, d);
		if (rc == 0)
			rc = run_until(b, WINDOW);
	}
	return rc == 0 ? run_until(b, 0) : rc;
}

/*
 * The ledger journal from the staged records, each checked to be one event
 * of its own index, then their Merkle root against the checkpoint's; the
 * journal is put in place only when it matches.
 */
static int
journal(struct rb *b, const struct cs_checkpoint *cp)
{
	struct cs_merkle_stream ms;
	uint8_t leaf[32], root[32], be[4];
	char name[80], *buf = NULL;
	int fd, rc = 0;
	size_t len = 0;

	cs_merkle_stream_init(&ms);
	fd = openat(b->rootfd, STAGE "/journal", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(b, -errno, "cannot write the journal: %s", strerror(errno));
	rc = cs__write_all(fd, CS_JOURNAL_MAGIC, CS_JOURNAL_HDR);
	for (uint64_t seq = 0; seq < cp->size && rc == 0; seq++) {
		json_t *ev;
		int oom = 0;
		snprintf(name, sizeof(name), STAGE "/%016llu", (unsigned long long)seq);
		rc = cs__read_file(b->rootfd, name, RECORD_MAX, &buf, &len);
		if (rc < 0) {
			rc = fail(b, rc, "cannot read the downloaded record %llu: %s",
			    (unsigned long long)seq, cs_strerror(rc));
			break;
		}
		ev = len > 0 ? cs__json_load(buf, len, 0, &oom) : NULL;
		if (ev == NULL ||
		    json_integer_value(json_object_get(ev, "seq")) != (json_int_t)seq) {
			rc = fail(b, CS_ELEDGER,
			    "ledger record %llu in the bucket is not the event of that index: it "
			    "was altered; nothing was rebuilt",
			    (unsigned long long)seq);
		}
		json_decref(ev);
		be[0] = (uint8_t)(len >> 24);
		be[1] = (uint8_t)(len >> 16);
		be[2] = (uint8_t)(len >> 8);
		be[3] = (uint8_t)len;
		if (rc == 0)
			rc = cs_merkle_leaf_hash(buf, len, leaf);
		if (rc == 0)
			rc = cs_merkle_stream_push(&ms, leaf);
		if (rc == 0)
			rc = cs__write_all(fd, be, 4);
		if (rc == 0)
			rc = cs__write_all(fd, buf, len);
		if (rc == 0)
			rc = cs__write_all(fd, leaf, 32);
		free(buf);
		buf = NULL;
	}
	if (rc == 0)
		rc = cs_merkle_stream_root(&ms, root);
	if (rc == 0 && memcmp(root, cp->root, 32) != 0)
		rc = fail(b, CS_EPROOF,
		    "the %llu ledger records in the bucket do not hash to the root signed in its "
		    "checkpoint: records were altered, removed or added; nothing was rebuilt",
		    (unsigned long long)cp->size);
	if (rc == 0 && cs__fsync(fd, 0) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(b->rootfd, STAGE "/journal", b->rootfd, "ledger/journal") < 0)
		rc = -errno;
	if (rc == 0)
		rc = cs__fsync_dir(b->rootfd, "ledger");
	if (rc < 0)
		return fail(b, rc, "cannot write the ledger journal: %s", cs_strerror(rc));
	return 0;
}

static int
item_cb(void *ctx, const char *id, json_t *rec)
{
	json_t *o, *d;
	size_t i;

	if (json_object_get(rec, "purged") != NULL)
		return 0; /* its bytes were purged: none to fetch (verify expects them absent) */
	o = json_pack("{s:s, s:O, s:O}", "id", id, "sha256", json_object_get(rec, "sha256"), "size",
	    json_object_get(rec, "size"));
	if (o == NULL || json_array_append_new(ctx, o) < 0)
		return -ENOMEM;
	/* the derivatives the bucket holds: those with a replica event */
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		if (json_array_size(json_object_get(d, "replicas")) == 0)
			continue;
		o = json_pack("{s:s, s:O, s:O, s:O}", "id", id, "sha256",
		    json_object_get(d, "sha256"), "size", json_object_get(d, "size"), "derivative",
		    json_object_get(d, "kind"));
		if (o == NULL || json_array_append_new(ctx, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* The items of the rebuilt catalog: [{id, sha256, size}], their derivatives with "derivative". */
static int
items(struct rb *b, json_t **out)
{
	struct cs__catalog cat = {0};
	MDB_txn *txn = NULL;
	char dir[4096];
	int rc;

	*out = json_array();
	if (*out == NULL)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), "%s/catalog", b->root);
	rc = cs__catalog_open(&cat, dir, 0, 0);
	if (rc == 0)
		rc = cs__catalog_rtxn(&cat, &txn);
	if (rc == 0)
		rc = cs__catalog_each_item(&cat, txn, item_cb, *out);
	if (txn != NULL)
		mdb_txn_abort(txn);
	cs__catalog_close(&cat);
	return rc;
}

/* Every item's blob and pushed derivative not yet in the store, downloaded, checked, placed. */
static int
blobs(struct rb *b, json_t *list, uint64_t *placed)
{
	size_t i;
	json_t *it;
	int rc = 0;

	b->done = 0;
	b->total = json_array_size(list);
	json_array_foreach(list, i, it)
	{
		const char *hex = json_string_value(json_object_get(it, "sha256"));
		const char *dk = json_string_value(json_object_get(it, "derivative")), *tree;
		uint64_t size = (uint64_t)json_integer_value(json_object_get(it, "size"));
		struct dl *d;
		if (rc < 0)
			break;
		if (hex == NULL || strlen(hex) != 64)
			continue;
		tree = dk != NULL ? "derivatives" : "objects";
		if (cs__blob_check_in(b->rootfd, tree, hex, size) == 0) {
			b->done++;
			continue; /* placed by an earlier run */
		}
		d = calloc(1, sizeof(*d));
		if (d == NULL)
			return fail(b, -ENOMEM, "out of memory");
		snprintf(d->name, sizeof(d->name), "%s%s", dk != NULL ? "d-" : "", hex);
		snprintf(d->hex, sizeof(d->hex), "%s", hex);
		if (cs__unhex(hex, 64, d->sha) < 0) {
			free(d);
			continue;
		}
		snprintf(d->id, sizeof(d->id), "%s", json_string_value(json_object_get(it, "id")));
		snprintf(d->dkind, sizeof(d->dkind), "%s", dk != NULL ? dk : "");
		d->size = size;
		rc = cs_remote_key_blob(b->cfg, hex, d->key, sizeof(d->key));
		if (rc < 0) {
			free(d);
			return rc;
		}
		rc = dl_start(b, d);
		if (rc == 0)
			rc = run_until(b, WINDOW / 4);
	}
	if (rc == 0)
		rc = run_until(b, 0);
	*placed = b->done;
	return rc;
}

/* Removes the stage (its files, then itself). */
static void
unstage(struct rb *b)
{
	int fd = openat(b->rootfd, STAGE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
	unlinkat(b->rootfd, STAGE, AT_REMOVEDIR);
	cs__fsync_dir(b->rootfd, "tmp");
}

int
cs_remote_rebuild(const char *root, const struct cs_remote_config *cfg, const char *station,
    const char *vkey, int want_blobs, cs_progress_fn progress, void *ctx,
    struct cs_rrebuild_result *res, char *why, size_t whyn)
{
	struct rb b = {cfg, NULL, root, -1, why, whyn, progress, ctx, 0, 0, 0, NULL, NULL};
	struct cs_verifier *v = NULL;
	struct cs_checkpoint cp = {0};
	struct listing l = {0};
	char st[40], prefix[1200], cpname[40], rname[1200], *idtext = NULL, *note = NULL;
	size_t idlen = 0, nlen = 0, vl;
	json_t *list = NULL;
	int lockfd = -1, rc;
	int64_t n;

	why[0] = '\0';
	memset(res, 0, sizeof(*res));
	vl = strlen(vkey);
	rc = cs_verifier_parse(&v, vkey, vl);
	if (rc < 0) {
		fail(&b, rc,
		    "the key given is not a custos verifier key (custos pubkey prints "
		    "one): nothing was rebuilt");
		goto out;
	}
	b.fresh = calloc(1, CS__BLOB_FRESH_BYTES);
	rc = b.fresh != NULL ? prepare(&b, &lockfd) : -ENOMEM;
	if (rc == 1) {
		json_t *j = NULL;
		int oom = 0;
		res->completed_before = 1;
		rc = cs__read_file(b.rootfd, "custos.json", 1 << 16, &idtext, &idlen);
		if (rc == 0)
			j = cs__json_load(idtext, idlen, 0, &oom);
		snprintf(res->station, sizeof(res->station), "%s",
		    j != NULL ? json_string_value(json_object_get(j, "station")) : "?");
		json_decref(j);
		rc = 0;
		goto out;
	}
	if (rc == 0)
		rc = cs_remote_new(&b.r, cfg, NULL);
	if (rc < 0)
		goto out;
	if (station == NULL) {
		rc = cs_remote_key_identity(cfg, "x", prefix, sizeof(prefix));
		if (rc < 0)
			goto out;
		prefix[strlen(prefix) - strlen("x/custos.json")] = '\0';
		rc = list_keys(&b, prefix, station_cb, &l);
		if (rc < 0)
			goto out;
		if (l.nnames == 0) {
			rc = fail(&b, CS_ENOTFOUND,
			    "the bucket holds no station under %s: check bucket and prefix",
			    prefix);
			goto out;
		}
		if (l.nnames > 1) {
			rc = fail(&b, CS_ENOTFOUND,
			    "the bucket holds %zu stations (%s, %s%s): name one with --station",
			    l.nnames, l.names[0], l.names[1], l.nnames > 2 ? ", ..." : "");
			goto out;
		}
		station = l.names[0];
	}
	snprintf(st, sizeof(st), "%s", station);
	snprintf(res->station, sizeof(res->station), "%s", st);
	rc = identity(&b, st, vkey, &idtext, &idlen);
	if (rc == 0)
		rc = checkpoint(&b, st, v, &cp, &note, &nlen);
	if (rc == 0)
		rc = records(&b, st, cp.size);
	if (rc == 0) {
		rc = journal(&b, &cp);
		if (rc == CS_EPROOF || rc == CS_ELEDGER)
			unstage(&b); /* a run after the bucket is repaired downloads them again */
	}
	if (rc < 0)
		goto out;
	{
		char *line = malloc(vl + 2);
		while (vl > 0 && (vkey[vl - 1] == '\n' || vkey[vl - 1] == '\r'))
			vl--;
		if (line == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(line, vkey, vl);
		line[vl] = '\n';
		rc = cs__write_file_replace(b.rootfd, "keys/ledger.pub", line, vl + 1, 0444);
		free(line);
	}
	/* the older checkpoint layout: readers read it; a writer's open moves it */
	snprintf(cpname, sizeof(cpname), "checkpoints/%020llu", (unsigned long long)cp.size);
	if (rc == 0)
		rc = cs__write_file_replace(b.rootfd, cpname, note, nlen, 0444);
	if (rc < 0) {
		fail(&b, rc, "cannot write the store: %s", cs_strerror(rc));
		goto out;
	}
	n = cs__rebuild_locked(b.rootfd, root, progress, ctx);
	if (n < 0) {
		rc = fail(&b, (int)n, "cannot make the catalog from the records: %s",
		    cs_strerror((int)n));
		goto out;
	}
	res->records = (uint64_t)n;
	rc = items(&b, &list);
	if (rc < 0) {
		fail(&b, rc, "cannot read the rebuilt catalog: %s", cs_strerror(rc));
		goto out;
	}
	res->items = json_array_size(list);
	if (want_blobs) {
		rc = blobs(&b, list, &res->blobs);
		if (rc == 0 && unlinkat(b.rootfd, "remote-only", 0) < 0 && errno != ENOENT)
			rc = fail(&b, -errno, "cannot remove remote-only: %s", strerror(errno));
	} else {
		size_t rl;
		cs_remote_config_name(cfg, rname, sizeof(rname));
		rl = strlen(rname);
		rname[rl] = '\n';
		rc = cs__write_file_replace(b.rootfd, "remote-only", rname, rl + 1, 0444);
		if (rc < 0)
			fail(&b, rc, "cannot write remote-only: %s", cs_strerror(rc));
	}
	/* custos.json last: its presence marks a complete store */
	if (rc == 0)
		rc = cs__write_file_new(b.rootfd, "custos.json", idtext, idlen, 0444);
	if (rc < 0) {
		fail(&b, rc, "cannot write custos.json: %s", cs_strerror(rc));
		goto out;
	}
	unstage(&b);
out:
	cs_remote_free(b.r); /* transfers stopped: their callbacks are not called */
	while (b.live != NULL) { /* downloads left by a failure */
		struct dl *d = b.live;
		dl_unlink(d);
		if (d->fd >= 0)
			close(d->fd);
		free(d);
	}
	cs_verifier_free(v);
	json_decref(list);
	free(idtext);
	free(note);
	free(b.fresh);
	if (lockfd >= 0)
		close(lockfd);
	if (b.rootfd >= 0)
		close(b.rootfd);
	return rc < 0 ? rc : b.rc;
}

int
cs_store_remote_only(struct cs_store *st, const char *hex, char *remote, size_t n)
{
	char path[CS_BLOB_PATH_MAX], *text = NULL;
	struct stat sb;
	size_t len = 0;
	int rc;

	if (hex != NULL) {
		if (strlen(hex) != 64)
			return 0;
		cs__blob_path(hex, path, sizeof(path));
		if (fstatat(st->rootfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
	}
	rc = cs__read_file(st->rootfd, "remote-only", 4096, &text, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	text[strcspn(text, "\n")] = '\0';
	snprintf(remote, n, "%s", text);
	free(text);
	return 1;
}
