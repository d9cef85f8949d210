/*
 * Fuzzes custosd's configuration file: cs_config_load (daemon/config.c,
 * libinih underneath) reads the input from a memfd through its
 * /proc/self/fd path, then cs_config_check and cs_config_fini run as the
 * daemon runs them. A file that loads must hold only values the daemon can
 * use: the limits the file's comment documents hold after every load.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "custos/recorder.h"
#include "fuzz.h"

static int memfd = -1;
static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	memfd = memfd_create("custos-fuzz-config", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_config c;
	char err[1024], why[256];
	int rc;

	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	cs_config_init(&c);
	err[0] = 'x';
	rc = cs_config_load(&c, path, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
	} else {
		CHECK(err[0] == '\0');
		CHECK(c.n_inboxes <= CFG_MAX_INBOXES && c.n_patterns <= 16);
		for (size_t i = 0; i < c.n_inboxes; i++)
			CHECK(c.inboxes[i] != NULL && c.inboxes[i][0] != '\0');
		for (size_t i = 0; i < c.n_patterns; i++)
			CHECK(cs_pattern_check(c.patterns[i], why, sizeof(why)) == 0);
		CHECK(c.settle_ms <= 3600 * 1000);
		CHECK(c.concurrency >= 1 && c.concurrency <= 64);
		CHECK(c.rescan_s >= 1 && c.rescan_s <= 86400);
		CHECK(c.log_level >= 0 && c.log_level <= 3);
		CHECK(c.recorder_utc_offset_min >= -(14 * 60 + 59) &&
		    c.recorder_utc_offset_min <= 14 * 60 + 59);
		CHECK(c.store == NULL || c.store[0] != '\0');
		err[0] = 'x';
		rc = cs_config_check(&c, err, sizeof(err));
		CHECK(rc == 0 || (rc == -1 && err[0] != '\0'));
	}
	cs_config_fini(&c);
	return 0;
}
