/*
 * Small lib-internal helpers shared by the store modules: durable file
 * operations (write everything, fsync a directory, create directories),
 * hex encoding, RFC 3339 time, and the crash-point hook used by the
 * reliability tests. Nothing here prints or exits.
 */
#ifndef CS_UTIL_H
#define CS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Writes all `len` bytes at the current offset, retrying EINTR and short writes. */
int cs__write_all(int fd, const void *buf, size_t len);
/* Reads up to `len` bytes at `off`, retrying EINTR and short reads; returns bytes read. */
ssize_t cs__pread_all(int fd, void *buf, size_t len, off_t off);
/* cs_source_open(); linked_ok: a file with more than one hard link is accepted. */
int cs__source_open(int dirfd, const char *rel, uint64_t max_size, int linked_ok, struct stat *sb);
/*
 * fsync (or fdatasync with data_only) that remembers a failure: after one,
 * the kernel may have dropped the pages it could not write, so the store is
 * never recovered in place (cs_store_recover), only by a restart.
 */
int cs__fsync(int fd, int data_only);
int cs__fsync_failed(void);
/* fsync()s a directory by path (or by `dirfd` when path is NULL). */
int cs__fsync_dir(int dirfd, const char *path);
/* mkdir that treats an existing directory as success and fsyncs the parent when it creates. */
int cs__mkdir_durable(int dirfd, const char *path, mode_t mode);
/* Reads a whole small file (at most `max` bytes) into a malloc'd NUL-terminated buffer. */
int cs__read_file(int dirfd, const char *path, size_t max, char **out, size_t *len);
/*
 * Writes `len` bytes to `dirfd`/`name` durably: temp file, fsync, link to
 * the final name without replacing anything (CS_EEXIST if it exists), fsync
 * the directory. `mode` is applied before the link.
 */
int cs__write_file_new(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);
/* Same, but atomically replaces `name` (rename) — only for derived files. */
int cs__write_file_replace(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);

void cs__hex(const uint8_t *in, size_t len, char *out); /* out: 2*len + 1 bytes */
int cs__unhex(const char *in, size_t len, uint8_t *out);  /* len even; 0 or CS_EFORMAT */

/* Current time as milliseconds since the epoch. */
int64_t cs__now_ms(void);
/* Formats `ms` as "YYYY-MM-DDThh:mm:ss.mmmZ" into buf (at least 25 bytes). */
void cs__time_format(int64_t ms, char *buf, size_t n);
/*
 * Parses an RFC 3339 date-time ("2026-11-28T08:52:48Z", fractional seconds
 * and a numeric offset allowed, 'T' or ' ' separator) into milliseconds UTC.
 * The time must fall within the years 1970 to 9999 both as written and in UTC.
 */
int cs__time_parse(const char *s, int64_t *ms);

/* 1 if `s` (len bytes) is valid UTF-8 with no control characters. */
int cs__utf8_clean(const char *s, size_t len);

/*
 * Crash points for the reliability tests. In a build with
 * -Dfailpoints=true, every durable step calls cs__failpoint(); when the
 * environment names CUSTOS_CRASH_AT=k, the k-th call ends the process with
 * _exit(99) (as a crash would: no cleanup, no flush), and
 * CUSTOS_CRASH_TRACE=1 prints each point's name and number to stderr.
 * CS_FAILNOTE adds a line "failnote <n> <name>" to that trace (a count the
 * tests need, such as the events of one ledger append); it is no crash point.
 * CS_FAILPARK(name) parks the thread at `name` when CUSTOS_PARK_AT names it:
 * it makes the file $CUSTOS_PARK_FILE.parked and waits until
 * $CUSTOS_PARK_FILE exists (a test holds a step open to act meanwhile).
 */
#ifdef CS_FAILPOINTS
void cs__failpoint(const char *name);
void cs__failnote(const char *name, long n);
void cs__failpark(const char *name);
#define CS_FAILPOINT(name) cs__failpoint(name)
#define CS_FAILNOTE(name, n) cs__failnote(name, (long)(n))
#define CS_FAILPARK(name) cs__failpark(name)
#else
#define CS_FAILPOINT(name) ((void)0)
#define CS_FAILNOTE(name, n) ((void)0)
#define CS_FAILPARK(name) ((void)0)
#endif

#endif
