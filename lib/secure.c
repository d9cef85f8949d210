/*
 * Securing a source file, the one transaction behind custosd's pipeline and
 * `custos ingest`: open beneath its directory, metadata (caller, sidecar,
 * recorder rules), ingest, re-read with the same digest, record the release.
 * Also cs_fault(), the one classification of the errors on that way.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#ifdef CS_FAILPOINTS
#include <stdatomic.h>
#endif

#include "custos/batch.h"
#include "custos/error.h"
#include "custos/jobs.h"
#include "custos/secure.h"
#include "custos/source.h"
#include "custos/store.h"
#include "store_internal.h"
#include "util.h"

enum cs_fault
cs_fault(const struct cs_store *st, int rc, enum cs_secure_stage stage)
{
	int writes = stage == CS_STAGE_INGEST || stage == CS_STAGE_RELEASE;

	if (rc >= 0)
		return CS_FAULT_NONE;
	if (rc == -ENOMEM || rc == CS_ECRYPTO || rc == -EAGAIN)
		return CS_FAULT_MEMORY;
	if (rc == CS_EFAILED) {
		int why = st != NULL ? cs_store_failure(st) : 0;
		return why == -ENOMEM || why == CS_ECRYPTO ? CS_FAULT_MEMORY : CS_FAULT_STORE;
	}
	if (rc == CS_ECHANGED || rc == -ENOENT)
		return CS_FAULT_WAIT;
	/* The errors that stop the store when a write meets them (cs__store_fault). */
	if (writes && (cs__store_fault(rc) || rc == CS_ESTORE))
		return CS_FAULT_STORE;
	/* Over the size cap when opened: refused (and recorded) like any unacceptable file. */
	if (rc == -EFBIG)
		return CS_FAULT_REFUSED;
	if (rc == -EIO || rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS || rc == CS_ESTORE ||
	    rc == CS_ESOURCE)
		return CS_FAULT_SOURCE;
	return CS_FAULT_REFUSED;
}

/*
 * Reads "<rel>.json" beside the file, if there is one; untrusted input.
 * 0 with *out the sidecar (or NULL: none, or a bad one, named in
 * s->sidecar_problem: the file is secured without it), or -ENOMEM: the
 * sidecar could not be read for lack of memory, and the file must wait
 * rather than lose its metadata.
 */
static int
load_sidecar(struct cs_secured *s, int dirfd, const char *rel, json_t **out)
{
	char path[PATH_MAX];
	const char *base;
	struct stat sb;
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
	fd = cs_source_open(dirfd, path, CS_SIDECAR_MAX, &sb);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(s->sidecar_problem, sizeof(s->sidecar_problem), "%s", cs_strerror(fd));
		return 0;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = cs__pread_all(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		snprintf(s->sidecar_problem, sizeof(s->sidecar_problem), "unreadable");
		return 0;
	}
	rc = cs_sidecar_parse(buf, (size_t)n, out, s->sidecar_problem,
	    sizeof(s->sidecar_problem));
	free(buf);
	return rc;
}

int
cs_sidecar_parse(const char *buf, size_t len, json_t **out, char *problem, size_t n)
{
	json_error_t jerr;
	json_t *j = NULL;
	int rc = cs_json_parse(buf, len, JSON_REJECT_DUPLICATES, &j, &jerr);

	*out = NULL;
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0 || !json_is_object(j)) {
		snprintf(problem, n, "line %d: %s", jerr.line,
		    rc < 0 ? jerr.text : "not a JSON object");
		json_decref(j);
		return 0;
	}
	*out = j;
	return 0;
}

#ifdef CS_FAILPOINTS
/*
 * Test builds (custosd-failpoint, custos-failpoint): with
 * CUSTOS_REREAD_GATE=DIR every file waits between its copy and its re-read.
 * DIR/<n>.at is written (n counts from 1 in each process: the file's path
 * and the digest copied), and the work goes on once DIR/<n>.go exists, or
 * after ten minutes; a test changes the source in that window.
 */
