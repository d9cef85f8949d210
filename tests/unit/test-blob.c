/*
 * Unit tests of the content-addressed blob files (lib/blob.c): a table of
 * contents (empty, small, several copy buffers) each stored under
 * objects/sha256/ab/cd/<hex> of its SHA-256, byte for byte and read-only;
 * the same bytes twice stored once; a damaged stored copy found by
 * cs__blob_check and replaced by the next put; no temp file left in tmp/,
 * also when a put fails after making one.
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

#include "blob.h"
#include "custos/error.h"
#include "tap.h"
#include "util.h"

static char base[256];
static int root;
/* Every directory taken as not yet durable, as a newly opened store does. */
static atomic_uchar fresh[CS__BLOB_FRESH_BYTES];

static void
bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The test's own SHA-256, independent of blob.c's copying and hashing. */
static void
sha256_hex(const void *data, size_t len, char hex[65])
{
	uint8_t md[32];
	unsigned int n = 0;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		bail("EVP_Digest");
	cs__hex(md, 32, hex);
}

/* A source file in base/ holding `len` bytes of `data`; returns its read fd. */
static int
source(const char *name, const void *data, size_t len)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len))
		bail(path);
	return fd;
}

/* Number of entries in root/tmp besides . and .. */
static int
tmp_entries(void)
{
	int fd = openat(root, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || (d = fdopendir(fd)) == NULL)
		bail("tmp");
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* 1 if the file at `rel` under root holds exactly data[0..len). */
static int
same_bytes(const char *rel, const void *data, size_t len)
{
	struct stat sb;
	char *got;
	int fd, same;

	fd = openat(root, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = malloc(len + 1);
	if (got == NULL || fstat(fd, &sb) < 0)
		bail("same_bytes");
	same = (size_t)sb.st_size == len && cs__pread_all(fd, got, len + 1, 0) == (ssize_t)len &&
	    memcmp(got, data, len) == 0;
	free(got);
	close(fd);
	return same;
}

static void
test_path(void)
{
	static const char hex[] = "abcdef0123456789abcdef0123456789"
				  "abcdef0123456789abcdef0123456789";
	char buf[CS_BLOB_PATH_MAX];

	cs__blob_path(hex, buf, sizeof(buf));
	ok(strcmp(buf, "objects/sha256/ab/cd/abcdef0123456789abcdef0123456789abcdef0123456789"
		       "abcdef0123456789") == 0, "path is objects/sha256/ab/cd/<hex> (%s)", buf);
	ok(strlen(buf) < CS_BLOB_PATH_MAX, "CS_BLOB_PATH_MAX holds a path");
}

static void
test_put(void)
{
	static const struct {
		const char *name;
		size_t len;    /* bytes of the pattern below */
		const char *sha; /* NULL: computed by the test */
	} cases[] = {
		{"empty", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"one byte short of a buffer", (1u << 20) - 1, NULL},
		{"a buffer and a tail", (1u << 20) + 7, NULL},
		{"several buffers", (5u << 20) + 4096, NULL},
	};
	size_t maxlen = (5u << 20) + 4096;
	uint8_t *data = malloc(maxlen);

	if (data == NULL)
		bail("malloc");
	for (size_t i = 0; i < maxlen; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 12));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *bytes = i == 1 ? (const uint8_t *)"abc" : data;
		char want[65], hex[65], path[CS_BLOB_PATH_MAX];
		struct cs__blob_put r, r2;
		struct stat sb, sb2;
		int fd, rc;

		if (cases[i].sha != NULL)
			snprintf(want, sizeof(want), "%s", cases[i].sha);
		else
			sha256_hex(bytes, cases[i].len, want);
		fd = source(cases[i].name, bytes, cases[i].len);
		rc = cs__blob_put(root, fd, fresh, &r);
		cs__hex(r.digest, 32, hex);
		ok(rc == 0 && strcmp(hex, want) == 0 && r.size == cases[i].len,
		    "%s: stored under its SHA-256 and size", cases[i].name);
		ok(!r.existed && !r.repaired, "%s: new, not existed or repaired", cases[i].name);
		cs__blob_path(want, path, sizeof(path));
		ok(same_bytes(path, bytes, cases[i].len), "%s: %s holds the bytes", cases[i].name,
		    path);
		ok(fstatat(root, path, &sb, 0) == 0 && (sb.st_mode & 07777) == 0444,
		    "%s: the blob is read-only (0444)", cases[i].name);
		is_int(tmp_entries(), 0, "%s: no temp file left in tmp/", cases[i].name);
		is_int(cs__blob_check(root, want, cases[i].len), 0, "%s: check finds it intact",
		    cases[i].name);

		/* The same bytes again: stored once, the first copy kept. */
		rc = cs__blob_put(root, fd, fresh, &r2);
		ok(rc == 0 && r2.existed && !r2.repaired && memcmp(r.digest, r2.digest, 32) == 0,
		    "%s: put again reports the stored copy", cases[i].name);
		ok(fstatat(root, path, &sb2, 0) == 0 && sb2.st_ino == sb.st_ino &&
		    sb2.st_nlink == 1, "%s: still one file, the first one", cases[i].name);
		is_int(tmp_entries(), 0, "%s: again no temp file left", cases[i].name);
		close(fd);
	}
	free(data);
}

