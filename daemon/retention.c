/*
 * The control socket's retention commands: holds on cases and items, the
 * marks of evidence used in a decision, and what is due under the
 * configured classes. Every decision is lib/'s (custos/retention.h); this
 * file maps a request line to a call and the result to an answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "access.h"
#include "custos/error.h"
#include "custos/query.h"
#include "custos/remote_purge.h"
#include "log.h"
#include "remote.h"
#include "retention.h"

void
retention_policy(const struct daemon *d, struct cs_retention_policy *p)
{
	cs_retention_policy_default(p);
	p->classes = d->cfg.classes;
	p->n_classes = d->cfg.n_classes;
	if (d->cfg.retention[0] != NULL)
		p->holders = d->cfg.retention[0];
	if (d->cfg.retention[1] != NULL)
		p->approvers = d->cfg.retention[1];
	p->approvals = d->cfg.approvals;
	p->grace_ms = (int64_t)d->cfg.grace_s * 1000;
}

int
retention_snap_take(const struct daemon *d, struct retention_snap *s)
{
	memset(s, 0, sizeof(*s));
	retention_policy(d, &s->p);
	s->plan_interval_ms = (int64_t)d->cfg.plan_interval_s * 1000;
	s->holders = strdup(s->p.holders);
	s->approvers = strdup(s->p.approvers);
	s->classes = calloc(s->p.n_classes + 1, sizeof(*s->classes));
	if (s->holders == NULL || s->approvers == NULL || s->classes == NULL) {
		s->p.n_classes = 0;
		retention_snap_free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->p.n_classes; i++) {
		s->classes[i] = s->p.classes[i];
		s->classes[i].name = strdup(s->p.classes[i].name);
		s->classes[i].category = s->p.classes[i].category != NULL
		    ? strdup(s->p.classes[i].category)
		    : NULL;
		if (s->classes[i].name == NULL ||
		    (s->p.classes[i].category != NULL && s->classes[i].category == NULL)) {
			s->p.n_classes = i + 1;
			retention_snap_free(s);
			return -ENOMEM;
		}
	}
	s->p.classes = s->classes;
	s->p.holders = s->holders;
	s->p.approvers = s->approvers;
	return 0;
}

void
retention_snap_free(struct retention_snap *s)
{
	for (size_t i = 0; s->classes != NULL && i < s->p.n_classes; i++) {
		free((char *)s->classes[i].name);
		free((char *)s->classes[i].category);
	}
	free(s->classes);
	free(s->holders);
	free(s->approvers);
	memset(s, 0, sizeof(*s));
}

/*
 * S3 legal hold after a hold or its release, on the thread pool: each item
 * the hold covers (or covered) gets legal hold ON on its remote objects
 * while any hold in force covers it, OFF once none does; each is recorded
 * (a "hold-remote" event). Without a remote, nothing to do.
 */
struct legal {
	uv_work_t req;
	struct daemon *d;
	uint64_t hold; /* the hold added or released; 0: the items of `pushed` */
	json_t *pushed; /* {id: hold}: held items whose new copies were confirmed */
	char *path;     /* the [remote] settings' file */
	unsigned items, failed, unsupported;
	int rc;
	char why[512];
};

static void
legal_one(struct legal *w, const struct cs_remote_config *cfg, uint64_t hold, const char *id,
    int on)
{
	const char *state;
	int rc = cs_remote_hold_item(cfg, w->d->st, hold, id, on, &state);

	if (strcmp(state, "unsupported") == 0)
		w->unsupported++;
	else if (rc < 0)
		w->failed++;
	w->items++;
}

static void
legal_work(uv_work_t *req)
{
	struct legal *w = req->data;
	struct cs_remote_config cfg;
	json_t *list = NULL, *e;
	const char *id;
	size_t i;

	memset(&cfg, 0, sizeof(cfg));
	w->rc = cs_remote_config_load(&cfg, w->path, w->why, sizeof(w->why));
	if (w->rc == 0 && w->pushed != NULL)
		json_object_foreach(w->pushed, id, e)
			legal_one(w, &cfg, (uint64_t)json_integer_value(e), id, 1);
	else if (w->rc == 0)
		w->rc = cs_hold_remote_wants(w->d->st, w->hold, &list);
	json_array_foreach(list, i, e)
	{
		if (w->rc < 0)
			break;
		legal_one(w, &cfg, w->hold, json_string_value(json_object_get(e, "id")),
		    json_is_true(json_object_get(e, "held")));
	}
	json_decref(list);
	cs_remote_config_fini(&cfg);
}

