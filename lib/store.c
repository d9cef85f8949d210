/*
 * The evidence store as a whole: creating and opening a store (the writer
 * lock, crash recovery, bringing an old catalog up to date), closing it, the
 * failed state and recovering from it in place, and cs__store_commit(), the
 * one path every event takes into the ledger and the catalog. The order of
 * every write is fixed: blob durable, then the ledger entry durable, then the
 * catalog transaction committed, then the caller is told. A failed write or
 * fsync on the blob or the ledger is never retried: the store enters the
 * failed state and refuses further writes. Ingest, checkpoints, the read
 * side, jobs and receipts are in ingest.c, checkpoint.c, query.c, jobs.c and
 * receipt.c.
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
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/name.h"
#include "custos/orphans.h"
#include "record.h"
#include "store_internal.h"
#include "util.h"

#define REPLAY_BATCH 512

void
cs__store_log(struct cs_store *st, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (st->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->log(st->logctx, level, msg);
}

static char *
path_join(const char *root, const char *rel)
{
	size_t n = strlen(root) + strlen(rel) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", root, rel);
	return p;
}

static void clean_dir(struct cs_store *st, const char *rel, int only_temp_names);

/*
 * The first level of the blob fan-out, objects/sha256/00 to ff, made ahead
 * (at init, and by every writer's open, so that an older store or an
 * interrupted making is finished) and made durable with one fsync of
 * objects/sha256 each time: an ingest then never makes or fsyncs it. The
 * second level (ab/cd, 65 536 directories, 256 MiB of directory blocks on
 * ext4 if all were made ahead) is made by the first blob that needs it, and
 * fsynced with the batch that links into it (blob.c, batch.c).
 */
