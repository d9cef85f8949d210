/*
 * The control socket's access commands: the users of the socket (known by
 * SO_PEERCRED uid, given a role by [roles]) file requests, approve or deny
 * them, mark items conclusive, view records, copy stored bytes, search and
 * read the access register. Every decision is lib/'s (custos/access.h); this
 * file only maps a request line to a call and the result to an answer.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "custos/access.h"
#include "custos/bag.h"
#include "custos/error.h"
#include "custos/media.h"
#include "custos/note.h"
#include "custos/query.h"
#include "custos/retention.h"
#include "log.h"

/* Bytes of a copy per "read" answer (before base64). */
#define CHUNK 49152

/*
 * An export for a socket user, planned on the thread pool (cs_bag_plan: the
 * register entry, a checkpoint, every item's proofs): the loop serves the
 * other connections meanwhile. The work owns copies of what it reads (a
 * reload frees the configuration's strings); `c` is NULL once the
 * connection has closed.
 */
struct export_work {
	uv_work_t req;
	struct daemon *d;
	struct access_conn *c;
	char *own[10]; /* the policy's six lists, the user's name and role, the case, purpose */
	struct cs_access_policy p;
	struct cs_access_who who;
	struct cs_bag_export x;
	struct cs_bag_result res;
	json_t *plan;
	int rc;
};

