/*
 * Publishing the ledger as C2SP tlog-tiles (pinned to the spec's text of
 * 2024-2025: 256-hash tiles, uint16-framed entry bundles). The catalog keeps
 * the hash of every perfect subtree, so the i-th hash of tile (L, N) is the
 * stored node at tree level 8L, index 256N + i: no hashing is needed to
 * make a hash tile. An entry bundle holds the ledger events' exact bytes,
 * each checked against its leaf hash as it is read.
 *
 * A run publishes the tree of the latest signed checkpoint: it checks what
 * the directory holds (its checkpoint must be this log's and a prefix of
 * this tree), writes every tile that is missing (each one durable before
 * the next step: temp file, fsync, link), writes the checkpoint last
 * (rename), and only then removes the partial tiles that a full tile
 * written in this run supersedes, as the spec allows. So a reader or a
 * mirror never finds a checkpoint whose tiles are not there, and a crash at
 * any point leaves a directory the next run completes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"
#include "custos/tiles.h"
#include "store_internal.h"
#include "util.h"

#define TILE_WIDTH 256
#define TILE_BYTES (TILE_WIDTH * CS_HASH_LEN)
#define ENTRY_MAX 65535 /* the bundle's uint16 length prefix */
#define PATH_MAX_TILE 128
#define CHECKPOINT_MAX (64 << 10)

/* A full tile written in this run, whose partial tiles go after the checkpoint. */
struct done_tile {
	int level;
	uint64_t index;
};

struct pub {
	struct cs_store *st;
	int dirfd;
	uint64_t size; /* the tree being published */
	struct cs_tiles_result res;
	cs_progress_fn progress;
	void *ctx;
	uint64_t done, total;
	struct done_tile *full;
	size_t nfull, capfull;
	uint8_t *buf; /* a tile's bytes */
	size_t cap;
};

int
cs_tile_path(char *buf, size_t n, int level, uint64_t index, unsigned width)
{
	unsigned groups[8], k = 0;
	char num[40];
	size_t at = 0;
	int len;

	if (level < CS_TILE_ENTRIES || level > 63 || width > TILE_WIDTH)
		return -EINVAL;
	/* 1234067 -> "x001/x234/067": 3-digit groups, all but the last with 'x'. */
	do {
		groups[k++] = (unsigned)(index % 1000);
		index /= 1000;
	} while (index != 0);
	while (k-- > 1)
		at += (size_t)snprintf(num + at, sizeof(num) - at, "x%03u/", groups[k]);
	snprintf(num + at, sizeof(num) - at, "%03u", groups[0]);
	if (level == CS_TILE_ENTRIES)
		len = snprintf(buf, n, "tile/entries/%s", num);
	else
		len = snprintf(buf, n, "tile/%d/%s", level, num);
	if (len >= 0 && (size_t)len < n && width > 0 && width < TILE_WIDTH)
		len += snprintf(buf + len, n - (size_t)len, ".p/%u", width);
	if (len < 0 || (size_t)len >= n)
		return -ENAMETOOLONG;
	return len;
}

/* Creates the directories above `path` (relative to dirfd), as mkdir -p does. */
static int
mkdirs(int dirfd, const char *path)
{
	char part[PATH_MAX_TILE];
	const char *p = path;
	int rc;

	while ((p = strchr(p, '/')) != NULL) {
		if ((size_t)(p - path) >= sizeof(part))
			return -ENAMETOOLONG;
		memcpy(part, path, (size_t)(p - path));
		part[p - path] = '\0';
		rc = cs__mkdir_durable(dirfd, part, 0755);
		if (rc < 0)
			return rc;
		p++;
	}
	return 0;
}

static int
grow(struct pub *p, size_t need)
{
	uint8_t *b;

	if (need <= p->cap)
		return 0;
	b = realloc(p->buf, need);
	if (b == NULL)
		return -ENOMEM;
	p->buf = b;
	p->cap = need;
	return 0;
}

/* The hashes of tile (level, index) of width w into p->buf. */
static int
hash_tile(struct pub *p, int level, uint64_t index, unsigned w)
{
	struct cs__merkle_ctx m = {&p->st->cat, NULL};
	int rc;

	rc = cs__catalog_rtxn(&p->st->cat, &m.txn);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < w && rc == 0; i++)
		rc = cs__catalog_merkle_get(&m, (unsigned)(8 * level), index * TILE_WIDTH + i,
		    p->buf + (size_t)i * CS_HASH_LEN);
	mdb_txn_abort(m.txn);
	return rc;
}

/*
 * The entry bundle (index, width w) into p->buf: each event's exact bytes
 * behind a big-endian uint16 length, checked against its leaf hash. *len:
 * the bundle's length.
 */