static void
reread_gate(const struct cs_secure_req *rq, const struct cs_secured *s)
{
	static atomic_long seq;
	const char *dir = getenv("CUSTOS_REREAD_GATE");
	char path[PATH_MAX], line[2 * PATH_MAX + 128], tree[PATH_MAX];
	struct timespec ts = {0, 10000000};
	ssize_t tn;
	long n;
	int fd, len;

	if (dir == NULL)
		return;
	n = atomic_fetch_add(&seq, 1) + 1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rq->dirfd);
	tn = readlink(path, tree, sizeof(tree) - 1);
	tree[tn > 0 ? tn : 0] = '\0';
	len = snprintf(line, sizeof(line), "%s/%s %s\n", tree, rq->rel, s->res.sha256);
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

static json_int_t
ns_of(const struct timespec *t)
{
	return (json_int_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * A job left "ingested" for exactly this file (same size and mtime; same
 * inode, or on a recorder the same bytes): a crash came after its ledger
 * event and before its release. Fills s->res from the job and returns 1; 0
 * if there is no such job; -ENOMEM if it could not be looked up (the file
 * must not be taken a second time).
 */
static int
resume_ingested(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *s,
    int fd)
{
	const struct stat *sb = &s->sb;
	int recorder = (rq->flags & CS_SECURE_RECORDER) != 0;
	json_t *job = NULL;
	const char *state, *id, *sha;
	int yes = 0, rc;

	rc = cs_store_job_get(st, rq->job_key, &job);
	if (rc < 0)
		return rc == -ENOMEM ? rc : 0;
	state = json_string_value(json_object_get(job, "state"));
	id = json_string_value(json_object_get(job, "id"));
	sha = json_string_value(json_object_get(job, "sha256"));
	if (state != NULL && strcmp(state, "ingested") == 0 && id != NULL && sha != NULL &&
	    strlen(sha) == 64 && strlen(id) < sizeof(s->res.id) &&
	    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb->st_size &&
	    json_integer_value(json_object_get(job, "mtime_ns")) == ns_of(&sb->st_mtim) &&
	    (recorder ||
	        json_integer_value(json_object_get(job, "ino")) == (json_int_t)sb->st_ino)) {
		char hex[65];
		uint64_t size;
		if (recorder) {
			rc = cs_hash_fd(fd, hex, &size);
			if (rc < 0 || strcmp(hex, sha) != 0 || size != (uint64_t)sb->st_size) {
				json_decref(job);
				/* Other bytes (or unreadable: the ingest meets and names that). */
				return rc == -ENOMEM ? rc : 0;
			}
		}
		memset(&s->res, 0, sizeof(s->res));
		snprintf(s->res.id, sizeof(s->res.id), "%s", id);
		memcpy(s->res.sha256, sha, 65);
		s->res.size = (uint64_t)sb->st_size;
		s->resumed = 1;
		yes = 1;
	}
	json_decref(job);
	return yes;
}

/* Stage CS_STAGE_OPEN's metadata: caller's, then the recorder's rules, then the sidecar's. */
static int
gather_meta(const struct cs_secure_req *rq, struct cs_secured *s, struct cs_meta *m,
    const char **officers, char *bufs, size_t bufn, json_t **side, json_t **extra)
{
	int rc = 0;

	*m = rq->meta;
	if (rq->meta.officers != NULL && rq->meta.n_officers > 0) {
		size_t n = rq->meta.n_officers < 64 ? rq->meta.n_officers : 64;
		memcpy(officers, rq->meta.officers, n * sizeof(*officers));
		m->n_officers = n;
	}
	m->officers = officers;
	if (rq->meta_fn != NULL)
		rc = rq->meta_fn(rq->meta_ctx, rq->rel, m, officers, bufs, bufn, extra);
	if (rc == 0 && (rq->flags & CS_SECURE_SIDECAR))
		rc = load_sidecar(s, rq->dirfd, rq->rel, side);
	/* Bad metadata never costs the evidence: each bad field is named and left out. */
	if (rc == 0 && *side != NULL &&
	    cs_meta_from_sidecar(*side, m, officers, s->sidecar_problem,
	        sizeof(s->sidecar_problem)) < 0)
		rc = -ENOMEM;
	if (rc == 0 && *extra != NULL && m->extra == NULL)
		m->extra = *extra;
	return rc < 0 ? -ENOMEM : 0;
}

/* The "released" job: what the receipt's walk and a later scan trust (NULL: no memory). */
static json_t *
release_job(const struct cs_secure_req *rq, const struct cs_secured *s)
{
	const struct stat *sb = &s->sb;
	json_t *job;

	job = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "state", "released", "id", s->res.id,
	    "sha256", s->res.sha256, "size", (json_int_t)sb->st_size, "ino", (json_int_t)sb->st_ino,
	    "mtime_ns", ns_of(&sb->st_mtim));
	/*
	 * On a recorder: which opening of the folder read these bytes, and the
	 * inode's change time, so that the receipt's walk knows what it need not
	 * read again.
	 */
	if (job != NULL && rq->attach != NULL &&
	    (json_object_set_new(job, "attach", json_string(rq->attach)) < 0 ||
	        json_object_set_new(job, "ctime_ns", json_integer(ns_of(&sb->st_ctim))) < 0)) {
		json_decref(job);
		job = NULL;
	}
	return job;
}

/* Deletes only the very file that was read (same inode, unchanged), and its sidecar. */
static void
delete_source(const struct cs_secure_req *rq, const struct stat *sb)
{
	struct stat again;
	char side[PATH_MAX];

	if (fstatat(rq->dirfd, rq->rel, &again, AT_SYMLINK_NOFOLLOW) < 0 ||
	    again.st_ino != sb->st_ino || again.st_dev != sb->st_dev ||
	    again.st_size != sb->st_size || again.st_mtim.tv_nsec != sb->st_mtim.tv_nsec ||
	    again.st_mtim.tv_sec != sb->st_mtim.tv_sec)
		return;
	if (unlinkat(rq->dirfd, rq->rel, 0) == 0 && (rq->flags & CS_SECURE_SIDECAR) &&
	    snprintf(side, sizeof(side), "%s.json", rq->rel) < (int)sizeof(side))
		(void)unlinkat(rq->dirfd, side, 0);
}

/*
 * A refusal is recorded in the job, so that the file is not taken again
 * until it changes; the file is named by what its directory entry is now.
 */
static void
record_refusal(struct cs_store *st, const struct cs_secure_req *rq, int why)
{
	struct stat sb;
	json_t *job;

	if (fstatat(rq->dirfd, rq->rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	job = json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", "refused", "reason",
	    cs_strerror(why), "size", (json_int_t)sb.st_size, "ino", (json_int_t)sb.st_ino,
	    "mtime_ns", ns_of(&sb.st_mtim));
	if (job != NULL)
		(void)cs_store_job_put(st, rq->job_key, job);
	json_decref(job);
}

/* *out as before any stage: nothing open, no batch. */
static void
secured_reset(struct cs_secured *out)
{
	memset(out, 0, sizeof(*out));
	out->stage = CS_STAGE_OPEN;
	out->fd = -1;
	out->slot = -1;
	out->dirfd = -1;
}

/*
 * The stages of cs_secure(), one after the other or apart (custosd runs
 * each as its own work item, so that one file is re-read while the next is
 * copied; custos ingest and custosd put the copies in a group commit):
 * out->fd is the source from cs_secure_copy() to cs_secure_end().
 */
static int
secure_copy(struct cs_store *st, struct cs_batch *b, int slot, const struct cs_secure_req *rq,
    struct cs_secured *out)
{
	const char *officers[64];
	char bufs[512];
	struct cs_meta m;
	json_t *side = NULL, *extra = NULL, *ident = NULL;
	int rc;

	secured_reset(out);
	out->fd = cs__source_open(rq->dirfd, rq->rel, rq->max_size,
	    (rq->flags & CS_SECURE_LINKED_OK) != 0, &out->sb);
	if (out->fd < 0) {
		rc = out->fd;
		out->fd = -1;
		goto out;
	}
	rc = gather_meta(rq, out, &m, officers, bufs, sizeof(bufs), &side, &extra);
	if (rc < 0) /* out of memory: no file is secured without its metadata */
		goto out;

	out->stage = CS_STAGE_INGEST;
	if (rq->job_key != NULL) {
		ident = json_pack("{s:I, s:I, s:I}", "ino", (json_int_t)out->sb.st_ino, "size",
		    (json_int_t)out->sb.st_size, "mtime_ns", ns_of(&out->sb.st_mtim));
		rc = ident != NULL ? resume_ingested(st, rq, out, out->fd) : -ENOMEM;
		m.job_key = rq->job_key;
		m.job_ident = ident;
	}
	/*
	 * rc > 0: its event was written before a crash; finish it, take nothing
	 * again. In a batch the copy is durable and recorded only once the batch
	 * is committed: cs_secure_reread() takes its result from the batch.
	 */
	if (rc == 0 && b != NULL) {
		rc = slot >= 0 ? cs_batch_add_fd_at(b, slot, out->fd, rq->rel, &m)
		               : cs_batch_add_fd(b, out->fd, rq->rel, &m);
		slot = -1; /* the add ended the reservation either way */
		if (rc >= 0) {
			out->batch = b;
			out->slot = rc;
			rc = 0;
		}
	} else if (rc == 0) {
		rc = cs_store_ingest_fd(st, out->fd, rq->rel, &m, &out->res);
	}
	if (rc > 0)
		rc = 0;
out:
	if (b != NULL)
		cs_batch_release(b, slot); /* refused (or resumed) before its copy */
	json_decref(side);
	json_decref(extra);
	json_decref(ident);
	return rc;
}

int
cs_secure_copy(struct cs_store *st, struct cs_batch *b, const struct cs_secure_req *rq,
    struct cs_secured *out)
{
	return secure_copy(st, b, -1, rq, out);
}

/*
 * Reads the source again for the re-read. From the device, where it can:
 * with O_DIRECT on the very descriptor the copy read (no cached page can
 * answer, and no page is cached by it), else with the cached pages dropped
 * first (a filesystem that refuses O_DIRECT, such as tmpfs). A file that
 * fits in one buffer is read with one call either way.
 */
#define REREAD_BUF (1u << 20)
static int
reread_hash(int fd, int from_device, char hex[65], uint64_t *size)
{
	static const char digits[] = "0123456789abcdef";
	int flags = fcntl(fd, F_GETFL);
	EVP_MD_CTX *md = NULL;
	unsigned char dg[32];
	uint8_t *raw = NULL, *buf;
	uint64_t total = 0;
	size_t bufn = REREAD_BUF;
	struct stat sb;
	int direct = 0, rc;

	if (!from_device)
		return cs_hash_fd(fd, hex, size);
	if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) == 0)
		direct = 1;
	else
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (!direct)
		return cs_hash_fd(fd, hex, size);
	/* A small file needs no more than its size, in whole blocks, and one more. */
	if (fstat(fd, &sb) == 0 && sb.st_size >= 0 && (uint64_t)sb.st_size < REREAD_BUF)
		bufn = ((size_t)sb.st_size / 4096 + 1) * 4096;
	raw = malloc(bufn + 4096);
	md = EVP_MD_CTX_new();
	if (raw == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	buf = (uint8_t *)(((uintptr_t)raw + 4095) & ~(uintptr_t)4095);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, bufn, (off_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && total % 4096 == 0) {
			/* Direct reads refused after all: the cached way, from the start. */
			(void)fcntl(fd, F_SETFL, flags);
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			EVP_MD_CTX_free(md);
			free(raw);
			return cs_hash_fd(fd, hex, size);
		}
		if (n < 0) {
			rc = errno == EIO ? CS_ESOURCE : -errno;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			goto out;
		}
		total += (uint64_t)n;
		if (n % 4096 != 0) {
			/* The tail: a direct read ends at the file's end, which must be here. */
			if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size == total)
				break;
			(void)fcntl(fd, F_SETFL, flags); /* else read it all the cached way */
			EVP_MD_CTX_free(md);
			free(raw);
			return cs_hash_fd(fd, hex, size);
		}
	}
	if (EVP_DigestFinal_ex(md, dg, NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[dg[i] >> 4];
		hex[2 * i + 1] = digits[dg[i] & 15];
	}
	hex[64] = '\0';
	*size = total;
	rc = 0;
out:
	(void)fcntl(fd, F_SETFL, flags);
	EVP_MD_CTX_free(md);
	free(raw);
	return rc;
}

