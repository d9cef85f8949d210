/*
 * Recorder docks. Each subdirectory of the dock root is a docked recorder
 * (a mount point or a folder the dock fills) holding DEVICE.json — device
 * id, model, officer id and the recorder's clock reading at docking — and
 * its media in any tree below. When one appears a dock session opens: the
 * folder becomes a watched tree whose files go through the same pipeline as
 * an upload directory's, with metadata from the identity file and from the
 * file names (configurable patterns). When every file is secured, a signed
 * CUSTOS-RECEIPT.json is written into the folder, the sequence gaps against
 * all that was ever secured from that device are recorded, and the session
 * closes. A recorder removed mid-session leaves it interrupted; docking it
 * again resumes it, and a file already secured is never taken twice.
 *
 * Sessions live in the catalog's jobs table: "session/<device>" is the
 * latest session of a device, "session-done/<session id>" the closed ones,
 * "device/<device>" the sequence numbers secured from it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/source.h"
#include "daemon.h"

#define DEFAULT_PATTERN "{device}_{officer}_{time}_{seq}.{ext}"

struct dock {
	struct dock *next;
	struct daemon *d;
	char name[NAME_MAX + 1]; /* the folder's name under the dock root */
	struct inbox tree;
	dev_t dev;
	ino_t ino;
	int active;
	int finalizing;
	int complete;
	int attention_logged;
	int missing_logged;
	uint64_t retry_at; /* loop time before which a failed receipt is not retried */
	char device[128], model[128], officer[128];
	char session[200];
	int64_t docked_at_ms, recorder_clock_ms, offset_ms;
	char recorder_clock[40];
	int offset_min; /* recorders' zone, from the configuration */
	char *patterns[16];
	size_t n_patterns;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
format_ms(int64_t ms, char *buf, size_t n)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	char date[32];
	int frac = (int)(ms % 1000);

	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		date[0] = '\0';
	snprintf(buf, n, "%.20s.%03dZ", date, frac);
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

/*
 * 1 if `s` passes the library's rules for a metadata text field (an officer
 * id, say), 0 if not, -ENOMEM if that could not be checked.
 */
static int
clean_text(const char *s)
{
	const char *one[1] = {s};
	struct cs_meta m = {.officers = one, .n_officers = 1};
	int rc = cs_meta_check(&m, NULL);

	return rc == 0 ? 1 : rc == -ENOMEM ? rc : 0;
}

const char *
dock_device(const struct dock *k)
{
	return k->device;
}

int
dock_own_file(const char *rel)
{
	return strcmp(rel, "DEVICE.json") == 0 || strcmp(rel, "CUSTOS-RECEIPT.json") == 0 ||
	    strncmp(rel, ".CUSTOS-RECEIPT.json.tmp-", 25) == 0;
}

/* ---- file-name patterns ---- */

int
dock_match_pattern(const char *pat, const char *name, struct name_fields *f)
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

static int
parse_name(const struct dock *k, const char *rel, struct name_fields *f)
{
	const char *base = strrchr(rel, '/');

	base = base != NULL ? base + 1 : rel;
	for (size_t i = 0; i < k->n_patterns; i++)
		if (dock_match_pattern(k->patterns[i], base, f))
			return 1;
	return 0;
}

/* A recorder's "YYYYMMDDhhmmss" in its own zone, to ms since the epoch. */
static int
name_time(const struct dock *k, const char *t, int64_t *ms)
{
	struct tm tm = {0};

	if (strlen(t) != 14 || strptime(t, "%Y%m%d%H%M%S", &tm) == NULL)
		return -1;
	*ms = ((int64_t)timegm(&tm) - (int64_t)k->offset_min * 60) * 1000;
	return 0;
}

