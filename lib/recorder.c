/*
 * The rules about body-worn recorders as pure functions: file-name patterns,
 * the recorders' zone and clock, sequence numbers and their gaps, and the
 * body of a dock receipt (custos/recorder.h). daemon/dock.c applies them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "custos/recorder.h"

/* ---- file-name patterns ---- */

int
cs_pattern_check(const char *p, char *err, size_t errn)
{
	static const char *const names[] = {"device", "officer", "time", "seq", "ext", "any"};
	int placeholders = 0;

	while (*p != '\0') {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			size_t n, i;
			if (end == NULL) {
				snprintf(err, errn, "an unclosed '{'");
				return -1;
			}
			n = (size_t)(end - p - 1);
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strlen(names[i]) == n && strncmp(p + 1, names[i], n) == 0)
					break;
			if (i == sizeof(names) / sizeof(names[0])) {
				snprintf(err, errn,
				    "unknown field {%.*s}; use {device} {officer} {time} {seq} "
				    "{ext} {any}",
				    (int)n, p + 1);
				return -1;
			}
			if (end[1] == '{') {
				snprintf(err, errn,
				    "two fields must be separated by a literal character");
				return -1;
			}
			placeholders++;
			p = end + 1;
		} else {
			p++;
		}
	}
	if (placeholders == 0) {
		snprintf(err, errn, "no field such as {device} or {seq}");
		return -1;
	}
	return 0;
}

int
cs_recorder_match(const char *pat, const char *name, struct cs_name_fields *f)
{
	memset(f, 0, sizeof(*f));
	while (*pat != '\0') {
		if (*pat != '{') {
			if (*name++ != *pat++)
				return 0;
			continue;
		}
		const char *close = strchr(pat, '}');
		char field[16], stop = close[1];
		const char *start = name;
		size_t n, flen = (size_t)(close - pat - 1);

		snprintf(field, sizeof(field), "%.*s", (int)flen, pat + 1);
		pat = close + 1;
		if (strcmp(field, "time") == 0) {
			for (n = 0; n < 14; n++)
				if (name[n] < '0' || name[n] > '9')
					return 0;
			name += 14;
		} else if (strcmp(field, "seq") == 0) {
			while (*name >= '0' && *name <= '9')
				name++;
		} else if (stop == '\0') {
			name += strlen(name);
		} else {
			const char *s = strchr(name, stop);
			if (s == NULL)
				return 0;
			name = s;
		}
		n = (size_t)(name - start);
		if (n == 0)
			return 0;
		/* A field named twice takes its last value, whole. */
		if (strcmp(field, "device") == 0 && n < sizeof(f->device))
			snprintf(f->device, sizeof(f->device), "%.*s", (int)n, start);
		else if (strcmp(field, "officer") == 0 && n < sizeof(f->officer))
			snprintf(f->officer, sizeof(f->officer), "%.*s", (int)n, start);
		else if (strcmp(field, "time") == 0)
			memcpy(f->time, start, n);
		else if (strcmp(field, "seq") == 0 && n < sizeof(f->seq))
			snprintf(f->seq, sizeof(f->seq), "%.*s", (int)n, start);
	}
	return *name == '\0';
}

/* ---- the recorders' zone and clock ---- */

/* A recorder's "YYYYMMDDhhmmss" in its own zone, to ms since the epoch. */
int
cs_recorder_name_time(const char *t, int offset_min, int64_t *ms)
{
	struct tm tm = {0};

	if (strlen(t) != 14 || strspn(t, "0123456789") != 14 ||
	    strptime(t, "%Y%m%d%H%M%S", &tm) == NULL)
		return -1;
	*ms = ((int64_t)timegm(&tm) - (int64_t)offset_min * 60) * 1000;
	return 0;
}

/* Parses RFC 3339 through the library's rules (an ingest-metadata check). */
static int
parse_time(const char *s, int64_t *ms)
{
	struct tm tm = {0};
	char *end;
	int off_h = 0, off_m = 0, sign = 0;

	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.')
		while (*++end >= '0' && *end <= '9')
			;
	if (*end == 'Z' || *end == 'z')
		end++;
	else if ((*end == '+' || *end == '-') && strspn(end + 1, "0123456789") == 2 &&
	    end[3] == ':' && strspn(end + 4, "0123456789") == 2 &&
	    sscanf(end + 1, "%2d:%2d", &off_h, &off_m) == 2) {
		sign = *end == '+' ? 1 : -1;
		end += 6;
	} else
		return -1;
	if (*end != '\0')
		return -1;
	*ms = ((int64_t)timegm(&tm) - sign * (off_h * 3600 + off_m * 60)) * 1000;
	return 0;
}

int
cs_recorder_clock_offset(const char *clock, int64_t docked_at_ms, int64_t *offset_ms,
    int *suspect)
{
	int64_t clock_ms;

	if (parse_time(clock, &clock_ms) < 0)
		return -1;
	*offset_ms = docked_at_ms - clock_ms;
	*suspect = *offset_ms > CS_RECORDER_CLOCK_SUSPECT_MS ||
	    *offset_ms < -CS_RECORDER_CLOCK_SUSPECT_MS;
	return 0;
}

/* ---- sequence numbers ---- */

/*
 * A sequence number as written in a name: 1 with *v its value, 0 when it has
 * more than CS_RECORDER_SEQ_MAX_DIGITS significant digits (kept as text, not
 * counted).
 */
int
cs_recorder_seq_value(const char *seq, long long *v)
{
	const char *digits = seq + strspn(seq, "0");

	if (strlen(digits) > CS_RECORDER_SEQ_MAX_DIGITS)
		return 0;
	*v = strtoll(seq, NULL, 10);
	return 1;
}

static int
cmp_int(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

int
cs_recorder_gaps(json_t *all, json_t *gaps)
{
	long long *nums;
	json_t *v;
	size_t n = 0, i;
	int rc = -ENOMEM;

	nums = malloc((json_array_size(all) + 1) * sizeof(*nums));
	if (nums == NULL)
		goto out;
	json_array_foreach(all, i, v)
		nums[n++] = json_integer_value(v);
	qsort(nums, n, sizeof(*nums), cmp_int);
	/* Keep each number once; a gap is a run of numbers never secured. */
	json_array_clear(all);
	for (i = 0; i < n; i++) {
		if (i > 0 && nums[i] == nums[i - 1])
			continue;
		if (i > 0 && nums[i] > nums[i - 1] + 1 &&
		    json_array_append_new(gaps, json_pack("[I, I]", (json_int_t)nums[i - 1] + 1,
		        (json_int_t)nums[i] - 1)) < 0)
			goto out;
		if (json_array_append_new(all, json_integer(nums[i])) < 0)
			goto out;
	}
	rc = 0;
out:
	free(nums);
	return rc;
}

/* ---- the receipt ---- */

json_t *
cs_recorder_receipt(const struct cs_receipt_parts *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:O, s:s, s:O}", "receipt",
	    "custos dock receipt v1", "session", p->session, "device", p->device, "model",
	    p->model, "officer", p->officer, "docked_at", p->docked_at,
	    "recorder_clock_at_docking", p->recorder_clock, "clock_offset_ms",
	    (json_int_t)p->clock_offset_ms, "clock_suspect", p->clock_suspect, "files", p->files,
	    "release_policy", p->release_policy != NULL ? p->release_policy : "local",
	    "sequence_gaps", p->sequence_gaps);
}