int
cs_secure_reread(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out)
{
	char hex[65];
	uint64_t size;
	json_t *job;
	int rc;

	/* A copy in a batch: durable and recorded only if the commit made it so. */
	if (out->slot >= 0) {
		rc = cs_batch_result(out->batch, out->slot, &out->res);
		if (rc < 0)
			return rc;
	}
	/*
	 * Nothing is released unproven: re-read the source, same digest. With
	 * CS_SECURE_FROM_DEVICE the second read comes from the device (a
	 * recorder's card) where it can, not from the pages the copy cached.
	 */
	out->stage = CS_STAGE_REREAD;
#ifdef CS_FAILPOINTS
	reread_gate(rq, out);
#endif
	rc = reread_hash(out->fd, (rq->flags & CS_SECURE_FROM_DEVICE) != 0, hex, &size);
	if (rc == 0 && (strcmp(hex, out->res.sha256) != 0 || size != out->res.size)) {
		/*
		 * Its copy stays stored, but proves nothing about the source now:
		 * the job is no longer "ingested" (which a retake would finish
		 * without copying again), so the file is copied anew once it
		 * settles, even with its size and mtime unchanged. Should this
		 * record fail, the retake only finds the change again.
		 */
		if (rq->job_key != NULL) {
			job = json_pack("{s:s, s:s, s:s, s:I}", "state", "changed", "id",
			    out->res.id, "sha256", out->res.sha256, "size",
			    (json_int_t)out->res.size);
			if (job != NULL)
				(void)cs_store_job_put(st, rq->job_key, job);
			json_decref(job);
		}
		rc = CS_ECHANGED;
	}
	return rc;
}

