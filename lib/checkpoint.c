/*
 * Signed checkpoints of the ledger: <root>/checkpoints/<20-digit size>, each
 * a C2SP signed note of the tlog checkpoint text. Loading and checking them,
 * signing a new one when the tree grew, the latest one (found without reading
 * the older files), and the store's verifier key.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/checkpoint.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "store_internal.h"
#include "util.h"

/* Checkpoints: <root>/checkpoints/<20-digit size>, each a signed note. */
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

/* 1 if `name` is a checkpoint's file name: 20 decimal digits, the tree size. */
static int
cp_name(const char *name)
{
	return strlen(name) == 20 && strspn(name, "0123456789") == 20;
}

/*
 * Reads and checks checkpoints/`name` into *cp (cp->valid: parsed, signed by
 * `v`, of this store's origin and of the size its name says). 0 also for an
 * invalid one; -ENOMEM or CS_ECRYPTO when the check could not be made.
 */
static int
cp_read(struct cs_store *st, struct cs_verifier *v, const char *name, struct cs__cp *cp)
{
	struct cs_checkpoint c;
	char rel[64];
	size_t tl;
	int rc;

	snprintf(cp->file, sizeof(cp->file), "%.20s", name);
	cp->size = strtoull(name, NULL, 10);
	snprintf(rel, sizeof(rel), "checkpoints/%.20s", name);
	rc = cs__read_file(st->rootfd, rel, 1 << 16, &cp->note, &cp->len);
	if (rc == 0)
		rc = cs_note_verify(v, cp->note, cp->len, &tl);
	if (rc == -ENOMEM || rc == CS_ECRYPTO) {
		/* the check could not be made: not an invalid checkpoint */
		free(cp->note);
		cp->note = NULL;
		return rc;
	}
	if (rc == 0 && cs_checkpoint_parse(&c, cp->note, tl) == 0 && c.size == cp->size &&
	    strcmp(c.origin, st->origin) == 0) {
		cp->valid = 1;
		memcpy(cp->root, c.root, 32);
	}
	return 0;
}

int
cs__checkpoints_load(struct cs_store *st, struct cs__cp **out, size_t *n)
{
	struct cs_verifier *v = NULL;
	struct cs__cp *cps = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc;

	rc = cs__store_verifier_load(st, &v);
	if (rc < 0)
		return rc;
	fd = openat(st->rootfd, "checkpoints", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct cs__cp cp = {0};

		if (!cp_name(de->d_name))
			continue;
		rc = cp_read(st, v, de->d_name, &cp);
		if (rc < 0)
			goto out;
		if (count == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct cs__cp *np = realloc(cps, nc * sizeof(*np));
			if (np == NULL) {
				free(cp.note);
				rc = -ENOMEM;
				goto out;
			}
			cps = np;
			cap = nc;
		}
		cps[count++] = cp;
	}
	if (count > 1) /* qsort(NULL, 0, ...) is undefined (UBSan stops init on it) */
		qsort(cps, count, sizeof(*cps), cp_cmp);
	*out = cps;
	*n = count;
	cps = NULL;
	count = 0;
	rc = 0;
out:
	cs__checkpoints_free(cps, count);
	if (d != NULL)
		closedir(d);
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

int
cs__checkpoint_newest(struct cs_store *st, struct cs__cp *out)
{
	struct cs_verifier *v = NULL;
	struct cp_ent *ents = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc;

	rc = cs__store_verifier_load(st, &v);
	if (rc < 0)
		return rc;
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
		int r = cp_read(st, v, ents[i].name, &cp);
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

int
cs_store_checkpoint(struct cs_store *st, char **note)
{
	struct cs__merkle_ctx m = {&st->cat, NULL};
	struct cs_checkpoint cp = {0};
	struct cs__cp *cps = NULL;
	size_t n = 0, textlen, notelen;
	char text[512], name[48], *signed_note = NULL;
	uint8_t root[32];
	uint64_t size;
	int rc;

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
	rc = cs__checkpoints_load(st, &cps, &n);
	if (rc < 0)
		goto out;
	/* A log never signs two inconsistent checkpoints: every earlier one must be a prefix. */
	for (size_t i = 0; i < n; i++) {
		if (!cps[i].valid)
			continue;
		if (cps[i].size > size) {
			cs__store_log(st, CS_LOG_ERROR,
			    "checkpoint %s covers %llu events but the ledger has %llu: the store "
			    "was rolled back; refusing to sign",
			    cps[i].file, (unsigned long long)cps[i].size, (unsigned long long)size);
			rc = CS_ECONFLICT;
			goto out;
		}
		rc = cs_merkle_root(cs__catalog_merkle_get, &m, cps[i].size, root);
		if (rc < 0)
			goto out;
		if (memcmp(root, cps[i].root, 32) != 0) {
			cs__store_log(st, CS_LOG_ERROR,
			    "checkpoint %s does not match the ledger; refusing to sign",
			    cps[i].file);
			rc = CS_ECONFLICT;
			goto out;
		}
	}
	if (n > 0 && cps[n - 1].valid && cps[n - 1].size == size) {
		if (note != NULL) {
			*note = cps[n - 1].note;
			cps[n - 1].note = NULL;
		}
		rc = 0;
		goto out;
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
	snprintf(name, sizeof(name), "checkpoints/%020llu", (unsigned long long)size);
	CS_FAILPOINT("checkpoint");
	rc = cs__write_file_new(st->rootfd, name, signed_note, notelen, 0444);
	if (rc == CS_EEXIST) {
		/* An unreadable or foreign file holds this size's name. */
		cs__store_log(st, CS_LOG_ERROR, "%s exists but is not a valid checkpoint", name);
		goto out;
	}
	/*
	 * No room for the checkpoint file: nothing was written (the temp file is
	 * gone), the ledger is whole, and the caller may try again later. A
	 * failed fsync is never retried: that fails the store.
	 */
	if (rc < 0 && ((rc != -ENOSPC && rc != -EDQUOT) || cs__fsync_failed()))
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
	cs__checkpoints_free(cps, n);
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
