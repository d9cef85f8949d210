/*
 * Unit tests of the ledger journal (lib/journal.c): entries appended one by
 * one and in batches read back byte for byte at the offsets the append
 * reported; a torn tail (every cut short of a whole entry) and a damaged
 * checksum detected; a wrong header refused; truncate and re-append.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/merkle.h"
#include "journal.h"
#include "tap.h"

static const char *const events[] = {
	"{\"seq\":0,\"type\":\"ingest\"}",
	"{\"seq\":1,\"type\":\"sighting\",\"note\":\"\xe5\x8f\x96\xe8\xaf\x81\"}",
	"x",
	"{\"seq\":3,\"type\":\"case-open\",\"case\":\"C1\"}",
	"{\"seq\":4}",
};
#define NEV (sizeof(events) / sizeof(events[0]))

static char base[256];

/* A fresh store-like root (with ledger/) under $TMPDIR; removed by rm_root(). */
static int
open_root(void)
{
	int fd;

	snprintf(base, sizeof(base), "%s/custos-test-journal.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL || (fd = open(base, O_RDONLY | O_DIRECTORY)) < 0 ||
	    mkdirat(fd, "ledger", 0700) < 0) {
		printf("Bail out! %s: %s\n", base, strerror(errno));
		exit(2);
	}
	return fd;
}

static void
rm_root(int fd)
{
	close(fd);
	tap_rm_rf(base);
}

/* Reads every entry from the start; returns how many were whole, sets *rc_end. */
static size_t
read_all(struct cs__journal *j, int check, int *rc_end, int *torn)
{
	uint64_t off = CS_JOURNAL_HDR;
	size_t i = 0;
	int rc;

	for (;;) {
		struct cs__jentry e;
		char *buf = NULL;
		rc = cs__journal_read(j, off, &e, &buf, torn);
		if (rc != 1)
			break;
		if (check) {
			uint8_t leaf[32];
			ok(i < NEV && e.len == strlen(events[i]) &&
			    memcmp(buf, events[i], e.len) == 0 && buf[e.len] == '\0',
			    "entry %zu read back byte for byte", i);
			ok(e.off == off && e.data == off + 4 && e.next == off + 4 + e.len + 32,
			    "entry %zu offsets: prefix, data, next", i);
			ok(cs_merkle_leaf_hash(events[i], e.len, leaf) == 0 &&
			    memcmp(leaf, e.leaf, 32) == 0,
			    "entry %zu checksum is its RFC 9162 leaf", i);
		}
		free(buf);
		off = e.next;
		i++;
	}
	*rc_end = rc;
	return i;
}

