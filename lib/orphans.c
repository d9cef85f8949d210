/*
 * Orphan blobs: what orphans/ holds, and removing those beyond the limits,
 * oldest first, never a blob whose digest the catalog holds as an item.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/orphans.h"
#include "store_internal.h"
#include "util.h"

struct orphan {
	char name[65];
	uint64_t size;
	int64_t mtime_ms;
	int referenced;
};

static int
by_age(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;

	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms < y->mtime_ms ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The blobs in orphans/ (*dfd its descriptor, -1 if there is none), oldest first. */
static int
scan(struct cs_store *st, MDB_txn *txn, int *dfd, struct orphan **out, size_t *n)
{
	struct orphan *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *e;
	DIR *dir;
	int fd, rc = 0;

	*dfd = -1;
	fd = openat(st->rootfd, "orphans", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dir = fdopendir(dup(fd));
	if (dir == NULL) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(dir)) != NULL) {
		uint8_t sha[32];
		char id[128];
		struct stat sb;

		if (strlen(e->d_name) != 64 || cs__unhex(e->d_name, 64, sha) < 0 ||
		    fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			continue; /* not a blob custos put there */
		if (len == cap) {
			struct orphan *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		memcpy(v[len].name, e->d_name, 65);
		v[len].size = (uint64_t)sb.st_size;
		v[len].mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
		v[len].referenced =
		    txn != NULL && cs__catalog_id_by_sha(&st->cat, txn, sha, id, sizeof(id)) == 0;
		len++;
	}
	closedir(dir);
	if (rc < 0) {
		free(v);
		close(fd);
		return rc;
	}
	if (len > 1)
		qsort(v, len, sizeof(*v), by_age);
	*dfd = fd;
	*out = v;
	*n = len;
	return 0;
}

/*
 * Stat (lim NULL) or prune. With `lim`, the caller holds the write lock (or
 * is the only user: a writer opening the store), so no event commits
 * between the catalog's answer and a removal.
 */
static int
orphans_run(struct cs_store *st, const struct cs_orphan_limits *lim, struct cs_orphans *out)
{
	struct cs_orphans o = {0};
	struct orphan *v = NULL;
	MDB_txn *txn = NULL;
	uint64_t total = 0;
	int64_t now = cs__now_ms();
	size_t n = 0;
	int dfd = -1, rc, removed_any = 0;

	if (st->cat.env != NULL && cs__catalog_rtxn(&st->cat, &txn) < 0)
		txn = NULL;
	if (lim != NULL && txn == NULL)
		return CS_ESTORE; /* whether a blob is referenced must be known */
	rc = scan(st, txn, &dfd, &v, &n);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!v[i].referenced)
			total += v[i].size;
	for (size_t i = 0; i < n; i++) {
		struct orphan *e = &v[i];
		int old, big;

		if (e->referenced) {
			if (lim != NULL)
				cs__store_log(st, CS_LOG_WARN,
				    "orphans/%s holds the bytes of an item in the catalog: "
				    "kept (it is not an orphan; it may be moved out of orphans/)",
				    e->name);
			goto keep;
		}
		if (lim == NULL)
			goto keep;
		old = lim->max_age_s > 0 && now - e->mtime_ms > lim->max_age_s * 1000;
		big = lim->max_bytes > 0 && total > lim->max_bytes;
		if (!old && !big)
			goto keep;
		if (unlinkat(dfd, e->name, 0) < 0) {
			if (errno == ENOENT)
				continue;
			rc = -errno;
			cs__store_log(st, CS_LOG_WARN, "cannot remove orphan blob orphans/%s: %s",
			    e->name, cs_strerror(rc));
			goto out;
		}
		removed_any = 1;
		total -= e->size;
		o.removed++;
		o.removed_bytes += e->size;
		cs__store_log(st, CS_LOG_INFO,
		    "removed orphan blob orphans/%s (%llu bytes, %lld days old): %s", e->name,
		    (unsigned long long)e->size, (long long)((now - e->mtime_ms) / 86400000),
		    old ? "older than the orphans' age limit" :
		          "the orphans took more than their size limit");
		continue;
keep:
		o.count++;
		o.bytes += e->size;
		o.referenced += e->referenced != 0;
		if (o.oldest_ms == 0 || e->mtime_ms < o.oldest_ms)
			o.oldest_ms = e->mtime_ms > 0 ? e->mtime_ms : 1;
	}
out:
	if (removed_any)
		(void)cs__fsync_dir(dfd, NULL);
	if (rc == 0)
		*out = o;
	if (dfd >= 0)
		close(dfd);
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(v);
	return rc;
}

int
cs_store_orphans_stat(struct cs_store *st, struct cs_orphans *out)
{
	return orphans_run(st, NULL, out);
}

int
cs__orphans_prune_locked(struct cs_store *st, const struct cs_orphan_limits *lim,
    struct cs_orphans *out)
{
	return orphans_run(st, lim, out);
}

int
cs_store_orphans_prune(struct cs_store *st, const struct cs_orphan_limits *lim,
    struct cs_orphans *out)
{
	int rc;

	if (st->lockfd < 0)
		return -EBADF;
	pthread_mutex_lock(&st->wlock);
	rc = orphans_run(st, lim, out);
	pthread_mutex_unlock(&st->wlock);
	return rc;
}
