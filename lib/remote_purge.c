/*
 * Remote purge (custos/remote_purge.h): an item's objects removed from the
 * bucket version by version, and legal hold set or cleared on them. Each
 * step is one request of cs_remote_request (signed, retried when
 * transient), asked and answered in turn: an item has a few objects of a
 * few versions, and the caller runs off any event loop. A version is
 * deleted only when the server's own answers say nothing keeps it: no legal
 * hold, and a retain-until earlier than the server's Date; the DELETE
 * never carries x-amz-bypass-governance-retention, so a server that still
 * counts it retained refuses it, and it is reported "locked".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "custos/error.h"
#include "custos/query.h"
#include "custos/remote_purge.h"
#include "custos/retention.h"
#include "util.h"

/* One request's answer, kept. */
struct call {
	int done, rc;
	long status;
	char code[64], version[200], date[64], why[800];
	char *body;
};

static void
on_answer(void *ctx, const struct cs_remote_answer *a)
{
	struct call *c = ctx;

	c->done = 1;
	c->rc = a->rc;
	c->status = a->status;
	snprintf(c->code, sizeof(c->code), "%s", a->code);
	snprintf(c->version, sizeof(c->version), "%s", a->version_id);
	snprintf(c->date, sizeof(c->date), "%s", a->date);
	snprintf(c->why, sizeof(c->why), "%s", a->why);
	c->body = strdup(a->body);
	if (c->body == NULL && c->rc == 0)
		c->rc = -ENOMEM;
}

/* Asks one request and waits for its answer: 0 (c holds it; free c->body) or < 0. */
static int
call(struct cs_remote *r, const char *method, const char *key, const char *const *params,
    const char *body, struct call *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	rc = cs_remote_request(r, method, key, params, body, on_answer, c);
	while (rc == 0 && !c->done)
		rc = cs_remote_poll(r, 1000);
	if (rc == 0 && c->rc == -ENOMEM)
		rc = -ENOMEM;
	return rc;
}

/* The text of <tag> inside [a, end) into out; 0, or -1 when absent. */
static int
tag(const char *a, const char *end, const char *name, char *out, size_t n)
{
	char open[48], close[48];
	const char *s, *e;

	snprintf(open, sizeof(open), "<%s>", name);
	snprintf(close, sizeof(close), "</%s>", name);
	s = strstr(a, open);
	if (s == NULL || s >= end)
		return -1;
	s += strlen(open);
	e = strstr(s, close);
	if (e == NULL || e > end || (size_t)(e - s) >= n)
		return -1;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return 0;
}

/* "Mon, 07 Dec 2026 05:19:42 GMT" into ms; -1 when it does not parse. */
static int64_t
http_date(const char *s)
{
	struct tm tm = {0};
	const char *e = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	return e != NULL && *e == '\0' ? (int64_t)timegm(&tm) * 1000 : -1;
}

/* The page size of a listing: the server's default, or in test builds $CUSTOS_TEST_LIST_PAGE. */
static const char *
page_size(void)
{
#ifdef CS_FAILPOINTS
	const char *v = getenv("CUSTOS_TEST_LIST_PAGE");

	if (v != NULL && v[0] != '\0')
		return v;
#endif
	return NULL;
}

