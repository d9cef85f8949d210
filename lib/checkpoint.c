/*
 * Signed checkpoints of the ledger (formats.md 4), each a C2SP signed note of
 * the tlog checkpoint text, kept in <root>/checkpoints/journal (append-only:
 * every checkpoint ever signed, in order) with the newest also in
 * <root>/checkpoints/latest. Signing a new one when the tree grew (checked
 * against the newest only), finding the newest (a bounded read), loading all
 * of them (for verify), moving the older one-file-per-checkpoint layout
 * (checkpoints/<20-digit size>) into the journal, and the store's verifier key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "custos/checkpoint.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "store_internal.h"
#include "util.h"

/*
 * The checkpoint journal: a 16-byte header, then per checkpoint a 4-byte
 * big-endian length N, the N bytes of the signed note, the 32-byte SHA-256 of
 * the note as a checksum, and N again (4 bytes), so that the last entry is
 * found from the end of the file without reading the others.
 */
#define CPJ_NAME "checkpoints/journal"
#define CPJ_LATEST "checkpoints/latest"
#define CPJ_MAGIC "CUSTOS-CHECKPTS\n"
#define CPJ_HDR 16u
#define CPJ_NOTE_MAX (1u << 16)
#define CPJ_OVER 40u /* length, checksum, length */

struct cpj_ent {
	uint64_t off;  /* where its length prefix is */
	uint64_t next; /* just past its trailing length */
	uint32_t len;  /* the note's length */
};

