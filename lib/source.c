/*
 * Safe opening of untrusted source files with openat2(2). glibc 2.36 has no
 * wrapper, so the system call is made directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/source.h"
#include "util.h"

int
cs_source_open(int dirfd, const char *rel, uint64_t max_size, struct stat *sb)
{
	return cs__source_open(dirfd, rel, max_size, 0, sb);
}

int
cs__source_open(int dirfd, const char *rel, uint64_t max_size, int linked_ok, struct stat *sb)
{
	struct open_how how;
	long fd;

	if (rel == NULL || rel[0] == '\0' || rel[0] == '/')
		return -EINVAL;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
	    RESOLVE_NO_XDEV;
	do {
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	} while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0)
		return -errno;
	if (fstat((int)fd, sb) < 0) {
		int rc = -errno;
		close((int)fd);
		return rc;
	}
	if (!S_ISREG(sb->st_mode)) {
		close((int)fd);
		return S_ISDIR(sb->st_mode) ? -EISDIR : CS_ENOTREG;
	}
	if (sb->st_nlink != 1 && !linked_ok) {
		close((int)fd);
		return CS_ELINKED;
	}
	if (max_size != 0 && (uint64_t)sb->st_size > max_size) {
		close((int)fd);
		return -EFBIG;
	}
	return (int)fd;
}
