/*
 * The rules about body-worn recorders, as pure functions (no I/O, no
 * store): which file names a pattern matches and what they give, the
 * recorders' zone and the correction of their clock, sequence numbers and
 * the gaps between them, and the body of a dock receipt. custosd's dock
 * code (daemon/dock.c) decides when they apply; formats.md §7 (the jobs
 * table, the receipt) and custosd(8) describe them for operators.
 */
#ifndef CUSTOS_RECORDER_H
#define CUSTOS_RECORDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A recorder clock further off than this (a year) is suspect: reset, or a flat battery. */
#define CS_RECORDER_CLOCK_SUSPECT_MS ((int64_t)365 * 86400 * 1000)
/* Sequence numbers of more significant digits are kept as text, out of the gaps. */
#define CS_RECORDER_SEQ_MAX_DIGITS 18

/* The fields a recorder file-name pattern takes from a name. */
struct cs_name_fields {
	char device[64], officer[64], time[16];
	char seq[256]; /* as written: any length a name can hold */
};

/*
 * Checks a file-name pattern ("{device}_{officer}_{time}_{seq}.{ext}"):
 * known fields only, at least one, two fields never side by side. 0, or -1
 * with the reason in err.
 */
int cs_pattern_check(const char *pattern, char *err, size_t errn);
/*
 * Matches file name `name` against `pat` (one that passed cs_pattern_check);
 * fields are copied into f. 1 on a match.
 */
int cs_recorder_match(const char *pat, const char *name, struct cs_name_fields *f);
/*
 * A recorder's "YYYYMMDDhhmmss" (a name's {time}) in its zone, `offset_min`
 * minutes east of UTC, to ms since the epoch. 0, or -1 if it is not such a time.
 */
int cs_recorder_name_time(const char *t, int offset_min, int64_t *ms);
/*
 * The clock offset of a recorder: `clock` (DEVICE.json's RFC 3339 reading at
 * docking) against the station's `docked_at_ms`. 0 with *offset_ms the
 * station's time minus the recorder's (positive: the recorder is behind) and
 * *suspect 1 when it is more than CS_RECORDER_CLOCK_SUSPECT_MS either way;
 * -1 if `clock` is not an RFC 3339 time.
 */
int cs_recorder_clock_offset(const char *clock, int64_t docked_at_ms, int64_t *offset_ms,
    int *suspect);
/*
 * A sequence number as written in a name: 1 with *v its value, 0 when it has
 * more than CS_RECORDER_SEQ_MAX_DIGITS significant digits (kept as text,
 * not counted).
 */
int cs_recorder_seq_value(const char *seq, long long *v);
/*
 * Sorts the JSON integers of array `seqs` in place, keeping each number
 * once, and appends to array `gaps` each run of numbers missing between
 * them as [first, last]. 0, or -ENOMEM (then both may be partly done).
 */
int cs_recorder_gaps(json_t *seqs, json_t *gaps);

/* What a dock receipt says; strings are copied, arrays referenced. */
struct cs_receipt_parts {
	const char *session, *device, *model, *officer, *docked_at, *recorder_clock;
	int64_t clock_offset_ms;
	int clock_suspect;
	json_t *files;         /* one object per file secured in the session */
	json_t *sequence_gaps; /* from cs_recorder_gaps */
	/* "local" (NULL), or "remote": every file's remote copy was confirmed first */
	const char *release_policy;
};
/* The receipt's JSON object ("custos dock receipt v1"); NULL: out of memory. */
json_t *cs_recorder_receipt(const struct cs_receipt_parts *p);

#endif
