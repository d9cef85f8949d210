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
 * A session is one docking of one folder: the clock reading in DEVICE.json
 * belongs to the moment of docking, so an unchanged DEVICE.json (same bytes)
 * is the same docking, and a restart of custosd resumes its session (with
 * its docking time and offset, and, when complete, its receipt) instead of
 * opening another. Two folders with one device id are two sessions.
 *
 * A receipt lists only bytes secured from that folder in that session: the
 * jobs of a session's files are its own ("dock/<session id>/<path>"), and a
 * file secured in an earlier opening of the folder (before a restart or an
 * undocking) is listed only once its bytes, read again, have the digest
 * secured. Whatever the walk cannot see (a folder it cannot read or that is
 * too deep, a name too long) keeps the receipt from being written, named.
 *
 * Sessions live in the catalog's jobs table: "session/<device>/<folder>" is
 * the latest session of a device in a folder, "session-done/<session id>"
 * the closed ones, "device/<device>" the sequence numbers secured from it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <pwd.h>
#include <grp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/name.h"
#include "custos/recorder.h"
#include "custos/source.h"
#include "daemon.h"
#include "dock.h"
#include "log.h"
#include "pipeline.h"
#include "watch.h"

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
	int perm_logged;         /* the receipt write's permission problem was explained */
	char last_logged[300];   /* the last file or folder named as keeping the receipt back */
	uint64_t retry_at; /* loop time before which a failed receipt is not retried */
	char device[128], model[128], officer[128];
	char session[200];
	char attach[64];    /* this opening of the folder: what was read in it */
	char identity[65];  /* SHA-256 of DEVICE.json: the docking */
	char docked_at[40]; /* when the session opened (kept when it resumes) */
	int clock_suspect;  /* the recorder's clock is more than CS_RECORDER_CLOCK_SUSPECT_MS off */
	int64_t docked_at_ms, recorder_clock_ms, offset_ms;
	char recorder_clock[64];
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

/* The recorder's current session id, and the token of this opening of its folder. */
static const char *
dock_session(const void *ctx)
{
	const struct dock *k = ctx;

	return k->session;
}

static const char *
dock_attach(const void *ctx)
{
	const struct dock *k = ctx;

	return k->attach;
}

/* Top-level names in a recorder folder that are custos's own, not evidence. */
static int
dock_own_file(const char *rel)
{
	return strcmp(rel, "DEVICE.json") == 0 || strcmp(rel, "CUSTOS-RECEIPT.json") == 0 ||
	    strncmp(rel, ".CUSTOS-RECEIPT.json.tmp-", 25) == 0;
}

/* ---- file-name patterns ---- */

static int
parse_name(const struct dock *k, const char *rel, struct cs_name_fields *f)
{
	const char *base = strrchr(rel, '/');

	base = base != NULL ? base + 1 : rel;
	for (size_t i = 0; i < k->n_patterns; i++)
		if (cs_recorder_match(k->patterns[i], base, f))
			return 1;
	return 0;
}