static void
legal_done(uv_work_t *req, int status)
{
	struct legal *w = req->data;
	char what[64];

	if (w->pushed != NULL)
		snprintf(what, sizeof(what), "held items' new copies");
	else
		snprintf(what, sizeof(what), "hold %llu", (unsigned long long)w->hold);
	if (status < 0 || w->rc < 0)
		logmsg(1, "%s: S3 legal hold could not be set on the items' objects: %s; it is "
		          "not retried by itself (release and add the hold again once the remote "
		          "works)",
		    what, w->why[0] ? w->why : cs_strerror(status < 0 ? CS_EREMOTE : w->rc));
	else if (w->unsupported > 0)
		logmsg(2, "%s: the bucket has no Object Lock, so no S3 legal hold is set (the "
		          "hold still keeps the items from any purge)",
		    what);
	else if (w->failed > 0)
		logmsg(1, "%s: S3 legal hold failed for %u of %u items (see their hold-remote "
		          "events: custos show ID)",
		    what, w->failed, w->items);
	else
		logmsg(2, "%s: S3 legal hold brought up to date on the objects of %u items", what,
		    w->items);
	json_decref(w->pushed);
	free(w->path);
	free(w);
}

static void
legal_queue(struct daemon *d, uint64_t hold, json_t *pushed)
{
	struct legal *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		json_decref(pushed);
		return;
	}
	w->d = d;
	w->hold = hold;
	w->pushed = pushed;
	w->req.data = w;
	w->path = remote_config_path(d);
	if (w->path == NULL || uv_queue_work(d->loop, &w->req, legal_work, legal_done) < 0) {
		json_decref(pushed);
		free(w->path);
		free(w);
	}
}

void
retention_pushed_held(struct daemon *d, json_t *held)
{
	if (held != NULL && json_object_size(held) > 0)
		legal_queue(d, 0, held);
	else
		json_decref(held);
}

void
retention_holds_changed(struct daemon *d, uint64_t hold)
{
	json_t *ids = NULL;
	int rc = cs_hold_items(d->st, hold, &ids);

	if (rc < 0)
		logmsg(1, "hold %llu: its items could not be read: %s", (unsigned long long)hold,
		    cs_strerror(rc));
	else if (json_array_size(ids) > 0)
		logmsg(2, "hold %llu: %zu items held", (unsigned long long)hold,
		    json_array_size(ids));
	json_decref(ids);
	legal_queue(d, hold, NULL);
}

static const char *
str(json_t *req, const char *k)
{
	return json_string_value(json_object_get(req, k));
}

/* A lib error that is not a refusal, in words for the operator. */
static json_t *
error(int rc, const char *what, json_t *req)
{
	char msg[512];

	if (rc == CS_EFORMAT && what != NULL && strcmp(what, "reason") == 0)
		return access_failed("say why (--reason)");
	if (rc == CS_EFORMAT && what != NULL && strcmp(what, "case") == 0)
		return access_failed("a hold is on one case (--case) or one item (--item)");
	if (rc == CS_ENOTFOUND && what != NULL && strcmp(what, "member") == 0) {
		snprintf(msg, sizeof(msg),
		    "item %s is not in case file %s: an item is marked "
		    "used in a decision of a case it belongs to",
		    str(req, "id"), str(req, "case"));
		return access_failed(msg);
	}
	if (rc == CS_ENOTFOUND && what != NULL && strcmp(what, "hold") == 0) {
		snprintf(msg, sizeof(msg), "there is no hold %lld (custos hold list --all)",
		    (long long)json_integer_value(json_object_get(req, "hold")));
		return access_failed(msg);
	}
	if (rc == CS_EEXIST) {
		snprintf(msg, sizeof(msg), "hold %lld was released already",
		    (long long)json_integer_value(json_object_get(req, "hold")));
		return access_failed(msg);
	}
	return access_lib_error(rc, what);
}

