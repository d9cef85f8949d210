/*
 * custosd: the daemon that secures files arriving in upload directories
 * without anyone typing a command. The libuv loop decides when things run:
 * inotify (IN_CLOSE_WRITE, IN_MOVED_TO) and a periodic rescan find files, a
 * settle timer waits until a file has stopped changing, and each file is
 * then secured by a work item on the thread pool (open beneath the inbox
 * with openat2, ingest, re-read and compare the digest, release). Every rule
 * about evidence lives in lib/; this file only schedules.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <dirent.h>

#include "config.h"
#include "daemon.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/init.h"
#include "custos/name.h"
#include "custos/source.h"
#include "custos/store.h"
#ifdef CS_FAILPOINTS
#include <stdatomic.h>

#include "custos/failpoint.h"
#endif

/* ---- logging: one line per event, with a journald priority prefix ---- */

static int log_level = 2;
static int log_prefix; /* "<N>" prefixes when stderr goes to the journal */

void
logmsg(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {3, 4, 6, 7};
	char buf[2048], text[4 * sizeof(buf)];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/*
	 * One event, one line of text: names are bytes, so control characters
	 * and bytes that are not UTF-8 are written as \xHH (custos/name.h).
	 */
	cs_name_readable(buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
	    text, sizeof(text));
	if (log_prefix)
		fprintf(stderr, "<%d>%s\n", prio[level], text);
	else
		fprintf(stderr, "custosd: %s: %s\n", names[level], text);
}

static void
lib_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	logmsg(level, "%s", msg);
}

static void enqueue(struct daemon *d, struct cand *c);
static void begin_stop(struct daemon *d);
static void on_connection(uv_stream_t *server, int status);

/* ---- out of memory ---- */

/*
 * custosd never goes on with a result it could not compute for lack of
 * memory: what failed is dropped and done again later, by the retry each
 * part already has (a file when it has settled again, a directory at the
 * next rescan, a receipt or a checkpoint two seconds later). Nothing is
 * refused or released for lack of memory. A lack that lasts is not waited
 * out: at the OOM_LIMIT-th failure with no progress since the first (a file
 * secured, a receipt written, a checkpoint signed), each within OOM_WINDOW_MS
 * of the one before, custosd stops as on SIGTERM and exits 4, so that the
 * service manager starts it afresh.
 */
enum { OOM_LIMIT = 3, OOM_WINDOW_MS = 300000 };

void
out_of_memory(struct daemon *d, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (d->oom_streak > 0 && uv_now(d->loop) - d->oom_last > OOM_WINDOW_MS)
		d->oom_streak = 0; /* the earlier shortage passed */
	d->oom_last = uv_now(d->loop);
	if (++d->oom_streak < OOM_LIMIT) {
		logmsg(1, "out of memory %s; tried again later", what);
		return;
	}
	if (d->stopping)
		return;
	logmsg(0, "out of memory %s, %u times in a row: stopping (exit status 4) so that custosd "
	          "is started afresh; nothing is lost",
	    what, d->oom_streak);
	d->oom_stop = 1;
	begin_stop(d);
}

int
store_oom_check(struct daemon *d)
{
	int why = cs_store_failure(d->st);

	if (!is_oom(why))
		return 0;
	if (!d->stopping) {
		logmsg(0, "the catalog could not index a ledger event for lack of memory (%s): "
		          "the store takes no more work until it is opened again. Stopping (exit "
		          "status 4); the next start indexes the event. Nothing is lost",
		    cs_strerror(why));
		d->oom_stop = 1;
		begin_stop(d);
	}
	return 1;
}

static uint64_t
hash_str(const struct inbox *ib, const char *s)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)ib->index;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct cand *
cand_find(struct daemon *d, struct inbox *ib, const char *rel, int create)
{
	uint64_t h = hash_str(ib, rel) % d->table_size;
	struct cand *c;

	for (c = d->table[h]; c != NULL; c = c->next)
		if (c->ib == ib && strcmp(c->rel, rel) == 0)
			return c;
	if (!create)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->rel = strdup(rel)) == NULL) {
		free(c);
		return NULL;
	}
	c->ib = ib;
	c->size = -1;
	ib->pending++;
	c->next = d->table[h];
	d->table[h] = c;
	d->n_cands++;
	return c;
}

static void
cand_remove(struct daemon *d, struct cand *c)
{
	uint64_t h = hash_str(c->ib, c->rel) % d->table_size;

	for (struct cand **p = &d->table[h]; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	d->n_cands--;
	c->ib->pending--;
	free(c->rel);
	free(c);
}

/* ---- names that are not (yet) evidence ---- */

static int
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

static int
ignored_name(const char *name)
{
	return name[0] == '.' || has_suffix(name, ".part") || has_suffix(name, ".tmp") ||
	    has_suffix(name, ".crdownload");
}

/* A sidecar "<file>.json" belongs to <file> when <file> exists beside it. */
static int
is_sidecar(int dirfd, const char *rel)
{
	char base[PATH_MAX];
	struct stat sb;
	size_t n = strlen(rel);

	if (!has_suffix(rel, ".json") || n - 5 >= sizeof(base) || n <= 5)
		return 0;
	memcpy(base, rel, n - 5);
	base[n - 5] = '\0';
	return fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode);
}

/*
 * The job of a file: "inbox/<directory>/<path>" in an upload directory, and
 * "dock/<session id>/<path>" on a recorder: a session is one docking of one
 * folder, so that two folders with one device id, or a recorder wiped and
 * docked again, never share a job (what one secured never speaks for the
 * other's bytes), while a session resumed in another folder keeps its jobs.
 */
char *
job_key(const struct inbox *ib, const char *rel)
{
	size_t n = strlen(rel) + strlen(ib->path != NULL ? ib->path : "") + 300;
	char *k = malloc(n);

	if (k == NULL)
		return NULL;
	if (ib->dock != NULL)
		snprintf(k, n, "dock/%s/%s", dock_session(ib->dock), rel);
	else
		snprintf(k, n, "inbox/%s/%s", ib->path, rel);
	return k;
}

/*
 * A job already finished for exactly this file (same inode, size, mtime)?
 * 1 yes, 0 no, -ENOMEM when it could not be looked up. On a recorder this
 * only spares taking the file again now: before a receipt lists it, the
 * receipt's walk proves its bytes (dock.c).
 */