int
dock_meta(const struct dock *k, const char *rel, struct cs_meta *m, const char **officers,
    char *bufs, size_t bufn, json_t **extra)
{
	struct cs_name_fields f;
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
	if (k->clock_suspect &&
	    json_object_set_new(*extra, "recorder_clock_suspect", json_true()) < 0)
		rc = -ENOMEM;
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
		if (f.seq[0] != '\0') {
			long long v;
			/* Never clamped: a number too long for the gaps is kept as written. */
			ok = cs_recorder_seq_value(f.seq, &v);
			if (!ok)
				logmsg(1, "recorder %s: %s: sequence number %s has more than %d "
				          "digits: it is kept as written (text) and left out of "
				          "the sequence gaps",
				    k->device, rel, f.seq, CS_RECORDER_SEQ_MAX_DIGITS);
			if (json_object_set_new(*extra, "seq",
			        ok ? json_integer((json_int_t)v) : json_string(f.seq)) < 0)
				rc = -ENOMEM;
		}
		if (f.device[0] != '\0' &&
		    cs_name_json_set(*extra, "name_device", f.device, strlen(f.device)) < 0)
			rc = -ENOMEM;
		if (f.time[0] != '\0' && bufn >= 128 &&
		    cs_recorder_name_time(f.time, k->offset_min, &reported) == 0) {
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

static int
dock_source_meta(const void *ctx, const char *rel, struct cs_meta *m, const char **officers,
    char *bufs, size_t bufn, json_t **extra)
{
	return dock_meta(ctx, rel, m, officers, bufs, bufn, extra);
}

/* What the pipeline and the watches know of a docked folder (daemon.h). */
static const struct tree_source dock_source = {
	.session = dock_session,
	.attach = dock_attach,
	.own_file = dock_own_file,
	.meta = dock_source_meta,
};

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

/* "session/<device>/<folder>": the latest session of a device in a folder. */
static char *
session_key(const char *device, const char *folder)
{
	size_t n = strlen(device) + strlen(folder) + 10;
	char *k = malloc(n);

	if (k != NULL)
		snprintf(k, n, "session/%s/%s", device, folder);
	return k;
}

/* The latest session of `device` in `folder` in *s (NULL: none, or unreadable); -ENOMEM. */
static int
session_get(struct daemon *d, const char *device, const char *folder, json_t **s)
{
	char *key = session_key(device, folder);
	int rc = key != NULL ? cs_store_job_get(d->st, key, s) : -ENOMEM;

	free(key);
	if (rc < 0)
		*s = NULL;
	return rc == -ENOMEM ? rc : 0;
}

static int
session_put(struct daemon *d, const char *device, const char *folder, json_t *s)
{
	char *key = session_key(device, folder);
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
	uint64_t isize;
	ssize_t n;
	int fd, rc = -1;

	fd = cs_source_open(k->tree.dirfd, "DEVICE.json", sizeof(buf) - 1, &sb);
	if (fd < 0) {
		snprintf(why, whyn, "DEVICE.json: %s", cs_strerror(fd));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	/* Its digest names the docking: the same bytes, the same clock reading. */
	rc = n >= 0 ? cs_hash_fd(fd, k->identity, &isize) : 0;
	close(fd);
	if (is_oom(rc)) {
		snprintf(why, whyn, "DEVICE.json: %s", cs_strerror(-ENOMEM));
		return -ENOMEM;
	}
	if (n < 0 || rc < 0) {
		snprintf(why, whyn, "DEVICE.json: unreadable");
		return -1;
	}
	rc = -1;
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
		k->clock_suspect = 0;
		k->recorder_clock[0] = '\0';
		if (clock != NULL && strlen(clock) < sizeof(k->recorder_clock) &&
		    cs_recorder_clock_offset(clock, k->docked_at_ms, &k->offset_ms,
		        &k->clock_suspect) == 0) {
			snprintf(k->recorder_clock, sizeof(k->recorder_clock), "%s", clock);
			k->recorder_clock_ms = k->docked_at_ms - k->offset_ms;
		} else if (clock != NULL) {
			logmsg(1, "recorder %s: DEVICE.json \"clock\" '%s' is not an RFC 3339 "
			          "time; recording times are kept as reported",
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

/* 1 if another folder's open session is `session` (one session, one folder). */
static int
session_in_use(struct daemon *d, const struct dock *k, const char *session)
{
	for (struct dock *o = d->docks; o != NULL; o = o->next)
		if (o != k && o->active && strcmp(o->session, session) == 0)
			return 1;
	return 0;
}

static const char *
sfield(const json_t *s, const char *name)
{
	return json_string_value(json_object_get(s, name));
}

/*
 * The same docking as session record `s`: DEVICE.json has the same bytes
 * (a record without them: the same clock reading), so the same clock reading
 * taken at the same docking.
 */
static int
same_docking(const json_t *s, const struct dock *k)
{
	const char *ident = sfield(s, "identity"), *clk = sfield(s, "recorder_clock");

	if (ident != NULL)
		return strcmp(ident, k->identity) == 0;
	return clk != NULL && clk[0] != '\0' && strcmp(clk, k->recorder_clock) == 0;
}

/* Sessions of the device in other folders, for open_session(). */
struct elsewhere {
	struct daemon *d;
	struct dock *k;
	json_t *found; /* a session to resume here (new reference) */
	char found_key[512];
	json_t *stale; /* keys of complete sessions of folders gone from the dock root */
	int oom;
};

static int
look_elsewhere(void *ctx, const char *key, json_t *s)
{
	struct elsewhere *e = ctx;
	const char *state = sfield(s, "state"), *session = sfield(s, "session");
	char *folder = NULL;
	size_t len;
	struct stat sb;
	json_t *one;
	int rc;

	/* The folder's name is bytes (custos/name.h): compared and looked up as such. */
	rc = cs_name_json_get(s, "folder", &folder, &len);
	if (rc == -ENOMEM)
		e->oom = 1;
	if (rc < 0 || state == NULL || session == NULL || strcmp(folder, e->k->name) == 0)
		goto out;
	/* A folder still in the dock root keeps its own session. */
	if (fstatat(e->d->dock_rootfd, folder, &sb, AT_SYMLINK_NOFOLLOW) == 0 ||
	    session_in_use(e->d, e->k, session))
		goto out;
	if (strcmp(state, "complete") == 0 && !same_docking(s, e->k)) {
		/* Superseded: that docking is over (session-done/ keeps it). */
		one = json_object();
		if (one == NULL || cs_name_json_set(one, "key", key, strlen(key)) < 0 ||
		    json_array_append(e->stale, one) < 0)
			e->oom = 1;
		json_decref(one);
		goto out;
	}
	/* Interrupted (or open at a crash), or the same docking moved: resumed here. */
	if (e->found == NULL) {
		e->found = json_incref(s);
		snprintf(e->found_key, sizeof(e->found_key), "%s", key);
	}
out:
	free(folder);
	return 0;
}

/* A new attach token: unique to this opening of the folder, across restarts. */
static void
new_attach(struct dock *k)
{
	static unsigned counter;

	snprintf(k->attach, sizeof(k->attach), "%lld.%ld.%u", (long long)now_ms(), (long)getpid(),
	    ++counter);
}

static void
open_session(struct daemon *d, struct dock *k)
{
	char why[256], stamp[40], path[PATH_MAX], *prefix = NULL;
	struct elsewhere e = {d, k, NULL, "", NULL, 0};
	json_t *s = NULL, *rec = NULL, *v;
	const char *state = NULL;
	struct stat sb;
	size_t i;
	int rc, resumed = 0, complete = 0, moved = 0, renewed = 0;

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
	k->missing_logged = 0;
	k->perm_logged = 0;
	k->last_logged[0] = '\0';
	k->dev = sb.st_dev;
	k->ino = sb.st_ino;
	new_attach(k);
	/* This folder's own latest session first. */
	if (session_get(d, k->device, k->name, &s) < 0)
		goto oom;
	if (s != NULL &&
	    (sfield(s, "state") == NULL || sfield(s, "session") == NULL ||
	        strlen(sfield(s, "session")) >= sizeof(k->session) ||
	        session_in_use(d, k, sfield(s, "session")) ||
	        (strcmp(sfield(s, "state"), "complete") == 0 && !same_docking(s, k)))) {
		json_decref(s); /* docked again (a new clock reading): a new session */
		s = NULL;
		renewed = 1;
	}
	/* Else a session of this device left in a folder that is gone. */
	e.stale = json_array();
	prefix = session_key(k->device, "");
	if (e.stale == NULL || prefix == NULL ||
	    cs_store_jobs_each(d->st, prefix, look_elsewhere, &e) == -ENOMEM || e.oom)
		goto oom;
	if (s == NULL && e.found != NULL &&
	    strlen(sfield(e.found, "session")) < sizeof(k->session)) {
		s = e.found;
		e.found = NULL;
		moved = 1;
	}
	if (s != NULL) {
		const char *clk = sfield(s, "recorder_clock");
		state = sfield(s, "state");
		resumed = 1;
		snprintf(k->session, sizeof(k->session), "%s", sfield(s, "session"));
		/* The docking time and, for the same clock reading, the offset hold. */
		snprintf(k->docked_at, sizeof(k->docked_at), "%s",
		    sfield(s, "docked_at") != NULL ? sfield(s, "docked_at") : "");
		if (clk != NULL && strcmp(clk, k->recorder_clock) == 0) {
			k->offset_ms = json_integer_value(json_object_get(s, "clock_offset_ms"));
			k->clock_suspect = json_is_true(json_object_get(s, "clock_suspect"));
		}
		/*
		 * A complete session of this very docking and folder stays complete,
		 * its receipt in place: a restart makes neither again. (Moved to
		 * another folder, or its receipt gone, its files are proven again
		 * and its receipt written anew.)
		 */
		complete = strcmp(state, "complete") == 0 && !moved &&
		    faccessat(k->tree.dirfd, "CUSTOS-RECEIPT.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		if (complete)
			logmsg(2, "recorder %s at %s: session %s (docked %s) is complete and its "
			          "receipt stays; only files that appear now are taken",
			    k->device, k->name, k->session, k->docked_at);
		else
			logmsg(2, "recorder %s docked again at %s: resuming session %s (docked "
			          "%s), clock offset %+.3f s",
			    k->device, k->name, k->session, k->docked_at,
			    (double)k->offset_ms / 1000.0);
	} else {
		time_t t = (time_t)(k->docked_at_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
		/* Milliseconds: a restart within the same second opens a distinct session. */
		snprintf(k->session, sizeof(k->session), "%s-%s.%03dZ", k->device, stamp,
		    (int)(k->docked_at_ms % 1000));
		/* Two folders of one device docked in the same millisecond: two sessions. */
		for (int n = 2; session_in_use(d, k, k->session) && n < 1000; n++)
			snprintf(k->session, sizeof(k->session), "%s-%s.%03dZ-%d", k->device, stamp,
			    (int)(k->docked_at_ms % 1000), n);
		format_ms(k->docked_at_ms, k->docked_at, sizeof(k->docked_at));
		logmsg(2, "recorder %s (%s, officer %s) docked at %s: session %s opened, clock "
		          "offset %+.3f s",
		    k->device, k->model[0] ? k->model : "model unknown",
		    k->officer[0] ? k->officer : "unknown", k->name, k->session,
		    (double)k->offset_ms / 1000.0);
		/*
		 * A receipt left from an earlier docking speaks only for that
		 * session's files: it must not let the recorder be wiped while new
		 * files wait to be secured. The new session writes its own.
		 */
		if (unlinkat(k->tree.dirfd, "CUSTOS-RECEIPT.json", 0) == 0)
			logmsg(2, "recorder %s: removed the receipt of its earlier %s; a new one "
			          "follows when this session's files are secured",
			    k->device, renewed ? "docking" : "session");
	}
	if (k->clock_suspect)
		logmsg(1, "recorder %s: its clock read %s at docking, %.1f days %s the station's: "
		          "recording times are corrected by that offset and the session is "
		          "flagged; set the recorder's clock (and check its clock battery)",
		    k->device, k->recorder_clock, (double)llabs(k->offset_ms) / 86400000.0,
		    k->offset_ms > 0 ? "behind" : "ahead of");
	if (!complete) {
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b}", "session",
		    k->session, "device", k->device, "model", k->model, "officer", k->officer,
		    "state", "open", "docked_at", k->docked_at, "clock_offset_ms",
		    (json_int_t)k->offset_ms, "recorder_clock", k->recorder_clock, "identity",
		    k->identity, "clock_suspect", k->clock_suspect);
		/* The folder's name is bytes: kept as a name (custos/name.h). */
		if (rec != NULL && cs_name_json_set(rec, "folder", k->name, strlen(k->name)) < 0) {
			json_decref(rec);
			rec = NULL;
		}
		rc = session_put(d, k->device, k->name, rec);
		if (rc == -ENOMEM)
			goto oom;
	}
	/* A session resumed here leaves its old folder; superseded ones go. */
	if (moved && cs_store_job_del(d->st, e.found_key) == -ENOMEM)
		goto oom;
	json_array_foreach(e.stale, i, v) {
		char *stale = NULL;
		size_t n;
		if (resumed)
			break;
		rc = cs_name_json_get(v, "key", &stale, &n);
		if (rc == 0)
			rc = cs_store_job_del(d->st, stale);
		free(stale);
		if (rc == -ENOMEM)
			goto oom;
	}

	snprintf(path, sizeof(path), "%s/%s", d->cfg.docks, k->name);
	free(k->tree.path);
	if ((k->tree.path = strdup(path)) == NULL)
		goto oom;
	k->tree.src = &dock_source;
	k->tree.src_ctx = k;
	k->tree.changed_at = uv_now(d->loop);
	k->active = 1;
	k->complete = complete;
	watch_dir(d, &k->tree, "");
	scan_dir(d, &k->tree, "", 0);
	goto out;
oom:
	/* No session without its record: the folder is opened again at the next rescan. */
	close(k->tree.dirfd);
	k->tree.dirfd = -1;
	out_of_memory(d, "opening the dock session of %s", k->name);
out:
	json_decref(s);
	json_decref(rec);
	json_decref(e.found);
	json_decref(e.stale);
	free(prefix);
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
	if (session_get(d, k->device, k->name, &s) < 0 ||
	    (s != NULL && (json_object_set_new(s, "state", json_string("interrupted")) < 0 ||
	                      session_put(d, k->device, k->name, s) == -ENOMEM)))
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
	int missing, refused, changed, problems;
	int held; /* secured, waiting for their remote copy (release_policy = remote) */
	int oom; /* an allocation failed: no receipt from an incomplete walk */
	int dirfd; /* the recorder folder, duplicated for this item */
	int receipt_removed; /* a file's bytes changed: the folder's receipt no longer held */
	char first_missing[256], first_refused[256], first_changed[256];
	char first_problem[256], problem_why[200];
	size_t files;
	json_t *gaps;
};

struct walk {
	struct finalize *f;
	json_t *files;
	json_t *seqs;
};

/* Counts one more file in a class, keeping the first one's name. */
static void
note(int *count, char first[256], const char *path)
{
	if ((*count)++ == 0)
		snprintf(first, 256, "%.255s", path);
}

/* Something the walk cannot see or check: the receipt is held back, named. */
static void
problem(struct finalize *f, const char *path, const char *why)
{
	if (f->problems++ == 0) {
		snprintf(f->first_problem, sizeof(f->first_problem), "%.255s", path);
		snprintf(f->problem_why, sizeof(f->problem_why), "%s", why);
	}
}

static int64_t
ns_of(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * File `sub` has a released job of this session, secured in an earlier
 * opening of the folder (or since touched): are these its bytes? Reads it
 * again. 1 yes (the job now names this opening), 0 other bytes (the job is
 * marked "changed": the scanner takes the file again), or a negative errno
 * when it could not be read.
 */
static int
prove(struct walk *w, int dirfd, const char *sub, const char *key, json_t *job)
{
	struct finalize *f = w->f;
	const char *sha = json_string_value(json_object_get(job, "sha256"));
	struct stat sb;
	uint64_t size;
	char hex[65];
	int fd, rc, same;

	fd = cs_source_open(dirfd, sub, 0, &sb);
	if (fd < 0)
		return fd;
	rc = cs_hash_fd(fd, hex, &size);
	close(fd);
	if (rc < 0)
		return rc;
	same = sha != NULL && strcmp(hex, sha) == 0 &&
	    json_integer_value(json_object_get(job, "size")) == (json_int_t)size &&
	    json_integer_value(json_object_get(job, "mtime_ns")) == ns_of(sb.st_mtim);
	if (same) {
		if (json_object_set_new(job, "attach", json_string(f->k->attach)) < 0 ||
		    json_object_set_new(job, "ino", json_integer((json_int_t)sb.st_ino)) < 0 ||
		    json_object_set_new(job, "ctime_ns", json_integer(ns_of(sb.st_ctim))) < 0)
			return -ENOMEM;
	} else if (json_object_set_new(job, "state", json_string("changed")) < 0) {
		return -ENOMEM;
	}
	/* (a proof not saved is made again at the next walk; a change not saved: no receipt) */
	rc = cs_store_job_put(f->d->st, key, job);
	if (rc == -ENOMEM)
		return rc;
	return same;
}

static void
walk_tree(struct walk *w, int dirfd, const char *rel, int depth)
{
	struct finalize *f = w->f;
	struct dock *k = f->k;
	struct dirent *de;
	char why[200];
	DIR *dir;
	int fd, rc;

	fd = rel[0] ? openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) :
	                  openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		rc = errno;
		if (fd >= 0)
			close(fd);
		if (rc == ENOMEM) {
			f->oom = 1;
		} else if (rc == ENOENT) {
			note(&f->missing, f->first_missing, rel); /* gone meanwhile: look again */
		} else {
			snprintf(why, sizeof(why), "is a folder that cannot be read (%s)",
			    strerror(rc));
			problem(f, rel[0] ? rel : ".", why);
		}
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		char sub[PATH_MAX];
		struct stat sb;
		json_t *job = NULL;
		const char *state;
		char *key;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
		    (int)sizeof(sub)) {
			snprintf(why, sizeof(why),
			    "holds %.40s..., whose path is longer than %d bytes", de->d_name,
			    PATH_MAX - 1);
			problem(f, rel[0] ? rel : ".", why);
			continue;
		}
		if (fstatat(dirfd, sub, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				note(&f->missing, f->first_missing, sub); /* gone meanwhile */
			} else {
				snprintf(why, sizeof(why), "cannot be examined (%s)",
				    strerror(errno));
				problem(f, sub, why);
			}
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (depth + 1 > TREE_MAX_DEPTH) {
				snprintf(why, sizeof(why),
				    "is more than %d folders deep: custosd does not "
				    "look inside it",
				    TREE_MAX_DEPTH);
				problem(f, sub, why);
			} else {
				walk_tree(w, dirfd, sub, depth + 1);
			}
			continue;
		}
		if (dock_own_file(sub))
			continue;
		key = job_key(&k->tree, sub);
		rc = key != NULL ? cs_store_job_get(f->d->st, key, &job) : -ENOMEM;
		if (rc < 0) {
			if (rc == -ENOMEM)
				f->oom = 1;
			else if (rc != CS_ENOTFOUND) {
				snprintf(why, sizeof(why),
				    "has a job record that cannot be read (%s)", cs_strerror(rc));
				problem(f, sub, why);
			} else
				note(&f->missing, f->first_missing, sub);
			free(key);
			continue;
		}
		state = json_string_value(json_object_get(job, "state"));
		if (state != NULL && strcmp(state, "refused") == 0) {
			note(&f->refused, f->first_refused, sub);
		} else if (state != NULL && strcmp(state, "held") == 0 &&
		    json_integer_value(json_object_get(job, "size")) == (json_int_t)sb.st_size &&
		    json_integer_value(json_object_get(job, "mtime_ns")) == ns_of(sb.st_mtim)) {
			f->held++;
		} else if (state == NULL || strcmp(state, "released") != 0 ||
		    json_string_value(json_object_get(job, "sha256")) == NULL ||
		    json_string_value(json_object_get(job, "id")) == NULL ||
		    json_integer_value(json_object_get(job, "size")) != (json_int_t)sb.st_size ||
		    json_integer_value(json_object_get(job, "mtime_ns")) != ns_of(sb.st_mtim)) {
			note(&f->missing, f->first_missing, sub);
		} else {
			const char *attach = json_string_value(json_object_get(job, "attach"));
			/*
			 * Read in this opening of the folder, untouched since (the inode
			 * and its change time as then): listed. Else its bytes are read
			 * again first; size and time alone never prove them.
			 */
			rc = attach != NULL && strcmp(attach, k->attach) == 0 &&
			    json_integer_value(json_object_get(job, "ino")) ==
			        (json_int_t)sb.st_ino &&
			    json_integer_value(json_object_get(job, "ctime_ns")) ==
			        ns_of(sb.st_ctim);
			if (rc == 0)
				rc = prove(w, dirfd, sub, key, job);
			if (rc == 0) {
				note(&f->changed, f->first_changed, sub);
				note(&f->missing, f->first_missing, sub);
			} else if (rc == -ENOMEM || rc == CS_ECRYPTO) {
				f->oom = 1;
			} else if (rc == -ENOENT) {
				note(&f->missing, f->first_missing, sub);
			} else if (rc < 0) {
				snprintf(why, sizeof(why), "cannot be read to check its bytes (%s)",
				    cs_strerror(rc));
				problem(f, sub, why);
			} else {
				struct cs_name_fields nf;
				long long seq;
				/* (a NULL element fails the append: out of memory either way) */
				json_t *file = json_pack("{s:O, s:O, s:O, s:s}", "size",
				    json_object_get(job, "size"), "sha256",
				    json_object_get(job, "sha256"), "id",
				    json_object_get(job, "id"), "custody",
				    f->d->cfg.release_remote ? "remote" : "local");
				/* The path is bytes: kept as a name (custos/name.h). */
				if (file != NULL &&
				    cs_name_json_set(file, "name", sub, strlen(sub)) < 0) {
					json_decref(file);
					file = NULL;
				}
				if (json_array_append_new(w->files, file) < 0)
					f->oom = 1;
				/* (a number of too many digits was named when it was secured) */
				if (parse_name(k, sub, &nf) && nf.seq[0] != '\0' &&
				    cs_recorder_seq_value(nf.seq, &seq) &&
				    json_array_append_new(w->seqs,
				        json_integer((json_int_t)seq)) < 0)
					f->oom = 1;
			}
		}
		json_decref(job);
		free(key);
	}
	closedir(dir);
}

/*
 * Merges this session's sequence numbers into the device's record; 0 with
 * *gaps_out the gaps, or -ENOMEM (the record is then left as it was).
 */
static int
update_sequences(struct daemon *d, const char *device, json_t *seqs, json_t **gaps_out)
{
	char *key = key_of("device/", device);
	json_t *rec = NULL, *all, *gaps = json_array();
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
	if (cs_recorder_gaps(all, gaps) < 0)
		goto out;
	if (json_object_set(rec, "gaps", gaps) < 0)
		goto out;
	rc = cs_store_job_put(d->st, key, rec);
	if (rc == -ENOMEM)
		goto out;
	*gaps_out = gaps;
	gaps = NULL;
	rc = 0;
out:
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

#ifdef CS_FAILPOINTS
/*
 * Test build: CUSTOSD_TEST_DROP_JOB=<path on the recorder> loses that
 * file's job once, just before a receipt's walk, as a catalog that lost it
 * would: nothing counts the file as pending, and only the walk's own check
 * stands between it and a receipt that leaves it out.
 */
static void
test_drop_job(struct finalize *f)
{
	static int dropped;
	const char *rel = getenv("CUSTOSD_TEST_DROP_JOB");
	json_t *job = NULL;
	char *key;

	if (rel == NULL || dropped)
		return;
	/*
	 * Only a job that is there counts as dropped (deleting a missing key
	 * succeeds): the first walk of another recorder, or of this one before
	 * the file is secured, must not use up the one drop.
	 */
	key = job_key(&f->k->tree, rel);
	if (key != NULL && cs_store_job_get(f->d->st, key, &job) == 0 &&
	    cs_store_job_del(f->d->st, key) == 0) {
		dropped = 1;
		logmsg(2, "test: dropped the job %s", key);
	}
	json_decref(job);
	free(key);
}
#endif

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
#ifdef CS_FAILPOINTS
	test_drop_job(f);
#endif
	walk_tree(&w, f->dirfd, "", 0);
	f->files = json_array_size(w.files);
	/* Bytes other than those secured: a receipt in the folder no longer holds. */
	if (f->changed > 0 && unlinkat(f->dirfd, "CUSTOS-RECEIPT.json", 0) == 0)
		f->receipt_removed = 1;
	if (f->oom) { /* a receipt lists every file or is not written */
		f->rc = -ENOMEM;
		goto out;
	}
	/* Not yet, or needs a person: a receipt lists every file on the recorder. */
	if (f->missing > 0 || f->refused > 0 || f->problems > 0 || f->held > 0) {
		f->rc = 1;
		goto out;
	}
	f->rc = update_sequences(f->d, k->device, w.seqs, &f->gaps);
	if (f->rc < 0)
		goto out;
	body = cs_recorder_receipt(&(struct cs_receipt_parts){.session = k->session,
	    .device = k->device, .model = k->model, .officer = k->officer,
	    .docked_at = k->docked_at, .recorder_clock = k->recorder_clock,
	    .clock_offset_ms = k->offset_ms, .clock_suspect = k->clock_suspect, .files = w.files,
	    .sequence_gaps = f->gaps,
	    .release_policy = f->d->cfg.release_remote ? "remote" : "local"});
	uv_mutex_lock(&f->d->signing); /* it signs a checkpoint (daemon.h) */
	f->rc = body != NULL ? cs_receipt_write(f->d->st, f->dirfd, body) : -ENOMEM;
	uv_mutex_unlock(&f->d->signing);
	if (f->rc < 0)
		goto out;
	/* The receipt is written; a session record that cannot be made for lack of
	 * memory makes the receipt be written again, with it, two seconds later. */
	f->rc = session_get(f->d, k->device, k->name, &s);
	if (s != NULL) {
		char *key = key_of("session-done/", k->session);
		char stamp[40];
		format_ms(now_ms(), stamp, sizeof(stamp));
		if (key == NULL || json_object_set_new(s, "state", json_string("complete")) < 0 ||
		    json_object_set_new(s, "closed_at", json_string(stamp)) < 0 ||
		    json_object_set_new(s, "files", json_integer((json_int_t)f->files)) < 0 ||
		    json_object_set(s, "sequence_gaps", f->gaps) < 0 ||
		    session_put(f->d, k->device, k->name, s) == -ENOMEM ||
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

/* 1 (and remembered) if `what` was not the last thing logged as keeping k's receipt back. */
static int
first_time(struct dock *k, char kind, const char *what)
{
	char buf[sizeof(k->last_logged)];

	snprintf(buf, sizeof(buf), "%c%s", kind, what);
	if (strcmp(buf, k->last_logged) == 0)
		return 0;
	snprintf(k->last_logged, sizeof(k->last_logged), "%s", buf);
	return 1;
}

/*
 * The receipt could not be written for want of permission: says which and
 * what to run, once per opening of the folder (it is retried quietly).
 */
static void
explain_permission(struct dock *k, int rc)
{
	struct stat sb;
	struct passwd *pw;
	struct group *gr;
	const char *who, *bits;
	char user[64], group[64];
	int shift;

	if (k->perm_logged)
		return;
	k->perm_logged = 1;
	if (rc == -EROFS || fstat(k->tree.dirfd, &sb) < 0) {
		logmsg(0, "recorder %s: the receipt cannot be written into %s: %s. Mount or fill "
		          "the recorder folder read-write for custosd; it tries again every 30 s",
		    k->device, k->tree.path, cs_strerror(rc));
		return;
	}
	pw = getpwuid(geteuid());
	snprintf(user, sizeof(user), "%s", pw != NULL ? pw->pw_name : "?");
	gr = getgrgid(getegid());
	snprintf(group, sizeof(group), "%s", gr != NULL ? gr->gr_name : "?");
	if (sb.st_uid == geteuid()) {
		who = "owner";
		shift = 6;
	} else if (sb.st_gid == getegid() || group_member(sb.st_gid)) {
		who = "group";
		shift = 3;
	} else {
		who = "other";
		shift = 0;
	}
	bits = !(sb.st_mode >> shift & 2) ? (!(sb.st_mode >> shift & 1) ? "write and search" :
	    "write") : !(sb.st_mode >> shift & 1) ? "search" : "write (refused by the system)";
	logmsg(0, "recorder %s: the receipt cannot be written into %s (%s): custosd runs as user "
	          "%s (uid %d, group %s) and the folder (owner uid %d, group gid %d, mode %04o) "
	          "gives it, as '%s', no %s permission. Let custosd create files there, for "
	          "example: chgrp %s '%s' && chmod g+rwx '%s' (and have the docking software "
	          "create recorder folders with umask 007 in the set-group-id dock root); custosd "
	          "tries again every 30 s",
	    k->device, k->tree.path, cs_strerror(rc), user, (int)geteuid(), group, (int)sb.st_uid,
	    (int)sb.st_gid, (unsigned)(sb.st_mode & 07777), who, bits, group, k->tree.path,
	    k->tree.path);
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
		if (f->changed > 0)
			logmsg(1, "recorder %s: %s/%s holds other bytes than were secured from it "
			          "in session %s, with the same name, size and time (%d such "
			          "file(s)): it is secured again before any receipt%s",
			    k->device, k->tree.path, f->first_changed, k->session, f->changed,
			    f->receipt_removed ? "; the receipt in the folder, which listed the "
			                         "other bytes, was removed" : "");
		if (f->problems > 0 && first_time(k, 'p', f->first_problem))
			logmsg(1, "recorder %s: %s/%s %s; no receipt is written while it is so "
			          "(%d such problem(s)), and the recorder must not be wiped. An "
			          "operator must look at it",
			    k->device, k->tree.path, f->first_problem, f->problem_why, f->problems);
		if (f->held > 0 && f->missing == 0 && f->problems == 0 && first_time(k, 'h', ""))
			logmsg(2, "recorder %s: %d file(s) secured and held until their remote "
			          "copy is confirmed (release_policy = remote); the receipt "
			          "waits for them",
			    k->device, f->held);
		if (f->missing > 0 && f->problems == 0 && first_time(k, 'm', f->first_missing))
			logmsg(2, "recorder %s: no receipt yet: %s/%s is not recorded as secured "
			          "in session %s; looking at the folder again",
			    k->device, k->tree.path, f->first_missing, k->session);
		/* Nothing was pending, yet a file is not secured: take it (a rescan would). */
		if (f->missing > 0 && k->active && k->tree.pending == 0)
			scan_dir(f->d, &k->tree, "", 0);
		if (f->missing > 0 && uv_now(f->d->loop) - k->tree.changed_at > 60000 &&
		    !k->missing_logged) {
			logmsg(1, "recorder %s: %d file(s) not secured yet, for example %s/%s; no "
			          "receipt until they are",
			    k->device, f->missing, k->tree.path, f->first_missing);
			k->missing_logged = 1;
		}
		if (f->refused > 0 && !k->attention_logged) {
			logmsg(1, "recorder %s: %d file(s) were refused (see above), for example "
			          "%s/%s; no receipt is written, so the recorder must not be "
			          "wiped. An operator must look at it",
			    k->device, f->refused, k->tree.path, f->first_refused);
			k->attention_logged = 1;
		}
	} else if (f->rc < 0 && store_oom_check(f->d)) {
		k->retry_at = uv_now(f->d->loop) + 2000;
	} else if (is_oom(f->rc)) {
		k->retry_at = uv_now(f->d->loop) + 2000;
		out_of_memory(f->d, "writing the receipt of recorder %s", k->device);
	} else if (f->rc == -EACCES || f->rc == -EPERM || f->rc == -EROFS) {
		explain_permission(k, f->rc);
		k->retry_at = uv_now(f->d->loop) + 30000;
	} else if (f->rc < 0) {
		logmsg(0, "recorder %s: writing the receipt failed: %s; trying again in 30 s",
		    k->device, cs_strerror(f->rc));
		k->retry_at = uv_now(f->d->loop) + 30000;
	} else {
		size_t i;
		json_t *g;
		k->complete = 1;
		k->perm_logged = 0;
		k->last_logged[0] = '\0';
		f->d->oom_streak = 0;
		json_array_foreach(f->gaps, i, g)
		{
			size_t len = strlen(gaps);
			snprintf(gaps + len, sizeof(gaps) - len, "%s%lld-%lld", i ? ", " : "",
			    (long long)json_integer_value(json_array_get(g, 0)),
			    (long long)json_integer_value(json_array_get(g, 1)));
		}
		logmsg(2, "recorder %s: all %zu file(s) secured; receipt written; session %s "
		          "closed; clock offset %+.3f s",
		    k->device, f->files, k->session, (double)k->offset_ms / 1000.0);
		if (gaps[0] != '\0')
			logmsg(1,
			    "recorder %s: sequence numbers never secured from this device: %s",
			    k->device, gaps);
	}
	json_decref(f->gaps);
	close(f->dirfd);
	free(f);
}

/* Files appeared in a complete session's folder: it is open until they are secured. */
static void
reopen_session(struct daemon *d, struct dock *k)
{
	json_t *s;

	if (session_get(d, k->device, k->name, &s) < 0 ||
	    (s != NULL && (json_object_set_new(s, "state", json_string("open")) < 0 ||
	                      session_put(d, k->device, k->name, s) == -ENOMEM))) {
		json_decref(s);
		out_of_memory(d, "recording that session %s takes new files", k->session);
		return; /* tried again at the next tick */
	}
	json_decref(s);
	k->complete = 0;
	logmsg(2, "recorder %s: new files in the folder of complete session %s: it is open again "
	          "until they are secured and a new receipt is written",
	    k->device, k->session);
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
			/*
			 * New files: the session is open again, a new receipt once they are
			 * secured.
			 */
			if (k->complete)
				reopen_session(d, k);
			continue;
		}
		if (now - k->tree.changed_at < d->cfg.settle_ms + 500 || now < k->retry_at ||
		    d->exports_planning > 0)
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
	d->trees_changed = dock_rescan;
	d->tree_done = dock_tick;
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
		one = json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:b}", "device", k->device,
		    "session", k->session, "docked_at", k->docked_at, "docked", k->active,
		    "complete", k->complete, "pending", (json_int_t)k->tree.pending,
		    "clock_offset_ms", (json_int_t)k->offset_ms, "clock_suspect", k->clock_suspect);
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
