/*
 * Purges in custosd: a timer looks at the purge plans (lib/purge.c,
 * custos/retention.h) on the thread pool, never on the loop: it resumes a
 * plan whose execution a stop or crash cut short, executes the approved
 * plans whose grace is over, and writes a plan every [retention]
 * plan_interval when items are due that are in no live plan. The control
 * socket's retention commands (approve, cancel, plans, show, plan-write,
 * destruction-register) map a request line to lib's call and its answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "access.h"
#include "custos/access.h"
#include "custos/retention.h"
#include "custos/remote_purge.h"
#include "log.h"
#include "purge.h"
#include "remote.h"
#include "retention.h"

/* How often the timer looks at the plans (an approved plan's grace may end at any time). */
#define LOOK_MS 2000

struct purge {
	struct daemon *d;
	uv_timer_t timer;
	uv_work_t req;
	int running, stopping;
	/*
	 * cs_now_ms() of the newest plan (0: not read yet; the newest plan's
	 * time in the ledger, else custosd's start): the next is due an
	 * interval later, so a restart does not plan again at once
	 */
	int64_t last_plan_ms, started_ms;
	/* the work item: in (taken on the loop; a reload may free the configuration's) */
	struct retention_snap snap;
	char *remote_path; /* the [remote] settings' file; NULL: no remote */
	/* after a failed execution (the remote, say) the next waits: 4 s, doubling to 10 min */
	int64_t backoff_ms, retry_at_ms;
	/* the work item: out */
	uint64_t planned; /* the plan written, 0: none */
	unsigned executed, failed;
	int rc;
	/* for the status (loop thread) */
	uint64_t looks, executed_total, failed_total, last_plan;
};

/* The purge's remote hook: the item's objects at the configured remote (loaded once per look). */
struct hook {
	struct purge *pg;
	struct cs_remote_config cfg;
	int loaded; /* 1 loaded, < 0 could not be */
	char why[512];
};

static int
remote_hook(void *ctx, const json_t *entry, json_t **outcome)
{
	struct hook *h = ctx;

	if (h->loaded == 0) {
		memset(&h->cfg, 0, sizeof(h->cfg));
		h->loaded = cs_remote_config_load(&h->cfg, h->pg->remote_path, h->why,
		                sizeof(h->why)) == 0
		    ? 1
		    : -1;
		if (h->loaded < 0)
			logmsg(1,
			    "purge: the remote's configuration cannot be used (%s): the remote "
			    "objects of purged items wait until it is fixed and custosd reloaded",
			    h->why);
	}
	if (h->loaded < 0)
		return CS_EREMOTE;
	return cs_remote_purge_entry(&h->cfg, h->pg->d->st, entry, outcome);
}

static void
purge_work(uv_work_t *req)
{
	struct purge *pg = req->data;
	struct hook h = {pg, {0}, 0, ""};
	struct cs_purge_hooks hooks = {pg->remote_path != NULL ? remote_hook : NULL, NULL, &h};
	json_t *plans = NULL, *p;
	int64_t now = cs_now_ms();
	size_t i;

	pg->planned = 0;
	pg->executed = pg->failed = 0;
	pg->rc = cs_purge_plans(pg->d->st, &plans);
	json_array_foreach(plans, i, p)
	{
		const char *state = json_string_value(json_object_get(p, "state")), *rule;
		uint64_t n = (uint64_t)json_integer_value(json_object_get(p, "plan"));
		int rc;

		if (state == NULL ||
		    (strcmp(state, "approved") != 0 && strcmp(state, "executing") != 0) ||
		    now < pg->retry_at_ms)
			continue;
		rc = cs_purge_execute(pg->d->st, n, &hooks, &rule);
		if (rc == CS_EDENIED)
			continue; /* its grace is not over */
		if (rc < 0) {
			pg->failed++;
			pg->backoff_ms = pg->backoff_ms == 0 ? 4000
			    : pg->backoff_ms >= 300000       ? 600000
			                                     : pg->backoff_ms * 2;
			pg->retry_at_ms = now + pg->backoff_ms;
			logmsg(1,
			    "purge plan %llu could not be completed: %s; it is resumed in %lld s",
			    (unsigned long long)n, cs_strerror(rc),
			    (long long)(pg->backoff_ms / 1000));
		} else {
			pg->executed++;
			pg->backoff_ms = 0;
			logmsg(2, "purge plan %llu executed", (unsigned long long)n);
		}
	}
	if (h.loaded > 0)
		cs_remote_config_fini(&h.cfg);
	if (pg->last_plan_ms == 0 && pg->rc == 0) {
		const char *t = json_string_value(
		    json_object_get(json_array_get(plans, 0), "time"));
		pg->last_plan_ms = pg->started_ms;
		if (t != NULL)
			(void)cs_access_time(t, &pg->last_plan_ms);
	}
	json_decref(plans);
	if (pg->rc == 0 && now - pg->last_plan_ms >= pg->snap.plan_interval_ms) {
		pg->rc = cs_purge_plan(pg->d->st, &pg->snap.p, &pg->planned);
		if (pg->rc == 0)
			pg->last_plan_ms = now;
	}
}