static json_t *
do_hold_add(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_retention_policy p;
	const char *rule, *what;
	uint64_t hold;
	json_t *ids = NULL, *ans;
	int rc;

	retention_policy(d, &p);
	rc = cs_hold_add(d->st, &p, who, str(req, "case"), str(req, "id"), str(req, "reason"),
	    &hold, &rule, &what);
	if (rc == CS_EDENIED)
		return access_denied(rule);
	if (rc < 0)
		return error(rc, what, req);
	logmsg(2, "hold %llu added by %s (uid %ld) on %s %s", (unsigned long long)hold, who->name,
	    who->uid, str(req, "case") != NULL ? "case" : "item",
	    str(req, "case") != NULL ? str(req, "case") : str(req, "id"));
	retention_holds_changed(d, hold);
	rc = cs_hold_items(d->st, hold, &ids);
	ans = json_pack("{s:b, s:I, s:I}", "ok", 1, "hold", (json_int_t)hold, "items",
	    (json_int_t)(rc == 0 ? json_array_size(ids) : 0));
	json_decref(ids);
	return ans;
}

static json_t *
do_hold_release(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_retention_policy p;
	json_t *h = json_object_get(req, "hold");
	const char *rule, *what;
	uint64_t seq;
	int rc;

	retention_policy(d, &p);
	if (!json_is_integer(h) || json_integer_value(h) < 0)
		return access_failed("name the hold by its number (custos hold list)");
	rc = cs_hold_release(d->st, &p, who, (uint64_t)json_integer_value(h), str(req, "reason"),
	    &seq, &rule, &what);
	if (rc == CS_EDENIED)
		return access_denied(rule);
	if (rc < 0)
		return error(rc, what, req);
	logmsg(2, "hold %lld released by %s (uid %ld)", (long long)json_integer_value(h), who->name,
	    who->uid);
	retention_holds_changed(d, (uint64_t)json_integer_value(h));
	return json_pack("{s:b, s:I}", "ok", 1, "seq", (json_int_t)seq);
}

static json_t *
do_holds(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	json_t *out = NULL;
	int rc;

	if (who->role == NULL)
		return access_denied(CS_RULE_NO_ROLE);
	rc = cs_hold_list(d->st, json_is_true(json_object_get(req, "all")), &out);
	if (rc < 0)
		return access_lib_error(rc, NULL);
	return json_pack("{s:b, s:o}", "ok", 1, "holds", out);
}

static json_t *
do_used(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_retention_policy p;
	const char *rule, *what;
	uint64_t seq;
	int rc, undo = json_is_true(json_object_get(req, "undo"));

	retention_policy(d, &p);
	rc = cs_retention_mark_used(d->st, &p, who, str(req, "id"), str(req, "case"), !undo,
	    str(req, "reason"), &seq, &rule, &what);
	if (rc == CS_EDENIED)
		return access_denied(rule);
	if (rc < 0)
		return error(rc, what, req);
	logmsg(2, "item %s %s as evidence in a decision of case %s by %s (uid %ld)", str(req, "id"),
	    undo ? "no longer marked used" : "marked used", str(req, "case"), who->name, who->uid);
	return json_pack("{s:b, s:I}", "ok", 1, "seq", (json_int_t)seq);
}

static json_t *
do_compute(struct daemon *d, const struct cs_access_who *who)
{
	struct cs_retention_policy p;
	json_t *out = NULL;
	int rc;

	if (who->role == NULL)
		return access_denied(CS_RULE_NO_ROLE);
	retention_policy(d, &p);
	rc = cs_retention_compute(d->st, &p, cs_now_ms(), &out);
	if (rc < 0)
		return access_lib_error(rc, NULL);
	return json_pack("{s:b, s:o}", "ok", 1, "plan", out);
}

json_t *
retention_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req)
{
	struct access_user u;
	json_t *ans = NULL;

	access_user(d, uid, &u);
	if (strcmp(cmd, "hold-add") == 0)
		ans = do_hold_add(d, &u.who, req);
	else if (strcmp(cmd, "hold-release") == 0)
		ans = do_hold_release(d, &u.who, req);
	else if (strcmp(cmd, "holds") == 0)
		ans = do_holds(d, &u.who, req);
	else if (strcmp(cmd, "retention-used") == 0)
		ans = do_used(d, &u.who, req);
	else if (strcmp(cmd, "retention-compute") == 0)
		ans = do_compute(d, &u.who);
	access_log_refusal(&u.who, cmd, ans);
	return ans;
}

int
retention_is_command(const char *cmd)
{
	static const char *const cmds[] = {"hold-add", "hold-release", "holds", "retention-used",
	    "retention-compute"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}
