/*
 * The daemon's jobs: its persistent state per source file, kept in an LMDB
 * table beside the catalog, outside the ledger (operational state, not
 * evidence).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/jobs.h"
#include "store_internal.h"
#include "util.h"

/*
 * Jobs: a plain LMDB table beside the catalog, written with its own
 * transactions: `n` jobs (NULL: removed) under their keys in one.
 */
static int
job_write(struct cs_store *st, size_t n, const char *const *key, const json_t *const *job)
{
	char **s = NULL;
	size_t *len = NULL;
	int rc;

	if (st->lockfd < 0 || st->cat.jobs == 0)
		return -EBADF;
	/* A commit fsyncs the catalog, perhaps the very file whose fsync failed. */
	if (st->failed)
		return CS_EFAILED;
	for (size_t i = 0; i < n; i++)
		if (strlen(key[i]) == 0 || strlen(key[i]) > 480)
			return -ENAMETOOLONG;
	s = calloc(n, sizeof(*s));
	len = calloc(n, sizeof(*len));
	rc = s == NULL || len == NULL ? -ENOMEM : 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (job[i] != NULL && (s[i] = cs__json_canonical(job[i], &len[i])) == NULL)
			rc = -ENOMEM;
	if (rc < 0)
		goto out;
	for (int attempt = 0; attempt < 40; attempt++) {
		MDB_txn *txn;
		rc = mdb_txn_begin(st->cat.env, NULL, 0, &txn);
		if (rc == MDB_MAP_RESIZED) {
			mdb_env_set_mapsize(st->cat.env, 0);
			continue;
		}
		if (rc != 0)
			break;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			MDB_val k = {strlen(key[i]), (void *)key[i]}, d = {len[i], s[i]};
			rc = cs__catalog_job_write(&st->cat, txn, &k, job[i] != NULL ? &d : NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc == MDB_MAP_FULL) {
			MDB_envinfo info;
			mdb_env_info(st->cat.env, &info);
			rc = mdb_env_set_mapsize(st->cat.env, info.me_mapsize * 2);
			if (rc == 0)
				continue;
		}
		break;
	}
	rc = rc > 0 ? -rc : rc == 0 ? 0 : CS_ESTORE;
	if (cs__store_fault(rc)) {
		st->failed = rc;
		cs__store_log(st, CS_LOG_ERROR,
		    "writing a job to the catalog failed (%s); the store stops taking work",
		    cs_strerror(rc));
	}
out:
	for (size_t i = 0; s != NULL && i < n; i++)
		free(s[i]);
	free(s);
	free(len);
	return rc;
}

int
cs_store_job_put(struct cs_store *st, const char *key, const json_t *job)
{
	int rc;

	pthread_mutex_lock(&st->wlock);
	rc = job_write(st, 1, &key, &job);
	pthread_mutex_unlock(&st->wlock);
	return rc;
}

int
cs_store_jobs_put(struct cs_store *st, size_t n, const char *const *keys,
    const json_t *const *jobs)
{
	int rc;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&st->wlock);
	rc = job_write(st, n, keys, jobs);
	pthread_mutex_unlock(&st->wlock);
	return rc;
}

int
cs_store_job_del(struct cs_store *st, const char *key)
{
	const json_t *none = NULL;
	int rc;

	pthread_mutex_lock(&st->wlock);
	rc = job_write(st, 1, &key, &none);
	pthread_mutex_unlock(&st->wlock);
	return rc;
}

int
cs_store_job_get(struct cs_store *st, const char *key, json_t **job)
{
	MDB_val k = {strlen(key), (void *)key}, d;
	MDB_txn *txn;
	int rc;

	if (st->cat.jobs == 0)
		return CS_ENOTFOUND;
	if (k.mv_size == 0 || k.mv_size > 480)
		return CS_ENOTFOUND;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	rc = mdb_get(txn, st->cat.jobs, &k, &d);
	if (rc == 0) {
		int oom;
		*job = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
		rc = *job != NULL ? 0 : oom ? -ENOMEM : CS_ESTORE;
	} else {
		rc = rc == MDB_NOTFOUND ? CS_ENOTFOUND : CS_ESTORE;
	}
	mdb_txn_abort(txn);
	return rc;
}

int
cs_store_job_counts(struct cs_store *st, json_t **out)
{
	json_t *counts = json_object();
	MDB_txn *txn;
	int rc;

	if (counts == NULL)
		return -ENOMEM;
	if (st->cat.jobs == 0) {
		*out = counts;
		return 0;
	}
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc == 0) {
		/* Kept per state as the jobs change: no scan (but of an old catalog). */
		rc = cs__catalog_job_counts(&st->cat, txn, 0, counts);
		mdb_txn_abort(txn);
	}
	if (rc < 0) {
		json_decref(counts);
		return rc;
	}
	*out = counts;
	return 0;
}

int
cs_store_jobs_each(struct cs_store *st, const char *prefix,
    int (*cb)(void *ctx, const char *key, json_t *job), void *ctx)
{
	size_t plen = strlen(prefix);
	MDB_cursor *cur = NULL;
	MDB_val k = {plen, (void *)prefix}, d;
	MDB_txn *txn;
	int rc;

	if (st->cat.jobs == 0)
		return 0;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	rc = mdb_cursor_open(txn, st->cat.jobs, &cur);
	if (rc == 0)
		rc = plen > 0 ? mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE) :
		                mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
		char key[512];
		json_t *job;
		int stop, oom;

		if (k.mv_size >= sizeof(key))
			break;
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		job = cs__json_load(d.mv_data, d.mv_size, 0, &oom);
		if (oom) {
			rc = -ENOMEM;
			break;
		}
		stop = job != NULL ? cb(ctx, key, job) : 0;
		json_decref(job);
		if (stop)
			break;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc == -ENOMEM ? rc : CS_ESTORE;
}