int
dock_meta(const struct dock *k, const char *rel, struct cs_meta *m, const char **officers,
    char *bufs, size_t bufn, json_t **extra)
{
	struct name_fields f;
	int64_t reported;
	int rc = 0, ok;

	m->source = "dock";
	m->device = k->device;
	if (k->officer[0] != '\0') {
		officers[0] = k->officer;
		m->n_officers = 1;
	}
	*extra = json_pack("{s:s, s:s, s:s, s:I}", "dock_session", k->session, "recorder_model",
	    k->model, "recorder_clock_at_docking", k->recorder_clock, "clock_offset_ms",
	    (json_int_t)k->offset_ms);
	if (*extra == NULL)
		return -ENOMEM;
	if (parse_name(k, rel, &f)) {
		/* What a name gives that would not pass as metadata is left out, not the file. */
		if (f.officer[0] != '\0' && strcmp(f.officer, k->officer) != 0 && bufn > 64 &&
		    (ok = clean_text(f.officer)) != 0) {
			if (ok < 0)
				return ok;
			snprintf(bufs, 64, "%s", f.officer);
			officers[m->n_officers++] = bufs;
		}
		/* (json_object_set_new() fails on a NULL value: out of memory either way) */
		if (f.seq[0] != '\0' &&
		    json_object_set_new(*extra, "seq", json_integer(strtoll(f.seq, NULL, 10))) < 0)
			rc = -ENOMEM;
		if (f.device[0] != '\0' &&
		    cs_name_json_set(*extra, "name_device", f.device, strlen(f.device)) < 0)
			rc = -ENOMEM;
		if (f.time[0] != '\0' && name_time(k, f.time, &reported) == 0 && bufn >= 128) {
			/* Stored both ways: as the recorder reported it, and corrected. */
			char *corr = bufs + 64;
			char rep[40];
			struct cs_meta t = {.recorded_start = corr};
			format_ms(reported, rep, sizeof(rep));
			format_ms(reported + k->offset_ms, corr, 64);
			if (json_object_set_new(*extra, "recorded_start_reported",
			        json_string(rep)) < 0)
				rc = -ENOMEM;
			ok = cs_meta_check(&t, NULL);
			if (ok == 0)
				m->recorded_start = corr;
			else if (ok == -ENOMEM)
				rc = ok;
		}
	}
	m->extra = *extra;
	return rc;
}

/* ---- sessions ---- */

static char *
key_of(const char *prefix, const char *device)
{
	size_t n = strlen(prefix) + strlen(device) + 2;
	char *k = malloc(n);

	if (k != NULL)
		snprintf(k, n, "%s%s", prefix, device);
	return k;
}

/* The latest session of `device` in *s (NULL if none, or unreadable); -ENOMEM: unknown. */
static int
session_get(struct daemon *d, const char *device, json_t **s)
{
	char *key = key_of("session/", device);
	int rc = key != NULL ? cs_store_job_get(d->st, key, s) : -ENOMEM;

	free(key);
	if (rc < 0)
		*s = NULL;
	return rc == -ENOMEM ? rc : 0;
}

static int
session_put(struct daemon *d, const char *device, json_t *s)
{
	char *key = key_of("session/", device);
	int rc = key != NULL && s != NULL ? cs_store_job_put(d->st, key, s) : -ENOMEM;

	if (rc < 0)
		logmsg(0, "recorder %s: the dock session could not be saved (%s)", device,
		    cs_strerror(rc));
	free(key);
	return rc;
}

/*
 * Reads and checks DEVICE.json; -1 with a reason when it is not usable (yet),
 * -ENOMEM when it could not be read for lack of memory.
 */