static int
cp_cmp(const void *a, const void *b)
{
	const struct cs__cp *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

/* The store's verifier, from keys/ledger.pub. */
int
cs__store_verifier_load(struct cs_store *st, struct cs_verifier **v)
{
	char *vkey = NULL;
	int rc = cs_store_verifier_key(st, &vkey);

	if (rc == 0)
		rc = cs_verifier_parse(v, vkey, strlen(vkey));
	free(vkey);
	return rc;
}

static uint32_t
get_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void
put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* 1 if `name` is a checkpoint's file name in the older layout: 20 decimal digits. */
static int
cp_name(const char *name)
{
	return strlen(name) == 20 && strspn(name, "0123456789") == 20;
}

/*
 * Checks the note held in cp->note (cp->len bytes): cp->valid when it parses,
 * is signed by `v` and is of this store's origin (and, when `size` is not
 * UINT64_MAX, of that size). 0 also for an invalid one; -ENOMEM or
 * CS_ECRYPTO when the check could not be made.
 */
static int
cp_check(struct cs_store *st, struct cs_verifier *v, struct cs__cp *cp, uint64_t size)
{
	struct cs_checkpoint c;
	size_t tl;
	int rc = cs_note_verify(v, cp->note, cp->len, &tl);

	if (rc == -ENOMEM || rc == CS_ECRYPTO)
		return rc; /* the check could not be made: not an invalid checkpoint */
	cp->valid = 0;
	if (rc == 0 && cs_checkpoint_parse(&c, cp->note, tl) == 0 &&
	    (size == UINT64_MAX || c.size == size) && strcmp(c.origin, st->origin) == 0) {
		cp->valid = 1;
		cp->size = c.size;
		memcpy(cp->root, c.root, 32);
	}
	return 0;
}

/*
 * Reads and checks the file `rel` (under the root) into *cp, named `rel`;
 * `size` as in cp_check. A missing file is -ENOENT.
 */
static int
cp_read_file(struct cs_store *st, struct cs_verifier *v, const char *rel, uint64_t size,
    struct cs__cp *cp)
{
	int rc;

	snprintf(cp->file, sizeof(cp->file), "%s", rel);
	cp->size = size == UINT64_MAX ? 0 : size;
	rc = cs__read_file(st->rootfd, rel, CPJ_NOTE_MAX, &cp->note, &cp->len);
	if (rc == -ENOENT || rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return 0; /* unreadable or too large: an invalid checkpoint */
	rc = cp_check(st, v, cp, size);
	if (rc < 0) {
		free(cp->note);
		cp->note = NULL;
	}
	return rc;
}

/*
 * 1 if the file (`fsize` bytes) ends with a complete entry that starts at or
 * after `off` (the one at `off` itself by its trailing length alone).
 */
static int
cpj_complete_end(int fd, uint64_t off, uint64_t fsize)
{
	uint8_t b[4], sum[32], want[32];
	uint64_t start;
	uint32_t l;
	char *data;
	int ok;

	if (fsize - off < CPJ_OVER + 1 || cs__pread_all(fd, b, 4, (off_t)(fsize - 4)) != 4)
		return 0;
	l = get_be32(b);
	if (l == 0 || l > CPJ_NOTE_MAX || (uint64_t)l + CPJ_OVER > fsize - off)
		return 0;
	start = fsize - l - CPJ_OVER;
	if (start == off)
		return 1;
	if (cs__pread_all(fd, b, 4, (off_t)start) != 4 || get_be32(b) != l)
		return 0;
	data = malloc(l);
	if (data == NULL)
		return 0;
	ok = cs__pread_all(fd, data, l, (off_t)(start + 4)) == (ssize_t)l &&
	    cs__pread_all(fd, sum, 32, (off_t)(start + 4 + l)) == 32 &&
	    EVP_Digest(data, l, want, NULL, EVP_sha256(), NULL) == 1 && memcmp(sum, want, 32) == 0;
	free(data);
	return ok;
}

/*
 * Reads the journal entry at `off` of a file of `fsize` bytes. 1: a complete
 * entry whose checksum matches (*note malloc'd and NUL-terminated when note
 * is not NULL); 0: `off` is the end; CS_ELEDGER: not a valid entry, *torn set
 * when it is the start of one cut short by the end of the file (a write that
 * was interrupted) rather than damage. Other errors: reading failed.
 */
static int
cpj_read(int fd, uint64_t off, uint64_t fsize, struct cpj_ent *e, char **note, int *torn)
{
	uint8_t b[4], sum[32], want[32];
	char *data;
	ssize_t n;

	*torn = 0;
	memset(e, 0, sizeof(*e));
	e->off = off;
	if (off >= fsize)
		return 0;
	if (fsize - off < 4) {
		*torn = 1;
		return CS_ELEDGER;
	}
	n = cs__pread_all(fd, b, 4, (off_t)off);
	if (n != 4)
		return n < 0 ? (int)n : -EIO;
	e->len = get_be32(b);
	e->next = off + e->len + CPJ_OVER;
	if (e->len == 0 || e->len > CPJ_NOTE_MAX)
		return CS_ELEDGER;
	if (e->next > fsize) {
		/*
		 * Cut short by the end of the file, unless a complete entry ends
		 * the file after this one (or this one, by its trailing length):
		 * then its length prefix is damaged.
		 */
		*torn = !cpj_complete_end(fd, off, fsize);
		return CS_ELEDGER;
	}
	data = malloc(e->len + 1u);
	if (data == NULL)
		return -ENOMEM;
	n = cs__pread_all(fd, data, e->len, (off_t)(off + 4));
	if (n == (ssize_t)e->len)
		n = cs__pread_all(fd, sum, 32, (off_t)(off + 4 + e->len));
	if (n == 32)
		n = cs__pread_all(fd, b, 4, (off_t)(off + 36 + e->len));
	if (n != 4) {
		free(data);
		return n < 0 ? (int)n : -EIO;
	}
	data[e->len] = '\0';
	if (EVP_Digest(data, e->len, want, NULL, EVP_sha256(), NULL) != 1) {
		free(data);
		return CS_ECRYPTO;
	}
	if (memcmp(sum, want, 32) != 0 || get_be32(b) != e->len) {
		free(data);
		return CS_ELEDGER;
	}
	if (note != NULL)
		*note = data;
	else
		free(data);
	return 1;
}

/*
 * The last entry of a journal that ends at `end`, found from its trailing
 * length: 1 (as cpj_read), 0 if the journal holds none, CS_ELEDGER if the
 * bytes before `end` are not a complete entry.
 */
static int
cpj_read_last(int fd, uint64_t end, struct cpj_ent *e, char **note)
{
	uint8_t b[4];
	uint32_t len;
	int torn, rc;

	if (end <= CPJ_HDR)
		return 0;
	if (end - CPJ_HDR < CPJ_OVER + 1 || cs__pread_all(fd, b, 4, (off_t)(end - 4)) != 4)
		return CS_ELEDGER;
	len = get_be32(b);
	if (len == 0 || len > CPJ_NOTE_MAX || (uint64_t)len + CPJ_OVER > end - CPJ_HDR)
		return CS_ELEDGER;
	rc = cpj_read(fd, end - len - CPJ_OVER, end, e, note, &torn);
	if (rc == 1 && e->next != end) {
		free(note != NULL ? *note : NULL);
		rc = CS_ELEDGER;
	}
	return rc == 0 ? CS_ELEDGER : rc;
}

/* Opens the checkpoint journal; -ENOENT if the store has none (the older layout). */
static int
cpj_open(struct cs_store *st, int writable, uint64_t *fsize)
{
	struct stat sb;
	char magic[CPJ_HDR];
	int fd = openat(st->rootfd, CPJ_NAME,
	    (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*fsize = (uint64_t)sb.st_size;
	if (*fsize < CPJ_HDR || cs__pread_all(fd, magic, CPJ_HDR, 0) != CPJ_HDR ||
	    memcmp(magic, CPJ_MAGIC, CPJ_HDR) != 0) {
		close(fd);
		return CS_ELEDGER;
	}
	return fd;
}

/* One journal entry as a struct cs__cp named by its position. */
static int
cpj_cp(struct cs_store *st, struct cs_verifier *v, const struct cpj_ent *e, uint64_t k, char *note,
    struct cs__cp *cp)
{
	int rc;

	memset(cp, 0, sizeof(*cp));
	snprintf(cp->file, sizeof(cp->file), "%s entry %llu (offset %llu)", CPJ_NAME,
	    (unsigned long long)k, (unsigned long long)e->off);
	cp->note = note;
	cp->len = e->len;
	rc = cp_check(st, v, cp, UINT64_MAX);
	if (rc < 0) {
		free(cp->note);
		cp->note = NULL;
	}
	return rc;
}

static int
cps_push(struct cs__cp **cps, size_t *count, size_t *cap, struct cs__cp *cp)
{
	if (*count == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct cs__cp *np = realloc(*cps, nc * sizeof(*np));
		if (np == NULL) {
			free(cp->note);
			return -ENOMEM;
		}
		*cps = np;
		*cap = nc;
	}
	(*cps)[(*count)++] = *cp;
	return 0;
}

/* The older layout's files (checkpoints/<20-digit size>), read and checked. */
static int
files_load(struct cs_store *st, struct cs_verifier *v, struct cs__cp **cps, size_t *count,
    size_t *cap)
{
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc = 0;

	fd = openat(st->rootfd, "checkpoints", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		struct cs__cp cp = {0};
		char rel[64];

		if (!cp_name(de->d_name))
			continue;
		snprintf(rel, sizeof(rel), "checkpoints/%.20s", de->d_name);
		rc = cp_read_file(st, v, rel, strtoull(de->d_name, NULL, 10), &cp);
		if (rc == -ENOENT)
			continue;
		if (rc == 0)
			rc = cps_push(cps, count, cap, &cp);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

int
cs__checkpoints_load(struct cs_store *st, struct cs__cp **out, size_t *n)
{
	struct cs_verifier *v = NULL;
	struct cs__cp *cps = NULL, cp = {0};
	size_t count = 0, cap = 0;
	uint64_t fsize = 0, off = CPJ_HDR, k = 0;
	int fd = -1, rc;

	rc = cs__store_verifier_load(st, &v);
	if (rc < 0)
		return rc;
	fd = cpj_open(st, 0, &fsize);
	if (fd == CS_ELEDGER) {
		memset(&cp, 0, sizeof(cp));
		snprintf(cp.file, sizeof(cp.file), "%s", CPJ_NAME);
		cp.damaged = CS__CP_HEADER;
		rc = cps_push(&cps, &count, &cap, &cp);
		if (rc < 0)
			goto out;
	} else if (fd < 0 && fd != -ENOENT) {
		rc = fd;
		goto out;
	}
	while (fd >= 0) {
		struct cpj_ent e;
		char *note = NULL;
		int torn, r = cpj_read(fd, off, fsize, &e, &note, &torn);

		if (r == 0)
			break;
		if (r == 1) {
			rc = cpj_cp(st, v, &e, k, note, &cp);
			if (rc == 0)
				rc = cps_push(&cps, &count, &cap, &cp);
			if (rc < 0)
				goto out;
			off = e.next;
			k++;
			continue;
		}
		if (r != CS_ELEDGER) {
			rc = r;
			goto out;
		}
		memset(&cp, 0, sizeof(cp));
		snprintf(cp.file, sizeof(cp.file), "%s entry %llu (offset %llu)", CPJ_NAME,
		    (unsigned long long)k, (unsigned long long)off);
		cp.damaged = torn ? CS__CP_TORN : CS__CP_LOST;
		/* A damaged entry whose two lengths still agree is read past. */
		if (!torn && e.len > 0 && e.len <= CPJ_NOTE_MAX && e.next <= fsize) {
			uint8_t b[4];
			if (cs__pread_all(fd, b, 4, (off_t)(e.next - 4)) == 4 &&
			    get_be32(b) == e.len)
				cp.damaged = CS__CP_DAMAGED;
		}
		rc = cps_push(&cps, &count, &cap, &cp);
		if (rc < 0)
			goto out;
		if (cp.damaged != CS__CP_DAMAGED)
			break;
		off = e.next;
		k++;
	}
	/* checkpoints/latest: a copy of the newest; checked like the others. */
	memset(&cp, 0, sizeof(cp));
	rc = cp_read_file(st, v, CPJ_LATEST, UINT64_MAX, &cp);
	if (rc == 0)
		rc = cps_push(&cps, &count, &cap, &cp);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	/* Files of the older layout not (yet) moved into the journal. */
	rc = files_load(st, v, &cps, &count, &cap);
	if (rc < 0)
		goto out;
	if (count > 1) /* qsort(NULL, 0, ...) is undefined (UBSan stops init on it) */
		qsort(cps, count, sizeof(*cps), cp_cmp);
	*out = cps;
	*n = count;
	cps = NULL;
	count = 0;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	cs__checkpoints_free(cps, count);
	cs_verifier_free(v);
	return rc;
}

/* A checkpoint's file name and the size it says, for sorting the newest first. */
struct cp_ent {
	uint64_t size;
	char name[21];
};

static int
newest_first(const void *a, const void *b)
{
	const struct cp_ent *x = a, *y = b;

	return x->size > y->size ? -1 : x->size < y->size;
}

/* The newest valid checkpoint of the older layout, reading files from the largest size down. */
static int
files_newest(struct cs_store *st, struct cs_verifier *v, struct cs__cp *out)
{
	struct cp_ent *ents = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc;

	fd = openat(st->rootfd, "checkpoints", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!cp_name(de->d_name))
			continue;
		if (count == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct cp_ent *ne = realloc(ents, nc * sizeof(*ne));
			if (ne == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			ents = ne;
			cap = nc;
		}
		ents[count].size = strtoull(de->d_name, NULL, 10);
		memcpy(ents[count++].name, de->d_name, 21);
	}
	if (count > 1)
		qsort(ents, count, sizeof(*ents), newest_first);
	/* Only the largest valid size is wanted: check from the largest down, read no more. */
	rc = CS_ENOTFOUND;
	for (size_t i = 0; i < count; i++) {
		struct cs__cp cp = {0};
		char rel[64];
		int r;

		snprintf(rel, sizeof(rel), "checkpoints/%.20s", ents[i].name);
		r = cp_read_file(st, v, rel, ents[i].size, &cp);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			rc = r;
			break;
		}
		if (cp.valid) {
			*out = cp;
			rc = 0;
			break;
		}
		free(cp.note);
	}
out:
	free(ents);
	if (d != NULL)
		closedir(d);
	return rc;
}

/*
 * The newest checkpoint: the larger of checkpoints/latest and the journal's
 * last valid entry (a crash between appending to the journal and replacing
 * latest leaves latest one behind). *stale_latest: 1 when the journal's entry
 * is the newer (latest needs writing again); 2 when latest is a valid
 * checkpoint the journal's newest is not, of its size or larger: the journal
 * was cut or damaged (*out is then latest).
 * Without a journal (a store of the older layout not yet opened by a writer
 * of this version), the newest of its files.
 */
static int
newest(struct cs_store *st, struct cs_verifier *v, struct cs__cp *out, int *stale_latest)
{
	struct cs__cp a = {0}, b = {0};
	struct cpj_ent e;
	uint64_t fsize;
	char *note = NULL;
	int fd, rc, same;

	*stale_latest = 0;
	rc = cp_read_file(st, v, CPJ_LATEST, UINT64_MAX, &a);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	fd = cpj_open(st, 0, &fsize);
	if (fd == -ENOENT && !a.valid) {
		free(a.note);
		return files_newest(st, v, out);
	}
	/* The journal's last valid entry, walking back over entries that do not verify. */
	for (uint64_t end = fsize; fd >= 0; end = e.off) {
		note = NULL;
		rc = cpj_read_last(fd, end, &e, &note);
		if (rc != 1)
			break;
		free(b.note);
		memset(&b, 0, sizeof(b));
		rc = cpj_cp(st, v, &e, 0, note, &b);
		if (rc < 0 || b.valid)
			break;
	}
	if (rc < 0 && rc != CS_ELEDGER) {
		close(fd);
		free(a.note);
		free(b.note);
		return rc;
	}
	if (fd >= 0)
		close(fd);
	same = a.valid && b.valid && a.len == b.len && memcmp(a.note, b.note, a.len) == 0;
	if (a.valid && b.valid && !same && a.size >= b.size) {
		/* latest is written after the append: ahead of the journal, it was cut */
		*stale_latest = 2;
		*out = a;
		free(b.note);
		return 0;
	}
	if (b.valid && (!a.valid || b.size > a.size)) {
		*stale_latest = 1;
		*out = b;
		free(a.note);
		return 0;
	}
	free(b.note);
	if (!a.valid) {
		free(a.note);
		return CS_ENOTFOUND;
	}
	*out = a;
	return 0;
}

int
cs__checkpoint_newest(struct cs_store *st, struct cs__cp *out)
{
	struct cs_verifier *v = NULL;
	int stale, rc = cs__store_verifier_load(st, &v);

	if (rc < 0)
		return rc;
	rc = newest(st, v, out, &stale);
	cs_verifier_free(v);
	return rc;
}

void
cs__checkpoints_free(struct cs__cp *cps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cps[i].note);
	free(cps);
}

int
cs_store_latest_checkpoint(struct cs_store *st, char **note)
{
	struct cs__cp cp = {0};
	int rc = cs__checkpoint_newest(st, &cp);

	if (rc == 0)
		*note = cp.note;
	return rc;
}

/* A journal entry holding `note`, in a malloc'd buffer of len + CPJ_OVER bytes. */
static uint8_t *
cpj_entry(const char *note, size_t len)
{
	uint8_t *b = malloc(len + CPJ_OVER);

	if (b == NULL)
		return NULL;
	put_be32(b, (uint32_t)len);
	memcpy(b + 4, note, len);
	if (EVP_Digest(note, len, b + 4 + len, NULL, EVP_sha256(), NULL) != 1) {
		free(b);
		return NULL;
	}
	put_be32(b + 36 + len, (uint32_t)len);
	return b;
}

/*
 * Appends `note` to the checkpoint journal and makes it durable. If the
 * write fails, the file is cut back to where it was (so that no partial
 * entry stays in the middle of the journal). *fatal: a failure that must
 * fail the store (a failed fsync, or a cut that did not work).
 */
static int
cpj_append(struct cs_store *st, const char *note, size_t len, int *fatal)
{
	uint8_t *b = NULL;
	struct stat sb;
	int fd, rc;

	*fatal = 0;
	if (len == 0 || len > CPJ_NOTE_MAX)
		return CS_EFORMAT;
	b = cpj_entry(note, len);
	if (b == NULL)
		return -ENOMEM;
	fd = openat(st->rootfd, CPJ_NAME, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		*fatal = 1;
		goto out;
	}
	if (fstat(fd, &sb) < 0 || lseek(fd, sb.st_size, SEEK_SET) < 0) {
		rc = -errno;
		*fatal = 1;
		goto out;
	}
	CS_FAILPOINT("checkpoint-append");
	rc = cs__write_all(fd, b, len + CPJ_OVER);
	if (rc < 0) {
		if (ftruncate(fd, sb.st_size) < 0 || cs__fsync(fd, 1) < 0)
			*fatal = 1;
		goto out;
	}
	CS_FAILPOINT("checkpoint-fsync");
	if (cs__fsync(fd, 1) < 0) {
		rc = -errno;
		*fatal = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	free(b);
	return rc;
}

/* Replaces checkpoints/latest with `note` (temp file, fsync, rename, fsync of the directory). */
static int
write_latest(struct cs_store *st, const char *note, size_t len, int *fatal)
{
	int rc;

	CS_FAILPOINT("checkpoint-latest");
	rc = cs__write_file_replace(st->rootfd, CPJ_LATEST, note, len, 0444);
	/*
	 * No room: the checkpoint is in the journal; latest is only its copy
	 * and is written again at the next signing or opening.
	 */
	*fatal = rc < 0 && ((rc != -ENOSPC && rc != -EDQUOT) || cs__fsync_failed());
	return rc;
}

/*
 * Moves the older layout (checkpoints/<20-digit size>, one file each) into
 * checkpoints/journal: the valid ones in size order into a new journal
 * (written whole as a temp file and linked into place), then the files are
 * removed. A crash before the link leaves the older layout as it was; after
 * it, the remaining files are found in the journal at the next opening and
 * removed (files_leftover). Invalid files are left where they are for
 * `custos verify` to report.
 */
static int
migrate(struct cs_store *st, struct cs_verifier *v)
{
	struct cs__cp *cps = NULL;
	size_t count = 0, cap = 0, blen = CPJ_HDR, moved = 0;
	uint8_t *buf = NULL;
	int rc;

	rc = files_load(st, v, &cps, &count, &cap);
	if (rc < 0)
		goto out;
	if (count > 1)
		qsort(cps, count, sizeof(*cps), cp_cmp);
	for (size_t i = 0; i < count; i++)
		if (cps[i].valid && (i == 0 || !cps[i - 1].valid || cps[i - 1].size != cps[i].size))
			blen += cps[i].len + CPJ_OVER;
	buf = malloc(blen);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(buf, CPJ_MAGIC, CPJ_HDR);
	blen = CPJ_HDR;
	for (size_t i = 0; i < count; i++) {
		uint8_t *e;
		if (!cps[i].valid || (i > 0 && cps[i - 1].valid && cps[i - 1].size == cps[i].size))
			continue;
		e = cpj_entry(cps[i].note, cps[i].len);
		if (e == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(buf + blen, e, cps[i].len + CPJ_OVER);
		blen += cps[i].len + CPJ_OVER;
		free(e);
		moved++;
	}
	CS_FAILPOINT("checkpoint-migrate");
	rc = cs__write_file_new(st->rootfd, CPJ_NAME, buf, blen, 0644);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < count; i++) {
		if (!cps[i].valid) {
			cs__store_log(st, CS_LOG_WARN,
			    "%s is not a valid checkpoint of this store; left in place. Run "
			    "`custos verify`",
			    cps[i].file);
			continue;
		}
		CS_FAILPOINT("checkpoint-migrate-remove");
		if (unlinkat(st->rootfd, cps[i].file, 0) < 0 && errno != ENOENT) {
			rc = -errno;
			goto out;
		}
	}
	rc = cs__fsync_dir(st->rootfd, "checkpoints");
	if (rc == 0 && count > 0)
		cs__store_log(st, CS_LOG_INFO,
		    "moved %zu checkpoint(s) from one file each into %s", moved, CPJ_NAME);
out:
	free(buf);
	cs__checkpoints_free(cps, count);
	return rc;
}

/*
 * Files of the older layout left beside a journal (a crash while they were
 * being removed after the move, or files copied in): each valid one whose
 * note the journal holds is removed; others are left for verify to report.
 * Reads the whole journal, but only when such a file is there.
 */
static int
files_leftover(struct cs_store *st, struct cs_verifier *v, int fd, uint64_t fsize)
{
	struct cs__cp *cps = NULL;
	size_t count = 0, cap = 0, removed = 0;
	uint64_t off = CPJ_HDR;
	int rc, torn;

	rc = files_load(st, v, &cps, &count, &cap);
	if (rc < 0 || count == 0)
		goto out;
	for (;;) {
		struct cpj_ent e;
		char *note = NULL;
		int r = cpj_read(fd, off, fsize, &e, &note, &torn);
		if (r != 1) {
			if (r < 0 && r != CS_ELEDGER)
				rc = r;
			break;
		}
		for (size_t i = 0; i < count; i++)
			if (cps[i].note != NULL && cps[i].len == e.len &&
			    memcmp(cps[i].note, note, e.len) == 0) {
				CS_FAILPOINT("checkpoint-migrate-remove");
				if (unlinkat(st->rootfd, cps[i].file, 0) < 0 && errno != ENOENT)
					rc = -errno;
				free(cps[i].note);
				cps[i].note = NULL;
				removed++;
			}
		free(note);
		off = e.next;
		if (rc < 0)
			goto out;
	}
	if (removed > 0) {
		rc = cs__fsync_dir(st->rootfd, "checkpoints");
		cs__store_log(st, CS_LOG_INFO,
		    "removed %zu checkpoint file(s) already moved into %s", removed, CPJ_NAME);
	}
	for (size_t i = 0; i < count; i++)
		if (cps[i].note != NULL)
			cs__store_log(st, CS_LOG_WARN,
			    "%s is not in %s; left in place. Run `custos verify`", cps[i].file,
			    CPJ_NAME);
out:
	cs__checkpoints_free(cps, count);
	return rc;
}

int
cs__checkpoints_open(struct cs_store *st)
{
	struct cs_verifier *v = NULL;
	struct cs__cp cp = {0};
	struct cpj_ent e;
	uint64_t fsize = 0;
	int fd = -1, rc, stale, fatal;

	rc = cs__store_verifier_load(st, &v);
	if (rc < 0)
		return rc;
	fd = cpj_open(st, 1, &fsize);
	if (fd == -ENOENT && faccessat(st->rootfd, CPJ_LATEST, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* latest is written only after the journal exists */
		cs__store_log(st, CS_LOG_ERROR,
		    "%s is there but %s is missing: it was removed; nothing was changed. Run "
		    "`custos verify`",
		    CPJ_LATEST, CPJ_NAME);
		rc = CS_ELEDGER;
		goto out;
	}
	if (fd == -ENOENT) {
		rc = migrate(st, v);
		if (rc < 0)
			goto out;
		fd = cpj_open(st, 1, &fsize);
	}
	if (fd < 0) {
		rc = fd;
		if (rc == CS_ELEDGER)
			cs__store_log(st, CS_LOG_ERROR,
			    "%s does not begin with its header: it is damaged; nothing was "
			    "changed. Run `custos verify`",
			    CPJ_NAME);
		goto out;
	}
	rc = cpj_read_last(fd, fsize, &e, NULL);
	if (rc == CS_ELEDGER) {
		/*
		 * The end is not a complete entry. Only a torn tail (the start of
		 * an entry cut short by a crash while it was appended: never
		 * acknowledged) is cut; it follows the last complete entry, at
		 * most one entry's size back.
		 */
		uint64_t p, stop = fsize > CPJ_NOTE_MAX + CPJ_OVER + CPJ_HDR
		    ? fsize - CPJ_NOTE_MAX - CPJ_OVER : CPJ_HDR;
		int found = 0, torn;
		for (p = fsize - 1; p >= stop; p--) {
			struct cpj_ent t;
			int r = p == CPJ_HDR ? 1 : cpj_read_last(fd, p, &e, NULL);
			if (r < 0 && r != CS_ELEDGER) {
				rc = r;
				goto out;
			}
			if (r != 1)
				continue;
			/* p ends the last complete entry: what follows must be a torn one */
			r = cpj_read(fd, p, fsize, &t, NULL, &torn);
			found = r == CS_ELEDGER && torn;
			break;
		}
		if (!found) {
			cs__store_log(st, CS_LOG_ERROR,
			    "the last entry of %s is damaged and is not a torn tail; nothing was "
			    "cut. Run `custos verify`",
			    CPJ_NAME);
			rc = CS_ELEDGER;
			goto out;
		}
		cs__store_log(st, CS_LOG_WARN,
		    "cut a torn tail of %llu byte(s) from %s left by an interrupted write",
		    (unsigned long long)(fsize - p), CPJ_NAME);
		CS_FAILPOINT("checkpoint-cut");
		if (ftruncate(fd, (off_t)p) < 0 || cs__fsync(fd, 1) < 0) {
			rc = -errno;
			goto out;
		}
		fsize = p;
	} else if (rc < 0)
		goto out;
	rc = files_leftover(st, v, fd, fsize);
	if (rc < 0)
		goto out;
	close(fd);
	fd = -1;
	/* checkpoints/latest one behind the journal (or missing): written again. */
	rc = newest(st, v, &cp, &stale);
	if (rc == CS_ENOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc == 0 && stale == 2) {
		cs__store_log(st, CS_LOG_ERROR,
		    "%s covers %llu events but the newest valid checkpoint in %s does not: the "
		    "journal was cut or damaged; nothing was changed. Run `custos verify`",
		    CPJ_LATEST, (unsigned long long)cp.size, CPJ_NAME);
		rc = CS_ELEDGER;
		goto out;
	}
	if (rc == 0 && stale) {
		rc = write_latest(st, cp.note, cp.len, &fatal);
		if (rc < 0 && !fatal) {
			cs__store_log(st, CS_LOG_WARN, "could not write %s: %s", CPJ_LATEST,
			    cs_strerror(rc));
			rc = 0;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(cp.note);
	cs_verifier_free(v);
	return rc;
}

int
cs_store_checkpoint(struct cs_store *st, char **note)
{
	struct cs__merkle_ctx m = {&st->cat, NULL};
	struct cs_checkpoint cp = {0};
	struct cs_verifier *v = NULL;
	struct cs__cp last = {0};
	size_t textlen, notelen;
	char text[512], *signed_note = NULL;
	uint8_t root[32];
	uint64_t size;
	int rc, stale = 0, fatal = 0;

	if (st->lockfd < 0)
		return -EBADF;
	pthread_mutex_lock(&st->wlock);
	if (st->failed) {
		rc = CS_EFAILED;
		goto out;
	}
	rc = cs__catalog_rtxn(&st->cat, &m.txn);
	if (rc < 0)
		goto out;
	size = st->size;
	rc = cs__store_verifier_load(st, &v);
	if (rc == 0)
		rc = newest(st, v, &last, &stale);
	if (rc < 0 && rc != CS_ENOTFOUND)
		goto out;
	/*
	 * A log never signs two inconsistent checkpoints. The newest must be a
	 * prefix of the tree: its root is the root of the tree at its size.
	 * Each older one was checked the same way against the one after it when
	 * that one was signed (formats.md 4), so all of them are prefixes too.
	 */
	if (rc == 0) {
		if (last.size > size) {
			cs__store_log(st, CS_LOG_ERROR,
			    "%s covers %llu events but the ledger has %llu: the store "
			    "was rolled back; refusing to sign",
			    last.file, (unsigned long long)last.size, (unsigned long long)size);
			rc = CS_ECONFLICT;
			goto out;
		}
		rc = cs_merkle_root(cs__catalog_merkle_get, &m, last.size, root);
		if (rc < 0)
			goto out;
		if (memcmp(root, last.root, 32) != 0) {
			cs__store_log(st, CS_LOG_ERROR,
			    "%s does not match the ledger; refusing to sign", last.file);
			rc = CS_ECONFLICT;
			goto out;
		}
		if (stale == 2) {
			cs__store_log(st, CS_LOG_ERROR,
			    "%s is not the newest checkpoint in %s; refusing to sign. Run `custos "
			    "verify`",
			    CPJ_LATEST, CPJ_NAME);
			rc = CS_ECONFLICT;
			goto out;
		}
		if (last.size == size) {
			if (stale) {
				rc = write_latest(st, last.note, last.len, &fatal);
				if (fatal)
					st->failed = rc;
				if (rc < 0)
					goto out;
			}
			if (note != NULL) {
				*note = last.note;
				last.note = NULL;
			}
			goto out;
		}
	}
	rc = cs_merkle_root(cs__catalog_merkle_get, &m, size, cp.root);
	if (rc < 0)
		goto out;
	snprintf(cp.origin, sizeof(cp.origin), "%s", st->origin);
	cp.size = size;
	rc = cs_checkpoint_format(&cp, text, sizeof(text));
	if (rc < 0)
		goto out;
	textlen = (size_t)rc;
	rc = cs_note_sign(st->signer, text, textlen, &signed_note, &notelen);
	if (rc < 0)
		goto out;
	CS_FAILPOINT("checkpoint");
	/*
	 * No room for the checkpoint: nothing was kept (the journal was cut
	 * back), the ledger is whole, and the caller may try again later. A
	 * failed fsync is never retried: that fails the store.
	 */
	rc = cpj_append(st, signed_note, notelen, &fatal);
	if (rc == 0)
		rc = write_latest(st, signed_note, notelen, &fatal);
	if (rc < 0 && (fatal || cs__fsync_failed()))
		st->failed = rc;
	if (rc < 0)
		goto out;
	if (note != NULL) {
		*note = signed_note;
		signed_note = NULL;
	}
out:
	if (m.txn != NULL)
		mdb_txn_abort(m.txn);
	pthread_mutex_unlock(&st->wlock);
	free(last.note);
	cs_verifier_free(v);
	free(signed_note);
	return rc;
}

int
cs_store_verifier_key(struct cs_store *st, char **vkey)
{
	char *text = NULL;
	size_t len;
	int rc = cs__read_file(st->rootfd, "keys/ledger.pub", 4096, &text, &len);

	if (rc < 0)
		return rc;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	*vkey = text;
	return 0;
}
