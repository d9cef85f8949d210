/*
 * The media worker's confinement (cs_media_sandbox, custos/media.h), applied
 * by custos-probe to itself before it reads a byte of the blob: no new
 * privileges, an empty network namespace of its own, and a Landlock ruleset
 * that handles every file system right the kernel knows and grants none (so
 * no path can be opened; the blob's descriptor, open before, stays
 * readable), no TCP bind or connect, and no signals or abstract sockets out
 * of the sandbox; and a seccomp filter (libseccomp) that refuses, with
 * EPERM, the system calls a worker never needs and an attacker would: making
 * sockets (a path-named unix socket, such as custosd's control socket, is
 * out of Landlock's reach), running programs, tracing or reading other
 * processes, namespaces and mounts, io_uring (which seccomp cannot see into),
 * BPF, kernel keys and modules. The resource limits and the wall-clock kill
 * are the parent's (lib/media.c).
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <seccomp.h>
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

/* The system calls the worker is refused (EPERM), by name: unknown ones are skipped. */
static const char *const refused[] = {"socket", "socketpair", "connect", "bind", "listen", "accept",
    "accept4", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_getfd", "pidfd_open", "mount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsmount", "fspick", "unshare", "setns", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
    "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "personality", "acct", "swapon", "swapoff", "reboot",
    "syslog", "quotactl"};

/* The seccomp filter: everything else allowed (FFmpeg's needs vary by codec and build). */
static int
filter_syscalls(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc = 0;

	if (ctx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]) && rc == 0; i++) {
		int nr = seccomp_syscall_resolve_name(refused[i]);
		if (nr != __NR_SCMP_ERROR)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}

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
		return filter_syscalls() < 0 ? -EPERM : -EOPNOTSUPP;
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
	return rc < 0 ? rc : filter_syscalls();
}
