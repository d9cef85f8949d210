/*
 * Media identity: what every secured file is, recorded once per item as a
 * ledger event "media" (in the manner of PREMIS: the item, its digest, the
 * outcome, the tool and its library versions, the agent) and kept in the
 * item's record as "media". Files are identified with libmagic (documents,
 * photos, scanned forms: their type, nothing else is done to them) and media
 * are probed with libavformat, in a separate sandboxed worker process
 * (custos-probe) that gets only the one blob's descriptor, read-only, and is
 * killed when it outlives its time limit. A file that cannot be read
 * (truncated, corrupt, empty, a worker that crashed or hung) is recorded with
 * status "unreadable" and the reason: it is evidence all the same.
 *
 * The record ("media" in the item record, docs/formats.md):
 *   {"status": "ok" | "unreadable", "reason"?, "kind": "video" | "audio" |
 *    "image" | "document" | "other" | "empty" | "unknown", "mime", "type"
 *    (libmagic's description), "container" (libavformat's demuxer),
 *    "container_name", "duration_us", "creation_time", "make", "model",
 *    "location": {"iso6709", "lat", "lon", "alt"?}, "streams": [{"index",
 *    "type", "codec", "codec_tag", "width", "height", "frame_rate",
 *    "sample_rate", "channels", "duration_us"}], "data_tracks": [{"index",
 *    "codec", "codec_tag"}], "tool": {"name", "version", "libavformat",
 *    "libavcodec", "libavutil", "libmagic"}, "seq", "time"}
 * Members are left out when unknown. The record also says what the
 * normalisation policy asked for: "normalisation": {"action": "keep" |
 * "preserve-ffv1" | "preserve-h264", "derivatives": ["access", "poster",
 * "preservation"]} (audio and video only).
 *
 * Derivatives: each is a content-addressed blob of its own under
 * derivatives/sha256/ab/cd/<hex> (never an item: ingesting its bytes is new
 * evidence), made by the worker (cs_media_derive_fd) into a temp file the
 * parent gives it, and recorded as a ledger event "derivative" naming the
 * original, the method (remux, transcode, frame), the encoders and their
 * parameters and the library versions; the item's record lists them as
 * "derivatives": [{"kind": "access" | "preservation" | "poster", "status":
 * "ok" | "failed", "reason"?, "sha256"?, "size"?, "format", "method",
 * "streams", "tool", "seq", "time"}]. A derivative that cannot be made is
 * recorded as failed with the reason; the original is untouched.
 *
 * Nothing here schedules: custosd runs cs_media_process as a later stage
 * (daemon/media.c), `custos media process` runs it in the foreground.
 */
#ifndef CUSTOS_MEDIA_H
#define CUSTOS_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cs_store;

/* The software that asked for the record, recorded as the event's "agent". */
struct cs_media_agent {
	const char *name;    /* "custosd", "custos" */
	const char *version; /* its version */
};

/* The worker's limits; 0 in a field: its default. */
struct cs_media_limits {
	uint64_t wall_ms;   /* killed after this long (default 120 s) */
	uint64_t cpu_s;     /* RLIMIT_CPU (default 60 s) */
	uint64_t mem_bytes; /* RLIMIT_AS (default 1 GiB; not set in sanitizer builds) */
	/*
	 * Optional: when *stop becomes non-zero (another thread; read atomically),
	 * a running worker is killed and cs_media_process returns -ECANCELED,
	 * recording nothing for that step (the item stays pending).
	 */
	const int *stop;
};

/*
 * The normalisation policy: text of "FORMAT=ACTION" entries separated by
 * white space or commas, FORMAT a libavformat demuxer name ("avi", "mov"),
 * a codec name ("mjpeg", "h264") or "*" (every other), ACTION keep,
 * preserve-ffv1 or preserve-h264; and "access_height=N" (default 720, 0 no
 * limit). NULL or "": the defaults. cs_media_policy_check: 0, or -EINVAL
 * with a message for an operator in why. cs_media_policy_action: the action
 * for a media record into act: the first name not kept decides, the
 * container's first (kept when one of its names is: "mov,mp4,...") then
 * each audio and video codec's, and the policy's entries are looked at
 * before the defaults. Pure functions.
 */
int cs_media_policy_check(const char *policy, char *why, size_t whyn);
int cs_media_policy_height(const char *policy);
int cs_media_policy_action(const char *policy, const json_t *media, char act[16]);

/*
 * Identifies and probes item `id`: opens its blob read-only, runs the worker
 * `probe` (the path of custos-probe) on it under `lim` (NULL: defaults), and
 * writes the "media" event (not again while the item's derivatives are
 * pending: then only those are made); then
 * makes each derivative `policy` asks for that the item does not have yet
 * (limits: ten times `lim`'s times; output at most 16 times the original's
 * size plus 256 MiB), each a "derivative" event. A worker that fails, crashes, hangs or cannot be
 * started is an "unreadable" record with the reason, not an error. *record
 * (optional, new reference): the record written; *seq (optional): the
 * event's ledger index. Returns 0, CS_ENOTFOUND for an unknown id, -EINVAL
 * for a policy that does not parse, -ECANCELED (lim->stop), -EBADF if
 * the store is not open for writing, -ENOENT if the blob is missing (nothing
 * is written: fixity reports it), -ENOMEM, or the store's error. Any thread;
 * blocks until the worker ends.
 */
