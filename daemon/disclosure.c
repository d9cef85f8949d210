/*
 * The control socket's disclosure commands: users with a publishing role
 * (custosd.conf [disclosure] publishers) record that a decision was
 * published, is exempt, was revoked or was withdrawn; any user with a role
 * lists the records and what is due for withdrawal. Every rule is lib/'s
 * (custos/disclosure.h); this file maps a request line to a call and the
 * result to an answer.
 */
#include <stdio.h>
#include <string.h>

#include "custos/disclosure.h"
#include "custos/error.h"
#include "disclosure.h"
#include "log.h"

static void
policy(const struct daemon *d, struct cs_disclosure_policy *p)
{
	cs_disclosure_policy_default(p);
	p->person_years = d->cfg.disclosure_person_y;
	p->organisation_years = d->cfg.disclosure_org_y;
	if (d->cfg.disclosure_publishers != NULL)
		p->publishers = d->cfg.disclosure_publishers;
}

static const char *
str(json_t *req, const char *k)
{
	return json_string_value(json_object_get(req, k));
}

static json_t *
failed(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* The answer to a refusal (rule) or an error (why, else the code's text). */
static json_t *
answer(int rc, const char *rule, const char *why)
{
	if (rc == CS_EDENIED)
		return json_pack("{s:b, s:s, s:s}", "ok", 0, "rule", rule, "error",
		    strcmp(rule, CS_RULE_PUBLISHER) == 0
		        ? "your role does not record publications ([disclosure] publishers)"
		        : "you have no role in custosd's configuration ([roles])");
	if (rc == CS_ENOTFOUND && why == NULL)
		why = "there is no such case";
	if (rc == CS_EFORMAT && why == NULL)
		why = "the case number is not valid text (--case)";
	return failed(why != NULL ? why : cs_strerror(rc));
}

/* An optional time field "at": 0 if absent, -1 (with *ans) if not a time. */
static int64_t
at(json_t *req, json_t **ans)
{
	int64_t ms = 0;

	*ans = NULL;
	if (str(req, "at") == NULL)
		return 0;
	if (cs_access_time(str(req, "at"), &ms) < 0 || ms <= 0) {
		*ans = failed("--at must be a time such as 2026-03-01T09:00:00+08:00");
		return -1;
	}
	return ms;
}

static json_t *
written(int rc, uint64_t seq, const char *rule, const char *why, const char *what,
    const struct cs_access_who *who, json_t *req)
{
	if (rc < 0)
		return answer(rc, rule, why);
	logmsg(2, "disclosure #%llu: %s of decision %s of case %s by %s (uid %ld)",
	    (unsigned long long)seq, what, str(req, "decision"), str(req, "case"), who->name,
	    who->uid);
	return json_pack("{s:b, s:I}", "ok", 1, "seq", (json_int_t)seq);
}

json_t *
disclosure_command(struct daemon *d, const struct cs_access_who *who, const char *cmd,
    json_t *req)
{
	struct cs_disclosure_policy p;
	const char *rule = NULL, *why = NULL;
	json_t *out = NULL, *ans;
	uint64_t seq = 0;
	int64_t t;
	int rc;

	policy(d, &p);
	if (strcmp(cmd, "disclosure-publish") == 0) {
		struct cs_disclosure_pub pub = {str(req, "case"), str(req, "decision"),
		    str(req, "item"), 0, str(req, "party"), str(req, "exempt"), str(req, "text")};
		if ((t = at(req, &ans)) < 0)
			return ans;
		pub.at_ms = t;
		rc = cs_disclosure_publish(d->st, &p, who, &pub, &seq, &rule, &why);
		return written(rc, seq, rule, why, pub.exempt != NULL ? "exemption" : "publication",
		    who, req);
	}
	if (strcmp(cmd, "disclosure-revoke") == 0) {
		if ((t = at(req, &ans)) < 0)
			return ans;
		rc = cs_disclosure_revoke(d->st, &p, who, str(req, "case"), str(req, "decision"),
		    str(req, "reason"), t, &seq, &rule, &why);
		return written(rc, seq, rule, why, "revocation", who, req);
	}
	if (strcmp(cmd, "disclosure-withdraw") == 0) {
		rc = cs_disclosure_withdraw(d->st, &p, who, str(req, "case"), str(req, "decision"),
		    &seq, &rule, &why);
		return written(rc, seq, rule, why, "withdrawal", who, req);
	}
	if (who->role == NULL)
		return answer(CS_EDENIED, CS_RULE_NO_ROLE, NULL);
	if (strcmp(cmd, "disclosure-due") == 0)
		rc = cs_disclosure_due(d->st, cs_now_ms(), &out);
	else
		rc = cs_disclosure_list(d->st, str(req, "case"), &out);
	if (rc < 0)
		return answer(rc, NULL, NULL);
	return json_pack("{s:b, s:o}", "ok", 1, "records", out);
}

int
disclosure_is_command(const char *cmd)
{
	static const char *const cmds[] = {"disclosure-publish", "disclosure-revoke",
	    "disclosure-withdraw", "disclosure-list", "disclosure-due"};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i]) == 0)
			return 1;
	return 0;
}