static int
already_done(struct daemon *d, struct inbox *ib, const char *rel, const struct stat *sb)
{
	char *key = job_key(ib, rel);
	json_t *job = NULL;
	int done = 0, rc;

	if (key == NULL)
		return -ENOMEM;
	rc = cs_store_job_get(d->st, key, &job);
	if (rc == -ENOMEM)
		done = rc;
	if (rc == 0) {
		const char *state = json_string_value(json_object_get(job, "state"));
		done = state != NULL &&
		    (strcmp(state, "released") == 0 || strcmp(state, "refused") == 0) &&
		    /* A remounted recorder gives its files new inode numbers. */
		    (ib->dock != NULL ||
		        json_integer_value(json_object_get(job, "ino")) == (json_int_t)sb->st_ino) &&
		    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb->st_size &&
		    json_integer_value(json_object_get(job, "mtime_ns")) ==
		        (json_int_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
	}
	json_decref(job);
	free(key);
	return done;
}

/* ---- discovery ---- */


/* Notes that `rel` exists now; a change restarts its settle time. */
void
observe(struct daemon *d, struct inbox *ib, const char *rel)
{
	struct stat sb;
	struct cand *c;
	const char *name = strrchr(rel, '/');

	name = name != NULL ? name + 1 : rel;
	/*
	 * An upload directory holds files still being uploaded (.part, dotfiles)
	 * and sidecars; a recorder holds only finished recordings: there every
	 * file but custos's own is evidence, so none can be wiped unsecured.
	 */
	if (ib->dock != NULL ? dock_own_file(rel) : ignored_name(name))
		return;
	if (fstatat(ib->dirfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		watch_dir(d, ib, rel);
		return;
	}
	if (ib->dock == NULL && is_sidecar(ib->dirfd, rel))
		return;
	c = cand_find(d, ib, rel, 0);
	if (c == NULL) {
		int done = already_done(d, ib, rel, &sb);
		if (done == 0 && (c = cand_find(d, ib, rel, 1)) == NULL)
			done = -ENOMEM;
		if (done < 0) /* not taken now: a secured file must not be taken again */
			out_of_memory(d, "looking at %s/%s", ib->path, rel);
		if (c == NULL)
			return;
	}
	if (c->queued || c->running)
		return;
	if (c->size != sb.st_size || c->mtime.tv_sec != sb.st_mtim.tv_sec ||
	    c->mtime.tv_nsec != sb.st_mtim.tv_nsec) {
		c->size = sb.st_size;
		c->mtime = sb.st_mtim;
		c->changed_at = uv_now(d->loop);
		ib->changed_at = c->changed_at;
	}
}

/* How many folders deep `rel` is: 0 for the top, 1 for "a", 2 for "a/b". */
static int
rel_depth(const char *rel)
{
	int n = rel[0] != '\0';

	for (; *rel; rel++)
		n += *rel == '/';
	return n;
}

void
scan_dir(struct daemon *d, struct inbox *ib, const char *rel, int depth)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	if (depth > TREE_MAX_DEPTH) {
		/*
		 * Not entered. On a recorder the receipt's walk names it and writes
		 * no receipt; in an upload directory the operator is told once.
		 */
		if (ib->dock == NULL && !ib->deep_logged)
			logmsg(1, "%s/%s is more than %d folders deep: custosd does not look inside "
			          "it, and its files are not secured. Move them higher up",
			    ib->path, rel, TREE_MAX_DEPTH);
		ib->deep_logged = 1;
		return;
	}
	fd = rel[0] ? openat(ib->dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) :
	              openat(ib->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (dir == NULL) {
		if (errno == ENOMEM)
			out_of_memory(d, "scanning %s/%s", ib->path, rel);
		close(fd);
		return;
	}
	/* (the top too: a watch lost for lack of memory comes back at a rescan) */
	watch_dir(d, ib, rel);
	while ((de = readdir(dir)) != NULL) {
		char sub[PATH_MAX];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    (int)sizeof(sub))
			continue;
		if (de->d_type == DT_DIR) {
			if (ib->dock != NULL || !ignored_name(de->d_name))
				scan_dir(d, ib, sub, depth + 1);
		} else {
			observe(d, ib, sub);
		}
	}
	closedir(dir);
}

static void
rescan_all(struct daemon *d)
{
	for (size_t i = 0; i < d->n_inboxes; i++)
		scan_dir(d, &d->inboxes[i], "", 0);
}

/* Forgets every watch of a tree (a recorder folder that went away). */
void
unwatch_tree(struct daemon *d, struct inbox *ib)
{
	size_t j = 0;

	for (size_t i = 0; i < d->n_wds; i++) {
		if (d->wds[i].ib == ib) {
			(void)inotify_rm_watch(d->ifd, d->wds[i].wd);
			free(d->wds[i].rel);
			continue;
		}
		d->wds[j++] = d->wds[i];
	}
	d->n_wds = j;
}

/* Drops a tree's candidates that are not being secured right now. */
void
drop_candidates(struct daemon *d, struct inbox *ib)
{
	struct cand **pp;

	for (pp = &d->qhead; *pp != NULL;) {
		if ((*pp)->ib == ib) {
			(*pp)->queued = 0;
			*pp = (*pp)->qnext;
			d->queued--;
		} else {
			pp = &(*pp)->qnext;
		}
	}
	d->qtail = NULL;
	for (struct cand *c = d->qhead; c != NULL; c = c->qnext)
		d->qtail = c;
	for (size_t h = 0; h < d->table_size; h++) {
		struct cand *c = d->table[h], *next;
		for (; c != NULL; c = next) {
			next = c->next;
			if (c->ib == ib && !c->running)
				cand_remove(d, c);
		}
	}
}

void
watch_dir(struct daemon *d, struct inbox *ib, const char *rel)
{
	char path[PATH_MAX];
	int wd;

	if (rel_depth(rel) > TREE_MAX_DEPTH) {
		scan_dir(d, ib, rel, rel_depth(rel)); /* (says why it is not entered) */
		return;
	}
	snprintf(path, sizeof(path), "%s%s%s", ib->path, rel[0] ? "/" : "", rel);
	wd = inotify_add_watch(d->ifd, path,
	    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK);
	if (wd < 0) {
		if (errno == ENOSPC)
			logmsg(1, "inotify watch limit reached at %s; relying on rescans", path);
		return;
	}
	for (size_t i = 0; i < d->n_wds; i++)
		if (d->wds[i].wd == wd)
			return;
	if (d->n_wds == d->cap_wds) {
		size_t cap = d->cap_wds ? d->cap_wds * 2 : 16;
		void *n = realloc(d->wds, cap * sizeof(*d->wds));
		if (n == NULL)
			goto oom;
		d->wds = n;
		d->cap_wds = cap;
	}
	d->wds[d->n_wds].wd = wd;
	d->wds[d->n_wds].ib = ib;
	if ((d->wds[d->n_wds].rel = strdup(rel)) == NULL)
		goto oom;
	d->n_wds++;
	if (rel[0])
		scan_dir(d, ib, rel, rel_depth(rel)); /* files that arrived before the watch */
	return;
oom:
	/* Unwatched, the directory is watched again at the next rescan. */
	(void)inotify_rm_watch(d->ifd, wd);
	out_of_memory(d, "watching %s", path);
}

static void
on_inotify(uv_poll_t *h, int status, int events)
{
	struct daemon *d = h->data;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)events;
	if (status < 0)
		return;
	while ((n = read(d->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				logmsg(1, "inotify queue overflowed; rescanning");
				rescan_all(d);
				continue;
			}
			if (d->stopping)
				continue;
			if (ev->mask & (IN_IGNORED | IN_UNMOUNT)) {
				/* A watched directory is gone (deleted, or a recorder unmounted). */
				for (size_t i = 0; i < d->n_wds; i++)
					if (d->wds[i].wd == ev->wd) {
						free(d->wds[i].rel);
						d->wds[i] = d->wds[--d->n_wds];
						break;
					}
				dock_rescan(d);
				continue;
			}
			if (ev->wd == d->dock_wd && d->dock_wd >= 0) {
				dock_rescan(d);
				continue;
			}
			if (ev->len == 0)
				continue;
			for (size_t i = 0; i < d->n_wds; i++) {
				char rel[PATH_MAX];
				if (d->wds[i].wd != ev->wd)
					continue;
				if (d->wds[i].ib == NULL) {
					dock_rescan(d); /* a recorder came or went */
					break;
				}
				if (snprintf(rel, sizeof(rel), "%s%s%s", d->wds[i].rel,
				        d->wds[i].rel[0] ? "/" : "", ev->name) < (int)sizeof(rel))
					observe(d, d->wds[i].ib, rel);
				break;
			}
		}
	}
}

/* ---- securing a file (thread pool) ---- */

struct work {
	uv_work_t req;
	struct daemon *d;
	struct cand *c;
	/* results, written in the work callback, read in the done callback */
	int rc;
	int stage; /* 0 open, 1 ingest, 2 re-read, 3 release */
	struct cs_ingest_result res;
	char sidecar_error[1024];
	int dirfd; /* the tree's directory, duplicated for this item: a recorder's may close */
	char metabuf[512]; /* strings of dock metadata parsed from the file name */
	int resumed;       /* finished a file whose event was written before a crash */
	uint64_t bytes;    /* counted in d->inflight_bytes */
	json_t *extra;
};

/*
 * Reads "<rel>.json" beside the file, if there is one; untrusted input.
 * 0 with *out the sidecar (or NULL: none, or a bad one, named in
 * w->sidecar_error: the file is secured without it), or -ENOMEM: the
 * sidecar could not be read for lack of memory, and the file must wait
 * rather than lose its metadata.
 */
