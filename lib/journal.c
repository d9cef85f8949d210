/*
 * The ledger journal file: append with a length prefix and a leaf-hash
 * checksum, read back and check entries, and cut a torn tail. What the
 * entries mean is store.c's and catalog.c's business.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/merkle.h"
#include "journal.h"
#include "util.h"

int
cs__journal_open(struct cs__journal *j, int rootfd, int writable, int create)
{
	int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW;
	char hdr[CS_JOURNAL_HDR];
	struct stat sb;
	int fd, rc;

	j->fd = -1;
	j->end = CS_JOURNAL_HDR;
	if (create) {
		rc = cs__write_file_new(rootfd, "ledger/journal", CS_JOURNAL_MAGIC, CS_JOURNAL_HDR,
		    0600);
		if (rc < 0)
			return rc;
	}
	fd = openat(rootfd, "ledger/journal", flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return CS_ELEDGER;
	}
	rc = (int)cs__pread_all(fd, hdr, sizeof(hdr), 0);
	if (rc != (int)sizeof(hdr) || memcmp(hdr, CS_JOURNAL_MAGIC, CS_JOURNAL_HDR) != 0) {
		close(fd);
		return rc < 0 ? rc : CS_ELEDGER;
	}
	j->fd = fd;
	return 0;
}

void
cs__journal_close(struct cs__journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

int
cs__journal_filesize(struct cs__journal *j, uint64_t *size)
{
	struct stat sb;

	if (fstat(j->fd, &sb) < 0)
		return -errno;
	*size = (uint64_t)sb.st_size;
	return 0;
}

int
cs__journal_read(struct cs__journal *j, uint64_t off, struct cs__jentry *e, char **buf,
    int *torn)
{
	uint8_t lenb[4], leaf[32];
	uint64_t fsize = 0;
	char *data = NULL;
	ssize_t n;
	int rc;

	if (torn != NULL)
		*torn = 0;
	rc = cs__journal_filesize(j, &fsize);
	if (rc < 0)
		return rc;
	if (off >= fsize)
		return 0;
	memset(e, 0, sizeof(*e));
	e->off = off;
	if (fsize - off < 4) {
		if (torn != NULL)
			*torn = 1;
		return CS_ELEDGER;
	}
	n = cs__pread_all(j->fd, lenb, 4, (off_t)off);
	if (n != 4)
		return n < 0 ? (int)n : CS_ELEDGER;
	e->len = (uint32_t)lenb[0] << 24 | (uint32_t)lenb[1] << 16 | (uint32_t)lenb[2] << 8 |
	    lenb[3];
	e->data = off + 4;
	e->next = e->data + e->len + 32;
	if (e->len == 0 || e->len > CS_JOURNAL_MAX_ENTRY)
		return CS_ELEDGER;
	if (e->next > fsize) {
		if (torn != NULL)
			*torn = 1;
		return CS_ELEDGER;
	}
	data = malloc(e->len + 1);
	if (data == NULL)
		return -ENOMEM;
	n = cs__pread_all(j->fd, data, e->len, (off_t)e->data);
	if (n == (ssize_t)e->len)
		n = cs__pread_all(j->fd, e->leaf, 32, (off_t)(e->data + e->len));
	else
		n = n < 0 ? n : -EIO;
	if (n != 32) {
		free(data);
		return n < 0 ? (int)n : CS_ELEDGER;
	}
	data[e->len] = '\0';
	rc = cs_merkle_leaf_hash(data, e->len, leaf);
	if (rc < 0) {
		free(data);
		return rc;
	}
	if (memcmp(leaf, e->leaf, 32) != 0) {
		free(data);
		return CS_ELEDGER;
	}
	if (buf != NULL)
		*buf = data;
	else
		free(data);
	return 1;
}

int
cs__journal_append(struct cs__journal *j, const char *ev, uint32_t len, struct cs__jentry *e)
{
	return cs__journal_append_many(j, &ev, &len, 1, e);
}

int
cs__journal_append_many(struct cs__journal *j, const char *const *evs, const uint32_t *lens,
    size_t n, struct cs__jentry *es)
{
	uint8_t *rec;
	size_t total = 0, off = 0;
	ssize_t w;
	int rc = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] == 0 || lens[i] > CS_JOURNAL_MAX_ENTRY)
			return -EINVAL;
		total += 4 + (size_t)lens[i] + 32;
	}
	rec = malloc(total);
	if (rec == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t len = lens[i];
		rec[off] = (uint8_t)(len >> 24);
		rec[off + 1] = (uint8_t)(len >> 16);
		rec[off + 2] = (uint8_t)(len >> 8);
		rec[off + 3] = (uint8_t)len;
		memcpy(rec + off + 4, evs[i], len);
		rc = cs_merkle_leaf_hash(evs[i], len, rec + off + 4 + len);
		if (rc < 0)
			goto out;
		off += 4 + (size_t)len + 32;
	}

	/* One pwrite for all the entries, so a crash tears at most the last of them. */
	CS_FAILNOTE("ledger-events", n);
	CS_FAILPOINT("ledger-write");
	for (size_t done = 0; done < total;) {
		w = pwrite(j->fd, rec + done, total - done, (off_t)(j->end + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			/*
			 * -ENOMEM from here would read as "nothing written" (see
			 * cs__store_commit)
			 */
			rc = w < 0 && errno != ENOMEM ? -errno : -EIO;
			goto out;
		}
		done += (size_t)w;
	}
	CS_FAILPOINT("ledger-fsync");
	if (cs__fsync(j->fd, 1) < 0) {
		rc = errno != ENOMEM ? -errno : -EIO;
		goto out;
	}
	off = 0;
	for (size_t i = 0; i < n; i++) {
		es[i].off = j->end + off;
		es[i].data = es[i].off + 4;
		es[i].len = lens[i];
		es[i].next = es[i].data + lens[i] + 32;
		memcpy(es[i].leaf, rec + off + 4 + lens[i], 32);
		off += 4 + (size_t)lens[i] + 32;
	}
	j->end += total;
out:
	free(rec);
	return rc;
}

int
cs__journal_truncate(struct cs__journal *j, uint64_t off)
{
	if (ftruncate(j->fd, (off_t)off) < 0)
		return -errno;
	if (cs__fsync(j->fd, 0) < 0)
		return -errno;
	j->end = off;
	return 0;
}
