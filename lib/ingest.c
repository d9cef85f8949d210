/*
 * Ingesting a file into the store: read once, hashed and written as a blob
 * in the same pass, then its ingest event (or a sighting of bytes already
 * kept) committed through cs__store_commit(). Also hashing a file for a
 * caller that re-reads one (cs_hash_fd).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "custos/error.h"
#include "custos/ingest.h"
#include "custos/name.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

/* The file's original name in a record: the last component of `path`, as a name. */
static int
set_name(json_t *o, const char *path)
{
	const char *base = path != NULL ? strrchr(path, '/') : NULL;

	base = base != NULL ? base + 1 : path != NULL ? path : "";
	return cs_name_json_set(o, "name", base, strlen(base));
}

/* The event's "job" for meta->job_key (NULL: none): 0 with *out (maybe NULL), or -ENOMEM. */
int
cs__ingest_job(const struct cs_meta *meta, json_t **out)
{
	json_t *job;

	*out = NULL;
	if (meta == NULL || meta->job_key == NULL)
		return 0;
	/* A job key holds a path: bytes, kept as a name (custos/name.h). */
	job = json_object();
	if (job != NULL &&
	    (cs_name_json_set(job, "key", meta->job_key, strlen(meta->job_key)) < 0 ||
	        (meta->job_ident != NULL && json_object_update(job, meta->job_ident) < 0))) {
		json_decref(job);
		job = NULL;
	}
	if (job == NULL)
		return -ENOMEM;
	*out = job;
	return 0;
}

/* 1 if `id` is taken by one of the items seen earlier in the same commit. */
static int
seen_id(const struct cs__ingest_seen *seen, size_t nseen, const char *id)
{
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i].id, id) == 0)
			return 1;
	return 0;
}

int
cs__ingest_event(struct cs_store *st, MDB_txn *txn, const uint8_t digest[32], uint64_t size,
    const char *name, json_t *mj, json_t *job, const struct cs__ingest_seen *seen,
    size_t nseen, struct cs_ingest_result *res, json_t **out)
{
	struct cs_ingest_result r = {0};
	json_t *ev = NULL, *item;
	char hex[65], tbuf[32];
	int rc;

	*out = NULL;
	cs__hex(digest, 32, hex);
	memcpy(r.sha256, hex, 65);
	r.size = size;
	rc = cs__catalog_id_by_sha(&st->cat, txn, digest, r.id, sizeof(r.id));
	for (size_t i = 0; rc == CS_ENOTFOUND && i < nseen; i++) {
		/* the same bytes earlier in the same commit: a sighting of that new item */
		if (memcmp(seen[i].digest, digest, 32) == 0) {
			snprintf(r.id, sizeof(r.id), "%s", seen[i].id);
			rc = 0;
		}
	}
	if (rc == 0) {
		r.duplicate = 1;
		if (set_name(mj, name) == 0)
			ev = json_pack("{s:s, s:s, s:O}", "event", "sighting", "id", r.id,
			    "sighting", mj);
	} else if (rc == CS_ENOTFOUND) {
		/* The id is the station and a digest prefix, longer if a prefix collides. */
		for (int n = 20; n <= 64; n += 4) {
			json_t *other = NULL;
			snprintf(r.id, sizeof(r.id), "%s-%.*s", st->station, n, hex);
			rc = cs__catalog_get_item(&st->cat, txn, r.id, &other);
			json_decref(other);
			if (rc == CS_ENOTFOUND && !seen_id(seen, nseen, r.id))
				break;
			if (rc < 0 && rc != CS_ENOTFOUND) /* out of memory: not a taken id */
				return rc;
		}
		cs__time_format(cs__now_ms(), tbuf, sizeof(tbuf));
		item = json_deep_copy(mj);
		if (item != NULL && (json_object_set_new(item, "id", json_string(r.id)) < 0 ||
		                        json_object_set_new(item, "sha256", json_string(hex)) < 0 ||
		                        json_object_set_new(item, "size",
		                            json_integer((json_int_t)size)) < 0 ||
		                        set_name(item, name) < 0 ||
		                        json_object_set_new(item, "station",
		                            json_string(st->station)) < 0)) {
			json_decref(item);
			item = NULL;
		}
		/* json_pack() fails on a NULL "o" (and ev stays NULL: -ENOMEM below) */
		ev = item != NULL ? json_pack("{s:s, s:o}", "event", "ingest", "item", item) : NULL;
	} else {
		return rc;
	}
	/* the case number it came with: the item joins that case with this event */
	rc = cs__case_ingest_check(st, txn, r.id, mj);
	if (rc == 0 && ev == NULL)
		rc = -ENOMEM;
	/* json_object_set() takes a reference of its own; the caller keeps `job`. */
	if (rc == 0 && job != NULL && json_object_set(ev, "job", job) < 0)
		rc = -ENOMEM;
	if (rc < 0) {
		json_decref(ev);
		return rc;
	}
	*res = r;
	*out = ev;
	return 0;
}