static int
load_sidecar(struct work *w, int dirfd, const char *rel, json_t **out)
{
	char path[PATH_MAX];
	const char *base;
	struct stat sb;
	json_error_t jerr;
	json_t *j = NULL;
	char *buf = NULL;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	/* A name of NAME_MAX - 4 bytes or more can have no sidecar: "<name>.json" is too long. */
	base = strrchr(rel, '/');
	base = base != NULL ? base + 1 : rel;
	if (strlen(base) + 5 > NAME_MAX ||
	    snprintf(path, sizeof(path), "%s.json", rel) >= (int)sizeof(path))
		return 0;
	fd = cs_source_open(dirfd, path, 1 << 16, &sb);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "%s", cs_strerror(fd));
		return 0;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n < 0) {
		free(buf);
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "unreadable");
		return 0;
	}
	rc = cs_json_parse(buf, (size_t)n, JSON_REJECT_DUPLICATES, &j, &jerr);
	free(buf);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0 || !json_is_object(j)) {
		snprintf(w->sidecar_error, sizeof(w->sidecar_error), "line %d: %s", jerr.line,
		    rc < 0 ? jerr.text : "not a JSON object");
		json_decref(j);
		return 0;
	}
	*out = j;
	return 0;
}

static void
record_refusal(struct daemon *d, struct cand *c, int dirfd, int rc)
{
	struct stat sb;
	json_t *job;
	char *key = job_key(c->ib, c->rel);

	if (key == NULL || fstatat(dirfd, c->rel, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		free(key);
		return;
	}
	job = json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", "refused", "reason", cs_strerror(rc),
	    "size", (json_int_t)sb.st_size, "ino", (json_int_t)sb.st_ino, "mtime_ns",
	    (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	(void)cs_store_job_put(d->st, key, job);
	json_decref(job);
	free(key);
}

/* Errors that mean "this entry is not acceptable evidence", not "try again". */
static int
is_refusal(int rc)
{
	return rc < 0 && rc != CS_ECHANGED && rc != -ENOENT && rc != CS_EFAILED && rc != -EIO &&
	    rc != CS_ESOURCE && rc != -EROFS && rc != -EFBIG &&
	    rc != -ENOSPC && rc != -EDQUOT && !is_oom(rc) && rc != CS_ESTORE;
}

static void secure_file(struct work *w);

static int
is_store_error(int rc)
{
	return rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == CS_ESTORE;
}
static void apply_cli(const struct daemon *d, struct cs_config *c);

/*
 * A job left "ingested" for exactly this file (same identity): a crash came
 * after its ledger event and before its release. Fills w->res from the job
 * and returns 1; 0 if there is no such job; -ENOMEM if it could not be
 * looked up (the file must not be taken a second time). On a recorder the
 * file's bytes (`fd`) must also have the job's digest: a folder can be
 * another copy with the same names, sizes and times.
 */
static int
resume_ingested(struct work *w, const char *key, const struct stat *sb, int fd)
{
	json_t *job = NULL;
	const char *state, *id, *sha;
	int yes = 0, rc;

	rc = cs_store_job_get(w->d->st, key, &job);
	if (rc < 0)
		return rc == -ENOMEM ? rc : 0;
	state = json_string_value(json_object_get(job, "state"));
	id = json_string_value(json_object_get(job, "id"));
	sha = json_string_value(json_object_get(job, "sha256"));
	if (state != NULL && strcmp(state, "ingested") == 0 && id != NULL && sha != NULL &&
	    strlen(sha) == 64 && strlen(id) < sizeof(w->res.id) &&
	    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb->st_size &&
	    json_integer_value(json_object_get(job, "mtime_ns")) ==
	        (json_int_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec &&
	    (w->c->ib->dock != NULL ||
	        json_integer_value(json_object_get(job, "ino")) == (json_int_t)sb->st_ino)) {
		char hex[65];
		uint64_t size;
		if (w->c->ib->dock != NULL) {
			rc = cs_hash_fd(fd, hex, &size);
			if (rc < 0 || strcmp(hex, sha) != 0 || size != (uint64_t)sb->st_size) {
				json_decref(job);
				/* Other bytes (or unreadable: the ingest meets and names that). */
				return is_oom(rc) ? rc : 0;
			}
		}
		memset(&w->res, 0, sizeof(w->res));
		snprintf(w->res.id, sizeof(w->res.id), "%s", id);
		memcpy(w->res.sha256, sha, 65);
		w->res.size = (uint64_t)sb->st_size;
		w->resumed = 1;
		yes = 1;
	}
	json_decref(job);
	return yes;
}

/* Work item: secure one file; a refusal is recorded here, off the loop thread. */
static void
secure_work(uv_work_t *req)
{
	struct work *w = req->data;

	secure_file(w);
	if (is_refusal(w->rc))
		record_refusal(w->d, w->c, w->dirfd, w->rc);
}

#ifdef CS_FAILPOINTS
/*
 * Test build: with CUSTOS_REREAD_GATE=DIR every file waits between its copy
 * and its re-read. custosd writes DIR/<n>.at (n counts from 1: the file's
 * path and the digest copied) and goes on once DIR/<n>.go exists, or after
 * ten minutes; a test changes the source in that window.
 */
static void
reread_gate(const struct work *w)
{
	static atomic_long seq;
	const char *dir = getenv("CUSTOS_REREAD_GATE");
	char path[PATH_MAX], line[PATH_MAX + 128];
	struct timespec ts = {0, 10000000};
	long n;
	int fd, len;

	if (dir == NULL)
		return;
	n = atomic_fetch_add(&seq, 1) + 1;
	len = snprintf(line, sizeof(line), "%s/%s %s\n", w->c->ib->path, w->c->rel, w->res.sha256);
	snprintf(path, sizeof(path), "%s/%ld.at.tmp", dir, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t r = write(fd, line, len > 0 && len < (int)sizeof(line) ? (size_t)len : 0);
		(void)r;
		close(fd);
		snprintf(line, sizeof(line), "%s/%ld.at", dir, n);
		(void)rename(path, line);
	}
	snprintf(path, sizeof(path), "%s/%ld.go", dir, n);
	for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++)
		nanosleep(&ts, NULL);
}
#endif

static void
secure_file(struct work *w)
{
	struct inbox *ib = w->c->ib;
	const char *rel = w->c->rel;
	const char *officers[64];
	struct cs_meta m = {0};
	struct stat sb, again;
	json_t *side, *job = NULL, *ident = NULL;
	char hex[65], *key = NULL;
	uint64_t size;
	int fd;

	w->stage = 0;
	fd = cs_source_open(w->dirfd, rel, w->d->cfg.max_size, &sb);
	if (fd < 0) {
		w->rc = fd;
		return;
	}
	side = NULL;
	w->rc = ib->dock == NULL ? load_sidecar(w, w->dirfd, rel, &side) : 0;
	m.source = "inbox";
	m.officers = officers;
	if (ib->dock != NULL)
		w->rc = dock_meta(ib->dock, rel, &m, officers, w->metabuf, sizeof(w->metabuf),
		    &w->extra);
	if (w->rc < 0) { /* out of memory: no file is secured without its metadata */
		close(fd);
		return;
	}
	/* Bad metadata never costs the evidence: each bad field is named and left out. */
	if (side != NULL && cs_meta_from_sidecar(side, &m, officers, w->sidecar_error,
	                        sizeof(w->sidecar_error)) < 0) {
		w->rc = -ENOMEM; /* no file is secured without its metadata */
		json_decref(side);
		close(fd);
		return;
	}
	w->stage = 1;
	key = job_key(ib, rel);
	ident = json_pack("{s:I, s:I, s:I}", "ino", (json_int_t)sb.st_ino, "size",
	    (json_int_t)sb.st_size, "mtime_ns",
	    (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	if (key == NULL || ident == NULL) {
		w->rc = -ENOMEM;
		json_decref(side);
		goto out;
	}
	w->rc = resume_ingested(w, key, &sb, fd);
	if (w->rc > 0) {
		/* Its event was written before a crash: finish it, take nothing again. */
		w->rc = 0;
	} else if (w->rc == 0) {
		m.job_key = key;
		m.job_ident = ident;
		w->rc = cs_store_ingest_fd(w->d->st, fd, rel, &m, &w->res);
	}
	json_decref(side);
	if (w->rc < 0)
		goto out;

	/*
	 * Nothing leaves the inbox unproven: re-read the source, same digest.
	 * The cached pages of the first read are dropped first, so that the
	 * second read comes from the device (a recorder's card) where it can.
	 */
	w->stage = 2;
#ifdef CS_FAILPOINTS
	reread_gate(w);
#endif
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	w->rc = cs_hash_fd(fd, hex, &size);
	if (w->rc == 0 && (strcmp(hex, w->res.sha256) != 0 || size != w->res.size)) {
		/*
		 * Its copy stays stored, but proves nothing about the source now:
		 * the job is no longer "ingested" (which a retake would finish
		 * without copying again), so the file is copied anew once it
		 * settles, even with its size and mtime unchanged. Should this
		 * record fail, the retake only finds the change again.
		 */
		job = json_pack("{s:s, s:s, s:s, s:I}", "state", "changed", "id", w->res.id,
		    "sha256", w->res.sha256, "size", (json_int_t)w->res.size);
		if (job != NULL)
			(void)cs_store_job_put(w->d->st, key, job);
		w->rc = CS_ECHANGED;
	}
	if (w->rc < 0)
		goto out;

	w->stage = 3;
	job = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "state", "released", "id", w->res.id,
	    "sha256", w->res.sha256, "size", (json_int_t)sb.st_size, "ino", (json_int_t)sb.st_ino,
	    "mtime_ns", (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
	/*
	 * On a recorder: which opening of the folder read these bytes, and the
	 * inode's change time, so that the receipt's walk knows what it need not
	 * read again (dock.c).
	 */
	if (job != NULL && ib->dock != NULL &&
	    (json_object_set_new(job, "attach", json_string(dock_attach(ib->dock))) < 0 ||
	        json_object_set_new(job, "ctime_ns", json_integer((json_int_t)sb.st_ctim.tv_sec *
	            1000000000 + sb.st_ctim.tv_nsec)) < 0)) {
		json_decref(job);
		job = NULL;
	}
	if (job == NULL) { /* released the next time, not deleted without its record */
		w->rc = -ENOMEM;
		goto out;
	}
	if (w->d->cfg.release_delete && ib->dock == NULL) {
		/* Delete only the very file that was read (same inode, unchanged). */
		if (fstatat(w->dirfd, rel, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
		    again.st_ino == sb.st_ino && again.st_dev == sb.st_dev &&
		    again.st_size == sb.st_size && again.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
		    again.st_mtim.tv_sec == sb.st_mtim.tv_sec) {
			if (unlinkat(w->dirfd, rel, 0) == 0) {
				char side_path[PATH_MAX];
				if (snprintf(side_path, sizeof(side_path), "%s.json", rel) <
				    (int)sizeof(side_path))
					(void)unlinkat(w->dirfd, side_path, 0);
			}
		}
	}
	w->rc = cs_store_job_put(w->d->st, key, job);
out:
	json_decref(job);
	json_decref(ident);
	free(key);
	close(fd);
}

/* ---- the store's disk: pause when it is full, resume once space is freed ---- */

/* A little room for the ledger entry, the catalog and its map growing. */
#define SPACE_SLACK ((uint64_t)1 << 20)

static uint64_t
store_free(const struct daemon *d)
{
	struct statvfs sv;

	if (statvfs(d->cfg.store, &sv) < 0)
		return UINT64_MAX; /* unknown: never pause on a guess */
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static const char *
human(uint64_t n, char buf[24])
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0) /* n < 1024: as unsigned, its digits fit the buffer (-O3 checks) */
		snprintf(buf, 24, "%u bytes", (unsigned)n);
	else
		snprintf(buf, 24, "%.1f %s", v, unit[u]);
	return buf;
}

int
taking_work(const struct daemon *d)
{
	return !d->failed && !d->full && !d->stopping;
}

static void on_space(uv_timer_t *t);

/*
 * Pauses ingest until the store's disk has `need` bytes free (beyond the
 * files still being secured). `reopen`: the store failed on the full disk
 * and must recover first.
 */
static void
pause_for_space(struct daemon *d, uint64_t need, int reopen, const char *what)
{
	char f[24], n[24];

	if (need > d->full_need)
		d->full_need = need;
	d->full_reopen |= reopen;
	if (d->full)
		return;
	d->full = 1;
	d->full_logged_rc = 0;
	/*
	 * Paused again soon after resuming (the space was not enough after all,
	 * or a quota that statvfs does not show): wait longer each time.
	 */
	if (d->full_resumed_at != 0 && uv_now(d->loop) - d->full_resumed_at < 60000) {
		d->full_retry_at = uv_now(d->loop) + d->full_backoff_ms;
		if (d->full_backoff_ms < 60000)
			d->full_backoff_ms *= 2;
	} else {
		d->full_retry_at = 0;
		d->full_backoff_ms = 1000;
	}
	logmsg(0, "the store's disk is full: %s needs %s free and %s has %s; custosd pauses "
	          "ingest and takes no files until space is freed there, then resumes by itself. "
	          "Sources stay where they are",
	    what, human(d->full_need, n), d->cfg.store, human(store_free(d), f));
	sd_notifyf(0, "STATUS=PAUSED: the store's disk is full (%s needed); free space on %s",
	    human(d->full_need, n), d->cfg.store);
	uv_timer_start(&d->space, on_space, 1000, 1000);
}

/*
 * Is this store error the disk being full? ENOSPC and EDQUOT say so; LMDB
 * reports a write the full disk cut short as EIO, and a later write finds the
 * store already failed: those count when the disk has no room left for the
 * file that was being written.
 */
static int
is_space_error(const struct daemon *d, int rc, uint64_t size)
{
	if (rc == -ENOSPC || rc == -EDQUOT)
		return 1;
	if (rc == -EIO || rc == CS_ESTORE || rc == CS_EFAILED)
		return store_free(d) < size + d->cfg.reserve + SPACE_SLACK;
	return 0;
}

void
store_failed(struct daemon *d, int rc, const char *what, uint64_t size)
{
	int cause = 0;

	if (d->failed)
		return;
	/* Failed by another file's write: judge by that first error. */
	if (rc == CS_EFAILED && cs_store_failed(d->st, &cause) > 0 && cause < 0)
		rc = cause;
	/* A failed fsync is never retried, full disk or not: restart only. */
	if (is_space_error(d, rc, size) && cs_store_failed(d->st, NULL) != 2) {
		/*
		 * Room to recover and to record what is pending; each file's own
		 * size is checked again before it starts (pump).
		 */
		pause_for_space(d, d->cfg.reserve + SPACE_SLACK, cs_store_failed(d->st, NULL), what);
		return;
	}
	if (d->full && d->full_reopen && rc == CS_EFAILED)
		return; /* the failure the pause is already about */
	logmsg(0, "the store failed while %s (%s); custosd takes no more files. Sources stay "
	          "where they are. Fix the storage, then restart custosd",
	    what, cs_strerror(rc));
	d->failed = 1;
	sd_notifyf(0, "STATUS=STOPPED: store failure (%s); restart after fixing storage",
	    cs_strerror(rc));
}

/* Every second while paused: is there room again? */
static void
on_space(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t avail = store_free(d), now = uv_now(d->loop);
	char f[24];
	int rc;

	if (!d->full || d->failed || d->stopping) {
		uv_timer_stop(t);
		return;
	}
	if (avail == UINT64_MAX || avail < d->inflight_bytes + d->full_need || now < d->full_retry_at)
		return;
	if (d->full_reopen) {
		/* Recovery needs the store to itself, as a restart would have it. */
		if (d->in_flight > 0 || d->checkpoint_running || d->finalizing > 0)
			return;
		rc = cs_store_recover(d->st);
		if (rc < 0) {
			if (rc != d->full_logged_rc)
				logmsg(0, "%s has %s free, but the store could not recover (%s); "
				          "trying again, at longer intervals",
				    d->cfg.store, human(avail, f), cs_strerror(rc));
			d->full_logged_rc = rc;
			d->full_retry_at = now + d->full_backoff_ms;
			if (d->full_backoff_ms < 60000)
				d->full_backoff_ms *= 2;
			return;
		}
		d->full_reopen = 0;
	}
	d->full = 0;
	d->full_need = 0;
	d->full_resumed_at = now;
	uv_timer_stop(t);
	logmsg(2, "%s has %s free again: ingest resumes", d->cfg.store, human(avail, f));
	sd_notifyf(0, "STATUS=running: ingest resumed after the store's disk was full");
	pump(d);
}

static void
secure_done(uv_work_t *req, int status)
{
	struct work *w = req->data;
	struct daemon *d = w->d;
	struct cand *c = w->c;

	(void)status;
	d->in_flight--;
	d->inflight_bytes -= w->bytes;
	c->running = 0;
	if (w->sidecar_error[0])
		logmsg(1, "%s/%s.json: sidecar problem (%s); the file is secured with the rest",
		    c->ib->path, c->rel, w->sidecar_error);
	if (w->rc == 0) {
		d->secured++;
		d->released++;
		if (w->res.duplicate)
			d->duplicates++;
		logmsg(2, "secured %s/%s as %s (%llu bytes, sha256 %s)%s", c->ib->path, c->rel,
		    w->res.id, (unsigned long long)w->res.size, w->res.sha256,
		    w->resumed ? ", finishing an ingest interrupted by a crash" :
		    w->res.duplicate ? ", already stored: recorded as another sighting" : "");
		cand_remove(d, c);
		d->oom_streak = 0;
	} else if (is_oom(w->rc) || (w->rc == CS_EFAILED && is_oom(cs_store_failure(d->st)))) {
		/* Out of memory: nothing refused or released; the file waits to be taken again. */
		c->size = -1;
		if (!store_oom_check(d))
			out_of_memory(d, "securing %s/%s", c->ib->path, c->rel);
	} else if (w->rc == CS_ECHANGED || w->rc == -ENOENT) {
		/* Still being written, or replaced: wait for it to settle again. */
		if (w->rc == CS_ECHANGED && w->stage == 2)
			logmsg(1, "%s/%s changed while it was being read: its re-read does not match "
			          "the copy stored as %s (sha256 %s), so it is not released on that "
			          "copy; it will be taken again once it settles",
			    c->ib->path, c->rel, w->res.id, w->res.sha256);
		else if (w->rc == CS_ECHANGED)
			logmsg(2, "%s/%s changed while it was being read; it will be taken again once "
			          "it settles",
			    c->ib->path, c->rel);
		if (w->rc == -ENOENT)
			cand_remove(d, c);
		else
			c->size = -1;
	} else if (w->rc == CS_EFAILED || (is_store_error(w->rc) && w->stage != 0 && w->stage != 2)) {
		/* Stages 1 and 3 write the store; stages 0 and 2 only read the source. */
		char what[PATH_MAX + 64];
		if (w->stage == 3)
			logmsg(0, "secured %s/%s as %s, but recording its release failed (%s)",
			    c->ib->path, c->rel, w->res.id, cs_strerror(w->rc));
		snprintf(what, sizeof(what), "securing %s/%s", c->ib->path, c->rel);
		store_failed(d, w->rc, what, w->bytes);
		c->size = -1; /* taken again once it settles, when work resumes */
	} else {
		logmsg(1, "refused %s/%s: %s; it stays in the inbox untouched", c->ib->path, c->rel,
		    cs_strerror(w->rc));
		d->refused++;
		cand_remove(d, c);
	}
	json_decref(w->extra);
	close(w->dirfd);
	free(w);
	pump(d);
}

void
pump(struct daemon *d)
{
	while (taking_work(d) && d->in_flight < d->cfg.concurrency && d->qhead != NULL) {
		struct cand *c = d->qhead;
		uint64_t size = c->size > 0 ? (uint64_t)c->size : 0;
		uint64_t avail = store_free(d);
		struct work *w;
		int rc;

		/* Room for the file, the reserve and the files being secured? */
		if (avail != UINT64_MAX && avail < d->inflight_bytes + size + d->cfg.reserve + SPACE_SLACK) {
			char what[PATH_MAX + 64];
			snprintf(what, sizeof(what), "securing %s/%s", c->ib->path, c->rel);
			pause_for_space(d, size + d->cfg.reserve + SPACE_SLACK, 0, what);
			return;
		}
		d->qhead = c->qnext;
		if (d->qhead == NULL)
			d->qtail = NULL;
		d->queued--;
		c->queued = 0;
		w = calloc(1, sizeof(*w));
		if (w == NULL) { /* c is queued again at the next tick */
			out_of_memory(d, "starting to secure %s/%s", c->ib->path, c->rel);
			return;
		}
		w->d = d;
		w->c = c;
		w->req.data = w;
		w->dirfd = fcntl(c->ib->dirfd, F_DUPFD_CLOEXEC, 0);
		if (w->dirfd < 0) {
			free(w);
			c->size = -1; /* out of descriptors: back off, try again later */
			return;
		}
		c->running = 1;
		rc = uv_queue_work(d->loop, &w->req, secure_work, secure_done);
		if (rc < 0) {
			c->running = 0;
			close(w->dirfd);
			free(w);
			return;
		}
		d->in_flight++;
		w->bytes = size;
		d->inflight_bytes += size;
	}
}

static void
enqueue(struct daemon *d, struct cand *c)
{
	c->queued = 1;
	c->qnext = NULL;
	if (d->qtail != NULL)
		d->qtail->qnext = c;
	else
		d->qhead = c;
	d->qtail = c;
	d->queued++;
}

/* Every tick: files unchanged for the settle time join the queue. */
static void
on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = uv_now(d->loop);

	for (size_t h = 0; h < d->table_size; h++) {
		struct cand *c = d->table[h], *next;
		for (; c != NULL; c = next) {
			struct stat sb;
			next = c->next;
			if (c->queued || c->running)
				continue;
			if (fstatat(c->ib->dirfd, c->rel, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
				cand_remove(d, c);
				continue;
			}
			if (sb.st_size != c->size || sb.st_mtim.tv_sec != c->mtime.tv_sec ||
			    sb.st_mtim.tv_nsec != c->mtime.tv_nsec) {
				c->size = sb.st_size;
				c->mtime = sb.st_mtim;
				c->changed_at = now;
				continue;
			}
			if (now - c->changed_at < d->cfg.settle_ms)
				continue;
			/* "x.json" seen before "x" arrived is x's sidecar after all. */
			if (c->ib->dock == NULL && is_sidecar(c->ib->dirfd, c->rel)) {
				cand_remove(d, c);
				continue;
			}
			enqueue(d, c);
		}
	}
	pump(d);
	dock_tick(d);
	if (d->accept_pending && !d->stopping && d->control_open) {
		d->accept_pending = 0;
		on_connection((uv_stream_t *)&d->control, 0);
	}
}

static void
on_rescan(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (!d->stopping) {
		rescan_all(d);
		dock_rescan(d);
	}
}

/* ---- checkpoints (thread pool, one at a time) ---- */

struct cpwork {
	uv_work_t req;
	struct daemon *d;
	int rc;
};

static void
checkpoint_work(uv_work_t *req)
{
	struct cpwork *w = req->data;

	w->rc = cs_store_checkpoint(w->d->st, NULL);
}

static void
checkpoint_done(uv_work_t *req, int status)
{
	static int no_room; /* the last checkpoint found no room on the store's disk */
	struct cpwork *w = req->data;

	(void)status;
	w->d->checkpoint_running = 0;
	if (w->rc == 0) {
		w->d->oom_streak = 0;
		if (no_room)
			logmsg(2, "a checkpoint of the ledger's %llu events is signed again",
			    (unsigned long long)w->d->checkpointed_size);
		no_room = 0;
	} else if ((w->rc == -ENOSPC || w->rc == -EDQUOT) && !cs_store_failed(w->d->st, NULL)) {
		/* Nothing written, the store sound: tried again at every timer. */
		w->d->checkpointed_size = 0;
		if (!no_room)
			logmsg(1, "signing a checkpoint of the ledger failed: %s on %s; the ledger is "
			          "whole and custosd signs it once there is room (it tries every 2 s). "
			          "Free space there",
			    cs_strerror(w->rc), w->d->cfg.store);
		no_room = 1;
	} else if (!store_oom_check(w->d)) {
		if (is_oom(w->rc)) {
			w->d->checkpointed_size = 0; /* signed at the next timer */
			out_of_memory(w->d, "signing a checkpoint");
		} else if (cs_store_failed(w->d->st, NULL)) {
			store_failed(w->d, w->rc, "signing a checkpoint", 0);
		} else {
			logmsg(0, "signing a checkpoint failed: %s", cs_strerror(w->rc));
		}
	}
	free(w);
}

static void
on_checkpoint(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t size = cs_store_size(d->st);
	struct cpwork *w;

	/*
	 * Paused for a full disk, events secured before the pause are still
	 * signed (a checkpoint is a small file), unless the store failed and
	 * waits to recover.
	 */
	if (d->checkpoint_running || size == d->checkpointed_size || d->failed ||
	    (d->full && d->full_reopen))
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		out_of_memory(d, "signing a checkpoint");
		return;
	}
	w->d = d;
	w->req.data = w;
	d->checkpoint_running = 1;
	d->checkpointed_size = size;
	if (uv_queue_work(d->loop, &w->req, checkpoint_work, checkpoint_done) < 0) {
		d->checkpoint_running = 0;
		free(w);
	}
}

static void
on_watchdog(uv_timer_t *t)
{
	struct daemon *d = t->data;

	sd_notifyf(0, "WATCHDOG=1\nSTATUS=%s: %zu waiting, %zu in progress, %llu secured",
	    d->failed ? "STOPPED (store failure)" : d->full ? "PAUSED (the store's disk is full)" :
	                                                  "running",
	    d->queued, d->in_flight,
	    (unsigned long long)d->secured);
}

/* ---- control socket: one JSON request per line, one JSON answer per line ---- */

struct client {
	uv_pipe_t pipe;
	struct daemon *d;
	char buf[4096];
	size_t len;
	uid_t uid;
};

static json_t *
status_json(struct daemon *d)
{
	json_t *jobs = NULL;
	char *cp = NULL;
	json_t *j;

	/* Out of memory: no answer, rather than one that leaves something out. */
	if (cs_store_job_counts(d->st, &jobs) == -ENOMEM)
		return NULL;
	if (cs_store_latest_checkpoint(d->st, &cp) == -ENOMEM) {
		json_decref(jobs);
		return NULL;
	}
	j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*, s:s*}", "state",
	    d->failed ? "failed" : d->stopping ? "stopping" : d->full ? "disk_full" : "running",
	    "station", cs_store_station(d->st), "taking_files", taking_work(d), "queued",
	    (json_int_t)d->queued, "in_progress", (json_int_t)d->in_flight, "waiting_to_settle",
	    (json_int_t)(d->n_cands - d->queued - d->in_flight), "secured",
	    (json_int_t)d->secured, "duplicates", (json_int_t)d->duplicates, "refused",
	    (json_int_t)d->refused, "ledger_size", (json_int_t)cs_store_size(d->st), "jobs", jobs,
	    "checkpoint", cp);
	free(cp);
	if (j != NULL && d->full) {
		uint64_t avail = store_free(d);
		json_object_set_new(j, "store_free_bytes",
		    avail == UINT64_MAX ? json_null() : json_integer((json_int_t)avail));
		json_object_set_new(j, "needed_bytes", json_integer((json_int_t)d->full_need));
	}
	if (j != NULL && d->dock_rootfd >= 0 &&
	    json_object_set_new(j, "docks", dock_status(d)) < 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static void
on_client_close(uv_handle_t *h)
{
	free(h->data);
}

static void
on_write(uv_write_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

/* Sends `j` as one line; -1 if it could not be (the caller hangs up). */
static int
reply(struct client *cl, json_t *j)
{
	uv_write_t *req = malloc(sizeof(*req));
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	size_t n = s != NULL ? strlen(s) : 0;
	char *line = s != NULL ? realloc(s, n + 2) : NULL;
	uv_buf_t b;

	if (req == NULL || line == NULL) {
		free(req);
		free(line != NULL ? line : s);
		return -1;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	b = uv_buf_init(line, (unsigned)(n + 1));
	req->data = line;
	if (uv_write(req, (uv_stream_t *)&cl->pipe, &b, 1, on_write) < 0) {
		free(line);
		free(req);
		return -1;
	}
	return 0;
}

/* Answers one request line; -1 if no answer could be made (out of memory): hang up. */
static int
handle_request(struct client *cl, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = NULL, *ans;
	const char *cmd;
	int rc = cs_json_parse(line, len, 0, &req, &jerr);

	if (rc == -ENOMEM)
		return -1;
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (req == NULL || cmd == NULL)
		ans = json_pack("{s:b, s:s}", "ok", 0, "error",
		    "a request is one JSON object per line with a \"cmd\"");
	else if (strcmp(cmd, "status") == 0) {
		ans = status_json(cl->d);
		if (ans != NULL && json_object_set_new(ans, "ok", json_true()) < 0) {
			json_decref(ans);
			ans = NULL;
		}
	} else
		ans = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "unknown command", "cmd", cmd);
	logmsg(3, "control request from uid %u: %s", (unsigned)cl->uid, cmd ? cmd : "(malformed)");
	rc = reply(cl, ans);
	json_decref(ans);
	json_decref(req);
	return rc;
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)suggested;
	*buf = uv_buf_init(cl->buf + cl->len, (unsigned)(sizeof(cl->buf) - cl->len));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	char *nl;

	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_client_close);
		return;
	}
	cl->len += (size_t)n;
	while ((nl = memchr(cl->buf, '\n', cl->len)) != NULL) {
		size_t linelen = (size_t)(nl - cl->buf);
		if (handle_request(cl, cl->buf, linelen) < 0) {
			/* Out of memory: the client sees the connection close, not a silence. */
			out_of_memory(cl->d, "answering a control request");
			uv_close((uv_handle_t *)s, on_client_close);
			return;
		}
		memmove(cl->buf, nl + 1, cl->len - linelen - 1);
		cl->len -= linelen + 1;
	}
	if (cl->len == sizeof(cl->buf)) {
		/* A line longer than any request: refuse and hang up. */
		uv_close((uv_handle_t *)s, on_client_close);
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct daemon *d = server->data;
	struct client *cl;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL) {
		/*
		 * Not accepted, libuv stops listening until it is: the next tick
		 * accepts it (d->accept_pending), when memory allows.
		 */
		d->accept_pending = 1;
		out_of_memory(d, "accepting a control connection");
		return;
	}
	cl->d = d;
	uv_pipe_init(d->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
		uv_close((uv_handle_t *)&cl->pipe, on_client_close);
		return;
	}
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		cl->uid = cred.uid;
	uv_read_start((uv_stream_t *)&cl->pipe, alloc_cb, on_read);
}

static int
control_start(struct daemon *d)
{
	char path[PATH_MAX];
	int rc;

	if (d->cfg.socket != NULL)
		snprintf(path, sizeof(path), "%s", d->cfg.socket);
	else
		snprintf(path, sizeof(path), "%s/custosd.sock", d->cfg.store);
	{
		struct stat sb;
		/* Remove a stale socket of an earlier run, never anything else. */
		if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
			(void)unlink(path);
	}
	uv_pipe_init(d->loop, &d->control, 0);
	d->control.data = d;
	rc = uv_pipe_bind(&d->control, path);
	if (rc == 0) {
		(void)chmod(path, 0660);
		rc = uv_listen((uv_stream_t *)&d->control, 16, on_connection);
	}
	if (rc < 0) {
		logmsg(0, "cannot open the control socket %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&d->control, NULL);
		return rc;
	}
	d->control_open = 1;
	return 0;
}

static uv_work_t pool_start;

static void
pool_start_work(uv_work_t *req)
{
	(void)req;
}

static void
pool_start_done(uv_work_t *req, int status)
{
	(void)req;
	(void)status;
}

/*
 * libuv keeps one watcher slot per descriptor number and grows that array,
 * when a higher descriptor is first watched, with a realloc() after whose
 * failure it calls abort() (uv__io_start). custosd watches descriptors while
 * it runs (control connections, numbered above the files the work items
 * hold open): the array is made large enough for every descriptor below the
 * limit (at most 4096 slots, 32 KiB) at start, by watching one descriptor
 * near the top for a moment, so that no later one makes libuv grow it.
 */
static void
probe_cb(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)status;
	(void)events;
}

static int
presize_watchers(uv_loop_t *loop)
{
	static uv_poll_t probe;
	struct rlimit rl;
	int top = 4096, efd, fd, rc;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)top)
		top = (int)rl.rlim_cur;
	efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		return -1;
	fd = fcntl(efd, F_DUPFD_CLOEXEC, top > 64 ? top - 1 : 63);
	close(efd);
	if (fd < 0)
		return errno == EINVAL || errno == EMFILE ? 0 : -1; /* nothing free up there */
	rc = uv_poll_init(loop, &probe, fd);
	if (rc == 0) {
		rc = uv_poll_start(&probe, UV_READABLE, probe_cb);
		uv_close((uv_handle_t *)&probe, NULL);
	}
	close(fd);
	if (rc < 0)
		errno = -rc;
	return rc < 0 ? -1 : 0;
}