/* Appends `key`'s versions and delete markers (every page) to `list`: [{"version", "marker"?}]. */
static int
list_versions(struct cs_remote *r, const char *key, json_t *list, char *why, size_t whyn)
{
	char km[1200] = "", vm[256] = "", k[1200], v[256], t[16];
	const char *pg = page_size();
	struct call c;
	int rc = 0, more = 1;

	while (rc == 0 && more) {
		const char *params[12] = {"prefix", key, "versions", ""};
		size_t n = 4;
		if (km[0] != '\0') {
			params[n++] = "key-marker";
			params[n++] = km;
			params[n++] = "version-id-marker";
			params[n++] = vm;
		}
		if (pg != NULL) {
			params[n++] = "max-keys";
			params[n++] = pg;
		}
		rc = call(r, "GET", NULL, params, NULL, &c);
		if (rc == 0 && (c.rc != 0 || c.status != 200)) {
			snprintf(why, whyn, "%s", c.why);
			rc = c.rc != 0 ? c.rc : CS_EREMOTE;
		}
		more = 0;
		for (const char *a = c.body; rc == 0 && a != NULL && *a != '\0';) {
			const char *ver = strstr(a, "<Version>"), *dm = strstr(a, "<DeleteMarker>");
			int marker = dm != NULL && (ver == NULL || dm < ver);
			const char *s = marker ? dm : ver, *e = NULL;
			json_t *o;
			if (s != NULL)
				e = strstr(s, marker ? "</DeleteMarker>" : "</Version>");
			if (s == NULL || e == NULL)
				break;
			a = e + 1;
			if (tag(s, e, "Key", k, sizeof(k)) < 0 || strcmp(k, key) != 0 ||
			    tag(s, e, "VersionId", v, sizeof(v)) < 0)
				continue; /* another key under the prefix */
			o = json_pack("{s:s}", "version", v);
			if (o != NULL && marker &&
			    json_object_set_new(o, "marker", json_true()) < 0) {
				json_decref(o);
				o = NULL;
			}
			if (o == NULL || json_array_append_new(list, o) < 0)
				rc = -ENOMEM;
		}
		if (rc == 0 && c.body != NULL &&
		    tag(c.body, c.body + strlen(c.body), "IsTruncated", t, sizeof(t)) == 0 &&
		    strcmp(t, "true") == 0) {
			const char *end = c.body + strlen(c.body);
			if (tag(c.body, end, "NextKeyMarker", k, sizeof(k)) < 0 ||
			    tag(c.body, end, "NextVersionIdMarker", v, sizeof(v)) < 0) {
				snprintf(why, whyn,
				    "ListObjectVersions %s: a truncated answer "
				    "without its next markers",
				    key);
				rc = CS_EREMOTE;
			} else if (strcmp(k, key) == 0) { /* past our key: nothing more of it */
				snprintf(km, sizeof(km), "%s", k);
				snprintf(vm, sizeof(vm), "%s", v);
				more = 1;
			}
		}
		free(c.body);
	}
	return rc;
}

static int
set_str(json_t *o, const char *k, const char *v)
{
	return json_object_set_new(o, k, json_string(v)) < 0 ? -ENOMEM : 0;
}

/*
 * What keeps version `v` (its object) of `key`: "held", "locked" (with
 * "mode", "retain_until"), "expired" or "failed" ("error"); set into v as
 * "outcome". The server's clock is the Date of its retention answer.
 */
static int
look_version(struct cs_remote *r, const char *key, json_t *v)
{
	const char *vid = json_string_value(json_object_get(v, "version"));
	const char *pr[] = {"retention", "", "versionId", vid, NULL};
	const char *ph[] = {"legal-hold", "", "versionId", vid, NULL};
	char mode[32] = "", until[64] = "", st[16] = "";
	struct call c;
	int64_t now = -1, until_ms = -1;
	int rc;

	if (json_is_true(json_object_get(v, "marker")))
		return set_str(v, "outcome", "expired"); /* a delete marker holds nothing */
	rc = call(r, "GET", key, pr, NULL, &c);
	if (rc < 0)
		return rc;
	if (c.rc == 0 && c.status == 200) {
		const char *end = c.body + strlen(c.body);
		tag(c.body, end, "Mode", mode, sizeof(mode));
		tag(c.body, end, "RetainUntilDate", until, sizeof(until));
	}
	now = http_date(c.date);
	free(c.body);
	if (c.rc != 0 || (c.status != 200 && c.status != 404 && strcmp(c.code, "InvalidRequest"))) {
		/* 404 NoSuchObjectLockConfiguration: none; InvalidRequest: no lock on the bucket */
		rc = set_str(v, "outcome", "failed");
		return rc == 0 ? set_str(v, "error", c.why) : rc;
	}
	if (until[0] != '\0') {
		rc = set_str(v, "mode", mode);
		if (rc == 0)
			rc = set_str(v, "retain_until", until);
		if (rc < 0)
			return rc;
		if (cs__time_parse(until, &until_ms) != 0)
			until_ms = INT64_MAX; /* a date we cannot read: kept */
	}
	rc = call(r, "GET", key, ph, NULL, &c);
	if (rc < 0)
		return rc;
	if (c.rc == 0 && c.status == 200)
		tag(c.body, c.body + strlen(c.body), "Status", st, sizeof(st));
	free(c.body);
	if (c.rc != 0 || (c.status != 200 && c.status != 404 && strcmp(c.code, "InvalidRequest"))) {
		rc = set_str(v, "outcome", "failed");
		return rc == 0 ? set_str(v, "error", c.why) : rc;
	}
	if (strcmp(st, "ON") == 0)
		return set_str(v, "outcome", "held");
	if (until_ms >= 0 && (now < 0 || until_ms >= now))
		return set_str(v, "outcome", "locked");
	return set_str(v, "outcome", "expired");
}