static void arm(struct purge *pg);

static void
purge_done(uv_work_t *req, int status)
{
	struct purge *pg = req->data;

	pg->running = 0;
	retention_snap_free(&pg->snap);
	free(pg->remote_path);
	pg->remote_path = NULL;
	pg->looks++;
	pg->executed_total += pg->executed;
	pg->failed_total += pg->failed;
	if (pg->planned > 0)
		pg->last_plan = pg->planned;
	if (status == 0 && pg->rc < 0)
		logmsg(1, "purge plans could not be read or made: %s", cs_strerror(pg->rc));
	if (status == 0 && pg->planned > 0)
		logmsg(2,
		    "purge plan %llu written: it waits for its approvals "
		    "(`custos retention show %llu`)",
		    (unsigned long long)pg->planned, (unsigned long long)pg->planned);
	if (!pg->stopping)
		arm(pg);
}

static void
on_timer(uv_timer_t *t)
{
	struct purge *pg = t->data;

	if (pg->running || pg->stopping || pg->d->failed || pg->d->stopping)
		return;
	if (retention_snap_take(pg->d, &pg->snap) < 0) {
		arm(pg);
		return;
	}
	pg->remote_path = remote_config_path(pg->d);
	pg->running = 1;
	pg->req.data = pg;
	if (uv_queue_work(pg->d->loop, &pg->req, purge_work, purge_done) < 0) {
		pg->running = 0;
		retention_snap_free(&pg->snap);
		free(pg->remote_path);
		pg->remote_path = NULL;
		arm(pg);
	}
}

static void
arm(struct purge *pg)
{
	uv_timer_start(&pg->timer, on_timer, LOOK_MS, 0);
}

int
purge_start(struct daemon *d)
{
	struct purge *pg = calloc(1, sizeof(*pg));

	if (pg == NULL)
		return -ENOMEM;
	pg->d = d;
	pg->started_ms = cs_now_ms();
	d->purge = pg;
	uv_timer_init(d->loop, &pg->timer);
	pg->timer.data = pg;
	uv_timer_start(&pg->timer, on_timer, 200, 0); /* a cut short plan resumes first */
	return 0;
}

void
purge_stop(struct daemon *d)
{
	if (d->purge == NULL)
		return;
	d->purge->stopping = 1;
	uv_timer_stop(&d->purge->timer);
	uv_close((uv_handle_t *)&d->purge->timer, NULL);
}

void
purge_free(struct daemon *d)
{
	free(d->purge);
	d->purge = NULL;
}

json_t *
purge_status(struct daemon *d)
{
	struct purge *pg = d->purge;

	if (pg == NULL)
		return json_object();
	return json_pack("{s:I, s:I, s:I, s:I}", "looks", (json_int_t)pg->looks, "executed",
	    (json_int_t)pg->executed_total, "failed", (json_int_t)pg->failed_total, "last_plan",
	    (json_int_t)pg->last_plan);
}

/* ---- the control socket's retention commands ---- */