int
cs_store_ingest_fd(struct cs_store *st, int fd, const char *name, const struct cs_meta *meta,
    struct cs_ingest_result *res)
{
	static const struct cs_meta none;
	struct cs__blob_put bp;
	struct cs_ingest_result r = {0};
	json_t *mj = NULL, *ev = NULL, *job = NULL;
	char hex[65];
	const char *field = NULL;
	MDB_txn *txn = NULL;
	int rc, locked = 0, placed = 0;

	if (st->lockfd < 0)
		return -EBADF;
	if (st->failed)
		return CS_EFAILED;
	rc = cs__meta_json(meta != NULL ? meta : &none, &mj, &field);
	if (rc < 0)
		return rc;

	rc = cs__blob_put(st->rootfd, fd, st->dir_fresh, &bp);
	if (rc < 0) {
		cs__ingest_blob_failed(st, rc);
		goto out;
	}
	placed = !bp.existed;
	CS_FAILPARK("ingest-linked");
	cs__hex(bp.digest, 32, hex);
	if (bp.repaired)
		cs__store_log(st, CS_LOG_WARN,
		    "stored blob %s was damaged; replaced with verified bytes", hex);

	pthread_mutex_lock(&st->wlock);
	locked = 1;
	if (st->failed) {
		rc = CS_EFAILED;
		goto out;
	}
	/* bytes found stored when linked: a purge (under this lock) may have removed them since */
	rc = bp.existed ? cs__blob_there(st->rootfd, bp.digest) : 0;
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		goto out;
	rc = cs__ingest_job(meta, &job);
	if (rc == 0)
		rc = cs__ingest_event(st, txn, bp.digest, bp.size, name, mj, job, NULL, 0, &r,
		    &ev);
	mdb_txn_abort(txn);
	txn = NULL;
	if (rc < 0)
		goto out;
	rc = cs__store_commit(st, &ev, 1, &r.seq);
	if (rc < 0)
		goto out;
	*res = r;
out:
	if (rc < 0 && placed)
		st->orphan = 1; /* a new blob without its event (e.g. out of memory) */
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (locked)
		pthread_mutex_unlock(&st->wlock);
	json_decref(job);
	json_decref(ev);
	json_decref(mj);
	return rc;
}

void
cs__ingest_blob_failed(struct cs_store *st, int rc)
{
	if (cs__store_fault(rc)) {
		st->failed = rc;
		cs__store_log(st, CS_LOG_ERROR,
		    "writing a blob failed (%s); the store stops taking work", cs_strerror(rc));
	}
}

int
cs_store_ingest_path(struct cs_store *st, const char *path, const struct cs_meta *meta,
    struct cs_ingest_result *res)
{
	struct stat sb;
	int fd, rc;

	/*
	 * Look before opening: a socket cannot be opened (ENXIO, an unclear
	 * refusal) and opening a device node can act on the device. The fstat
	 * below still decides, in case the path changes in between.
	 */
	if (lstat(path, &sb) < 0)
		return -errno;
	if (S_ISLNK(sb.st_mode))
		return -ELOOP;
	if (!S_ISREG(sb.st_mode))
		return S_ISDIR(sb.st_mode) ? -EISDIR : CS_ENOTREG;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = S_ISDIR(sb.st_mode) ? -EISDIR : CS_ENOTREG;
		goto out;
	}
	rc = cs_store_ingest_fd(st, fd, path, meta, res);
out:
	close(fd);
	return rc;
}

int
cs_hash_fd(int fd, char hex[65], uint64_t *size)
{
	uint8_t digest[32];
	int rc = cs__hash_fd(fd, digest, size);

	if (rc == 0)
		cs__hex(digest, 32, hex);
	return rc;
}