int
main(void)
{
	struct cs__jentry es[NEV];
	struct cs__journal j;
	uint64_t size, ends[NEV];
	int root, rc, torn;
	size_t n;

	root = open_root();
	is_int(cs__journal_open(&j, root, 1, 0), -ENOENT, "no journal: open without create fails");
	is_int(cs__journal_open(&j, root, 1, 1), 0, "journal created");
	ok(cs__journal_filesize(&j, &size) == 0 && size == CS_JOURNAL_HDR,
	    "a new journal is its 16-byte header");
	is_int(cs__journal_open(&(struct cs__journal){0}, root, 1, 1), CS_EEXIST,
	    "create refuses an existing journal");

	/* One by one, then a batch of the rest: offsets chain from the header. */
	for (size_t i = 0; i < 2; i++) {
		uint64_t before = j.end;
		rc = cs__journal_append(&j, events[i], (uint32_t)strlen(events[i]), &es[i]);
		ok(rc == 0 && es[i].off == before && j.end == es[i].next,
		    "append %zu at the old end, end moves past it", i);
	}
	{
		const char *evs[NEV - 2];
		uint32_t lens[NEV - 2];
		for (size_t i = 2; i < NEV; i++) {
			evs[i - 2] = events[i];
			lens[i - 2] = (uint32_t)strlen(events[i]);
		}
		rc = cs__journal_append_many(&j, evs, lens, NEV - 2, es + 2);
		is_int(rc, 0, "append_many of %zu entries", NEV - 2);
		for (size_t i = 2; i < NEV; i++)
			ok(es[i].off == es[i - 1].next,
			    "batch entry %zu follows the one before", i);
	}
	for (size_t i = 0; i < NEV; i++)
		ends[i] = es[i].next;
	ok(cs__journal_filesize(&j, &size) == 0 && size == j.end && size == ends[NEV - 1],
	    "file size is the end of the last entry");
	is_int(cs__journal_append(&j, "", 0, &es[0]), -EINVAL, "an empty event is refused");
	is_int(read_all(&j, 1, &rc, &torn), NEV, "every entry read back");
	ok(rc == 0 && torn == 0, "reading at the end gives 0, not torn");
	cs__journal_close(&j);

	/* A reader sees the same; so does a read-only open. */
	is_int(cs__journal_open(&j, root, 0, 0), 0, "read-only open");
	is_int(read_all(&j, 0, &rc, &torn), NEV, "read-only: every entry");
	cs__journal_close(&j);

	/* Every cut inside the last entry is a torn tail; cutting it off mends the file. */
	is_int(cs__journal_open(&j, root, 1, 0), 0, "reopen for writing");
	j.end = ends[NEV - 1];
	{
		int all_torn = 1;
		/* Downwards: ftruncate upwards would fill with zeros. */
		for (uint64_t cut = ends[NEV - 1] - 1; cut > ends[NEV - 2]; cut--) {
			if (ftruncate(j.fd, (off_t)cut) < 0)
				return 2;
			n = read_all(&j, 0, &rc, &torn);
			if (n != NEV - 1 || rc != CS_ELEDGER || torn != 1)
				all_torn = 0;
		}
		ok(all_torn, "each cut inside the last entry: the rest read, the tail torn");
	}
	is_int(cs__journal_truncate(&j, ends[NEV - 2]), 0, "torn tail cut off");
	ok(j.end == ends[NEV - 2], "end moves to the cut");
	is_int(read_all(&j, 0, &rc, &torn), NEV - 1, "the whole entries remain");
	ok(rc == 0, "and nothing after them");
	rc = cs__journal_append(&j, events[NEV - 1], (uint32_t)strlen(events[NEV - 1]), &es[0]);
	ok(rc == 0 && es[0].off == ends[NEV - 2] && es[0].next == ends[NEV - 1],
	    "the entry appended again lands where it was");

	/* A flipped byte in an event or its checksum is damage, not a torn tail. */
	static const struct {
		uint64_t at; /* offset from the start of entry 1 */
		const char *what;
	} flips[] = {
		{4, "first event byte"},
		{10, "an event byte"},
		{4 + 35, "a checksum byte"},
		{0, "the length prefix"},
	};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		uint64_t at = ends[0] + flips[i].at;
		struct cs__jentry e;
		unsigned char b;
		if (pread(j.fd, &b, 1, (off_t)at) != 1)
			return 2;
		b ^= 0x40;
		if (pwrite(j.fd, &b, 1, (off_t)at) != 1)
			return 2;
		rc = cs__journal_read(&j, ends[0], &e, NULL, &torn);
		ok(rc == CS_ELEDGER && (torn == 0 || flips[i].at == 0),
		    "a flipped bit in %s: CS_ELEDGER", flips[i].what);
		b ^= 0x40;
		if (pwrite(j.fd, &b, 1, (off_t)at) != 1)
			return 2;
		is_int(cs__journal_read(&j, ends[0], &e, NULL, NULL), 1, "restored: entry 1 whole");
	}
	cs__journal_close(&j);

	/* A file that is not a journal is refused. */
	{
		int fd = openat(root, "ledger/journal", O_WRONLY);
		if (fd < 0 || pwrite(fd, "CUSTOS-LEDGER-2\n", 16, 0) != 16)
			return 2;
		close(fd);
		is_int(cs__journal_open(&j, root, 0, 0), CS_ELEDGER, "a wrong header is refused");
	}
	rm_root(root);
	return tap_done();
}
