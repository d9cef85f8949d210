/*
 * Fuzzes a docked recorder's DEVICE.json and the metadata custosd derives
 * from it and from a file's name: daemon/dock.c's own read_identity (through
 * dock_identity_load) and dock_meta, on a real file in a scratch folder.
 * The invariant: once a recorder is accepted, every file from it gets
 * metadata that cs_store_ingest_fd accepts, since bad metadata must never
 * cost the evidence, and that names its dock session.
 *
 * Input: DEVICE.json bytes, NUL, a file-name pattern (empty for the
 * default; used only if cs_pattern_check accepts it), NUL, a file name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/recorder.h"
#include "custos/store.h"
#include "dock.h"
#include "fuzz.h"

static char dir[4096];
static int dir_fd = -1;

static void
cleanup(void)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/DEVICE.json", dir);
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc, (void)argv;
	snprintf(dir, sizeof(dir), "%s/custos-fuzz-device.XXXXXX", tmp != NULL ? tmp : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir_fd >= 0);
	atexit(cleanup);
	return 0;
}

static void
put_identity(const uint8_t *data, size_t size)
{
	int fd = openat(dir_fd, "DEVICE.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sample[] = "DEV1_A123_20260101120000_0001.mp4";
	const uint8_t *nul = memchr(data, 0, size);
	size_t jsonlen = nul != NULL ? (size_t)(nul - data) : size;
	char *f[2] = {NULL, NULL}, *patterns[1], why[512] = "";
	const char *name = sample, *officers[64], *field = NULL;
	char bufs[128];
	struct dock *k = NULL;
	struct cs_meta m;
	json_t *extra = NULL;
	size_t n = 0, np = 0;
	int rc;

	if (jsonlen >= 65536)
		return 0;
	if (nul != NULL) {
		n = fuzz_split(nul + 1, size - jsonlen - 1, f, 2);
		if (f[0][0] != '\0' && cs_pattern_check(f[0], why, sizeof(why)) == 0)
			patterns[np++] = f[0];
		if (n == 2 && f[1][0] != '\0')
			name = f[1];
	}
	put_identity(data, jsonlen);
	rc = dock_identity_load(&k, dir_fd, patterns, np, 8 * 60, why, sizeof(why));
	if (rc < 0) {
		CHECK(why[0] != '\0');
		goto out;
	}
	CHECK(dock_device(k)[0] != '\0' && strchr(dock_device(k), '/') == NULL);

	memset(&m, 0, sizeof(m));
	m.officers = officers;
	/* Any file name gives metadata: bytes that are not text are never a lack of memory. */
	CHECK(dock_meta(k, name, &m, officers, bufs, sizeof(bufs), &extra) == 0);
	/* The dock session and clock reading go with every file. */
	CHECK(extra != NULL && m.extra == extra);
	rc = cs_meta_check(&m, &field);
	if (rc != 0)
		fprintf(stderr, "dock metadata refused: field %s\n", field != NULL ? field : "?");
	CHECK(rc == 0);
	json_decref(extra);
	free(k);
out:
	fuzz_free_fields(f, n);
	return 0;
}