/* ---- inboxes, signals, start and stop ---- */

static int
inboxes_open(struct daemon *d, const struct cs_config *cfg)
{
	for (size_t i = 0; i < cfg->n_inboxes; i++) {
		struct inbox *ib = &d->inboxes[i];
		ib->index = (int)i;
		ib->path = strdup(cfg->inboxes[i]);
		ib->dirfd = open(cfg->inboxes[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (ib->path == NULL || ib->dirfd < 0) {
			logmsg(0, "cannot open upload directory %s: %s", cfg->inboxes[i],
			    strerror(ib->path == NULL ? ENOMEM : errno));
			free(ib->path);
			ib->path = NULL;
			if (ib->dirfd >= 0)
				close(ib->dirfd);
			return -1;
		}
		d->n_inboxes++;
		watch_dir(d, ib, "");
	}
	return 0;
}

static void
begin_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	sd_notify(0, "STOPPING=1");
	logmsg(2, "stopping: taking no new files; %zu in progress will finish", d->in_flight);
	uv_timer_stop(&d->tick);
	uv_timer_stop(&d->rescan);
	uv_poll_stop(&d->inotify_poll);
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->rescan, NULL);
	uv_close((uv_handle_t *)&d->checkpoint, NULL);
	uv_close((uv_handle_t *)&d->watchdog, NULL);
	uv_close((uv_handle_t *)&d->space, NULL);
	uv_close((uv_handle_t *)&d->inotify_poll, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	if (d->control_open)
		uv_close((uv_handle_t *)&d->control, NULL);
	/* Queued work items still run to completion; uv_run returns after them. */
}

static void
on_sigterm(uv_signal_t *s, int signum)
{
	(void)signum;
	begin_stop(s->data);
}

static void
on_sighup(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	struct cs_config nc;
	char err[512];

	(void)signum;
	if (d->config_path == NULL) {
		logmsg(2, "SIGHUP: no configuration file to reload");
		return;
	}
	cs_config_init(&nc);
	if (cs_config_load(&nc, d->config_path, err, sizeof(err)) < 0 ||
	    (apply_cli(d, &nc), 0) ||
	    (nc.store == NULL && (nc.store = strdup(d->cfg.store)) == NULL) ||
	    cs_config_check(&nc, err, sizeof(err)) < 0) {
		logmsg(0, "reload refused, the running configuration stays: %s", err);
		cs_config_fini(&nc);
		return;
	}
	if (strcmp(nc.store, d->cfg.store) != 0)
		logmsg(1, "reload: a new store root takes effect only after a restart");
	/* Settings that apply at once; a changed inbox list needs a restart. */
	d->cfg.settle_ms = nc.settle_ms;
	d->cfg.concurrency = nc.concurrency;
	d->cfg.max_size = nc.max_size;
	d->cfg.reserve = nc.reserve;
	d->cfg.release_delete = nc.release_delete;
	d->cfg.log_level = nc.log_level;
	log_level = nc.log_level;
	if (nc.rescan_s != d->cfg.rescan_s) {
		d->cfg.rescan_s = nc.rescan_s;
		uv_timer_set_repeat(&d->rescan, (uint64_t)nc.rescan_s * 1000);
	}
	logmsg(2, "configuration reloaded from %s", d->config_path);
	cs_config_fini(&nc);
	if (d->full && !d->full_reopen) {
		/* Paused before a file, under the old reserve: look again now. */
		d->full_need = d->cfg.reserve + SPACE_SLACK +
		    (d->qhead != NULL && d->qhead->size > 0 ? (uint64_t)d->qhead->size : 0);
		on_space(&d->space);
	}
	pump(d);
}

/* Command-line options override the configuration file, at start and on reload. */
static void
apply_cli(const struct daemon *d, struct cs_config *c)
{
	if (d->cli_store != NULL) {
		free(c->store);
		c->store = strdup(d->cli_store);
	}
	if (d->cli_docks != NULL) {
		free(c->docks);
		c->docks = strdup(d->cli_docks);
	}
	if (d->cli_station != NULL) {
		free(c->station);
		c->station = strdup(d->cli_station);
	}
	if (d->n_cli_inboxes > 0) {
		for (size_t i = 0; i < c->n_inboxes; i++)
			free(c->inboxes[i]);
		c->n_inboxes = 0;
		for (size_t i = 0; i < d->n_cli_inboxes; i++)
			c->inboxes[c->n_inboxes++] = strdup(d->cli_inboxes[i]);
	}
}

#ifdef CS_FAILPOINTS
/* Test build: libuv's allocations, counted and failed by CUSTOS_OOM_LIB=uv. */
static void *
uv_test_malloc(size_t n)
{
	return cs__failalloc_fail() ? NULL : malloc(n);
}

static void *
uv_test_realloc(void *p, size_t n)
{
	return cs__failalloc_fail() ? NULL : realloc(p, n);
}

static void *
uv_test_calloc(size_t n, size_t size)
{
	return cs__failalloc_fail() ? NULL : calloc(n, size);
}

/* Before any use of OpenSSL or libuv: their allocators can only be replaced first. */
static int
test_hooks(void)
{
	if (cs__failalloc_init() < 0)
		return -1;
	if (cs__failalloc_wanted("uv") &&
	    uv_replace_allocator(uv_test_malloc, uv_test_realloc, uv_test_calloc, free) < 0)
		return -1;
	return 0;
}
#endif

/*
 * Releases what main() made, however far it got (the loop itself only once
 * every handle is closed); returns `status`, the exit status.
 */
static int
daemon_fini(struct daemon *d, int status)
{
	/* Candidates first: a recorder's name its tree, which dock_stop() frees. */
	for (size_t h = 0; d->table != NULL && h < d->table_size; h++)
		while (d->table[h] != NULL)
			cand_remove(d, d->table[h]);
	free(d->table);
	dock_stop(d);
	cs_store_close(d->st);
	if (d->loop != NULL)
		(void)uv_loop_close(d->loop); /* UV_EBUSY after a failed start */
	for (size_t i = 0; i < d->n_wds; i++)
		free(d->wds[i].rel);
	free(d->wds);
	for (size_t i = 0; i < d->n_inboxes; i++) {
		close(d->inboxes[i].dirfd);
		free(d->inboxes[i].path);
	}
	if (d->ifd >= 0)
		close(d->ifd);
	cs_config_fini(&d->cfg);
	return status;
}

static const char usage[] =
    "usage: custosd [--config FILE] [--store DIR] [--inbox DIR]... [--docks DIR]\n"
    "               [--station NAME] [--foreground] [--check-config]\n"
    "\n"
    "Watches upload directories and secures every complete file that arrives:\n"
    "hashes and stores it, records it in the signed ledger, re-reads the source to\n"
    "prove the copy, then releases it. Runs in the foreground (under systemd,\n"
    "Type=notify). SIGHUP reloads the configuration; SIGTERM finishes the files in\n"
    "progress and exits.\n"
    "\n"
    "  --config FILE   INI configuration (see custosd(8))\n"
    "  --store DIR     store root (created on first start)\n"
    "  --inbox DIR     an upload directory to watch; repeat for several\n"
    "  --docks DIR     recorder dock root\n"
    "  --station NAME  station id when the store is created\n"
    "  --foreground    accepted for clarity; custosd never forks\n"
    "  --check-config  validate the configuration, print the first error, exit\n";

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
		{"store", required_argument, NULL, 's'}, {"inbox", required_argument, NULL, 'i'},
		{"docks", required_argument, NULL, 'd'}, {"station", required_argument, NULL, 'S'},
		{"foreground", no_argument, NULL, 'f'}, {"check-config", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct daemon d;
	int check_only = 0, c, rc;
	char err[512];
	struct stat sb;
	uint64_t wd_usec = 0;

#ifdef CS_FAILPOINTS
	if (test_hooks() < 0)
		return 2;
#endif
	memset(&d, 0, sizeof(d));
	d.ifd = d.dock_rootfd = d.dock_wd = -1;
	cs_config_init(&d.cfg);
	log_prefix = getenv("JOURNAL_STREAM") != NULL;
	while ((c = getopt_long(argc, argv, "c:s:i:d:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 's': d.cli_store = optarg; break;
		case 'i':
			if (d.n_cli_inboxes == CFG_MAX_INBOXES) {
				fprintf(stderr, "custosd: too many --inbox options\n");
				return 2;
			}
			d.cli_inboxes[d.n_cli_inboxes++] = optarg;
			break;
		case 'd': d.cli_docks = optarg; break;
		case 'S': d.cli_station = optarg; break;
		case 'f': break;
		case 'k': check_only = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (d.config_path != NULL &&
	    (rc = cs_config_load(&d.cfg, d.config_path, err, sizeof(err))) < 0) {
		fprintf(stderr, "custosd: %s\n", err);
		return daemon_fini(&d, rc == -ENOMEM ? 3 : 2);
	}
	apply_cli(&d, &d.cfg);
	if (cs_config_check(&d.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "custosd: %s\n", err);
		return daemon_fini(&d, 2);
	}
	if (check_only) {
		printf("configuration is valid\n");
		cs_config_fini(&d.cfg);
		return 0;
	}
	log_level = d.cfg.log_level;
	if (cs_lib_init() < 0) {
		logmsg(0, "cannot start: out of memory initialising OpenSSL");
		return daemon_fini(&d, 3);
	}

	/* First start: create the store on its default. */
	{
		char marker[PATH_MAX];
		snprintf(marker, sizeof(marker), "%s/custos.json", d.cfg.store);
		if (stat(marker, &sb) < 0) {
			rc = cs_store_init(d.cfg.store,
			    d.cfg.station != NULL ? d.cfg.station : "station");
			if (rc < 0) {
				logmsg(0, "cannot create the store %s: %s", d.cfg.store,
				    cs_strerror(rc));
				return daemon_fini(&d, 3);
			}
			logmsg(2, "created store %s", d.cfg.store);
		}
	}
	rc = cs_store_open(&d.st, d.cfg.store, CS_OPEN_WRITE, lib_log, NULL);
	if (rc < 0) {
		logmsg(0, "cannot open the store %s: %s%s", d.cfg.store, cs_strerror(rc),
		    rc == CS_EBUSY ? " (another custosd or custos command holds it)" : "");
		return daemon_fini(&d, 3);
	}
	/* the daemon's own events (what it secures from inbox and docks) name it */
	if (cs_store_set_actor(d.st, "daemon", "custosd", (long)getuid()) < 0) {
		logmsg(0, "out of memory");
		return daemon_fini(&d, 3);
	}
	d.checkpointed_size = cs_store_size(d.st);

	/* Room in libuv's pool for `concurrency` files plus checkpoints and receipts. */
	if (getenv("UV_THREADPOOL_SIZE") == NULL) {
		char n[16];
		snprintf(n, sizeof(n), "%u", d.cfg.concurrency + 2);
		setenv("UV_THREADPOOL_SIZE", n, 1);
	}
	d.loop = uv_default_loop();
	d.table_size = 16381;
	d.table = calloc(d.table_size, sizeof(*d.table));
	d.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.loop == NULL || d.table == NULL || d.ifd < 0 || presize_watchers(d.loop) < 0) {
		logmsg(0, "cannot start: %s", strerror(d.loop == NULL ? ENOMEM : errno));
		return daemon_fini(&d, 3);
	}
	uv_poll_init(d.loop, &d.inotify_poll, d.ifd);
	d.inotify_poll.data = &d;
	uv_poll_start(&d.inotify_poll, UV_READABLE, on_inotify);
	if (inboxes_open(&d, &d.cfg) < 0 || (d.cfg.docks != NULL && dock_start(&d) < 0))
		return daemon_fini(&d, 3);

	uv_timer_init(d.loop, &d.tick);
	uv_timer_init(d.loop, &d.rescan);
	uv_timer_init(d.loop, &d.checkpoint);
	uv_timer_init(d.loop, &d.watchdog);
	uv_timer_init(d.loop, &d.space);
	d.tick.data = d.rescan.data = d.checkpoint.data = d.watchdog.data = d.space.data = &d;
	uv_timer_start(&d.tick, on_tick, 200, d.cfg.settle_ms < 1000 ? 200 : 1000);
	uv_timer_start(&d.rescan, on_rescan, (uint64_t)d.cfg.rescan_s * 1000,
	    (uint64_t)d.cfg.rescan_s * 1000);
	uv_timer_start(&d.checkpoint, on_checkpoint, 2000, 2000);
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		uv_timer_start(&d.watchdog, on_watchdog, 0, wd_usec / 2000);
	else
		uv_timer_start(&d.watchdog, on_watchdog, 0, 10000);

	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, on_sigterm, SIGTERM);
	uv_signal_start(&d.sigint, on_sigterm, SIGINT);
	uv_signal_start(&d.sighup, on_sighup, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	/* Without its socket custosd runs on (custos status fails), but not for lack of memory. */
	if (control_start(&d) == UV_ENOMEM)
		return daemon_fini(&d, 3);

	/*
	 * libuv starts its thread pool at the first work item and calls abort()
	 * if it cannot create a thread (out of memory, say): start it now, before
	 * READY=1, rather than in the middle of taking files.
	 */
	if (uv_queue_work(d.loop, &pool_start, pool_start_work, pool_start_done) < 0)
		return daemon_fini(&d, 3);
	rescan_all(&d); /* files that arrived while custosd was down */
	logmsg(2, "watching %zu upload director%s%s%s; store %s (station %s)", d.n_inboxes,
	    d.n_inboxes == 1 ? "y" : "ies", d.cfg.docks ? " and the dock root " : "",
	    d.cfg.docks ? d.cfg.docks : "", d.cfg.store, cs_store_station(d.st));
	sd_notifyf(0, "READY=1\nSTATUS=watching %zu upload directories", d.n_inboxes);

	uv_run(d.loop, UV_RUN_DEFAULT);

	/* Every work item has finished: sign what was secured, then close. */
	rc = cs_store_checkpoint(d.st, NULL);
	if (rc < 0 && !d.failed && !(rc == CS_EFAILED && is_oom(cs_store_failure(d.st))))
		logmsg(0, "final checkpoint failed: %s", cs_strerror(rc));
	if (cs_store_failed(d.st, NULL) && !d.oom_stop)
		d.failed = 1; /* stopped while paused on a full disk: recovery at the next start */
	logmsg(2, "stopped: %llu file(s) secured in this run", (unsigned long long)d.secured);
	return daemon_fini(&d, d.failed ? 1 : d.oom_stop ? 4 : 0);
}
