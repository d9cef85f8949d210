/*
 * Finding files in the watched trees (upload directories and docked
 * recorders' folders): inotify (IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE) and
 * scans, which custosd runs at start and at every rescan because inotify
 * alone is not trusted. Each file found becomes a candidate that waits to
 * settle (pipeline.c takes it from there). Names that are not evidence
 * (partial uploads, sidecars, a recorder's own files) are left out here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/store.h"
#include "log.h"
#include "watch.h"

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

void
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
int
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
	if (ib->src != NULL)
		snprintf(k, n, "dock/%s/%s", ib->src->session(ib->src_ctx), rel);
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
		    (strcmp(state, "released") == 0 || strcmp(state, "refused") == 0 ||
		        strcmp(state, "held") == 0) &&
		    /* A remounted recorder gives its files new inode numbers. */
		    (ib->src != NULL ||
		        json_integer_value(json_object_get(job, "ino")) ==
		            (json_int_t)sb->st_ino) &&
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
	if (ib->src != NULL ? ib->src->own_file(rel) : ignored_name(name))
		return;
	if (fstatat(ib->dirfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		watch_dir(d, ib, rel);
		return;
	}
	if (ib->src == NULL && is_sidecar(ib->dirfd, rel))
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
		if (ib->src == NULL && !ib->deep_logged)
			logmsg(1, "%s/%s is more than %d folders deep: custosd does not look "
			          "inside it, and its files are not secured. Move them higher up",
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
			if (ib->src != NULL || !ignored_name(de->d_name))
				scan_dir(d, ib, sub, depth + 1);
		} else {
			observe(d, ib, sub);
		}
	}
	closedir(dir);
}

void
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
	    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW |
	        IN_EXCL_UNLINK);
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

/* A watched tree's folder vanished, or the dock root changed: the docks look again. */
static void
trees_changed(struct daemon *d)
{
	if (d->trees_changed != NULL)
		d->trees_changed(d);
}

void
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
				/*
				 * A watched directory is gone (deleted, or a recorder
				 * unmounted).
				 */
				for (size_t i = 0; i < d->n_wds; i++)
					if (d->wds[i].wd == ev->wd) {
						free(d->wds[i].rel);
						d->wds[i] = d->wds[--d->n_wds];
						break;
					}
				trees_changed(d);
				continue;
			}
			if (ev->wd == d->dock_wd && d->dock_wd >= 0) {
				trees_changed(d);
				continue;
			}
			if (ev->len == 0)
				continue;
			for (size_t i = 0; i < d->n_wds; i++) {
				char rel[PATH_MAX];
				if (d->wds[i].wd != ev->wd)
					continue;
				if (d->wds[i].ib == NULL) {
					trees_changed(d); /* a recorder came or went */
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
