/*
 * Opening source files (upload directories, recorder docks) as hostile
 * input. A source is opened relative to the directory being watched with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV) and O_NONBLOCK, then checked on the descriptor: a regular
 * file with exactly one link, within the size cap. No path is ever built
 * from metadata; names come from the directory listing only.
 */
#ifndef CUSTOS_SOURCE_H
#define CUSTOS_SOURCE_H

#include <stdint.h>
#include <sys/stat.h>

/*
 * Opens `rel` (a relative path without "..") beneath `dirfd` for reading.
 * Returns the descriptor (>= 0) and fills *sb, or a negative code:
 * -ELOOP (a symbolic link on the way), -EXDEV (escapes the directory or
 * crosses a mount), CS_ENOTREG (directory, FIFO, socket, device),
 * CS_ELINKED (more than one hard link: the bytes are reachable from
 * elsewhere), -EFBIG (over max_size, 0 = no cap), -ENOENT, -EACCES.
 */
int cs_source_open(int dirfd, const char *rel, uint64_t max_size, struct stat *sb);

#endif