static int
read_identity(struct dock *k, char *why, size_t whyn)
{
	struct stat sb;
	json_error_t jerr;
	json_t *j = NULL;
	const char *dev, *model, *officer, *clock;
	char buf[65536];
	ssize_t n;
	int fd, rc = -1;

	fd = cs_source_open(k->tree.dirfd, "DEVICE.json", sizeof(buf) - 1, &sb);
	if (fd < 0) {
		snprintf(why, whyn, "DEVICE.json: %s", cs_strerror(fd));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(why, whyn, "DEVICE.json: unreadable");
		return -1;
	}
	if (cs_json_parse(buf, (size_t)n, JSON_REJECT_DUPLICATES, &j, &jerr) == -ENOMEM) {
		snprintf(why, whyn, "DEVICE.json: %s", cs_strerror(-ENOMEM));
		return -ENOMEM;
	}
	dev = json_string_value(json_object_get(j, "device_id"));
	model = json_string_value(json_object_get(j, "model"));
	officer = json_string_value(json_object_get(j, "officer_id"));
	clock = json_string_value(json_object_get(j, "clock"));
	if (j == NULL) {
		snprintf(why, whyn, "DEVICE.json line %d: %s", jerr.line, jerr.text);
	} else if (dev == NULL || strlen(dev) == 0 || strlen(dev) >= sizeof(k->device) ||
	           strchr(dev, '/') != NULL) {
		snprintf(why, whyn, "DEVICE.json: \"device_id\" is missing or invalid");
	} else {
		struct cs_meta m = {.device = dev, .case_no = NULL};
		const char *field;
		/* Each check can fail for lack of memory: then no identity is made of it. */
		int dev_rc = cs_meta_check(&m, &field);
		int officer_ok = officer != NULL && strlen(officer) < sizeof(k->officer) ?
		    clean_text(officer) : 0;
		int model_ok = model != NULL && strlen(model) < sizeof(k->model) ?
		    clean_text(model) : 0;

		if (dev_rc == -ENOMEM || officer_ok < 0 || model_ok < 0) {
			snprintf(why, whyn, "DEVICE.json: %s", cs_strerror(-ENOMEM));
			rc = -ENOMEM;
			goto out;
		}
		if (dev_rc < 0) {
			snprintf(why, whyn, "DEVICE.json: \"device_id\" is not clean text");
			goto out;
		}
		/* An officer id or model that would not pass as metadata is left out. */
		if (officer != NULL && !officer_ok) {
			logmsg(1, "recorder %s: DEVICE.json \"officer_id\" is not clean text of "
			          "at most %zu bytes; left out",
			    dev, sizeof(k->officer) - 1);
			officer = NULL;
		}
		if (model != NULL && !model_ok)
			model = NULL;
		snprintf(k->device, sizeof(k->device), "%s", dev);
		snprintf(k->model, sizeof(k->model), "%s", model ? model : "");
		snprintf(k->officer, sizeof(k->officer), "%s", officer ? officer : "");
		k->docked_at_ms = now_ms();
		k->offset_ms = 0;
		k->recorder_clock[0] = '\0';
		if (clock != NULL && parse_time(clock, &k->recorder_clock_ms) == 0) {
			snprintf(k->recorder_clock, sizeof(k->recorder_clock), "%s", clock);
			k->offset_ms = k->docked_at_ms - k->recorder_clock_ms;
		} else if (clock != NULL) {
			logmsg(1, "recorder %s: DEVICE.json \"clock\" '%s' is not an RFC 3339 time; "
			          "recording times are kept as reported",
			    dev, clock);
		}
		rc = 0;
	}
out:
	json_decref(j);
	return rc;
}

int
dock_identity_load(struct dock **out, int dirfd, char *const *patterns, size_t n_patterns,
    int offset_min, char *why, size_t whyn)
{
	struct dock *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -1;
	k->tree.dirfd = dirfd;
	k->tree.index = -1;
	k->offset_min = offset_min;
	for (size_t i = 0; i < n_patterns && i < 16; i++)
		k->patterns[k->n_patterns++] = patterns[i];
	if (k->n_patterns == 0)
		k->patterns[k->n_patterns++] = (char *)DEFAULT_PATTERN;
	if (read_identity(k, why, whyn) < 0) {
		free(k);
		return -1;
	}
	*out = k;
	return 0;
}