int
cs_secure_release(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out)
{
	int rc;

	cs_secure_release_all(st, 1, &rq, &out, &rc);
	return rc;
}

#define RELEASE_ALL_MAX 256

/* The index entry of a held job: "held/<id>/<sha256 hex of the key>" (key: 160 bytes). */
static int
held_key(const char *id, const char *job_key, char key[160])
{
	unsigned char dg[32];
	char hex[65];

	if (EVP_Digest(job_key, strlen(job_key), dg, NULL, EVP_sha256(), NULL) != 1)
		return -ENOMEM;
	cs__hex(dg, 32, hex);
	if (snprintf(key, 160, "held/%s/%s", id, hex) >= 160)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * The "held" job (as the released one, with what the release needs later)
 * and its index entry; -ENOMEM.
 */
static int
hold_jobs(const struct cs_secure_req *rq, const struct cs_secured *s, char key[160],
    json_t **job, json_t **entry)
{
	int del = (rq->flags & CS_SECURE_DELETE) && rq->tree != NULL;
	int rc = held_key(s->res.id, rq->job_key, key);

	if (rc < 0)
		return rc;
	*job = release_job(rq, s);
	*entry = json_pack("{s:s}", "key", rq->job_key);
	if (*job == NULL || *entry == NULL ||
	    json_object_set_new(*job, "state", json_string("held")) < 0 ||
	    (del && (json_object_set_new(*job, "tree", json_string(rq->tree)) < 0 ||
	                json_object_set_new(*job, "rel", json_string(rq->rel)) < 0 ||
	                json_object_set_new(*job, "sidecar",
	                    json_boolean((rq->flags & CS_SECURE_SIDECAR) != 0)) < 0))) {
		json_decref(*job);
		json_decref(*entry);
		*job = *entry = NULL;
		return -ENOMEM;
	}
	return 0;
}

void
cs_secure_release_all(struct cs_store *st, size_t n, const struct cs_secure_req *const *rq,
    struct cs_secured *const *out, int *rc)
{
	const char *keys[2 * RELEASE_ALL_MAX] = {0};
	json_t *jobs[2 * RELEASE_ALL_MAX] = {0};
	char hkeys[RELEASE_ALL_MAX][160];
	size_t at[2 * RELEASE_ALL_MAX], nj = 0;
	int put;

	/* More than one transaction holds: the rest in the next. */
	if (n > RELEASE_ALL_MAX) {
		cs_secure_release_all(st, n - RELEASE_ALL_MAX, rq + RELEASE_ALL_MAX,
		    out + RELEASE_ALL_MAX, rc + RELEASE_ALL_MAX);
		n = RELEASE_ALL_MAX;
	}
	/*
	 * Released: an upload is deleted first, then the release recorded. A
	 * crash in between leaves the job "ingested" for a file that is gone
	 * (nothing to do); the other order would leave a released file in the
	 * inbox for good. The releases of many files are recorded in one
	 * catalog transaction. A held file (CS_SECURE_HOLD) is not deleted: its
	 * "held" job and index entry are recorded instead.
	 */
	for (size_t i = 0; i < n; i++) {
		out[i]->stage = CS_STAGE_RELEASE;
		rc[i] = 0;
		if (rq[i]->job_key != NULL && (rq[i]->flags & CS_SECURE_HOLD)) {
			rc[i] = hold_jobs(rq[i], out[i], hkeys[i], &jobs[nj], &jobs[nj + 1]);
			if (rc[i] < 0)
				continue;
			keys[nj] = rq[i]->job_key;
			keys[nj + 1] = hkeys[i];
			at[nj++] = i;
			at[nj++] = i;
			continue;
		}
		if (rq[i]->flags & CS_SECURE_DELETE)
			delete_source(rq[i], &out[i]->sb);
		if (rq[i]->job_key == NULL)
			continue;
		jobs[nj] = release_job(rq[i], out[i]);
		if (jobs[nj] == NULL) { /* released the next time, not deleted without its record */
			rc[i] = -ENOMEM;
			continue;
		}
		keys[nj] = rq[i]->job_key;
		at[nj++] = i;
	}
	put = cs_store_jobs_put(st, nj, keys, (const json_t *const *)jobs);
	for (size_t j = 0; j < nj; j++) {
		rc[at[j]] = put;
		json_decref(jobs[j]);
	}
}

/* ---- held files ---- */

#define UNHOLD_MAX 128

struct held_scan {
	const char *after; /* cs_secure_held_each: skip ids up to this one */
	char last[100];
	int (*cb)(void *ctx, const char *id);
	void *ctx;
	/* cs_secure_unhold: the jobs' keys found */
	char *keys[UNHOLD_MAX];
	char *entries[UNHOLD_MAX];
	size_t n, max;
	int oom;
};

static int
unhold_collect(void *ctx, const char *key, json_t *entry)
{
	struct held_scan *h = ctx;
	const char *k = json_string_value(json_object_get(entry, "key"));

	if (k == NULL)
		return 0;
	h->keys[h->n] = strdup(k);
	h->entries[h->n] = strdup(key);
	if (h->keys[h->n] == NULL || h->entries[h->n] == NULL) {
		free(h->keys[h->n]);
		free(h->entries[h->n]);
		h->oom = 1;
		return 1;
	}
	return ++h->n == h->max;
}

/* Deletes the held upload if it is still the very file that was read, and its sidecar. */
static void
unhold_delete(const json_t *job)
{
	const char *tree = json_string_value(json_object_get(job, "tree"));
	const char *rel = json_string_value(json_object_get(job, "rel"));
	struct stat sb;
	char side[PATH_MAX];
	int dirfd;

	if (tree == NULL || rel == NULL)
		return;
	dirfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	if (fstatat(dirfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
	    json_integer_value(json_object_get(job, "ino")) == (json_int_t)sb.st_ino &&
	    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb.st_size &&
	    json_integer_value(json_object_get(job, "mtime_ns")) == ns_of(&sb.st_mtim) &&
	    unlinkat(dirfd, rel, 0) == 0 && json_is_true(json_object_get(job, "sidecar")) &&
	    snprintf(side, sizeof(side), "%s.json", rel) < (int)sizeof(side))
		(void)unlinkat(dirfd, side, 0);
	close(dirfd);
}

int
cs_secure_unhold(struct cs_store *st, const char *id, size_t max, size_t *n)
{
	struct held_scan h = {0};
	const char *keys[2 * UNHOLD_MAX];
	json_t *jobs[2 * UNHOLD_MAX] = {0};
	char prefix[100];
	size_t nj = 0, done = 0;
	int rc;

	if (n != NULL)
		*n = 0;
	if (snprintf(prefix, sizeof(prefix), "held/%s%s", id != NULL ? id : "",
	        id != NULL ? "/" : "") >= (int)sizeof(prefix))
		return -ENAMETOOLONG;
	h.max = max < UNHOLD_MAX ? max : UNHOLD_MAX;
	if (h.max == 0)
		return 0;
	rc = cs_store_jobs_each(st, prefix, unhold_collect, &h);
	if (rc == 0 && h.oom)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < h.n; i++) {
		json_t *job = NULL;
		const char *state;
		int got = cs_store_job_get(st, h.keys[i], &job);
		if (got == -ENOMEM) {
			rc = got;
			break;
		}
		state = got == 0 ? json_string_value(json_object_get(job, "state")) : NULL;
		if (state != NULL && strcmp(state, "held") == 0) {
			/* Deleted first, then recorded, as cs_secure_release_all() does. */
			unhold_delete(job);
			json_object_del(job, "tree");
			json_object_del(job, "rel");
			json_object_del(job, "sidecar");
			if (json_object_set_new(job, "state", json_string("released")) < 0) {
				json_decref(job);
				rc = -ENOMEM;
				break;
			}
			keys[nj] = h.keys[i];
			jobs[nj++] = job;
			done++;
		} else {
			json_decref(job); /* released or taken again since: only the entry goes */
		}
		keys[nj] = h.entries[i];
		jobs[nj++] = NULL;
	}
	if (rc == 0)
		rc = cs_store_jobs_put(st, nj, keys, (const json_t *const *)jobs);
	for (size_t i = 0; i < nj; i++)
		json_decref(jobs[i]);
	for (size_t i = 0; i < h.n; i++) {
		free(h.keys[i]);
		free(h.entries[i]);
	}
	if (rc == 0 && n != NULL)
		*n = done;
	return rc;
}

static int
held_id(void *ctx, const char *key, json_t *entry)
{
	struct held_scan *h = ctx;
	const char *id = key + strlen("held/"), *slash = strchr(id, '/');
	size_t len = slash != NULL ? (size_t)(slash - id) : strlen(id);

	(void)entry;
	if (len == 0 || len >= sizeof(h->last))
		return 0;
	if (strncmp(h->last, id, len) == 0 && h->last[len] == '\0')
		return 0;
	memcpy(h->last, id, len);
	h->last[len] = '\0';
	if (h->after != NULL && strcmp(h->last, h->after) <= 0)
		return 0;
	return h->cb(h->ctx, h->last);
}

int
cs_secure_held_each(struct cs_store *st, const char *after,
    int (*cb)(void *ctx, const char *id), void *ctx)
{
	struct held_scan h = {0};

	h.after = after != NULL && after[0] != '\0' ? after : NULL;
	h.cb = cb;
	h.ctx = ctx;
	return cs_store_jobs_each(st, "held/", held_id, &h);
}

void
cs_secure_end(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out,
    int rc)
{
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	if (rc < 0 && rq->job_key != NULL && cs_fault(st, rc, out->stage) == CS_FAULT_REFUSED)
		record_refusal(st, rq, rc);
}

int
cs_secure_finish(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out)
{
	int rc = out->fd >= 0 ? cs_secure_reread(st, rq, out) : -EINVAL;

	if (rc == 0)
		rc = cs_secure_release(st, rq, out);
	cs_secure_end(st, rq, out, rc);
	return rc;
}

int
cs_secure(struct cs_store *st, const struct cs_secure_req *rq, struct cs_secured *out)
{
	int rc = cs_secure_copy(st, NULL, rq, out);

	if (rc < 0) {
		cs_secure_end(st, rq, out, rc);
		return rc;
	}
	return cs_secure_finish(st, rq, out);
}

/*
 * Opens the directory part of a path given by a person, as cs_secure_path()
 * does; *basep points into `path`. Returns the directory's descriptor or a
 * negative code.
 */
static int
open_parent(const char *path, const char **basep)
{

	const char *slash = strrchr(path, '/');
	const char *base = slash != NULL ? slash + 1 : path;
	char *dir = NULL;
	struct stat sb;
	int dirfd, rc;

	if (*path == '\0')
		return -ENOENT;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EISDIR; /* "dir/", ".", "..": a directory by its name */
	if (slash == path)
		dir = strdup("/");
	else if (slash != NULL)
		dir = strndup(path, (size_t)(slash - path));
	else
		dir = strdup(".");
	if (dir == NULL)
		return -ENOMEM;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (dirfd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	/*
	 * Look before opening: a socket cannot be opened (ENXIO, an unclear
	 * refusal) and opening a device node can act on the device. The checks
	 * on the opened descriptor still decide, in case the name changes.
	 */
	if (fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		close(dirfd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(dirfd);
		return S_ISLNK(sb.st_mode) ? -ELOOP : S_ISDIR(sb.st_mode) ? -EISDIR : CS_ENOTREG;
	}
	*basep = base;
	return dirfd;
}

int
cs_secure_path_copy(struct cs_store *st, struct cs_batch *b, int slot, const char *path,
    const struct cs_secure_req *rq, struct cs_secured *out)
{
	struct cs_secure_req r = *rq;
	int rc;

	secured_reset(out);
	r.dirfd = open_parent(path, &r.rel);
	if (r.dirfd < 0) {
		if (b != NULL)
			cs_batch_release(b, slot);
		return r.dirfd;
	}
	rc = secure_copy(st, b, slot, &r, out);
	if (rc < 0) {
		cs_secure_end(st, &r, out, rc);
		close(r.dirfd);
	} else {
		out->dirfd = r.dirfd;
	}
	return rc;
}

int
cs_secure_path_finish(struct cs_store *st, const char *path, const struct cs_secure_req *rq,
    struct cs_secured *out)
{
	struct cs_secure_req r = *rq;
	const char *slash = strrchr(path, '/');
	int rc;

	r.dirfd = out->dirfd;
	r.rel = slash != NULL ? slash + 1 : path;
	rc = cs_secure_finish(st, &r, out);
	if (out->dirfd >= 0)
		close(out->dirfd);
	out->dirfd = -1;
	return rc;
}

int
cs_secure_path(struct cs_store *st, const char *path, const struct cs_secure_req *rq,
    struct cs_secured *out)
{
	int rc = cs_secure_path_copy(st, NULL, -1, path, rq, out);

	return rc < 0 ? rc : cs_secure_path_finish(st, path, rq, out);
}