static int
entry_bundle(struct pub *p, uint64_t index, unsigned w, size_t *len)
{
	MDB_txn *txn = NULL;
	uint8_t want[32], leaf[32];
	size_t at = 0;
	uint64_t off, seq;
	uint32_t elen;
	int rc;

	rc = cs__catalog_rtxn(&p->st->cat, &txn);
	for (unsigned i = 0; i < w && rc == 0; i++) {
		seq = index * TILE_WIDTH + i;
		rc = cs__catalog_leaf(&p->st->cat, txn, seq, want, &off, &elen);
		if (rc < 0)
			break;
		if (elen > ENTRY_MAX) {
			cs__store_log(p->st, CS_LOG_ERROR,
			    "event %" PRIu64 " is %" PRIu32 " bytes, more than a tlog-tiles entry "
			    "bundle can frame (65535)",
			    seq, elen);
			rc = -EMSGSIZE;
			break;
		}
		rc = grow(p, at + 2 + elen);
		if (rc < 0)
			break;
		if (cs__pread_all(p->st->j.fd, p->buf + at + 2, elen, (off_t)off) !=
		    (ssize_t)elen) {
			rc = CS_ELEDGER;
			break;
		}
		rc = cs_merkle_leaf_hash(p->buf + at + 2, elen, leaf);
		if (rc == 0 && memcmp(leaf, want, CS_HASH_LEN) != 0)
			rc = CS_ELEDGER;
		p->buf[at] = (uint8_t)(elen >> 8);
		p->buf[at + 1] = (uint8_t)elen;
		at += 2 + elen;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc == 0)
		*len = at;
	return rc;
}