int
cs_remote_purge_look(struct cs_remote *r, const char *key, json_t **out)
{
	json_t *o, *list = json_array(), *v;
	char why[800] = "";
	size_t i;
	int rc = list != NULL ? list_versions(r, key, list, why, sizeof(why)) : -ENOMEM;

	json_array_foreach(list, i, v) if (rc == 0) rc = look_version(r, key, v);
	o = rc == -ENOMEM ? NULL : json_pack("{s:s, s:O}", "key", key, "versions", list);
	json_decref(list);
	if (o == NULL)
		return -ENOMEM;
	if (rc < 0 && why[0] != '\0' && set_str(o, "error", why) < 0)
		rc = -ENOMEM;
	if (rc == -ENOMEM) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return rc;
}

/* Deletes version `v` of `key` when its look found it "expired". */
static int
delete_version(struct cs_remote *r, const char *key, json_t *v)
{
	const char *out = json_string_value(json_object_get(v, "outcome"));
	const char *vid = json_string_value(json_object_get(v, "version"));
	const char *params[] = {"versionId", vid, NULL};
	struct call c;
	int rc;

	if (out == NULL || strcmp(out, "expired") != 0)
		return 0;
	rc = call(r, "DELETE", key, params, NULL, &c);
	free(c.body);
	if (rc < 0)
		return rc;
	if (c.rc == 0 && (c.status == 204 || c.status == 200))
		return set_str(v, "outcome", "deleted");
	if (c.rc == 0 && c.status == 403 && json_object_get(v, "retain_until") != NULL)
		return set_str(v, "outcome", "locked"); /* the server still counts it retained */
	rc = set_str(v, "outcome", "failed");
	return rc == 0 ? set_str(v, "error", c.why) : rc;
}

/* Appends the key of blob `hex` once to `keys`. */
static int
add_key(const struct cs_remote_config *cfg, json_t *keys, const char *hex, const char *key)
{
	char buf[1200];
	json_t *k;
	size_t i;
	int rc = 0;

	if (key == NULL) {
		if (hex == NULL || strlen(hex) != 64)
			return 0;
		rc = cs_remote_key_blob(cfg, hex, buf, sizeof(buf));
		key = buf;
	}
	json_array_foreach(keys, i, k) if (strcmp(json_string_value(k), key) == 0) return 0;
	return rc < 0 ? rc : json_array_append_new(keys, json_string(key)) < 0 ? -ENOMEM : 0;
}

/* The keys `obj`'s replicas at this remote name. */
static int
replica_keys(const struct cs_remote_config *cfg, const char *remote, json_t *obj, json_t *keys)
{
	json_t *r;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(obj, "replicas"), i, r)
	{
		const char *k = json_string_value(json_object_get(r, "key"));
		const char *at = json_string_value(json_object_get(r, "remote"));
		if (rc == 0 && k != NULL && at != NULL && strcmp(at, remote) == 0)
			rc = add_key(cfg, keys, NULL, k);
	}
	return rc;
}

int
cs_remote_purge_keys(const struct cs_remote_config *cfg, json_t *rec, json_t **keys)
{
	json_t *list = json_array(), *d;
	char remote[1200];
	size_t i;
	int rc = list != NULL ? 0 : -ENOMEM;

	cs_remote_config_name(cfg, remote, sizeof(remote));
	if (rc == 0 && json_object_get(rec, "sha256") != NULL) {
		rc = add_key(cfg, list, json_string_value(json_object_get(rec, "sha256")), NULL);
		if (rc == 0)
			rc = replica_keys(cfg, remote, rec, list);
	}
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *st = json_string_value(json_object_get(d, "status"));
		if (rc == 0 && st != NULL && strcmp(st, "ok") == 0 &&
		    json_object_get(d, "sha256") != NULL) {
			rc = add_key(cfg, list, json_string_value(json_object_get(d, "sha256")),
			    NULL);
			if (rc == 0)
				rc = replica_keys(cfg, remote, d, list);
		}
	}
	if (rc < 0) {
		json_decref(list);
		return rc;
	}
	*keys = list;
	return 0;
}

/* "gone" when every entry of `versions` has `outcome`, else "left". */
static const char *
state_of(json_t *versions, const char *outcome)
{
	json_t *v;
	size_t i;

	json_array_foreach(versions, i, v)
	{
		const char *o = json_string_value(json_object_get(v, "outcome"));
		if (o == NULL || strcmp(o, outcome) != 0)
			return "left";
	}
	return "gone";
}