int cs_media_process(struct cs_store *st, const char *id, const char *probe,
    const struct cs_media_limits *lim, const char *policy, const struct cs_media_agent *agent,
    json_t **record, uint64_t *seq);

/*
 * Opens derivative `kind` ("access", "preservation", "poster") of item `id`,
 * the newest one made with status ok, read-only: *fd, and its entry in the
 * record (*entry, new reference; optional). 0, CS_ENOTFOUND (no such item
 * or derivative), CS_EDIGEST (its bytes are not the recorded ones), -ENOENT
 * (its blob is missing), or the store's error. A kept original is its own
 * preservation copy: CS_ENOTFOUND here, the item's blob serves.
 */
int cs_media_derivative_open(struct cs_store *st, const char *id, const char *kind, int *fd,
    json_t **entry);

/*
 * The items that have no media record yet, in id order: at most `max` ids as
 * a JSON array (new reference) in *ids; *pending: how many there are in all.
 */
int cs_media_pending(struct cs_store *st, size_t max, json_t **ids, uint64_t *pending);

/*
 * Fingerprints (lib/media_fp.c, lib/fingerprint.c). cs_media_process makes
 * one for every audio or video item it reads, after its derivatives, as a
 * "fingerprint" event; the index of all of them answers cs_media_match.
 *
 * cs_media_fingerprint: runs the worker on the file open on `fd` (read
 * only, never stored) and gives its answer in *fp (new reference):
 * {"status": "ok" | "failed", "reason"?, "video"?: {"algorithm":
 * "dhash64-keyframe", "interval_ms", "count", "hashes"}, "audio"?:
 * {"algorithm": "chromaprint", "chromaprint_algorithm", "chromaprint",
 * "item_us", "count", "values"}, "tool"}. 0, -ENOMEM, or -errno when the
 * worker could not run.
 *
 * cs_media_match: the stored items whose fingerprints match `fp` (as
 * above) except item `self` (NULL: none), with score >= threshold, best
 * first, in *out (new reference): {"matches": [{"id", "score", "offset_s",
 * "video"?: {"score", "offset_s", "matched", "of"}, "audio"?: {...}}],
 * "query": {"video_hashes", "audio_values"}, "index": {"entries",
 * "candidates"}}. score: the fraction of the query's hashes (or audio
 * values, whichever is higher) that match at the best offset; offset_s:
 * where in the stored item the query's start is, in seconds. 0, -EINVAL
 * (malformed fp), -ENOMEM, CS_ESTORE.
 *
 * cs_media_similar: the same for stored item `id`'s fingerprint;
 * CS_ENOTFOUND when it has none (or no such item).
 */
int cs_media_fingerprint(int fd, const char *probe, const struct cs_media_limits *lim,
    json_t **fp);
int cs_media_match(struct cs_store *st, const json_t *fp, const char *self, double threshold,
    json_t **out);
int cs_media_similar(struct cs_store *st, const char *id, double threshold, json_t **out);

/*
 * The worker's side (custos-probe). cs_media_sandbox confines the calling
 * process before it reads anything: no new privileges, its own empty network
 * namespace, a Landlock ruleset that allows no file system access and no TCP
 * (descriptors already open stay usable), and a seccomp filter that refuses
 * sockets, exec, tracing, namespaces, mounts, io_uring and the like with
 * EPERM. Returns 0, or -errno of the first step that failed (a kernel without
 * Landlock: -EOPNOTSUPP, the rest done).
 */
int cs_media_sandbox(void);
/*
 * Loads libmagic's database; call before cs_media_sandbox (it opens files).
 * Returns 0 or CS_EFORMAT.
 */
int cs_media_probe_init(void);
/*
 * Identifies and probes the file open on `fd` (read with pread only) and
 * returns its record in *out (new reference): status, kind, mime, ... as
 * above, without "seq" and "time". 0 or -ENOMEM.
 */
int cs_media_probe_fd(int fd, json_t **out);
/*
 * Makes derivative `what` ("access", "preservation-ffv1", "preservation-h264"
 * or "poster") of the file open on `in` (read with pread only) into the
 * file open on `out` (written with pwrite, read back; no path is opened),
 * scaling access copies and posters to at most `max_height` lines (0: no
 * limit). *res (new reference): {"status": "ok" | "failed", "reason"?,
 * "method": "remux" | "transcode" | "frame", "streams": [{"type", "codec",
 * "encoder"?, "parameters"}], "tool": {...}}. 0, -ENOMEM, or -ENOSPC when
 * writing `out` found its disk full (no answer: the copy is made again later).
 */
int cs_media_derive_fd(int in, int out, const char *what, int max_height, json_t **res);
/*
 * Fingerprints the file open on `in` (read with pread only): *res (new
 * reference) as cs_media_fingerprint describes, without the tool's
 * "version". 0 or -ENOMEM.
 */
int cs_media_fingerprint_fd(int in, json_t **res);

#endif
