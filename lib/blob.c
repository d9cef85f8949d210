/*
 * The blob store. A file's bytes are read once: each buffer is hashed and
 * written to a temp file in <root>/tmp, which is fsynced, made read-only and
 * linked (never renamed over an intact blob) to objects/sha256/ab/cd/<hex>,
 * after which the directory is fsynced. Only then may a ledger event refer
 * to it (DESIGN invariant 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "custos/error.h"
#include "util.h"

#define BUF_SIZE (1u << 20)

void
cs__blob_path(const char *hex, char *buf, size_t n)
{
	snprintf(buf, n, "objects/sha256/%.2s/%.2s/%s", hex, hex + 2, hex);
}

int
cs__hash_fd(int fd, uint8_t digest[32], uint64_t *size)
{
	EVP_MD_CTX *md = NULL;
	uint8_t *buf = NULL;
	uint64_t total = 0;
	off_t off = 0;
	int rc;

	buf = malloc(BUF_SIZE);
	md = EVP_MD_CTX_new();
	if (buf == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t n = cs__pread_all(fd, buf, BUF_SIZE, off);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			goto out;
		}
		off += n;
		total += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

int
cs__blob_check(int rootfd, const char *hex, uint64_t size)
{
	char path[CS_BLOB_PATH_MAX];
	uint8_t digest[32], want[32];
	uint64_t got;
	int fd, rc;

	if (strlen(hex) != 64 || cs__unhex(hex, 64, want) < 0)
		return CS_EFORMAT;
	cs__blob_path(hex, path, sizeof(path));
	fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = cs__hash_fd(fd, digest, &got);
	close(fd);
	if (rc < 0)
		return rc;
	if (got != size || memcmp(digest, want, 32) != 0)
		return CS_EDIGEST;
	return 0;
}

static int
make_parents(int rootfd, const char *hex)
{
	char dir[64];
	int rc;

	snprintf(dir, sizeof(dir), "objects/sha256/%.2s", hex);
	rc = cs__mkdir_durable(rootfd, dir, 0755);
	if (rc < 0)
		return rc;
	snprintf(dir, sizeof(dir), "objects/sha256/%.2s/%.2s", hex, hex + 2);
	return cs__mkdir_durable(rootfd, dir, 0755);
}

static int
copy_and_hash(int srcfd, int dstfd, uint8_t digest[32], uint64_t *size)
{
	EVP_MD_CTX *md = NULL;
	uint8_t *buf = NULL;
	uint64_t total = 0;
	int rc;

	buf = malloc(BUF_SIZE);
	md = EVP_MD_CTX_new();
	if (buf == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	for (;;) {
		ssize_t n = cs__pread_all(srcfd, buf, BUF_SIZE, (off_t)total);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rc = CS_ECRYPTO;
			goto out;
		}
		CS_FAILPOINT("blob-write");
		rc = cs__write_all(dstfd, buf, (size_t)n);
		if (rc < 0)
			goto out;
		total += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1) {
		rc = CS_ECRYPTO;
		goto out;
	}
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

int
cs__blob_put(int rootfd, int srcfd, struct cs__blob_put *out)
{
	static atomic_uint counter;
	char tmp[64], tmppath[80], path[CS_BLOB_PATH_MAX], hex[65];
	struct stat before, after;
	struct cs__blob_put r = {0};
	int dstfd = -1, linked = 0;
	int rc;

	if (fstat(srcfd, &before) < 0)
		return -errno;
	if (!S_ISREG(before.st_mode))
		return CS_ENOTREG;
	(void)posix_fadvise(srcfd, 0, 0, POSIX_FADV_SEQUENTIAL);

	snprintf(tmp, sizeof(tmp), "blob-%ld-%u", (long)getpid(), atomic_fetch_add(&counter, 1));
	snprintf(tmppath, sizeof(tmppath), "tmp/%s", tmp);
	dstfd = openat(rootfd, tmppath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (dstfd < 0)
		return -errno;

	rc = copy_and_hash(srcfd, dstfd, r.digest, &r.size);
	if (rc < 0)
		goto out;
	if (fstat(srcfd, &after) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)after.st_size != r.size || after.st_size != before.st_size ||
	    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
		rc = CS_ECHANGED;
		goto out;
	}
	if (fchmod(dstfd, 0444) < 0) {
		rc = -errno;
		goto out;
	}
	CS_FAILPOINT("blob-fsync");
	if (fsync(dstfd) < 0) {
		rc = -errno;
		goto out;
	}

	cs__hex(r.digest, 32, hex);
	cs__blob_path(hex, path, sizeof(path));
	rc = make_parents(rootfd, hex);
	if (rc < 0)
		goto out;
	CS_FAILPOINT("blob-link");
	if (linkat(rootfd, tmppath, rootfd, path, 0) == 0) {
		linked = 1;
	} else if (errno == EEXIST) {
		/*
		 * Same bytes stored before. Check the stored copy: if it was
		 * damaged, these verified bytes take its place, since the name
		 * is the digest of exactly these bytes.
		 */
		r.existed = 1;
		rc = cs__blob_check(rootfd, hex, r.size);
		if (rc == CS_EDIGEST) {
			CS_FAILPOINT("blob-repair");
			if (renameat(rootfd, tmppath, rootfd, path) < 0) {
				rc = -errno;
				goto out;
			}
			r.repaired = 1;
			linked = 1;
		} else if (rc < 0) {
			goto out;
		}
	} else {
		rc = -errno;
		goto out;
	}
	if (linked) {
		char dir[64];
		snprintf(dir, sizeof(dir), "objects/sha256/%.2s/%.2s", hex, hex + 2);
		rc = cs__fsync_dir(rootfd, dir);
		if (rc < 0)
			goto out;
	}
	*out = r;
	rc = 0;
out:
	if (dstfd >= 0)
		close(dstfd);
	(void)unlinkat(rootfd, tmppath, 0);
	return rc;
}