static json_t *
failed(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *
refused(const char *rule)
{
	const char *msg = "refused";

	if (strcmp(rule, CS_RULE_PURGE_APPROVER) == 0)
		msg = "your role does not approve or cancel purge plans ([retention] approvers)";
	else if (strcmp(rule, CS_RULE_SAME_APPROVER) == 0)
		msg = "you approved this plan already: another user of an approving role must";
	else if (strcmp(rule, CS_RULE_PLAN_STATE) == 0)
		msg = "the plan is no longer open to this (cancelled, approved, executing or done: "
		      "see `custos retention show PLAN`)";
	else if (strcmp(rule, CS_RULE_NO_ROLE) == 0)
		msg = "you have no role in custosd's configuration ([roles])";
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "rule", rule, "error", msg);
}

static json_t *
lib_error(int rc)
{
	if (rc == CS_ENOTFOUND)
		return failed("no such purge plan (`custos retention plans` lists them)");
	return failed(cs_strerror(rc));
}

static int64_t
plan_num(json_t *req)
{
	json_t *v = json_object_get(req, "plan");

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : -1;
}

static json_t *
with_ok(json_t *field_val, const char *field)
{
	json_t *a = field_val != NULL ? json_pack("{s:b, s:o}", "ok", 1, field, field_val) : NULL;

	return a;
}

json_t *
purge_command(struct daemon *d, uid_t uid, const char *cmd, json_t *req)
{
	struct access_user u;
	struct cs_retention_policy pol;
	const char *rule = NULL;
	int64_t plan = plan_num(req);
	json_t *out = NULL, *ans;
	uint64_t seq = 0;
	int rc;

	access_user(d, uid, &u);
	retention_policy(d, &pol);
	if (u.who.role == NULL)
		return refused(CS_RULE_NO_ROLE);
	if (strcmp(cmd, "retention-plans") == 0) {
		rc = cs_purge_plans(d->st, &out);
		return rc < 0 ? lib_error(rc) : with_ok(out, "plans");
	}
	if (strcmp(cmd, "destruction-register") == 0) {
		rc = cs_destruction_register(d->st, &out);
		return rc < 0 ? lib_error(rc) : with_ok(out, "entries");
	}
	if (strcmp(cmd, "retention-plan-write") == 0) {
		if (!cs_access_in_list(pol.approvers, u.who.role))
			return refused(CS_RULE_PURGE_APPROVER);
		rc = cs_purge_plan(d->st, &pol, &seq);
		if (rc < 0)
			return lib_error(rc);
		if (seq > 0)
			logmsg(2, "purge plan %llu written at the request of %s (uid %ld)",
			    (unsigned long long)seq, u.who.name, u.who.uid);
		return json_pack("{s:b, s:I}", "ok", 1, "plan", (json_int_t)seq);
	}
	if (plan < 0)
		return failed("name the plan by its number");
	if (strcmp(cmd, "retention-show") == 0) {
		rc = cs_purge_plan_get(d->st, (uint64_t)plan, &out);
		return rc < 0 ? lib_error(rc) : with_ok(out, "plan");
	}
	if (strcmp(cmd, "retention-approve") == 0)
		rc = cs_purge_approve(d->st, &pol, &u.who, (uint64_t)plan, &seq, &rule);
	else
		rc = cs_purge_cancel(d->st, &pol, &u.who, (uint64_t)plan,
		    json_string_value(json_object_get(req, "reason")), &seq, &rule);
	if (rc == CS_EDENIED) {
		logmsg(2, "%s of purge plan %lld refused to %s (uid %ld, role %s) by rule %s", cmd,
		    (long long)plan, u.who.name, u.who.uid, u.who.role, rule);
		return refused(rule);
	}
	if (rc == CS_EFORMAT)
		return failed("a cancellation gives its reason (--reason)");
	if (rc < 0)
		return lib_error(rc);
	logmsg(2, "purge plan %lld: %s by %s (uid %ld)", (long long)plan,
	    cmd[10] == 'a' ? "approved" : "cancelled", u.who.name, u.who.uid);
	ans = json_pack("{s:b, s:I}", "ok", 1, "seq", (json_int_t)seq);
	if (ans != NULL && cs_purge_plan_get(d->st, (uint64_t)plan, &out) == 0)
		json_object_set_new(ans, "plan", out);
	return ans;
}

int
purge_is_command(const char *cmd)
{
	static const char *const cmds[] = {"retention-approve", "retention-cancel",
	    "retention-plans", "retention-show", "retention-plan-write", "destruction-register"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}
