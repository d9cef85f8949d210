/*
 * Remote: putting objects into S3-compatible storage, write-once, with
 * libcurl's multi interface. This module speaks the protocol (SigV4 signing
 * by libcurl, HEAD before PUT, single and multipart uploads with per-part
 * checksums, resumption through ListParts, Object Lock retention, retries)
 * and knows the bucket's key layout; it knows nothing of the ledger
 * (custos/replica.h records what it confirms) and nothing of any event loop:
 * it hands its socket and timer wishes to the caller (struct
 * cs_remote_hooks), or the caller runs it with cs_remote_poll(), which waits
 * in curl_multi_poll(). docs/formats.md section 13 describes the layout and
 * the headers sent; docs/operations.md the configuration.
 */
#ifndef CUSTOS_REMOTE_H
#define CUSTOS_REMOTE_H

#include <stddef.h>
#include <stdint.h>

enum cs_remote_lock {
	CS_REMOTE_LOCK_GOVERNANCE = 0, /* retention a privileged user may lift */
	CS_REMOTE_LOCK_COMPLIANCE,     /* retention no one can lift before its date */
	CS_REMOTE_LOCK_OFF,            /* never ask for retention */
};

/* The [remote] section of a configuration file, parsed; every string malloc'd. */
struct cs_remote_config {
	char *endpoint; /* http(s)://host[:port], no path */
	char *region;   /* default "us-east-1" */
	char *bucket;
	char *prefix;             /* keys start with "<prefix>/"; default "custos" */
	int path_style;           /* 1: <endpoint>/<bucket>/<key>; 0: <bucket>.<host>/<key> */
	char *access_key;         /* from the credentials file (or the config) */
	char *secret_key;         /* never logged, never in the catalog */
	uint64_t part_size;       /* multipart part size, 5 MiB .. 5 GiB; default 16 MiB */
	uint64_t multipart_above; /* objects larger than this go multipart; default part_size */
	unsigned parallel;        /* requests at once, 1 .. 64; default 4 */
	enum cs_remote_lock lock_mode; /* default governance */
	int64_t retain_days;           /* default retention period, days; default 3650 */
	unsigned retries;              /* retries of a failing request; default 8 */
	long connect_timeout_s;        /* default 10 */
	long stall_timeout_s;   /* a transfer moving no byte for this long fails; default 60 */
	int64_t stale_upload_s; /* multipart uploads older than this are aborted; 7 days */
};

/*
 * Reads the [remote] section of the file at `path` (lines "key = value",
 * '#' comments) and the credentials file it names (`credentials = PATH`,
 * with access_key and secret_key), which must be a regular file owned by
 * the user and readable by no one else; a config holding secret_key itself
 * must be so too. Returns 0, CS_EFORMAT with `why` naming the problem (a
 * sentence for an operator), or -errno of the file.
 */
int cs_remote_config_load(struct cs_remote_config *cfg, const char *path, char *why, size_t whyn);
void cs_remote_config_fini(struct cs_remote_config *cfg);
/* "endpoint/bucket" as the replica events name the remote (no credentials). */
int cs_remote_config_name(const struct cs_remote_config *cfg, char *buf, size_t n);

/* The bucket's key layout (docs/formats.md 13.1). 0, or -ENAMETOOLONG. */
int cs_remote_key_blob(const struct cs_remote_config *cfg, const char *hex, char *buf, size_t n);
int cs_remote_key_record(const struct cs_remote_config *cfg, const char *station, uint64_t seq,
    char *buf, size_t n);
/* <prefix>/stations/<station>/custos.json: the store's identity and verifier key. */
int cs_remote_key_identity(const struct cs_remote_config *cfg, const char *station, char *buf,
    size_t n);
int cs_remote_key_checkpoint(const struct cs_remote_config *cfg, const char *station, uint64_t size,
    char *buf, size_t n);

