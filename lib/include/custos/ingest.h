/*
 * Ingesting files into the store (lib/ingest.c), the metadata that comes
 * with them and its rules (lib/record.c), and the two helpers for input
 * from outside that go with it: parsing JSON (a sidecar, DEVICE.json, a
 * request) and hashing a file.
 *
 * The ingest calls need the writer handle; they may run on any thread,
 * several at once (blob writing runs in parallel; the ledger append and the
 * catalog commit are serialised by the store's write lock). The other calls
 * touch no store and may run on any thread.
 */
#ifndef CUSTOS_INGEST_H
#define CUSTOS_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct cs_store;

/* Metadata that comes with a file; every field may be NULL / 0. Borrowed by every call. */
struct cs_meta {
	const char *case_no;  /* UTF-8, e.g. "平司罚〔2020〕1号" */
	const char *category; /* enforcement category, e.g. "行政处罚" */
	const char *stage;    /* one of 立案 调查 取证 审查 决定 送达 执行 (or English alias) */
	const char *const *officers;
	size_t n_officers;
	const char *device;
	const char *recorded_start; /* RFC 3339 */
	const char *recorded_end;   /* RFC 3339 */
	const char *source;         /* how it arrived: "cli", "inbox", "dock" */
	json_t *extra;              /* optional object merged as "extra" (borrowed) */
	/*
	 * The daemon's job for the source file, recorded in the event as
	 * "job": {"key": job_key, ...job_ident} and made "ingested" with it.
	 */
	const char *job_key;
	json_t *job_ident; /* {"ino", "size", "mtime_ns"} (borrowed) */
};

struct cs_ingest_result {
	char id[80];          /* evidence id: "<station>-<20 hex of sha256>" */
	char sha256[65];      /* hex */
	uint64_t size;
	uint64_t seq;         /* ledger index of the event written */
	int duplicate;        /* 1 if the bytes were already stored (a sighting) */
};

/*
 * Ingests the open file `fd` (read from its current offset 0) named `name`
 * (the original file name, kept as metadata only). Reads it once, hashing
 * and writing the blob in the same pass; then appends the ledger event and
 * indexes it. On return 0 the file is durable and recorded and *res is
 * filled; `fd` stays the caller's. -EBADF on a reader handle; CS_EFORMAT
 * with bad metadata (nothing written); a failed write or fsync on the blob
 * or ledger returns an error and puts the store in the failed state
 * (CS_EFAILED for every later write). Writer handle; any thread.
 */
int cs_store_ingest_fd(struct cs_store *st, int fd, const char *name, const struct cs_meta *meta,
    struct cs_ingest_result *res);
/*
 * Opens `path` safely (no symlinks, no FIFOs, devices or directories:
 * CS_ENOTREG / -ELOOP / -EISDIR) and ingests it as cs_store_ingest_fd does.
 * Writer handle; any thread.
 */
int cs_store_ingest_path(struct cs_store *st, const char *path, const struct cs_meta *meta,
    struct cs_ingest_result *res);

/*
 * Validates metadata without ingesting: 0, or CS_EFORMAT with *field naming
 * the bad field (a static string), or -ENOMEM. Any thread.
 */
int cs_meta_check(const struct cs_meta *meta, const char **field);

/*
 * Metadata from an upload's sidecar, a JSON object from outside: sets the
 * text fields of *m from its "case", "category", "stage", "device",
 * "recorded_start" and "recorded_end" (strings) and m->officers (pointed at
 * `officers`, room for 64) from "officers" (an array of at most 64 strings);
 * the strings stay owned by `side`. Every other member of *m is left as it
 * is. The good fields are kept; a field of the wrong type or whose value
 * breaks the metadata rules is left out, an unknown key is ignored, and each
 * is named in `problems` (n bytes; "" if there is none, clauses separated by
 * "; "). Returns 0, or -ENOMEM (then *m is unchanged). Any thread.
 */
int cs_meta_from_sidecar(const json_t *side, struct cs_meta *m, const char **officers,
    char *problems, size_t n);

/*
 * json_loadb() for input from outside (a sidecar, DEVICE.json, a request),
 * telling a lack of memory from bad input: jansson's parser can lose a
 * character when an allocation fails and still return a (wrong) value, or
 * report the loss as a syntax error. Returns 0 with *out set (a new
 * reference, the caller's), -ENOMEM if any allocation failed during the
 * parse, or CS_EFORMAT with `err` filled. Any thread.
 */
int cs_json_parse(const char *buf, size_t len, size_t flags, json_t **out, json_error_t *err);

/*
 * SHA-256 of everything readable from `fd` (from offset 0): hex digest and
 * size. Returns 0 or a negative errno; `fd` stays the caller's. Any thread.
 */
int cs_hash_fd(int fd, char hex[65], uint64_t *size);

#endif