/* 1 if `path` is there (a full hash tile must be TILE_BYTES long), 0 if not, or < 0. */
static int
present(struct pub *p, const char *path, int level, unsigned w)
{
	struct stat sb;

	if (fstatat(p->dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(sb.st_mode) ||
	    (level >= 0 && sb.st_size != (off_t)w * CS_HASH_LEN)) {
		cs__store_log(p->st, CS_LOG_ERROR,
		    "%s in the publishing directory is not a tile of this log (wrong size or type)",
		    path);
		return CS_ECONFLICT;
	}
	return 1;
}

/* Writes tile (level, index, w) unless it is there; w == TILE_WIDTH: a full one. */
static int
put_tile(struct pub *p, int level, uint64_t index, unsigned w)
{
	char path[PATH_MAX_TILE];
	size_t len = (size_t)w * CS_HASH_LEN;
	int rc;

	rc = cs_tile_path(path, sizeof(path), level, index, w);
	if (rc < 0)
		return rc;
	rc = present(p, path, level, w);
	if (rc != 0) {
		if (rc > 0) {
			p->res.kept++;
			rc = 0;
		}
		goto out;
	}
	if (level == CS_TILE_ENTRIES) {
		rc = entry_bundle(p, index, w, &len);
	} else {
		rc = grow(p, len);
		if (rc == 0)
			rc = hash_tile(p, level, index, w);
	}
	if (rc == 0)
		rc = mkdirs(p->dirfd, path);
	if (rc < 0)
		goto out;
	rc = cs__write_file_new(p->dirfd, path, p->buf, len, 0644);
	if (rc == CS_EEXIST) {
		p->res.kept++;
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	p->res.written++;
	if (w == TILE_WIDTH) {
		if (p->nfull == p->capfull) {
			size_t cap = p->capfull ? 2 * p->capfull : 64;
			struct done_tile *f = realloc(p->full, cap * sizeof(*f));
			if (f == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			p->full = f;
			p->capfull = cap;
		}
		p->full[p->nfull].level = level;
		p->full[p->nfull].index = index;
		p->nfull++;
	}
out:
	p->done++;
	if (rc == 0 && p->progress != NULL)
		p->progress(p->ctx, "tiles", p->done, p->total);
	return rc;
}

/* Every tile of one level (or the entry bundles) of the tree of p->size leaves. */
static int
put_level(struct pub *p, int level)
{
	unsigned shift = level == CS_TILE_ENTRIES ? 0 : 8 * (unsigned)level;
	uint64_t hashes = p->size >> shift; /* hashes at this level */
	int rc = 0;

	for (uint64_t n = 0; n < hashes / TILE_WIDTH && rc == 0; n++)
		rc = put_tile(p, level, n, TILE_WIDTH);
	if (rc == 0 && hashes % TILE_WIDTH != 0)
		rc = put_tile(p, level, hashes / TILE_WIDTH, (unsigned)(hashes % TILE_WIDTH));
	return rc;
}

/* The number of levels with a tile: those with at least one hash. */
static int
levels(uint64_t size)
{
	int l = 0;

	while (l < 8 && (size >> (8 * l)) != 0)
		l++;
	return l;
}

/*
 * What `dir`/checkpoint holds, if anything, must be an earlier checkpoint
 * of this very tree: signed by this store's key, of a size no larger than
 * the new one, with the root the ledger gives at that size. Sets
 * res.prev_size; *same: it is byte for byte the note to be published.
 */
static int
check_previous(struct pub *p, const struct cs_verifier *v, const char *note, int *same)
{
	struct cs__merkle_ctx m = {&p->st->cat, NULL};
	struct cs_checkpoint old = {0};
	uint8_t root[32];
	char *text = NULL;
	size_t len = 0, tl = 0;
	const char *why = NULL;
	int rc;

	*same = 0;
	rc = cs__read_file(p->dirfd, "checkpoint", CHECKPOINT_MAX, &text, &len);
	if (rc == -ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (cs_note_verify(v, text, len, &tl) != 0 || cs_checkpoint_parse(&old, text, tl) != 0 ||
	    strcmp(old.origin, cs_store_origin(p->st)) != 0) {
		why = "is not a checkpoint signed by this store's key";
	} else if (old.size > p->size) {
		why = "is of a larger tree than the store's latest checkpoint (a store restored "
		      "from an older copy?)";
	} else {
		rc = cs__catalog_rtxn(&p->st->cat, &m.txn);
		if (rc < 0)
			goto out;
		rc = cs_merkle_root(cs__catalog_merkle_get, &m, old.size, root);
		mdb_txn_abort(m.txn);
		if (rc < 0)
			goto out;
		if (memcmp(root, old.root, CS_HASH_LEN) != 0)
			why = "has a root that this store's ledger does not give at its size";
	}
	if (why != NULL) {
		cs__store_log(p->st, CS_LOG_ERROR,
		    "the publishing directory's checkpoint %s; publish into an empty directory",
		    why);
		rc = CS_ECONFLICT;
		goto out;
	}
	p->res.prev_size = old.size;
	*same = len == strlen(note) && memcmp(text, note, len) == 0;
	rc = 0;
out:
	free(text);
	return rc;
}

/* Removes the partial tiles "<full tile>.p/<W>" of the full tiles written in this run. */
static int
prune(struct pub *p)
{
	char path[PATH_MAX_TILE + 4];
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	for (size_t i = 0; i < p->nfull && rc == 0; i++) {
		rc = cs_tile_path(path, sizeof(path) - 2, p->full[i].level, p->full[i].index, 0);
		if (rc < 0)
			break;
		memcpy(path + rc, ".p", 3); /* room reserved above */
		rc = 0;
		fd = openat(p->dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = errno == ENOENT ? 0 : -errno;
			continue;
		}
		d = fdopendir(fd);
		if (d == NULL) {
			rc = -errno;
			close(fd);
			break;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				p->res.pruned++;
		}
		closedir(d);
		(void)unlinkat(p->dirfd, path, AT_REMOVEDIR);
	}
	return rc;
}

int
cs_store_tiles(struct cs_store *st, const char *dir, cs_progress_fn progress, void *ctx,
    struct cs_tiles_result *res)
{
	struct pub p = {.st = st, .dirfd = -1, .progress = progress, .ctx = ctx};
	struct cs__merkle_ctx m = {&st->cat, NULL};
	struct cs__catalog_state state;
	struct cs_verifier *v = NULL;
	struct cs__cp cp = {0}; /* the newest checkpoint, its signature checked */
	uint8_t root[32];
	int rc, same = 0, nlev;

	p.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p.dirfd < 0) {
		rc = -errno;
		goto out;
	}
	if (flock(p.dirfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? CS_EBUSY : -errno;
		goto out;
	}
	/* The tree to publish: the latest signed checkpoint's, checked against the ledger. */
	rc = cs__checkpoint_newest(st, &cp);
	if (rc == 0)
		rc = cs__store_verifier_load(st, &v);
	if (rc == 0)
		rc = cs__catalog_rtxn(&st->cat, &m.txn);
	if (rc < 0)
		goto out;
	rc = cs__catalog_state(&st->cat, m.txn, &state);
	if (rc == 0 && state.size < cp.size)
		rc = CS_ELEDGER;
	if (rc == 0)
		rc = cs_merkle_root(cs__catalog_merkle_get, &m, cp.size, root);
	mdb_txn_abort(m.txn);
	if (rc == 0 && memcmp(root, cp.root, CS_HASH_LEN) != 0)
		rc = CS_ELEDGER;
	if (rc < 0)
		goto out;
	p.size = cp.size;
	p.res.size = cp.size;
	rc = check_previous(&p, v, cp.note, &same);
	if (rc < 0)
		goto out;

	nlev = levels(p.size);
	p.total = (p.size + TILE_WIDTH - 1) / TILE_WIDTH;
	for (int l = 0; l < nlev; l++)
		p.total += ((p.size >> (8 * l)) + TILE_WIDTH - 1) / TILE_WIDTH;
	rc = put_level(&p, CS_TILE_ENTRIES);
	for (int l = 0; l < nlev && rc == 0; l++)
		rc = put_level(&p, l);
	if (rc < 0)
		goto out;

	/* Every tile is durable; now the checkpoint that needs them. */
	if (!same) {
		rc = cs__write_file_replace(p.dirfd, "checkpoint", cp.note, cp.len, 0644);
		if (rc < 0)
			goto out;
		p.res.checkpoint_written = 1;
	}
	rc = prune(&p);
	if (rc < 0)
		goto out;
	*res = p.res;
	rc = 0;
out:
	if (p.dirfd >= 0)
		close(p.dirfd); /* releases the lock */
	cs_verifier_free(v);
	free(cp.note);
	free(p.full);
	free(p.buf);
	return rc;
}