static void
test_damage(void)
{
	static const char text[] = "evidence bytes\n";
	char hex[65], path[CS_BLOB_PATH_MAX];
	struct cs__blob_put r;
	int fd, bfd;

	sha256_hex(text, sizeof(text) - 1, hex);
	cs__blob_path(hex, path, sizeof(path));
	fd = source("damage", text, sizeof(text) - 1);
	ok(cs__blob_put(root, fd, fresh, &r) == 0, "damage: stored");
	is_int(cs__blob_check(root, hex, sizeof(text) - 2), CS_EDIGEST, "check: wrong size");
	is_int(cs__blob_check(root, "abc", 3), CS_EFORMAT, "check: not a digest");
	{
		char other[65];
		sha256_hex("not stored", 10, other);
		is_int(cs__blob_check(root, other, 10), -ENOENT, "check: a missing blob");
	}
	bfd = openat(root, path, O_WRONLY | O_CLOEXEC);
	if (bfd < 0 || pwrite(bfd, "E", 1, 0) != 1)
		bail(path);
	close(bfd);
	is_int(cs__blob_check(root, hex, sizeof(text) - 1), CS_EDIGEST, "check: a damaged copy");
	ok(cs__blob_put(root, fd, fresh, &r) == 0 && r.existed && r.repaired,
	    "put of the same bytes replaces the damaged copy");
	is_int(cs__blob_check(root, hex, sizeof(text) - 1), 0, "check: intact again");
	ok(same_bytes(path, text, sizeof(text) - 1), "the repaired copy holds the bytes");
	is_int(tmp_entries(), 0, "repair: no temp file left");
	close(fd);
}

static void
test_refusals(void)
{
	static const char text[] = "goes nowhere\n";
	char hex[65], dir[64];
	struct cs__blob_put r;
	int fd, rc;

	fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	is_int(cs__blob_put(root, fd, fresh, &r), CS_ENOTREG, "a directory is not stored");
	close(fd);

	/* A file where the blob's directory should be: the put fails after its temp file. */
	sha256_hex(text, sizeof(text) - 1, hex);
	snprintf(dir, sizeof(dir), "objects/sha256/%.2s", hex);
	if (mkdirat(root, dir, 0755) < 0 && errno != EEXIST)
		bail(dir);
	snprintf(dir, sizeof(dir), "objects/sha256/%.2s/%.2s", hex, hex + 2);
	fd = openat(root, dir, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		bail(dir);
	close(fd);
	fd = source("nowhere", text, sizeof(text) - 1);
	rc = cs__blob_put(root, fd, fresh, &r);
	ok(rc < 0, "put fails when its directory is a file (%s)", cs_strerror(rc));
	is_int(tmp_entries(), 0, "the failed put left no temp file");
	close(fd);
}

int
main(void)
{
	static const char *const dirs[] = {"store", "store/objects", "store/objects/sha256",
		"store/tmp"};
	char path[300];

	memset(fresh, 0xff, sizeof(fresh));

	snprintf(base, sizeof(base), "%s/custos-test-blob.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		bail("mkdtemp");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, dirs[i]);
		if (mkdir(path, 0750) < 0)
			bail(path);
	}
	snprintf(path, sizeof(path), "%s/store", base);
	root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		bail(path);

	test_path();
	test_put();
	test_damage();
	test_refusals();

	close(root);
	tap_rm_rf(base);
	return tap_done();
}
