/*
 * Unit tests of the media worker's confinement (cs_media_sandbox, custos/media.h),
 * from inside: a child process confines itself as custos-probe does, then
 * tries what a demuxer bug steered by a hostile file would. A descriptor
 * opened before stays readable and threads still start; opening any path,
 * making a socket, connecting an already made unix socket to a listening
 * path (custosd's control socket is one), running a program, io_uring and
 * ptrace are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "custos/media.h"
#include "tap.h"

enum {
	T_SANDBOX,
	T_READ,
	T_OPEN,
	T_SOCKET,
	T_INET,
	T_CONNECT,
	T_EXEC,
	T_URING,
	T_PTRACE,
	T_THREAD,
	T_N
};

static void *
thread_main(void *arg)
{
	return arg;
}

/* The child: confines itself, tries each thing, sends the errno of each (0: it worked). */
static void
child(int out, int fd, int unix_fd, const char *sock_path, const char *file)
{
	int res[T_N] = {0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[8];
	pthread_t t;
	int s;

	res[T_SANDBOX] = -cs_media_sandbox();
	res[T_READ] = pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : errno;
	s = open(file, O_RDONLY | O_CLOEXEC);
	res[T_OPEN] = s >= 0 ? 0 : errno;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	res[T_SOCKET] = s >= 0 ? 0 : errno;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	res[T_INET] = s >= 0 ? 0 : errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	res[T_CONNECT] = connect(unix_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
	execl("/bin/true", "true", (char *)NULL);
	res[T_EXEC] = errno;
	res[T_URING] = syscall(SYS_io_uring_setup, 4, buf) >= 0 ? 0 : errno;
	res[T_PTRACE] = ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 0 : errno;
	res[T_THREAD] = pthread_create(&t, NULL, thread_main, NULL);
	if (res[T_THREAD] == 0)
		pthread_join(t, NULL);
	_exit(write(out, res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
}

int
main(void)
{
	char dir[] = "/tmp/cs-sandbox-XXXXXX", file[64], sock_path[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int res[T_N], p[2], fd, lfd, ufd, st;
	pid_t pid;

	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(file, sizeof(file), "%s/blob", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (fd < 0 || write(fd, "evidence", 8) != 8 || lfd < 0 || ufd < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 || pipe(p) < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(p[1], fd, ufd, sock_path, file);
	}
	close(p[1]);
	ok(pid > 0 && read(p[0], res, sizeof(res)) == (ssize_t)sizeof(res),
	    "the confined child reports");
	waitpid(pid, &st, 0);
	unlink(sock_path);
	unlink(file);
	rmdir(dir);
	if (res[T_SANDBOX] == EOPNOTSUPP) {
		printf("1..0 # SKIP this kernel has no Landlock\n");
		return 0;
	}
	is_int(res[T_SANDBOX], 0, "cs_media_sandbox confines the process");
	is_int(res[T_READ], 0, "the blob's descriptor, open before, is still readable");
	is_int(res[T_THREAD], 0, "threads still start (FFmpeg's decoders use them)");
	ok(res[T_OPEN] == EACCES || res[T_OPEN] == EPERM, "no path can be opened (errno %d)",
	    res[T_OPEN]);
	is_int(res[T_SOCKET], EPERM, "no unix socket can be made");
	is_int(res[T_INET], EPERM, "no network socket can be made");
	is_int(res[T_CONNECT], EPERM,
	    "a unix socket made before cannot connect to a listening path (custosd's socket)");
	ok(res[T_EXEC] == EPERM || res[T_EXEC] == EACCES, "no program can be run (errno %d)",
	    res[T_EXEC]);
	is_int(res[T_URING], EPERM, "io_uring is refused (seccomp cannot see into it)");
	is_int(res[T_PTRACE], EPERM, "ptrace is refused");
	return tap_done();
}