void
access_conn_close(struct access_conn *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

void
access_conn_end(struct access_conn *a)
{
	if (a->planning != NULL)
		a->planning->c = NULL; /* the plan completes; its answer is dropped */
	a->planning = NULL;
	access_conn_close(a);
	json_decref(a->export);
	a->export = NULL;
}

static void
policy(const struct daemon *d, struct cs_access_policy *p)
{
	const char **f[6] = {&p->view_free, &p->approver, &p->filers, &p->markers, &p->readers,
	    &p->conclusive};

	cs_access_policy_default(p);
	for (size_t i = 0; i < 6; i++)
		if (d->cfg.access[i] != NULL)
			*f[i] = d->cfg.access[i];
}

static json_t *
refused(const char *rule, const char *msg, const char *item)
{
	return json_pack("{s:b, s:s, s:s, s:s*}", "ok", 0, "rule", rule, "error", msg, "item",
	    item);
}

static json_t *
failed(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* The answer to a lib error that is not a refusal. */
static json_t *
lib_error(int rc, const char *what)
{
	char msg[256];

	if (rc == CS_ENOTFOUND)
		snprintf(msg, sizeof(msg), "no such %s", what != NULL ? what : "record");
	else if (rc == CS_EFORMAT)
		snprintf(msg, sizeof(msg), "%s is missing or not valid text",
		    what != NULL ? what : "a field");
	else
		snprintf(msg, sizeof(msg), "%s", cs_strerror(rc));
	return failed(msg);
}

/* Sentences for the rules, for the operator reading the CLI's message. */
static const char *
rule_text(const char *rule)
{
	static const struct {
		const char *rule, *text;
	} t[] = {
	    {CS_RULE_NO_ROLE, "you have no role in custosd's configuration ([roles])"},
	    {CS_RULE_VIEW_APPROVAL, "your role may view records only with an approval"},
	    {CS_RULE_COPY_APPROVAL, "a copy always needs an approval"},
	    {CS_RULE_EXPORT_APPROVAL, "an export always needs an approval"},
	    {CS_RULE_PURPOSE, "say why (--purpose)"},
	    {CS_RULE_UNKNOWN, "there is no such request"},
	    {CS_RULE_PENDING, "the request has not been approved yet"},
	    {CS_RULE_DENIED, "the request was denied"},
	    {CS_RULE_OTHER_ACTION, "the approval is for another action"},
	    {CS_RULE_OTHER_CASE, "the approval is for another case file"},
	    {CS_RULE_OTHER_ITEM, "the approval does not cover this item"},
	    {CS_RULE_EXPIRED, "the approval's period is over"},
	    {CS_RULE_NOT_YOURS, "the approval was given to another user's request"},
	    {CS_RULE_CONCLUSIVE, "parties and lawyers receive only items marked conclusive"},
	    {CS_RULE_APPROVER, "only the approving role decides requests"},
	    {CS_RULE_OWN, "nobody approves or denies his own request"},
	    {CS_RULE_DECIDED, "the request was already approved or denied"},
	    {CS_RULE_FILER, "your role does not file requests for outside requesters"},
	    {CS_RULE_MARKER, "your role does not mark items conclusive"},
	    {CS_RULE_READER, "your role does not read the access register"},
	    {CS_RULE_HOLDER, "your role does not add or release holds, nor mark evidence used "
	                     "([retention] holders)"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].rule, rule) == 0)
			return t[i].text;
	return "refused";
}

static json_t *
denied(const char *rule, const char *item)
{
	return refused(rule, rule_text(rule), item);
}

static const char *
str(json_t *req, const char *k)
{
	return json_string_value(json_object_get(req, k));
}

/* A request number from "approval"/"request": a JSON integer >= 0, else -1. */
static int64_t
num(json_t *req, const char *k)
{
	json_t *v = json_object_get(req, k);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
}

static json_t *
done(uint64_t seq, const char *field)
{
	return json_pack("{s:b, s:I}", "ok", 1, field, (json_int_t)seq);
}

static json_t *
do_request(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_access_policy p;
	struct cs_access_req r = {str(req, "case"), str(req, "action"), str(req, "purpose"), NULL,
	    0, str(req, "kind"), str(req, "name"), str(req, "letter"), str(req, "licence")};
	json_t *items = json_object_get(req, "items"), *v;
	const char *ids[256], *rule, *what;
	uint64_t seq;
	size_t i;
	int rc;

	policy(d, &p);
	if (r.number == NULL)
		return failed("a request names its case (--case)");
	if (json_array_size(items) > 256)
		return failed("a request names at most 256 items");
	json_array_foreach(items, i, v)
	{
		if ((ids[i] = json_string_value(v)) == NULL)
			return failed("items are evidence ids (text)");
	}
	r.items = ids;
	r.n_items = json_array_size(items);
	rc = cs_access_request(d->st, &p, who, &r, &seq, &rule, &what);
	if (rc == CS_EDENIED)
		return denied(rule, NULL);
	if (rc < 0)
		return lib_error(rc, what);
	logmsg(2, "access request #%llu by %s (uid %ld): %s of %s", (unsigned long long)seq,
	    who->name, who->uid, r.action, r.number);
	return done(seq, "request");
}

static json_t *
do_decide(struct daemon *d, const struct cs_access_who *who, json_t *req, int approve)
{
	struct cs_access_policy p;
	int64_t rq = num(req, "request"), until = 0;
	const char *u = str(req, "until"), *rule;
	uint64_t seq;
	int rc;

	policy(d, &p);
	if (rq < 0)
		return failed("name the request by its number");
	if (approve && u != NULL) {
		if (cs_access_time(u, &until) < 0)
			return failed("--until must be a time such as 2026-12-31T18:00:00+08:00");
		if (until <= cs_now_ms())
			return failed("--until is already past: give a time to come");
	} else if (approve) {
		until = cs_now_ms() + (int64_t)d->cfg.approval_period_s * 1000;
	}
	rc = cs_access_decide(d->st, &p, who, (uint64_t)rq, approve, until, str(req, "reason"),
	    &seq, &rule);
	if (rc == CS_EDENIED)
		return denied(rule, NULL);
	if (rc == CS_EFORMAT)
		return failed("a denial gives its reason (--reason)");
	if (rc < 0)
		return lib_error(rc, NULL);
	return done(seq, "seq");
}

static json_t *
do_mark(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_access_policy p;
	const char *rule;
	uint64_t seq;
	json_t *v = json_object_get(req, "conclusive");
	int rc;

	policy(d, &p);
	rc = cs_access_mark(d->st, &p, who, str(req, "id"), v == NULL || json_is_true(v),
	    str(req, "reason"), &seq, &rule);
	if (rc == CS_EDENIED)
		return denied(rule, NULL);
	if (rc == CS_EFORMAT)
		return failed("marking an item gives its id and a reason (--reason)");
	if (rc < 0)
		return lib_error(rc, "item");
	return done(seq, "seq");
}

/* The gate for one item: 0 with *entry, or an answer (refusal, error). */
static json_t *
grant(struct daemon *d, const struct cs_access_who *who, json_t *req, const char *action,
    uint64_t *entry)
{
	struct cs_access_policy p;
	const char *id = str(req, "id"), *rule, *item;
	int rc;

	policy(d, &p);
	if (id == NULL)
		return failed("name the item by its evidence id");
	rc = cs_access_grant(d->st, &p, who, action, NULL, &id, 1, num(req, "approval"),
	    str(req, "purpose"), entry, &rule, &item);
	if (rc == CS_EDENIED)
		return denied(rule, item);
	if (rc < 0)
		return lib_error(rc, "item");
	logmsg(2, "access #%llu: %s of %s by %s (uid %ld)", (unsigned long long)*entry, action, id,
	    who->name, who->uid);
	return NULL;
}

static json_t *
do_view(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	json_t *ans, *rec = NULL, *evs = NULL;
	uint64_t entry;
	int rc;

	ans = grant(d, who, req, "view", &entry);
	if (ans != NULL)
		return ans;
	rc = cs_store_get(d->st, str(req, "id"), &rec);
	if (rc == 0)
		rc = cs_store_item_events(d->st, str(req, "id"), &evs);
	if (rc < 0) {
		json_decref(rec);
		return lib_error(rc, "item");
	}
	return json_pack("{s:b, s:o, s:o, s:I}", "ok", 1, "record", rec, "events", evs, "access",
	    (json_int_t)entry);
}

/*
 * "get" with "kind" (access, poster, preservation): a derivative of the
 * item, under the gate for fetching it (cs_access_grant_derivative).
 */
static json_t *
get_derivative(struct daemon *d, const struct cs_access_who *who, json_t *req,
    struct access_conn *c)
{
	struct cs_access_policy p;
	const char *id = str(req, "id"), *kind = str(req, "kind"), *rule, *item, *hex;
	json_t *entry = NULL, *ans;
	uint64_t seq;
	int fd = -1, rc;

	policy(d, &p);
	if (id == NULL || kind == NULL)
		return failed("name the item by its evidence id");
	/* opened first: no register entry for a copy that is not there */
	rc = cs_media_derivative_open(d->st, id, kind, &fd, &entry);
	if (rc == CS_ENOTFOUND) {
		char msg[200];
		snprintf(msg, sizeof(msg), "item %s has no %s copy (kinds: access, poster, "
		                           "preservation)", id, kind);
		return failed(msg);
	}
	if (rc < 0)
		return lib_error(rc, "item");
	rc = cs_access_grant_derivative(d->st, &p, who, id, kind, num(req, "approval"),
	    str(req, "purpose"), &seq, &rule, &item);
	ans = rc == CS_EDENIED ? denied(rule, item)
	    : rc == CS_EFORMAT ? failed("\"kind\" is access, poster or preservation")
	    : rc < 0           ? lib_error(rc, "item")
	                       : NULL;
	if (ans != NULL) {
		close(fd);
		json_decref(entry);
		return ans;
	}
	logmsg(2, "access #%llu: %s copy of %s by %s (uid %ld)", (unsigned long long)seq, kind, id,
	    who->name, who->uid);
	access_conn_close(c);
	c->fd = fd;
	hex = json_string_value(json_object_get(entry, "sha256"));
	ans = json_pack("{s:b, s:I, s:s, s:s, s:I}", "ok", 1, "size",
	    json_integer_value(json_object_get(entry, "size")), "sha256", hex != NULL ? hex : "",
	    "kind", kind, "access", (json_int_t)seq);
	json_decref(entry);
	return ans;
}

static json_t *
do_get(struct daemon *d, const struct cs_access_who *who, json_t *req, struct access_conn *c)
{
	char sha[65];
	uint64_t entry, size;
	json_t *ans;
	int rc;

	if (json_object_get(req, "kind") != NULL)
		return get_derivative(d, who, req, c);
	ans = grant(d, who, req, "copy", &entry);
	if (ans != NULL)
		return ans;
	access_conn_close(c);
	rc = cs_access_open_blob(d->st, str(req, "id"), &c->fd, &size, sha);
	if (rc < 0)
		return lib_error(rc, "item");
	return json_pack("{s:b, s:I, s:s, s:I}", "ok", 1, "size", (json_int_t)size, "sha256", sha,
	    "access", (json_int_t)entry);
}

/* A refusal in the log: who was refused what by which rule. */
static void
log_refusal(const struct cs_access_who *who, const char *cmd, json_t *ans)
{
	const char *rule = json_string_value(json_object_get(ans, "rule"));

	if (rule != NULL)
		logmsg(2, "access refused to %s (uid %ld, role %s): %s by rule %s", who->name,
		    who->uid, who->role != NULL ? who->role : "none", cmd, rule);
}

static void
plan_work(uv_work_t *req)
{
	struct export_work *w = req->data;

	uv_mutex_lock(&w->d->signing); /* no other checkpoint while it is planned */
	w->rc = cs_bag_plan(w->d->st, &w->x, &w->plan, &w->res);
	uv_mutex_unlock(&w->d->signing);
}

/* The answer to a planned export; the items it lets export-open give on `c`. */
static json_t *
export_answer(struct export_work *w, struct access_conn *c)
{
	json_t *it;
	size_t i;

	if (w->rc == CS_EDENIED)
		return denied(w->res.rule, w->res.item[0] != '\0' ? w->res.item : NULL);
	if (w->rc == CS_EFORMAT)
		return failed("the purpose must be UTF-8 text");
	if (w->rc < 0)
		return lib_error(w->rc, "case file");
	logmsg(2, "access #%llu: export of case %s (%zu items) by %s (uid %ld)",
	    (unsigned long long)w->res.entry, w->x.number, w->res.items, w->who.name, w->who.uid);
	if (c == NULL)
		return NULL;
	json_decref(c->export);
	c->export = json_object();
	/* what export-open may open: "<id>" the original, "access/<id>" its access copy */
	json_array_foreach(json_object_get(w->plan, "payload"), i, it)
	{
		char key[160];
		snprintf(key, sizeof(key), "%s%s",
		    json_object_get(it, "kind") != NULL ? "access/" : "",
		    json_string_value(json_object_get(it, "id")));
		json_object_set_new(c->export, key, json_true());
	}
	return json_pack("{s:b, s:O, s:I}", "ok", 1, "plan", w->plan, "access",
	    (json_int_t)w->res.entry);
}

static void
export_free(struct export_work *w)
{
	for (size_t i = 0; i < sizeof(w->own) / sizeof(w->own[0]); i++)
		free(w->own[i]);
	json_decref(w->plan);
	free(w);
}

static void
export_done(uv_work_t *req, int status)
{
	struct export_work *w = req->data;
	struct access_conn *c = w->c;
	json_t *ans;

	(void)status;
	w->d->exports_planning--;
	ans = export_answer(w, c);
	log_refusal(&w->who, "export", ans);
	if (c == NULL) {
		if (w->rc == 0)
			logmsg(1, "export of case %s by %s (uid %ld): its connection closed "
			          "before the plan was done; register entry #%llu stands, no bag "
			          "was written",
			    w->x.number, w->who.name, w->who.uid, (unsigned long long)w->res.entry);
		json_decref(ans);
		export_free(w);
		return;
	}
	c->planning = NULL;
	export_free(w);
	c->answer(c, ans);
	json_decref(ans);
}

static json_t *
do_export(struct daemon *d, const struct cs_access_who *who, json_t *req, struct access_conn *c)
{
	struct export_work *w;
	const char *s[10];
	size_t i;

	if (str(req, "case") == NULL)
		return failed("name the case file to export");
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	policy(d, &w->p);
	memcpy(s, (const char *[]){w->p.view_free, w->p.approver, w->p.filers, w->p.markers,
	    w->p.readers, w->p.conclusive, who->name, who->role, str(req, "case"),
	    str(req, "purpose")}, sizeof(s));
	for (i = 0; i < 10; i++)
		if (s[i] != NULL && (w->own[i] = strdup(s[i])) == NULL)
			break;
	if (i < 10) {
		export_free(w);
		return NULL;
	}
	w->p = (struct cs_access_policy){w->own[0], w->own[1], w->own[2], w->own[3], w->own[4],
	    w->own[5]};
	w->who = (struct cs_access_who){who->uid, w->own[6], w->own[7]};
	w->x = (struct cs_bag_export){.number = w->own[8], .purpose = w->own[9],
	    .approval = num(req, "approval"), .pol = &w->p, .who = &w->who,
	    .access_copies = json_is_true(json_object_get(req, "access_copies"))};
	w->d = d;
	w->c = c;
	w->req.data = w;
	if (uv_queue_work(d->loop, &w->req, plan_work, export_done) < 0) {
		export_free(w);
		return failed("custosd cannot plan the export now: try again");
	}
	d->exports_planning++;
	c->planning = w;
	return NULL;
}

/*
 * Opens the stored bytes of an item of the export made on this connection,
 * or with "kind": "access" its access copy (only if that export holds it), for "read".
 */
static json_t *
do_export_open(struct daemon *d, json_t *req, struct access_conn *c)
{
	const char *id = str(req, "id"), *kind = str(req, "kind"), *hex;
	json_t *entry = NULL;
	char sha[65], key[160];
	uint64_t size;
	int rc;

	if (kind != NULL && strcmp(kind, "access") != 0)
		return failed("export-open gives an item's original, or its access copy with "
		              "\"kind\": \"access\"");
	snprintf(key, sizeof(key), "%s%s", kind != NULL ? "access/" : "", id != NULL ? id : "");
	if (id == NULL || c->export == NULL || json_object_get(c->export, key) == NULL)
		return failed(kind != NULL
		        ? "export-open of an access copy follows an export with access copies "
		          "of the item on the same connection"
		        : "export-open follows an export of the item on the same connection");
	access_conn_close(c);
	if (kind != NULL) {
		rc = cs_media_derivative_open(d->st, id, kind, &c->fd, &entry);
		hex = json_string_value(json_object_get(entry, "sha256"));
		snprintf(sha, sizeof(sha), "%s", hex != NULL ? hex : "");
		size = (uint64_t)json_integer_value(json_object_get(entry, "size"));
		json_decref(entry);
	} else {
		rc = cs_access_open_blob(d->st, id, &c->fd, &size, sha);
	}
	if (rc < 0)
		return lib_error(rc, "item");
	return json_pack("{s:b, s:I, s:s}", "ok", 1, "size", (json_int_t)size, "sha256", sha);
}

/* The next bytes of the copy "get" let through, from "offset". */
static json_t *
do_read(json_t *req, struct access_conn *c)
{
	static unsigned char buf[CHUNK];
	static char b64[CHUNK / 3 * 4 + 8];
	int64_t off = num(req, "offset");
	ssize_t n;

	if (c->fd < 0)
		return failed("read follows a granted get on the same connection");
	if (off < 0)
		return failed("read needs an offset");
	n = pread(c->fd, buf, sizeof(buf), (off_t)off);
	if (n < 0)
		return failed(strerror(errno));
	if (cs_base64_encode(buf, (size_t)n, b64, sizeof(b64)) < 0)
		return failed("out of memory");
	return json_pack("{s:b, s:s, s:b}", "ok", 1, "data", b64, "eof", n == 0);
}

static json_t *
do_find(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_query q = {.case_no = str(req, "case"), .officer = str(req, "officer"),
	    .device = str(req, "device"), .sha256 = str(req, "sha256"), .from = str(req, "from"),
	    .to = str(req, "to"), .case_prefix = str(req, "case_prefix"),
	    .category = str(req, "category"), .stage = str(req, "stage")};
	json_t *out = NULL, *terms;
	int rc;

	if (who->role == NULL)
		return denied(CS_RULE_NO_ROLE, NULL);
	rc = cs_store_find(d->st, &q, &out);
	if (rc < 0)
		return lib_error(rc, NULL);
	terms = json_deep_copy(req);
	if (terms != NULL)
		json_object_del(terms, "cmd");
	rc = terms != NULL ? cs_access_log_search(d->st, who, terms, json_array_size(out), NULL)
	                   : -ENOMEM;
	json_decref(terms);
	if (rc < 0) {
		json_decref(out);
		return lib_error(rc, NULL);
	}
	return json_pack("{s:b, s:o}", "ok", 1, "items", out);
}

static json_t *
do_register(struct daemon *d, const struct cs_access_who *who, json_t *req)
{
	struct cs_access_policy p;
	int64_t from = 0, to = 0;
	json_t *out = NULL;
	int rc;

	policy(d, &p);
	if (who->role == NULL || !cs_access_in_list(p.readers, who->role))
		return denied(who->role == NULL ? CS_RULE_NO_ROLE : CS_RULE_READER, NULL);
	if ((str(req, "from") != NULL && cs_access_time(str(req, "from"), &from) < 0) ||
	    (str(req, "to") != NULL && cs_access_time(str(req, "to"), &to) < 0))
		return failed("--from and --to are times such as 2026-12-01T00:00:00+08:00");
	rc = cs_access_register(d->st, str(req, "case"), from, to,
	    json_is_true(json_object_get(req, "searches")), &out);
	if (rc < 0)
		return lib_error(rc, "case");
	return json_pack("{s:b, s:o}", "ok", 1, "entries", out);
}

json_t *
access_denied(const char *rule)
{
	return denied(rule, NULL);
}

json_t *
access_failed(const char *msg)
{
	return failed(msg);
}

json_t *
access_lib_error(int rc, const char *what)
{
	return lib_error(rc, what);
}

void
access_log_refusal(const struct cs_access_who *who, const char *cmd, json_t *ans)
{
	log_refusal(who, cmd, ans);
}

void
access_user(struct daemon *d, uid_t uid, struct access_user *u)
{
	struct passwd *res = NULL;

	if (getpwuid_r(uid, &u->pw, u->buf, sizeof(u->buf), &res) == 0 && res != NULL)
		u->who.name = u->pw.pw_name;
	else {
		snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)uid);
		u->who.name = u->name;
	}
	u->who.uid = (long)uid;
	u->who.role = cs_config_role(&d->cfg, res != NULL ? u->pw.pw_name : NULL, (long)uid);
}

