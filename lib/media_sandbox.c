/*
 * The media worker's confinement (cs_media_sandbox, custos/media.h), applied
 * by custos-probe to itself before it reads a byte of the blob: no new
 * privileges, an empty network namespace of its own, and a Landlock ruleset
 * that handles every file system right the kernel knows and grants none (so
 * no path can be opened; the blob's descriptor, open before, stays
 * readable), no TCP bind or connect, and no signals or abstract sockets out
 * of the sandbox. The resource limits and the wall-clock kill are the
 * parent's (lib/media.c).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "custos/media.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1u << 0)

/* struct landlock_ruleset_attr as of ABI 6; older kernels take a prefix of it. */
struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

int
cs_media_sandbox(void)
{
	struct ll_attr attr = {0, 0, 0};
	size_t size = sizeof(uint64_t);
	long abi;
	int fd, rc = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* Without the right to (no root, no user namespaces), Landlock still stops TCP. */
	if (unshare(CLONE_NEWNET) < 0)
		(void)unshare(CLONE_NEWUSER | CLONE_NEWNET);
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 1)
		return -EOPNOTSUPP;
	attr.handled_access_fs = (1u << 13) - 1; /* ABI 1: execute .. make_sym */
	if (abi >= 2)
		attr.handled_access_fs |= 1u << 13; /* refer */
	if (abi >= 3)
		attr.handled_access_fs |= 1u << 14; /* truncate */
	if (abi >= 5)
		attr.handled_access_fs |= 1u << 15; /* ioctl_dev */
	if (abi >= 4) {
		attr.handled_access_net = 3; /* bind_tcp, connect_tcp */
		size = 2 * sizeof(uint64_t);
	}
	if (abi >= 6) {
		attr.scoped = 3; /* abstract unix sockets, signals */
		size = sizeof(attr);
	}
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