static int
make_fanout(int rootfd)
{
	char dir[32];

	struct stat sb;

	for (unsigned i = 0; i < 256; i++) {
		snprintf(dir, sizeof(dir), "objects/sha256/%02x", i);
		/* Looked at first: an open of a made store changes nothing. */
		if (fstatat(rootfd, dir, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
			continue;
		if (mkdirat(rootfd, dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	/* Every open: a making that a crash cut short before this fsync is made durable now. */
	return cs__fsync_dir(rootfd, "objects/sha256");
}

int
cs_store_init(const char *root, const char *station)
{
	static const char *const dirs[] = {"objects", "objects/sha256", "tmp", "ledger",
		"checkpoints", "keys"};
	char origin[80], created[32];
	char *keypath = NULL, *catdir = NULL, *vkey = NULL, *meta = NULL;
	struct cs_signer *signer = NULL;
	struct cs__catalog cat = {0};
	struct cs__journal j = {.fd = -1};
	json_t *info = NULL;
	int rootfd = -1, lockfd = -1, rc;
	struct stat sb;

	if (!cs__station_valid(station))
		return CS_EFORMAT;
	snprintf(origin, sizeof(origin), "custos/%s", station);
	if (mkdir(root, 0750) < 0 && errno != EEXIST)
		return -errno;
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	if (fstatat(rootfd, "custos.json", &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = CS_EEXIST;
		goto out;
	}
	/* The writer lock: no other init or writer meanwhile, so any temp file is stale. */
	lockfd = openat(rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lockfd < 0) {
		rc = -errno;
		goto out;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? CS_EBUSY : -errno;
		goto out;
	}
	{
		struct cs_store half = {.rootfd = rootfd};
		clean_dir(&half, "keys", 1); /* a copy of a key from an interrupted init */
		clean_dir(&half, ".", 1);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		rc = cs__mkdir_durable(rootfd, dirs[i], strcmp(dirs[i], "keys") == 0 ? 0700 : 0750);
		if (rc < 0)
			goto out;
	}
	rc = make_fanout(rootfd);
	if (rc < 0)
		goto out;
	keypath = path_join(root, "keys/ledger.key");
	catdir = path_join(root, "catalog");
	if (keypath == NULL || catdir == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cs_signer_generate(keypath, origin);
	if (rc < 0)
		goto out;
	rc = cs_signer_load(&signer, keypath);
	if (rc == 0)
		rc = cs_signer_verifier_key(signer, &vkey);
	if (rc < 0)
		goto out;
	{
		size_t vl = strlen(vkey);
		char *line = malloc(vl + 2);
		if (line == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(line, vkey, vl);
		line[vl] = '\n';
		rc = cs__write_file_new(rootfd, "keys/ledger.pub", line, vl + 1, 0444);
		free(line);
		if (rc < 0)
			goto out;
	}
	rc = cs__journal_open(&j, rootfd, 1, 1);
	if (rc < 0)
		goto out;
	rc = cs__catalog_open(&cat, catdir, 1, 0);
	if (rc < 0)
		goto out;
	/* LMDB never fsyncs the directory it creates data.mdb in. */
	rc = cs__fsync_dir(rootfd, "catalog");
	if (rc < 0)
		goto out;
	rc = cs__fsync_dir(rootfd, NULL);
	if (rc < 0)
		goto out;

	/* custos.json is written last: its presence marks a complete store. */
	cs__time_format(cs__now_ms(), created, sizeof(created));
	info = json_pack("{s:i, s:s, s:s, s:s, s:s}", "format", 1, "station", station, "origin",
	    origin, "created", created, "verifier_key", vkey);
	meta = info != NULL ? json_dumps(info, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	if (meta == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cs__write_file_new(rootfd, "custos.json", meta, strlen(meta), 0444);
out:
	cs__catalog_close(&cat);
	cs__journal_close(&j);
	cs_signer_free(signer);
	json_decref(info);
	free(meta);
	free(vkey);
	free(keypath);
	free(catdir);
	if (lockfd >= 0)
		close(lockfd);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}

static int
read_info(struct cs_store *st)
{
	json_t *info = NULL;
	const char *station, *origin;
	char *text = NULL;
	int rc, oom;

	rc = cs__read_file(st->rootfd, "custos.json", 1 << 16, &text, NULL);
	if (rc < 0)
		return rc == -ENOENT ? CS_ENOTFOUND : rc;
	info = cs__json_load(text, strlen(text), 0, &oom);
	if (info == NULL && oom) {
		free(text);
		return -ENOMEM;
	}
	station = json_string_value(json_object_get(info, "station"));
	origin = json_string_value(json_object_get(info, "origin"));
	if (info == NULL || station == NULL || origin == NULL || !cs__station_valid(station) ||
	    strlen(origin) >= sizeof(st->origin) ||
	    json_integer_value(json_object_get(info, "format")) != 1) {
		rc = CS_EFORMAT;
	} else {
		snprintf(st->station, sizeof(st->station), "%s", station);
		snprintf(st->origin, sizeof(st->origin), "%s", origin);
		rc = 0;
	}
	json_decref(info);
	free(text);
	return rc;
}

int
cs__replay(struct cs__journal *j, struct cs__catalog *cat, uint64_t off, uint64_t stop,
    uint64_t first_seq, uint64_t *end, uint64_t *count, int *torn, cs_progress_fn progress,
    void *ctx)
{
	struct cs__applied batch[REPLAY_BATCH];
	char *bufs[REPLAY_BATCH];
	uint64_t fsize = 0, seq = first_seq, done = 0;
	size_t n = 0;
	int rc = 0, r;

	*torn = 0;
	(void)cs__journal_filesize(j, &fsize);
	for (;;) {
		struct cs__jentry e;
		char *buf = NULL;

		r = off >= stop ? 0 : cs__journal_read(j, off, &e, &buf, torn);
		if (r == 1) {
			batch[n] = (struct cs__applied){seq, buf, e.len, e.data, e.next, {0}};
			memcpy(batch[n].leaf, e.leaf, 32);
			bufs[n++] = buf;
			seq++;
			off = e.next;
		}
		if (n == REPLAY_BATCH || (r != 1 && n > 0)) {
			rc = cs__catalog_apply(cat, batch, n);
			for (size_t i = 0; i < n; i++)
				free(bufs[i]);
			done += n;
			n = 0;
			if (rc < 0)
				break;
			if (progress != NULL)
				progress(ctx, "replay", off, fsize);
		}
		if (r != 1) {
			rc = rc < 0 ? rc : (r == 0 ? 0 : r);
			break;
		}
	}
	*end = off;
	*count = done;
	return rc;
}

/*
 * Removes stale temp files: everything in <root>/tmp, and the
 * ".<name>.tmp-<pid>" files that an interrupted durable write leaves beside
 * checkpoints, keys and custos.json. With the writer lock held, all are stale.
 * A temp file in keys/ is a copy of the private signing key: its removal is
 * logged as a warning and made durable (the directory is fsynced), so that
 * no copy of the key comes back after a crash.
 */
static void
clean_dir(struct cs_store *st, const char *rel, int only_temp_names)
{
	int fd = openat(st->rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int keys = strcmp(rel, "keys") == 0, removed = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		                                (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (only_temp_names &&
		    (de->d_name[0] != '.' || strstr(de->d_name, ".tmp-") == NULL))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			removed = 1;
			cs__store_log(st, keys ? CS_LOG_WARN : CS_LOG_INFO, "removed %s %s/%s",
			    keys ? "a temp copy of the signing key left by an interrupted write:"
			         : "stale temp file",
			    rel, de->d_name);
		} else if (errno == EISDIR)
			cs__store_log(st, CS_LOG_WARN, "%s/%s is a directory; left alone", rel,
			    de->d_name);
	}
	if (removed)
		(void)cs__fsync_dir(dirfd(d), NULL);
	closedir(d);
}

/*
 * A store without custos.json is half made: `custos init` was interrupted,
 * perhaps while writing the signing key, whose temp copy would then lie in
 * keys/. No command can use the store, so whoever opens it removes that
 * copy (and the other temp files an init leaves), if no writer or init holds
 * the store's lock. Returns 0 or -errno; the store stays half made.
 */
static int
clean_half_made(struct cs_store *st)
{
	struct stat sb;
	int fd, rc = 0;

	if (fstatat(st->rootfd, "keys", &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
		return 0;
	fd = openat(st->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? CS_EBUSY : -errno;
	} else {
		clean_dir(st, "keys", 1);
		clean_dir(st, ".", 1);
	}
	close(fd);
	return rc;
}

static void
clean_tmp(struct cs_store *st)
{
	clean_dir(st, "tmp", 0);
	clean_dir(st, "checkpoints", 1);
	clean_dir(st, "keys", 1);
	clean_dir(st, ".", 1);
}

/*
 * After a crash: a blob may have been placed whose ledger event was never
 * written. It was never acknowledged, so it is moved out of objects/ into
 * orphans/ (kept, not destroyed), where an operator can inspect it; a later
 * ingest of the same bytes stores them again.
 */
static int
handle_orphans(struct cs_store *st)
{
	char path[CS_BLOB_PATH_MAX + 8], dst[128];
	MDB_txn *txn = NULL;
	int moved = 0, err = 0, rc;
	struct stat sb;
	DIR *d1 = NULL;
	struct dirent *a;

	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	{
		int fd = openat(st->rootfd, "objects/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		d1 = fdopendir(fd);
		if (d1 == NULL) {
			close(fd);
			rc = -errno;
			goto out;
		}
	}
	while (err == 0 && (a = readdir(d1)) != NULL) {
		DIR *d2;
		struct dirent *b;
		int fd2;

		if (strlen(a->d_name) != 2)
			continue;
		fd2 = openat(dirfd(d1), a->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd2 < 0 || (d2 = fdopendir(fd2)) == NULL) {
			if (fd2 >= 0)
				close(fd2);
			continue;
		}
		while (err == 0 && (b = readdir(d2)) != NULL) {
			DIR *d3;
			struct dirent *c;
			int fd3;

			if (strlen(b->d_name) != 2)
				continue;
			fd3 = openat(dirfd(d2), b->d_name,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (fd3 < 0 || (d3 = fdopendir(fd3)) == NULL) {
				if (fd3 >= 0)
					close(fd3);
				continue;
			}
			while (err == 0 && (c = readdir(d3)) != NULL) {
				uint8_t sha[32];
				char id[128];

				if (strlen(c->d_name) != 64 || cs__unhex(c->d_name, 64, sha) < 0)
					continue;
				if (cs__catalog_id_by_sha(&st->cat, txn, sha, id, sizeof(id)) == 0)
					continue;
				cs__blob_path(c->d_name, path, sizeof(path));
				/*
				 * Durable in orphans/ first, then gone from objects/. A
				 * power loss in between leaves two links to one file,
				 * where rename() does nothing: unlink instead. A failure
				 * stops the writer's start (the scan runs again next time).
				 */
				err = cs__mkdir_durable(st->rootfd, "orphans", 0750);
				snprintf(dst, sizeof(dst), "orphans/%.64s", c->d_name);
				if (err == 0 && renameat(st->rootfd, path, st->rootfd, dst) < 0)
					err = -errno;
				if (err == 0)
					err = cs__fsync_dir(st->rootfd, "orphans");
				if (err == 0 &&
				    fstatat(dirfd(d3), c->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
				    unlinkat(dirfd(d3), c->d_name, 0) < 0)
					err = -errno;
				if (err == 0)
					err = cs__fsync_dir(dirfd(d3), NULL);
				if (err == 0) {
					moved++;
					cs__store_log(st, CS_LOG_WARN,
					    "blob %s has no ledger record (an interrupted ingest); "
					    "moved to orphans/",
					    c->d_name);
				}
			}
			closedir(d3);
		}
		closedir(d2);
	}
	rc = err < 0 ? err : moved;
out:
	if (d1 != NULL)
		closedir(d1);
	mdb_txn_abort(txn);
	return rc;
}

/*
 * The size of the largest validly signed checkpoint (0 if none); UINT64_MAX
 * if the checkpoints cannot be read (out of memory), so that the checks
 * below refuse rather than pass.
 */
static uint64_t
checkpointed_size(struct cs_store *st)
{
	struct cs__cp cp = {0};
	int rc = cs__checkpoint_newest(st, &cp);

	if (rc == CS_ENOTFOUND)
		return 0;
	if (rc < 0)
		return UINT64_MAX;
	free(cp.note);
	return cp.size;
}

/* Writer start-up: bring the catalog up to the journal and cut a torn tail. */
static int
recover(struct cs_store *st)
{
	struct cs__catalog_state s;
	uint64_t fsize, end, count, cpsize;
	MDB_txn *txn;
	int torn, rc, crashed;
	struct stat sb;

	clean_tmp(st);
	rc = make_fanout(st->rootfd);
	if (rc < 0)
		return rc;
	rc = cs__checkpoints_open(st);
	if (rc < 0)
		return rc;
	/*
	 * Read the journal's tail from the disk, not from cached pages: after a
	 * failed write-back the cache may hold bytes the disk never got.
	 */
	(void)posix_fadvise(st->j.fd, 0, 0, POSIX_FADV_DONTNEED);
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_state(&st->cat, txn, &s);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	rc = cs__journal_filesize(&st->j, &fsize);
	if (rc < 0)
		return rc;
	if (s.journal_end == 0)
		s.journal_end = CS_JOURNAL_HDR;
	if (fsize < s.journal_end) {
		cs__store_log(st, CS_LOG_ERROR,
		    "the ledger journal is shorter (%llu bytes) than the catalog records (%llu "
		    "bytes): it was truncated or replaced; run `custos verify`",
		    (unsigned long long)fsize, (unsigned long long)s.journal_end);
		return CS_ELEDGER;
	}
	rc = cs__replay(&st->j, &st->cat, s.journal_end, UINT64_MAX, s.size, &end, &count, &torn,
	    NULL, NULL);
	if (count > 0)
		cs__store_log(st, CS_LOG_WARN,
		    "recovered %llu ledger event(s) written before a crash into the catalog",
		    (unsigned long long)count);
	if (rc == CS_ELEDGER || (rc == 0 && end < fsize)) {
		/*
		 * Only a torn tail may be cut: the bad entry must be the last thing
		 * in the file (cut short, or its final write incomplete) and no
		 * signed checkpoint may cover it. Anything else is damage to
		 * acknowledged history, which is never cut: the writer refuses.
		 */
		struct cs__jentry e;
		int etorn = 0, last, covered;
		int r = cs__journal_read(&st->j, end, &e, NULL, &etorn);
		last = etorn || (r == CS_ELEDGER && e.len > 0 && e.next == fsize);
		covered = checkpointed_size(st) > s.size + count;
		if (r == 1 || !last || covered) {
			cs__store_log(st, CS_LOG_ERROR,
			    "ledger entry %llu (journal offset %llu) is damaged and is not a torn "
			    "tail%s; nothing was cut. Run `custos verify`",
			    (unsigned long long)(s.size + count), (unsigned long long)end,
			    covered ? " (a signed checkpoint covers it)" : "");
			return CS_ELEDGER;
		}
		cs__store_log(st, CS_LOG_WARN,
		    "cut a torn ledger tail of %llu byte(s) left by an interrupted write",
		    (unsigned long long)(fsize - end));
		rc = cs__journal_truncate(&st->j, end);
	}
	if (rc < 0)
		return rc;
	cpsize = checkpointed_size(st);
	if (cpsize == UINT64_MAX)
		return -ENOMEM; /* the checkpoints could not be read */
	if (cpsize > s.size + count) {
		cs__store_log(st, CS_LOG_ERROR,
		    "a signed checkpoint covers %llu ledger events but only %llu are here: the "
		    "ledger was truncated or rolled back; refusing to write. Run `custos verify`",
		    (unsigned long long)cpsize, (unsigned long long)(s.size + count));
		return CS_ELEDGER;
	}
	st->j.end = end;
	rc = cs__catalog_rtxn(&st->cat, &txn);
	if (rc < 0)
		return rc;
	rc = cs__catalog_state(&st->cat, txn, &s);
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	st->size = s.size;
	st->last_ms = s.last_ms;

	crashed = fstatat(st->rootfd, "WRITER", &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if (crashed) {
		rc = handle_orphans(st);
		if (rc < 0)
			return rc;
	}
	if (!(st->flags & CS_OPEN_KEEP_ORPHANS)) {
		/* orphans/ within the default limits; a failure is logged, not fatal */
		struct cs_orphan_limits lim = {CS_ORPHANS_MAX_AGE_DEFAULT,
			CS_ORPHANS_MAX_BYTES_DEFAULT};
		struct cs_orphans o;
		(void)cs__orphans_prune_locked(st, &lim, &o);
	}
	if (!crashed) {
		int fd = openat(st->rootfd, "WRITER", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
		rc = cs__fsync_dir(st->rootfd, NULL);
	}
	return rc;
}

int
cs_store_open(struct cs_store **out, const char *root, int flags, cs_log_fn log, void *logctx)
{
	struct cs_store *st;
	char *catdir = NULL, *keypath = NULL;
	struct stat sb;
	int rc;

	if ((flags & CS_OPEN_WRITE) && (flags & CS_OPEN_NOCATALOG))
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	st->rootfd = -1;
	st->lockfd = -1;
	st->j.fd = -1;
	st->flags = flags;
	st->log = log;
	st->logctx = logctx;
	/* Made by an earlier process, a directory is not known durable until fsynced. */
	memset(st->dir_fresh, 0xff, sizeof(st->dir_fresh));
	pthread_mutex_init(&st->wlock, NULL);
	st->root = strdup(root);
	if (st->root == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	st->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->rootfd < 0) {
		rc = errno == ENOENT ? CS_ENOTFOUND : -errno;
		goto fail;
	}
	rc = read_info(st);
	if (rc == CS_ENOTFOUND)
		(void)clean_half_made(st);
	if (rc < 0)
		goto fail;
	if (flags & CS_OPEN_WRITE) {
		st->lockfd = openat(st->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		    0600);
		if (st->lockfd < 0) {
			rc = -errno;
			goto fail;
		}
		if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
			rc = errno == EWOULDBLOCK ? CS_EBUSY : -errno;
			goto fail;
		}
	}
	catdir = path_join(root, "catalog");
	if (catdir == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if (fstatat(st->rootfd, "catalog/data.mdb", &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = CS_ESTORE; /* the catalog is gone: `custos rebuild` makes it again */
		goto fail;
	}
	if (!(flags & CS_OPEN_NOCATALOG)) {
		rc = cs__catalog_open(&st->cat, catdir, (flags & CS_OPEN_WRITE) != 0, 0);
		if (rc == CS__EOLDCATALOG) {
			rc = cs__store_upgrade(st);
			if (rc == 0)
				rc = cs__catalog_open(&st->cat, catdir,
				    (flags & CS_OPEN_WRITE) != 0, 0);
		}
		if (rc < 0)
			goto fail;
	}
	rc = cs__journal_open(&st->j, st->rootfd, (flags & CS_OPEN_WRITE) != 0, 0);
	if (rc < 0)
		goto fail;
	if (flags & CS_OPEN_WRITE) {
		keypath = path_join(root, "keys/ledger.key");
		rc = keypath != NULL ? cs_signer_load(&st->signer, keypath) : -ENOMEM;
		if (rc < 0)
			goto fail;
		rc = recover(st);
		if (rc < 0)
			goto fail;
	}
	free(catdir);
	free(keypath);
	*out = st;
	return 0;
fail:
	free(catdir);
	free(keypath);
	cs__catalog_close(&st->cat);
	cs__journal_close(&st->j);
	cs_signer_free(st->signer);
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->rootfd >= 0)
		close(st->rootfd);
	pthread_mutex_destroy(&st->wlock);
	free(st->root);
	free(st);
	return rc;
}

void
cs_store_close(struct cs_store *st)
{
	if (st == NULL)
		return;
	if (st->lockfd >= 0 && !st->failed && !st->orphan) {
		/* A clean stop: no orphan scan needed at the next start. */
		if (unlinkat(st->rootfd, "WRITER", 0) == 0)
			(void)cs__fsync_dir(st->rootfd, NULL);
	}
	cs__catalog_close(&st->cat);
	cs__journal_close(&st->j);
	cs_signer_free(st->signer);
	if (st->lockfd >= 0)
		close(st->lockfd);
	close(st->rootfd);
	pthread_mutex_destroy(&st->wlock);
	json_decref(st->actor);
	free(st->root);
	free(st);
}

int
cs__store_upgrade(struct cs_store *st)
{
	int fd = st->lockfd;
	int64_t n;

	if (fd < 0) {
		/* a reader upgrades only when no writer holds the store */
		fd = openat(st->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			return CS_EBUSY; /* a writer holds it: it upgrades the catalog itself */
		}
	}
	n = cs__rebuild_locked(st->rootfd, st->root, NULL, NULL);
	if (fd != st->lockfd)
		close(fd);
	if (n < 0)
		return (int)n;
	cs__store_log(st, CS_LOG_WARN,
	    "the catalog was made by an older custos; rebuilt it from the ledger (%lld events)",
	    (long long)n);
	return 0;
}

int
cs_store_recover(struct cs_store *st)
{
	char *catdir;
	int rc;

	if (st->lockfd < 0)
		return -EBADF;
	pthread_mutex_lock(&st->wlock);
	if (!st->failed) {
		pthread_mutex_unlock(&st->wlock);
		return 0;
	}
	if (cs__fsync_failed()) {
		pthread_mutex_unlock(&st->wlock);
		cs__store_log(st, CS_LOG_ERROR,
		    "an fsync failed: the store is not recovered in place (the kernel may have "
		    "dropped what it could not write); restart after checking the storage");
		return CS_EFAILED;
	}
	cs__catalog_close(&st->cat);
	cs__journal_close(&st->j);
	catdir = path_join(st->root, "catalog");
	rc = catdir != NULL ? cs__catalog_open(&st->cat, catdir, 1, 0) : -ENOMEM;
	free(catdir);
	if (rc == 0)
		rc = cs__journal_open(&st->j, st->rootfd, 1, 0);
	/* The WRITER marker is there, so recover() also scans for orphans. */
	if (rc == 0)
		rc = recover(st);
	if (rc >= 0) {
		rc = 0;
		st->failed = 0;
		st->orphan = 0;
		cs__store_log(st, CS_LOG_INFO,
		    "the store recovered from its failure and takes work again");
	}
	pthread_mutex_unlock(&st->wlock);
	return rc;
}

int
cs_store_failed(const struct cs_store *st, int *cause)
{
	if (cause != NULL)
		*cause = st->failed;
	return !st->failed ? 0 : cs__fsync_failed() ? 2 : 1;
}

int
cs_store_failure(const struct cs_store *st)
{
	return st->failed;
}

const char *
cs_store_station(const struct cs_store *st)
{
	return st->station;
}

const char *
cs_store_origin(const struct cs_store *st)
{
	return st->origin;
}

uint64_t
cs_store_size(struct cs_store *st)
{
	struct cs__catalog_state s = {0};
	MDB_txn *txn;

	if (cs__catalog_rtxn(&st->cat, &txn) < 0)
		return 0;
	(void)cs__catalog_state(&st->cat, txn, &s);
	mdb_txn_abort(txn);
	return s.size;
}

/* A fault of the storage (the disk, the file system), not of the input. */
int
cs__store_fault(int rc)
{
	return rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == -EFBIG;
}

/* Appends events (with "seq", "time", "v" and "actor" filled in) and indexes them. */
int
cs__store_commit(struct cs_store *st, json_t *const *evs, size_t n, uint64_t *seq_out)
{
	struct cs__applied a_few[CS__COMMIT_MAX], *a = a_few;
	struct cs__jentry e_few[CS__COMMIT_MAX], *e = e_few;
	const char *bytes_few[CS__COMMIT_MAX], **bytes = bytes_few;
	uint32_t lens_few[CS__COMMIT_MAX], *lens = lens_few;
	char tbuf[32], *s_few[CS__COMMIT_MAX] = {NULL}, **s = s_few;
	int64_t now = cs__now_ms();
	size_t len;
	int rc = 0;

	if (n == 0 || n > CS__BATCH_MAX)
		return -EINVAL;
	if (n > CS__COMMIT_MAX) {
		/* a group commit (batch.c): its arrays from the heap */
		a = malloc(n * sizeof(*a));
		e = malloc(n * sizeof(*e));
		bytes = malloc(n * sizeof(*bytes));
		lens = malloc(n * sizeof(*lens));
		s = calloc(n, sizeof(*s));
		if (a == NULL || e == NULL || bytes == NULL || lens == NULL || s == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* Ledger time never goes backwards, even when the wall clock does. */
	if (now < st->last_ms)
		now = st->last_ms;
	cs__time_format(now, tbuf, sizeof(tbuf));
	for (size_t i = 0; i < n; i++) {
		json_t *ev = evs[i];
		/* Out of memory here must not leave a field out of a ledger event. */
		if (json_object_set_new(ev, "seq", json_integer((json_int_t)(st->size + i))) < 0 ||
		    json_object_set_new(ev, "time", json_string(tbuf)) < 0 ||
		    json_object_set_new(ev, "v", json_integer(CS__EVENT_VERSION)) < 0 ||
		    (st->actor != NULL && json_object_get(ev, "actor") == NULL &&
		        json_object_set(ev, "actor", st->actor) < 0) ||
		    (json_is_object(json_object_get(ev, "item")) &&
		        json_object_set_new(json_object_get(ev, "item"), "ingested_at",
		            json_string(tbuf)) < 0)) {
			rc = -ENOMEM;
			goto out;
		}
		s[i] = cs__json_canonical(ev, &len);
		if (s[i] == NULL || len > UINT32_MAX) {
			rc = -ENOMEM;
			goto out;
		}
		bytes[i] = s[i];
		lens[i] = (uint32_t)len;
	}
	rc = cs__journal_append_many(&st->j, bytes, lens, n, e);
	/*
	 * Out of memory (or OpenSSL failing, which is the same here) comes
	 * before the journal is touched: nothing was written, the store is sound
	 * and the caller may try again. Any other failure is a failed write.
	 */
	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		goto out;
	if (rc < 0) {
		st->failed = rc;
		cs__store_log(st, CS_LOG_ERROR,
		    "writing the ledger journal failed (%s); the store stops taking work",
		    cs_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		a[i] = (struct cs__applied){st->size + i, s[i], lens[i], e[i].data, e[i].next, {0}};
		memcpy(a[i].leaf, e[i].leaf, 32);
	}
	rc = cs__catalog_apply(&st->cat, a, n);
	if (rc < 0) {
		/*
		 * The event is durable in the ledger; the next start indexes it.
		 * Even out of memory stops the store here: the catalog is behind
		 * the journal until it is opened again.
		 */
		st->failed = rc;
		cs__store_log(st, CS_LOG_ERROR,
		    "the catalog could not record ledger event %llu (%s); the store stops "
		    "taking work until it is restarted",
		    (unsigned long long)st->size, cs_strerror(rc));
		goto out;
	}
	*seq_out = st->size;
	st->size += n;
	st->last_ms = now;
out:
	for (size_t i = 0; s != NULL && i < n; i++)
		free(s[i]);
	if (n > CS__COMMIT_MAX) {
		free(a);
		free(e);
		free(bytes);
		free(lens);
		free(s);
	}
	return rc;
}

int
cs__store_commit_locked(struct cs_store *st, json_t *ev, uint64_t *seq_out)
{
	return cs__store_commit_locked_n(st, &ev, 1, seq_out);
}

int
cs__store_commit_locked_n(struct cs_store *st, json_t *const *evs, size_t n, uint64_t *seq_out)
{
	int rc;

	if (st->failed)
		return CS_EFAILED;
	pthread_mutex_lock(&st->wlock);
	rc = st->failed ? CS_EFAILED : cs__store_commit(st, evs, n, seq_out);
	pthread_mutex_unlock(&st->wlock);
	return rc;
}