json_t *
access_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req, struct access_conn *c)
{
	struct access_user u;
	struct cs_access_who who;
	json_t *ans = NULL;

	if (strcmp(cmd, "read") == 0)
		return do_read(req, c);
	access_user(d, uid, &u);
	who = u.who;
	if (strcmp(cmd, "whoami") == 0)
		return json_pack("{s:b, s:s, s:I, s:s*}", "ok", 1, "name", who.name, "uid",
		    (json_int_t)uid, "role", who.role);
	if (strcmp(cmd, "request") == 0)
		ans = do_request(d, &who, req);
	else if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0)
		ans = do_decide(d, &who, req, cmd[0] == 'a');
	else if (strcmp(cmd, "conclusive") == 0)
		ans = do_mark(d, &who, req);
	else if (strcmp(cmd, "view") == 0)
		ans = do_view(d, &who, req);
	else if (strcmp(cmd, "get") == 0)
		ans = do_get(d, &who, req, c);
	else if (strcmp(cmd, "find") == 0)
		ans = do_find(d, &who, req);
	else if (strcmp(cmd, "register") == 0)
		ans = do_register(d, &who, req);
	else if (strcmp(cmd, "export") == 0)
		ans = do_export(d, &who, req, c);
	else if (strcmp(cmd, "export-open") == 0)
		ans = do_export_open(d, req, c);
	log_refusal(&who, cmd, ans);
	return ans;
}

int
access_is_command(const char *cmd)
{
	static const char *const cmds[] = {"whoami", "request", "approve", "deny", "conclusive",
	    "view", "get", "read", "find", "register", "export", "export-open"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}
