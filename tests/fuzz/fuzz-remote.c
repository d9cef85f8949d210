/*
 * Fuzzes the [remote] configuration of `custos push` (lib/remote.c,
 * cs_remote_config_load): the input is written to a temp file of mode 0600
 * (a path: the loader opens with O_NOFOLLOW, so not /proc/self/fd) and read. A config that loads has an http(s) endpoint, a
 * bucket, both keys and values within the documented limits; one that does
 * not says why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <curl/curl.h>

#include "custos/error.h"
#include "custos/remote.h"
#include "fuzz.h"

static int memfd = -1;
static char path[4096];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	const char *tmp = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/custos-fuzz-remote-XXXXXX", tmp != NULL ? tmp : "/tmp");
	memfd = mkstemp(path);
	CHECK(memfd >= 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_remote_config c;
	char why[1024], key[256];
	int rc;

	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	rc = cs_remote_config_load(&c, path, why, sizeof(why));
	if (rc < 0) {
		CHECK(why[0] != '\0' && strlen(why) < sizeof(why));
		return 0;
	}
	CHECK(c.endpoint != NULL && c.bucket != NULL && c.access_key != NULL &&
	    c.secret_key != NULL && c.region != NULL && c.prefix != NULL);
	CHECK(strncmp(c.endpoint, "http://", 7) == 0 || strncmp(c.endpoint, "https://", 8) == 0);
	{
		/* libcurl reads the endpoint as a URL with a host. */
		CURLU *u = curl_url();
		char *host = NULL;

		CHECK(u != NULL && curl_url_set(u, CURLUPART_URL, c.endpoint, 0) == CURLUE_OK);
		CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0');
		curl_free(host);
		curl_url_cleanup(u);
	}
	CHECK(c.part_size >= 5u << 20 && c.multipart_above >= 5u << 20);
	CHECK(c.parallel >= 1 && c.parallel <= 64 && c.retain_days >= 1);
	CHECK(c.prefix[0] != '/');
	rc = cs_remote_key_blob(&c, "ab", key, sizeof(key));
	CHECK(rc == 0 || rc == -ENAMETOOLONG);
	cs_remote_config_fini(&c);
	return 0;
}
