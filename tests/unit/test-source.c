/*
 * cs_source_open() against hostile directory entries: symlinks to files
 * and directories, escapes with "..", hard links, FIFOs, directories, an
 * oversized file and an ordinary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/source.h"
#include "tap.h"

int
main(void)
{
	char base[256], path[512], cmd[600];
	struct stat sb;
	int dirfd, fd;

	snprintf(base, sizeof(base), "%s/custos-test-source.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return 2;
	snprintf(cmd, sizeof(cmd),
	    "set -e; cd '%s'; mkdir inbox outside inbox/sub; echo secret > outside/secret;"
	    "echo ok > inbox/good; echo ok > inbox/sub/nested; head -c 5000 /dev/zero > inbox/big;"
	    "ln -s ../outside/secret inbox/link-file; ln -s ../outside inbox/link-dir;"
	    "echo hl > inbox/hard; ln inbox/hard outside/hard2; mkfifo inbox/fifo;"
	    "ln -s good inbox/link-inside",
	    base);
	if (system(cmd) != 0)
		return 2;
	snprintf(path, sizeof(path), "%s/inbox", base);
	dirfd = open(path, O_RDONLY | O_DIRECTORY);

	fd = cs_source_open(dirfd, "good", 0, &sb);
	ok(fd >= 0 && sb.st_size == 3, "a plain file opens");
	if (fd >= 0)
		close(fd);
	fd = cs_source_open(dirfd, "sub/nested", 0, &sb);
	ok(fd >= 0, "a file in a subdirectory opens");
	if (fd >= 0)
		close(fd);
	is_int(cs_source_open(dirfd, "link-file", 0, &sb), -ELOOP,
	    "symlink to a file outside: ELOOP");
	is_int(cs_source_open(dirfd, "link-inside", 0, &sb), -ELOOP,
	    "symlink even to a file inside: ELOOP");
	is_int(cs_source_open(dirfd, "link-dir/secret", 0, &sb), -ELOOP,
	    "path through a symlinked directory: ELOOP");
	is_int(cs_source_open(dirfd, "../outside/secret", 0, &sb), -EXDEV, "'..' escape: EXDEV");
	is_int(cs_source_open(dirfd, "/etc/passwd", 0, &sb), -EINVAL, "absolute path refused");
	is_int(cs_source_open(dirfd, "hard", 0, &sb), CS_ELINKED, "hard-linked file refused");
	is_int(cs_source_open(dirfd, "fifo", 0, &sb), CS_ENOTREG, "FIFO refused without blocking");
	is_int(cs_source_open(dirfd, "sub", 0, &sb), -EISDIR, "directory refused");
	is_int(cs_source_open(dirfd, "big", 4096, &sb), -EFBIG, "file over the size cap refused");
	fd = cs_source_open(dirfd, "big", 5000, &sb);
	ok(fd >= 0, "file at the size cap opens");
	if (fd >= 0)
		close(fd);
	is_int(cs_source_open(dirfd, "missing", 0, &sb), -ENOENT, "missing file: ENOENT");
	close(dirfd);
	tap_rm_rf(base);
	return tap_done();
}