int
cs_remote_purge_item(const struct cs_remote_config *cfg, json_t *rec, json_t **outcome)
{
	struct cs_remote *r = NULL;
	json_t *keys = NULL, *objs = json_array(), *k, *o = NULL, *v;
	const char *state = "gone";
	size_t i, j;
	int rc = objs != NULL ? cs_remote_purge_keys(cfg, rec, &keys) : -ENOMEM, bad = 0;

	if (rc == 0)
		rc = cs_remote_new(&r, cfg, NULL);
	json_array_foreach(keys, i, k)
	{
		const char *key = json_string_value(k);
		if (rc < 0)
			break;
		o = NULL;
		rc = cs_remote_purge_look(r, key, &o);
		if (rc == -ENOMEM)
			break;
		if (rc < 0)
			bad = rc; /* nothing deleted of a key not wholly looked at */
		json_array_foreach(json_object_get(o, "versions"), j, v)
		{
			const char *out;
			if (rc == 0)
				rc = delete_version(r, key, v);
			out = json_string_value(json_object_get(v, "outcome"));
			if (rc == 0 && out != NULL && strcmp(out, "failed") == 0)
				bad = CS_EREMOTE;
		}
		rc = rc == -ENOMEM ? rc : 0;
		if (rc == 0 && json_object_get(o, "error") != NULL)
			rc = set_str(o, "state", "left");
		else if (rc == 0)
			rc = set_str(o, "state",
			    state_of(json_object_get(o, "versions"), "deleted"));
		if (rc == 0 && strcmp(json_string_value(json_object_get(o, "state")), "gone") != 0)
			state = "left";
		if (rc == 0 && json_array_append_new(objs, o) < 0)
			rc = -ENOMEM;
		if (rc < 0)
			json_decref(o);
	}
	cs_remote_free(r);
	json_decref(keys);
	if (rc == 0 && (o = json_pack("{s:O, s:s}", "objects", objs, "state", state)) == NULL)
		rc = -ENOMEM;
	json_decref(objs);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0 &&
	    (o = json_pack("{s:[], s:s, s:s}", "objects", "state", "left", "error",
	         cs_strerror(rc))) == NULL)
		return -ENOMEM;
	*outcome = o;
	return rc < 0 ? rc : bad;
}

/* Whether the bucket has Object Lock: 1, 0, or < 0 with why. */
static int
bucket_lock(struct cs_remote *r, char *why, size_t whyn)
{
	const char *params[] = {"object-lock", "", NULL};
	char en[32] = "";
	struct call c;
	int rc = call(r, "GET", NULL, params, NULL, &c);

	if (rc < 0)
		return rc;
	if (c.rc == 0 && c.status == 200)
		tag(c.body, c.body + strlen(c.body), "ObjectLockEnabled", en, sizeof(en));
	free(c.body);
	if (c.rc == 0 && c.status == 200)
		return strcmp(en, "Enabled") == 0;
	if (c.rc == 0 && (c.status == 404 || strcmp(c.code, "InvalidRequest") == 0) &&
	    strcmp(c.code, "NoSuchBucket") != 0)
		return 0; /* ObjectLockConfigurationNotFoundError */
	snprintf(why, whyn, "%s", c.why);
	return c.rc != 0 ? c.rc : CS_EREMOTE;
}