static struct dock *
find_dock(struct daemon *d, const char *name)
{
	for (struct dock *k = d->docks; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static void
open_session(struct daemon *d, struct dock *k)
{
	char why[256], stamp[40], path[PATH_MAX];
	json_t *s;
	struct stat sb;
	int rc;

	k->tree.dirfd = openat(d->dock_rootfd, k->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (k->tree.dirfd < 0 || fstat(k->tree.dirfd, &sb) < 0)
		return;
	rc = read_identity(k, why, sizeof(why));
	if (rc == -ENOMEM)
		goto oom;
	if (rc < 0) {
		if (!k->attention_logged)
			logmsg(1, "dock %s: no session yet: %s", k->name, why);
		k->attention_logged = 1;
		close(k->tree.dirfd);
		k->tree.dirfd = -1;
		return;
	}
	k->attention_logged = 0;
	k->dev = sb.st_dev;
	k->ino = sb.st_ino;
	if (session_get(d, k->device, &s) < 0)
		goto oom;
	if (s != NULL && json_string_value(json_object_get(s, "state")) != NULL &&
	    json_string_value(json_object_get(s, "session")) != NULL &&
	    strcmp(json_string_value(json_object_get(s, "state")), "complete") != 0) {
		const char *clk = json_string_value(json_object_get(s, "recorder_clock"));
		snprintf(k->session, sizeof(k->session), "%s",
		    json_string_value(json_object_get(s, "session")));
		/* The same clock reading as at the first docking: its offset holds. */
		if (clk != NULL && strcmp(clk, k->recorder_clock) == 0)
			k->offset_ms = json_integer_value(json_object_get(s, "clock_offset_ms"));
		logmsg(2, "recorder %s docked again at %s: resuming session %s", k->device, k->name,
		    k->session);
	} else {
		time_t t = (time_t)(k->docked_at_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
		/* Milliseconds: a restart within the same second opens a distinct session. */
		snprintf(k->session, sizeof(k->session), "%s-%s.%03dZ", k->device, stamp,
		    (int)(k->docked_at_ms % 1000));
		logmsg(2, "recorder %s (%s, officer %s) docked at %s: session %s opened, clock offset "
		          "%+.3f s",
		    k->device, k->model[0] ? k->model : "model unknown",
		    k->officer[0] ? k->officer : "unknown", k->name, k->session,
		    (double)k->offset_ms / 1000.0);
		/*
		 * A receipt left from an earlier session speaks only for that
		 * session's files: it must not let the recorder be wiped while new
		 * files wait to be secured. The new session writes its own.
		 */
		if (unlinkat(k->tree.dirfd, "CUSTOS-RECEIPT.json", 0) == 0)
			logmsg(2, "recorder %s: removed the receipt of its earlier session; a new one "
			          "follows when this session's files are secured",
			    k->device);
	}
	json_decref(s);
	format_ms(k->docked_at_ms, stamp, sizeof(stamp));
	s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "session", k->session,
	    "device", k->device, "model", k->model, "officer", k->officer,
	    "state", "open", "docked_at", stamp, "clock_offset_ms", (json_int_t)k->offset_ms,
	    "recorder_clock", k->recorder_clock);
	/* The folder's name is bytes: kept as a name (custos/name.h). */
	if (s != NULL && cs_name_json_set(s, "folder", k->name, strlen(k->name)) < 0) {
		json_decref(s);
		s = NULL;
	}
	rc = session_put(d, k->device, s);
	json_decref(s);
	if (rc == -ENOMEM)
		goto oom;

	snprintf(path, sizeof(path), "%s/%s", d->cfg.docks, k->name);
	free(k->tree.path);
	if ((k->tree.path = strdup(path)) == NULL)
		goto oom;
	k->tree.dock = k;
	k->tree.changed_at = uv_now(d->loop);
	k->active = 1;
	k->complete = 0;
	watch_dir(d, &k->tree, "");
	scan_dir(d, &k->tree, "", 0);
	return;
oom:
	/* No session without its record: the folder is opened again at the next rescan. */
	close(k->tree.dirfd);
	k->tree.dirfd = -1;
	out_of_memory(d, "opening the dock session of %s", k->name);
}

static void
interrupt_session(struct daemon *d, struct dock *k)
{
	json_t *s;

	unwatch_tree(d, &k->tree);
	drop_candidates(d, &k->tree);
	if (k->tree.dirfd >= 0)
		close(k->tree.dirfd);
	k->tree.dirfd = -1;
	k->active = 0;
	if (k->complete) {
		logmsg(2, "recorder %s undocked after its receipt", k->device);
		return;
	}
	if (session_get(d, k->device, &s) < 0 ||
	    (s != NULL && (json_object_set_new(s, "state", json_string("interrupted")) < 0 ||
	                      session_put(d, k->device, s) == -ENOMEM)))
		out_of_memory(d, "recording that session %s is interrupted (it stays open)",
		    k->session);
	json_decref(s);
	logmsg(1, "recorder %s was removed before all its files were secured: session %s is "
	          "interrupted and resumes when it is docked again. Do not wipe it",
	    k->device, k->session);
}

void
dock_rescan(struct daemon *d)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	if (d->dock_rootfd < 0 || d->stopping)
		return;
	/* Recorders that went away (or were replaced by another folder). */
	for (struct dock *k = d->docks; k != NULL; k = k->next) {
		struct stat sb;
		if (!k->active)
			continue;
		if (fstatat(d->dock_rootfd, k->name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    sb.st_ino != k->ino || sb.st_dev != k->dev ||
		    faccessat(k->tree.dirfd, "DEVICE.json", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			interrupt_session(d, k);
		else
			scan_dir(d, &k->tree, "", 0); /* inotify is not trusted alone */
	}
	fd = openat(d->dock_rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0 && errno == ENOMEM)
			out_of_memory(d, "scanning the dock root");
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		struct dock *k;
		struct stat sb;

		if (de->d_name[0] == '.' ||
		    fstatat(d->dock_rootfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode))
			continue;
		k = find_dock(d, de->d_name);
		if (k != NULL && k->active)
			continue;
		if (k == NULL) {
			k = calloc(1, sizeof(*k));
			if (k == NULL) {
				out_of_memory(d, "looking at dock %s", de->d_name);
				break;
			}
			k->d = d;
			snprintf(k->name, sizeof(k->name), "%s", de->d_name);
			k->tree.dirfd = -1;
			k->tree.index = -1;
			k->offset_min = d->cfg.recorder_utc_offset_min;
			for (size_t i = 0; i < d->cfg.n_patterns; i++)
				k->patterns[k->n_patterns++] = d->cfg.patterns[i];
			if (k->n_patterns == 0)
				k->patterns[k->n_patterns++] = (char *)DEFAULT_PATTERN;
			k->next = d->docks;
			d->docks = k;
		}
		open_session(d, k);
	}
	closedir(dir);
}

/* ---- closing a session: the receipt (thread pool) ---- */

struct finalize {
	uv_work_t req;
	struct dock *k;
	struct daemon *d;
	int rc;
	int missing, refused;
	int oom; /* an allocation failed: no receipt from an incomplete walk */
	int dirfd; /* the recorder folder, duplicated for this item */
	char first_missing[256];
	size_t files;
	json_t *gaps;
};

struct walk {
	struct finalize *f;
	json_t *files;
	json_t *seqs;
};

static void
walk_tree(struct walk *w, int dirfd, const char *rel, int depth)
{
	struct dock *k = w->f->k;
	struct dirent *de;
	DIR *dir;
	int fd, rc;

	if (depth > 32)
		return;
	fd = rel[0] ? openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) :
	                  openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0 && errno == ENOMEM)
			w->f->oom = 1;
		if (fd >= 0)
			close(fd);
		w->f->missing++;
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		char sub[PATH_MAX], key[PATH_MAX + 200];
		struct stat sb;
		json_t *job = NULL;
		const char *state;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    (int)sizeof(sub))
			continue;
		if (fstatat(dirfd, sub, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			walk_tree(w, dirfd, sub, depth + 1);
			continue;
		}
		if (dock_own_file(sub))
			continue;
		snprintf(key, sizeof(key), "dock/%s/%s", k->device, sub);
		if ((rc = cs_store_job_get(w->f->d->st, key, &job)) < 0) {
			if (rc == -ENOMEM)
				w->f->oom = 1;
			if (w->f->missing++ == 0)
				snprintf(w->f->first_missing, sizeof(w->f->first_missing), "%.255s", sub);
			continue;
		}
		state = json_string_value(json_object_get(job, "state"));
		if (state != NULL && strcmp(state, "refused") == 0) {
			w->f->refused++;
		} else if (state == NULL || strcmp(state, "released") != 0 ||
		           json_integer_value(json_object_get(job, "size")) != (json_int_t)sb.st_size ||
		           json_integer_value(json_object_get(job, "mtime_ns")) !=
		               (json_int_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec) {
			if (w->f->missing++ == 0)
				snprintf(w->f->first_missing, sizeof(w->f->first_missing), "%.255s", sub);
		} else {
			struct name_fields nf;
			/* (a NULL element fails the append: out of memory either way) */
			json_t *file = json_pack("{s:O, s:O, s:O, s:s}", "size",
			    json_object_get(job, "size"), "sha256", json_object_get(job, "sha256"),
			    "id", json_object_get(job, "id"), "custody", "local");
			/* The path is bytes: kept as a name (custos/name.h). */
			if (file != NULL && cs_name_json_set(file, "name", sub, strlen(sub)) < 0) {
				json_decref(file);
				file = NULL;
			}
			if (json_array_append_new(w->files, file) < 0)
				w->f->oom = 1;
			if (parse_name(k, sub, &nf) && nf.seq[0] != '\0' &&
			    json_array_append_new(w->seqs,
			        json_integer(strtoll(nf.seq, NULL, 10))) < 0)
				w->f->oom = 1;
		}
		json_decref(job);
	}
	closedir(dir);
}

static int
cmp_int(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Merges this session's sequence numbers into the device's record; 0 with
 * *gaps_out the gaps, or -ENOMEM (the record is then left as it was).
 */
static int
update_sequences(struct daemon *d, const char *device, json_t *seqs, json_t **gaps_out)
{
	char *key = key_of("device/", device);
	json_t *rec = NULL, *all, *gaps = json_array(), *v;
	long long *nums = NULL;
	size_t n = 0, i;
	int rc = -ENOMEM;

	if (key == NULL || gaps == NULL)
		goto out;
	rc = cs_store_job_get(d->st, key, &rec);
	if (rc == -ENOMEM) /* never start the device's history afresh for want of memory */
		goto out;
	rc = -ENOMEM;
	if (rec == NULL && (rec = json_object()) == NULL)
		goto out;
	all = json_object_get(rec, "seqs");
	if (!json_is_array(all) &&
	    (json_object_set_new(rec, "seqs", json_array()) < 0 ||
	        (all = json_object_get(rec, "seqs")) == NULL))
		goto out;
	if (json_array_extend(all, seqs) < 0)
		goto out;
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
	if (json_object_set(rec, "gaps", gaps) < 0)
		goto out;
	rc = cs_store_job_put(d->st, key, rec);
	if (rc == -ENOMEM)
		goto out;
	*gaps_out = gaps;
	gaps = NULL;
	rc = 0;
out:
	free(nums);
	json_decref(rec);
	json_decref(gaps);
	free(key);
	return rc;
}

/* A crash while a receipt was written leaves its temp file; it is custos's own. */
static void
remove_stray_receipts(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *dir;

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (strncmp(de->d_name, ".CUSTOS-RECEIPT.json.tmp-", 25) == 0)
			(void)unlinkat(dirfd, de->d_name, 0);
	closedir(dir);
}

static void
finalize_work(uv_work_t *req)
{
	struct finalize *f = req->data;
	struct dock *k = f->k;
	struct walk w = {f, json_array(), json_array()};
	json_t *body = NULL, *s;

	remove_stray_receipts(f->dirfd);
	if (w.files == NULL || w.seqs == NULL) {
		f->rc = -ENOMEM;
		goto out;
	}
	walk_tree(&w, f->dirfd, "", 0);
	f->files = json_array_size(w.files);
	if (f->oom) { /* a receipt lists every file or is not written */
		f->rc = -ENOMEM;
		goto out;
	}
	if (f->missing > 0 || f->refused > 0) {
		f->rc = 1; /* not yet, or needs a person */
		goto out;
	}
	f->rc = update_sequences(f->d, k->device, w.seqs, &f->gaps);
	if (f->rc < 0)
		goto out;
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O, s:s, s:O}", "receipt",
	    "custos dock receipt v1", "session", k->session, "device", k->device, "model", k->model,
	    "officer", k->officer, "recorder_clock_at_docking", k->recorder_clock, "clock_offset_ms",
	    (json_int_t)k->offset_ms, "files", w.files, "release_policy", "local", "sequence_gaps",
	    f->gaps);
	f->rc = body != NULL ? cs_receipt_write(f->d->st, f->dirfd, body) : -ENOMEM;
	if (f->rc < 0)
		goto out;
	/* The receipt is written; a session record that cannot be made for lack of
	 * memory makes the receipt be written again, with it, two seconds later. */
	f->rc = session_get(f->d, k->device, &s);
	if (s != NULL) {
		char *key = key_of("session-done/", k->session);
		char stamp[40];
		format_ms(now_ms(), stamp, sizeof(stamp));
		if (key == NULL || json_object_set_new(s, "state", json_string("complete")) < 0 ||
		    json_object_set_new(s, "closed_at", json_string(stamp)) < 0 ||
		    json_object_set_new(s, "files", json_integer((json_int_t)f->files)) < 0 ||
		    json_object_set(s, "sequence_gaps", f->gaps) < 0 ||
		    session_put(f->d, k->device, s) == -ENOMEM ||
		    cs_store_job_put(f->d->st, key, s) == -ENOMEM)
			f->rc = -ENOMEM;
		free(key);
		json_decref(s);
	}
out:
	json_decref(body);
	json_decref(w.files);
	json_decref(w.seqs);
}

static void
finalize_done(uv_work_t *req, int status)
{
	struct finalize *f = req->data;
	struct dock *k = f->k;
	char gaps[256] = "";

	(void)status;
	k->finalizing = 0;
	f->d->finalizing--;
	if (f->rc == 1) {
		/* Not every file is secured yet (or one was refused): look again shortly. */
		k->retry_at = uv_now(f->d->loop) + 2000;
		if (f->missing > 0 && uv_now(f->d->loop) - k->tree.changed_at > 60000 &&
		    !k->missing_logged) {
			logmsg(1, "recorder %s: %d file(s) not secured yet, for example %s; no receipt "
			          "until they are",
			    k->device, f->missing, f->first_missing);
			k->missing_logged = 1;
		}
		if (f->refused > 0 && !k->attention_logged) {
			logmsg(1, "recorder %s: %d file(s) were refused (see above); no receipt is "
			          "written, so the recorder must not be wiped. An operator must look at it",
			    k->device, f->refused);
			k->attention_logged = 1;
		}
	} else if (f->rc < 0 && store_oom_check(f->d)) {
		k->retry_at = uv_now(f->d->loop) + 2000;
	} else if (is_oom(f->rc)) {
		k->retry_at = uv_now(f->d->loop) + 2000;
		out_of_memory(f->d, "writing the receipt of recorder %s", k->device);
	} else if (f->rc < 0) {
		logmsg(0, "recorder %s: writing the receipt failed: %s; trying again in 30 s",
		    k->device, cs_strerror(f->rc));
		k->retry_at = uv_now(f->d->loop) + 30000;
	} else {
		size_t i;
		json_t *g;
		k->complete = 1;
		f->d->oom_streak = 0;
		json_array_foreach(f->gaps, i, g)
		{
			size_t len = strlen(gaps);
			snprintf(gaps + len, sizeof(gaps) - len, "%s%lld-%lld", i ? ", " : "",
			    (long long)json_integer_value(json_array_get(g, 0)),
			    (long long)json_integer_value(json_array_get(g, 1)));
		}
		logmsg(2, "recorder %s: all %zu file(s) secured; receipt written; session %s closed; "
		          "clock offset %+.3f s",
		    k->device, f->files, k->session, (double)k->offset_ms / 1000.0);
		if (gaps[0] != '\0')
			logmsg(1, "recorder %s: sequence numbers never secured from this device: %s",
			    k->device, gaps);
	}
	json_decref(f->gaps);
	close(f->dirfd);
	free(f);
}

void
dock_tick(struct daemon *d)
{
	uint64_t now = uv_now(d->loop);

	for (struct dock *k = d->docks; k != NULL; k = k->next) {
		struct finalize *f;

		if (!k->active || k->finalizing || !taking_work(d))
			continue;
		if (k->complete && k->tree.pending == 0)
			continue;
		if (k->tree.pending > 0) {
			k->complete = 0; /* new files: a new receipt once they are secured */
			continue;
		}
		if (now - k->tree.changed_at < d->cfg.settle_ms + 500 || now < k->retry_at)
			continue;
		f = calloc(1, sizeof(*f));
		if (f == NULL) {
			out_of_memory(d, "closing the session of recorder %s", k->device);
			return;
		}
		f->k = k;
		f->d = d;
		f->req.data = f;
		f->dirfd = fcntl(k->tree.dirfd, F_DUPFD_CLOEXEC, 0);
		if (f->dirfd < 0) {
			free(f);
			continue;
		}
		k->finalizing = 1;
		d->finalizing++;
		if (uv_queue_work(d->loop, &f->req, finalize_work, finalize_done) < 0) {
			k->finalizing = 0;
			d->finalizing--;
			close(f->dirfd);
			free(f);
		}
	}
}

int
dock_start(struct daemon *d)
{
	if (mkdir(d->cfg.docks, 0750) < 0 && errno != EEXIST) {
		logmsg(0, "cannot create the dock root %s: %s", d->cfg.docks, strerror(errno));
		return -1;
	}
	d->dock_rootfd = open(d->cfg.docks, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dock_rootfd < 0) {
		logmsg(0, "cannot open the dock root %s: %s", d->cfg.docks, strerror(errno));
		return -1;
	}
	d->dock_wd = inotify_add_watch(d->ifd, d->cfg.docks,
	    IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR | IN_DONT_FOLLOW);
	dock_rescan(d);
	return 0;
}

json_t *
dock_status(struct daemon *d)
{
	json_t *arr = json_array();

	for (struct dock *k = d->docks; k != NULL && arr != NULL; k = k->next) {
		json_t *one;
		if (k->device[0] == '\0')
			continue;
		one = json_pack("{s:s, s:s, s:b, s:b, s:I, s:I}", "device", k->device, "session",
		    k->session, "docked", k->active, "complete", k->complete, "pending",
		    (json_int_t)k->tree.pending, "clock_offset_ms", (json_int_t)k->offset_ms);
		if (one != NULL && cs_name_json_set(one, "folder", k->name, strlen(k->name)) < 0) {
			json_decref(one);
			one = NULL;
		}
		if (json_array_append_new(arr, one) < 0) {
			json_decref(arr); /* out of memory: no list rather than a short one */
			arr = NULL;
		}
	}
	return arr;
}

void
dock_stop(struct daemon *d)
{
	struct dock *k = d->docks, *next;

	for (; k != NULL; k = next) {
		next = k->next;
		if (k->tree.dirfd >= 0)
			close(k->tree.dirfd);
		free(k->tree.path);
		free(k);
	}
	d->docks = NULL;
	if (d->dock_rootfd >= 0)
		close(d->dock_rootfd);
	d->dock_rootfd = -1;
}