/* What the caller is asked to watch: events on a socket, or a timer. */
enum { CS_REMOTE_IN = 1, CS_REMOTE_OUT = 2, CS_REMOTE_REMOVE = 4 };
struct cs_remote_work;
struct cs_remote_hooks {
	/* watch `fd` for `what` (CS_REMOTE_IN | CS_REMOTE_OUT), or stop (REMOVE) */
	void (*socket)(void *ctx, int fd, int what);
	/* call cs_remote_action(r, -1, 0) in `ms` ms (0: soon); -1: no timer */
	void (*timer)(void *ctx, long ms);
	void *ctx;
};

struct cs_remote;

/*
 * A remote for `cfg` (which must outlive it). `hooks` NULL: the caller
 * drives it with cs_remote_poll(). 0, -ENOMEM or CS_EREMOTE (libcurl
 * could not be set up).
 */
int cs_remote_new(struct cs_remote **out, const struct cs_remote_config *cfg,
    const struct cs_remote_hooks *hooks);
/*
 * Hooks mode, optional (by default it is done on the caller's thread):
 * reading and hashing a multipart part, or the MD5 of a single PUT's body,
 * is handed to `work` (with the hooks' ctx), so that no upload holds up the
 * caller's loop. The
 * caller runs cs_remote_work_run(w) on a worker thread, then
 * cs_remote_work_done(w) on the thread that drives the remote, which frees
 * `w` and goes on with the upload (callbacks may run); done must be called
 * also after cs_remote_free() (the work is then only freed). `work`
 * returning nonzero: it cannot now (the bytes are hashed at once).
 */
void cs_remote_set_work(struct cs_remote *r, int (*work)(void *ctx, struct cs_remote_work *w));
void cs_remote_work_run(struct cs_remote_work *w);
void cs_remote_work_done(struct cs_remote_work *w);
/*
 * Stops every transfer (their callbacks are not called; the hooks may be,
 * to stop watching sockets) and frees; NULL is a no-op.
 */
void cs_remote_free(struct cs_remote *r);

/* One object to put: its bytes are `size` bytes of `fd` from offset 0. */
struct cs_remote_object {
	const char *key; /* the full key (cs_remote_key_*) */
	int fd;          /* read with pread(); the caller keeps it open until done */
	uint64_t size;
	uint8_t sha256[32];       /* of the whole object, known to the caller */
	const char *content_type; /* NULL: application/octet-stream */
};

/* What became of an object. */
struct cs_remote_result {
	int rc;        /* 0: the server confirmed the bytes; else CS_EREMOTE(IO) or -errno */
	int skipped;   /* 1: already there with this size and SHA-256 (HEAD) */
	int multipart; /* parts it took (0: one PUT) */
	const char *key;
	const char *version_id; /* "" when the bucket has no versioning */
	const char *etag;
	const char *lock_mode;    /* "GOVERNANCE", "COMPLIANCE" or "" */
	const char *retain_until; /* RFC 3339, or "" */
	const char *why;          /* rc != 0: what the server or the network said */
	uint64_t sent;            /* body bytes sent (retries included) */
};
typedef void (*cs_remote_done_fn)(void *ctx, const struct cs_remote_result *res);

/*
 * Queues `obj` (key and fd are copied/dup'ed): HEAD; when missing, one PUT
 * or a multipart upload (resuming one already begun for the key); `done`
 * is called once, from cs_remote_poll() or cs_remote_action(). 0 or -ENOMEM.
 */
int cs_remote_put(struct cs_remote *r, const struct cs_remote_object *obj, cs_remote_done_fn done,
    void *ctx);