int
cs_remote_legal_hold(const struct cs_remote_config *cfg, json_t *rec, int on, json_t **outcome)
{
	struct cs_remote *r = NULL;
	json_t *keys = NULL, *objs = json_array(), *k, *o, *v, *res = NULL;
	char why[800] = "", body[160];
	const char *state = "done";
	size_t i, j;
	int rc = objs != NULL ? cs_remote_purge_keys(cfg, rec, &keys) : -ENOMEM, bad = 0, lock = 0;

	snprintf(body, sizeof(body),
	    "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>%s</Status>"
	    "</LegalHold>",
	    on ? "ON" : "OFF");
	if (rc == 0)
		rc = cs_remote_new(&r, cfg, NULL);
	if (rc == 0)
		lock = bucket_lock(r, why, sizeof(why));
	if (lock < 0) {
		bad = lock;
		state = "partial";
	} else if (rc == 0 && lock == 0) {
		state = "unsupported";
	}
	json_array_foreach(keys, i, k)
	{
		const char *key = json_string_value(k);
		json_t *list;
		if (rc < 0 || lock <= 0)
			break;
		list = json_array();
		o = list != NULL ? json_pack("{s:s, s:o}", "key", key, "versions", list) : NULL;
		if (o == NULL || json_array_append_new(objs, o) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = list_versions(r, key, list, why, sizeof(why));
		if (rc == -ENOMEM)
			break;
		if (rc < 0) {
			bad = rc;
			state = "partial";
			rc = set_str(o, "error", why);
			continue;
		}
		json_array_foreach(list, j, v)
		{
			const char *p[] = {"legal-hold", "", "versionId",
			    json_string_value(json_object_get(v, "version")), NULL};
			struct call c;
			if (rc < 0 || json_is_true(json_object_get(v, "marker")))
				continue; /* a delete marker takes no hold */
			rc = call(r, "PUT", key, p, body, &c);
			free(c.body);
			if (rc < 0)
				break;
			if (c.rc == 0 && c.status == 200) {
				rc = set_str(v, "outcome", "set");
				continue;
			}
			bad = c.rc != 0 ? c.rc : CS_EREMOTE;
			state = "partial";
			rc = set_str(v, "outcome", "failed");
			if (rc == 0)
				rc = set_str(v, "error", c.why);
		}
		for (j = json_array_size(list); j-- > 0;) /* markers: not part of the answer */
			if (json_is_true(json_object_get(json_array_get(list, j), "marker")))
				json_array_remove(list, j);
	}
	cs_remote_free(r);
	json_decref(keys);
	if (rc == 0)
		res = json_pack("{s:s, s:s, s:O}", "status", on ? "ON" : "OFF", "state", state,
		    "objects", objs);
	if (res != NULL && why[0] != '\0' && bad < 0 && set_str(res, "why", why) < 0) {
		json_decref(res);
		res = NULL;
	}
	json_decref(objs);
	if (rc == 0 && res == NULL)
		rc = -ENOMEM;
	if (rc < 0 && rc != -ENOMEM)
		res = json_pack("{s:s, s:s, s:[], s:s}", "status", on ? "ON" : "OFF", "state",
		    "partial", "objects", "why", cs_strerror(rc));
	if (rc == -ENOMEM || res == NULL)
		return -ENOMEM;
	*outcome = res;
	return rc < 0 ? rc : bad;
}

/* 1 if `o` ({sha256, local}) names the bytes `sha` and says they were not removed. */
static int
stayed(const json_t *o, const char *sha)
{
	const char *local = json_string_value(json_object_get(o, "local"));
	const char *s = json_string_value(json_object_get(o, "sha256"));

	return local != NULL && strcmp(local, "removed") != 0 && s != NULL && strcmp(s, sha) == 0;
}

/* 1 if the register entry says the bytes `sha` stayed (shared with an item not purged). */
static int
kept_shared(const json_t *entry, const char *sha)
{
	json_t *d;
	size_t i;

	if (sha == NULL)
		return 0;
	if (stayed(entry, sha))
		return 1;
	json_array_foreach(json_object_get(entry, "derivatives"), i,
	    d) if (stayed(d, sha)) return 1;
	return 0;
}

int
cs_remote_purge_entry(const struct cs_remote_config *cfg, struct cs_store *st, const json_t *entry,
    json_t **outcome)
{
	const char *id = json_string_value(json_object_get(entry, "id"));
	json_t *rec = NULL, *copy, *ders, *d;
	size_t i;
	int rc;

	*outcome = NULL;
	if (id == NULL)
		return CS_ENOTFOUND;
	rc = cs_store_get(st, id, &rec);
	if (rc < 0)
		return rc;
	copy = json_deep_copy(rec);
	json_decref(rec);
	if (copy == NULL)
		return -ENOMEM;
	if (kept_shared(entry, json_string_value(json_object_get(copy, "sha256"))))
		json_object_del(copy, "sha256");
	ders = json_object_get(copy, "derivatives");
	for (i = json_array_size(ders); i-- > 0;) {
		d = json_array_get(ders, i);
		if (kept_shared(entry, json_string_value(json_object_get(d, "sha256"))))
			json_array_remove(ders, i);
	}
	rc = cs_remote_purge_item(cfg, copy, outcome);
	json_decref(copy);
	return rc;
}

int
cs_remote_hold_item(const struct cs_remote_config *cfg, struct cs_store *st, uint64_t hold,
    const char *id, int on, const char **state)
{
	json_t *rec = NULL, *out = NULL;
	int rc = cs_store_get(st, id, &rec), wrc;
	const char *got;

	*state = "failed";
	if (rc == 0)
		rc = cs_remote_legal_hold(cfg, rec, on, &out);
	json_decref(rec);
	if (out == NULL)
		return rc < 0 ? rc : -ENOMEM;
	got = json_string_value(json_object_get(out, "state"));
	if (got != NULL && strcmp(got, "unsupported") == 0)
		*state = "unsupported";
	else if (rc == 0)
		*state = "done";
	wrc = cs_hold_remote_record(st, hold, id, on, out, NULL);
	json_decref(out);
	return rc < 0 ? rc : wrc;
}