/* What a look at one object found (cs_remote_stat). Strings are "" when not answered. */
struct cs_remote_info {
	int rc;      /* 0: the server answered (present or not); else CS_EREMOTE(IO) or -errno */
	int present; /* 1: HEAD found the key; 0: no such key (404) */
	const char *key;
	uint64_t size; /* present: Content-Length */
	const char *version_id;
	const char *etag;
	const char *meta_sha256;     /* x-amz-meta-sha256 (hex), as custos writes it */
	const char *checksum_sha256; /* x-amz-checksum-sha256 (base64), when the server keeps it */
	const char *lock_mode;       /* x-amz-object-lock-mode */
	const char *retain_until;    /* x-amz-object-lock-retain-until-date */
	int versions; /* CS_REMOTE_STAT_VERSIONS: the key's versions and delete markers; else -1 */
	int delete_marker; /* ... of which the newest is a delete marker */
	int read;          /* CS_REMOTE_STAT_READ: the whole body was read; sha256 is its digest */
	uint8_t sha256[32];
	uint64_t got; /* body bytes read */
	const char *why;
};
typedef void (*cs_remote_info_fn)(void *ctx, const struct cs_remote_info *info);
enum {
	CS_REMOTE_STAT_VERSIONS = 1, /* also list the key's versions (ListObjectVersions) */
	CS_REMOTE_STAT_READ = 2,     /* also GET the body, hash it (and write it to `fd`) */
};

/*
 * Queues a look at `key`: HEAD, then (by `flags`) its versions and its
 * body, streamed through SHA-256 and, when `fd` >= 0, written to `fd`
 * from offset 0 (dup'ed; truncated again when a retry starts over).
 * `done` is called once. 0 or -ENOMEM.
 */
int cs_remote_stat(struct cs_remote *r, const char *key, int flags, int fd,
    cs_remote_info_fn done, void *ctx);

/*
 * Called for each key under the listed prefix (key != NULL, in the
 * server's order, page by page), then once with key NULL: rc 0, or the
 * error with `why`.
 */
typedef void (*cs_remote_list_fn)(void *ctx, const char *key, uint64_t size, int rc,
    const char *why);
/* Queues a listing (ListObjectsV2, paged) of the keys starting with `prefix`. 0 or -ENOMEM. */
int cs_remote_list(struct cs_remote *r, const char *prefix, cs_remote_list_fn each, void *ctx);

/* The answer to one request of cs_remote_request. Strings are "" when not answered. */
struct cs_remote_answer {
	int rc;      /* 0: the server answered (`status`); else CS_EREMOTE(IO) or -errno */
	long status; /* the HTTP status */
	const char *code;       /* an error answer's <Code> */
	const char *body;       /* the answer's body (XML; its first 4 MiB) */
	const char *version_id; /* x-amz-version-id */
	const char *date;       /* the server's Date header: its clock */
	const char *why;        /* rc != 0 or status >= 300: a sentence for an operator */
};
typedef void (*cs_remote_answer_fn)(void *ctx, const struct cs_remote_answer *a);

/*
 * Queues one signed request: `method` ("GET", "HEAD", "DELETE", or "PUT"
 * with an XML `body`, sent with its SHA-256 and Content-MD5) on `key`, or
 * on the bucket (key NULL: then `params` are required), with the query
 * `params` (name, value pairs, then NULL; sorted and percent-encoded here).
 * A transient failure is retried as an upload's; any other answer goes to
 * `done` (called once) as it is: the caller judges its status. 0, -EINVAL
 * or -ENOMEM.
 */
int cs_remote_request(struct cs_remote *r, const char *method, const char *key,
    const char *const *params, const char *body, cs_remote_answer_fn done, void *ctx);

/*
 * The bucket could not be used (credentials refused, no such bucket, the
 * service unreachable after the retries): its error (*why: the sentence),
 * until the next cs_remote_put asks again; 0 otherwise.
 */
int cs_remote_bucket_error(const struct cs_remote *r, const char **why);

/* Objects queued or in flight. */
size_t cs_remote_pending(const struct cs_remote *r);
/* Bytes sent so far and bytes of all objects queued since cs_remote_new. */
void cs_remote_progress(const struct cs_remote *r, uint64_t *sent, uint64_t *total);

/*
 * Hooks mode: socket `fd` is ready for `events` (CS_REMOTE_IN|OUT), or the
 * timer fired (fd -1). Runs transfers and calls `done` callbacks.
 */
int cs_remote_action(struct cs_remote *r, int fd, int events);
/*
 * Polled mode: waits at most `max_ms` for network activity or a due retry
 * (curl_multi_poll), then runs transfers and `done` callbacks.
 */
int cs_remote_poll(struct cs_remote *r, int max_ms);

#endif
