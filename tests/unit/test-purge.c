/*
 * Purge plans in lib (custos/retention.h), with the test clock
 * ($CUSTOS_TEST_CLOCK, this test links the failpoint library): a plan runs
 * only with two different approvers of an approving role and only after its
 * grace; a cancelled plan purges nothing; an item that meets an open case
 * after its plan is skipped and keeps its bytes; a purge leaves a tombstone
 * and a register entry, verify passes, and a rebuild gives the same
 * register; a run stopped after its tombstones (a remote that could not be
 * asked, bytes put back as a crash before the unlink leaves them) completes
 * once: one entry per item, the bytes gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/query.h"
#include "custos/retention.h"
#include "custos/store.h"
#include "tap.h"

static char clockf[300];

static void
set_clock(const char *t)
{
	FILE *f = fopen(clockf, "w");

	if (f != NULL) {
		fprintf(f, "%s\n", t);
		fclose(f);
	}
}

static int
ingest_bytes(struct cs_store *st, const char *dir, const char *name, const char *body,
    const char *case_no, char id[80], char sha[65])
{
	char path[512];
	struct cs_meta m = {0};
	struct cs_ingest_result r;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(body, f);
	fclose(f);
	m.case_no = case_no;
	rc = cs_store_ingest_path(st, path, &m, &r);
	if (rc == 0) {
		memcpy(id, r.id, 80);
		memcpy(sha, r.sha256, 65);
	}
	return rc;
}

/* An ingest on its own thread (parked where $CUSTOS_PARK_AT says). */
struct again {
	struct cs_store *st;
	const char *dir, *name, *body;
	int rc;
	char park[512];
};

static void *
ingest_again(void *arg)
{
	struct again *ag = arg;
	char id[80], sha[65];

	ag->rc = ingest_bytes(ag->st, ag->dir, ag->name, ag->body, NULL, id, sha);
	return NULL;
}

static int
blob_there(const char *store, const char *sha)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/objects/sha256/%.2s/%.2s/%s", store, sha, sha + 2, sha);
	return access(p, F_OK) == 0;
}

static const char *
plan_state(struct cs_store *st, uint64_t plan)
{
	static char s[32];
	json_t *p = NULL;

	s[0] = '\0';
	if (cs_purge_plan_get(st, plan, &p) == 0)
		snprintf(s, sizeof(s), "%s", json_string_value(json_object_get(p, "state")));
	json_decref(p);
	return s;
}

static size_t
entries_of(json_t *reg, const char *id)
{
	json_t *e;
	size_t i, n = 0;

	json_array_foreach(reg, i, e)
		n += strcmp(json_string_value(json_object_get(e, "id")), id) == 0;
	return n;
}

static int remote_fail;
static int remote_calls;

static int
remote(void *ctx, const json_t *entry, json_t **outcome)
{
	(void)ctx;
	if (json_string_value(json_object_get(entry, "id")) == NULL ||
	    json_string_value(json_object_get(entry, "sha256")) == NULL)
		return -EINVAL; /* the hook is given the item's register entry */
	remote_calls++;
	if (remote_fail)
		return -EIO;
	*outcome = json_pack("{s:s}", "outcome", "none stored");
	return 0;
}

static void
no_problem(void *ctx, const struct cs_problem *p)
{
	(void)ctx;
	fprintf(stderr, "# problem %s: %s\n", p->kind, p->detail);
}

int
main(void)
{
	char base[256], store[300], a[80], b[80], c[80], g[80], h[80], f[80];
	char sa[65], sb[65], sc[65], sg[65], sh[65], sf[65], path[600];
	struct cs_retention_class cls = {"all", NULL, 365LL * 86400000, CS_FROM_CLOSURE};
	struct cs_retention_policy pol;
	struct cs_access_who head1 = {2001, "zhao", "head"}, head2 = {2002, "qian", "head"};
	struct cs_access_who arch = {2003, "sun", "archivist"};
	struct cs_purge_hooks hooks = {remote, NULL, NULL};
	const char *rule, *what;
	uint64_t p1, p2, p3, p4, seq;
	struct cs_store *st = NULL;
	json_t *reg = NULL, *reg2 = NULL, *pl = NULL;
	int fd;

	snprintf(base, sizeof(base), "%s/custos-test-purge.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return 2;
	snprintf(store, sizeof(store), "%s/store", base);
	snprintf(clockf, sizeof(clockf), "%s/clock", base);
	set_clock("2026-01-01T00:00:00Z");
	setenv("CUSTOS_TEST_CLOCK", clockf, 1);
	cs_retention_policy_default(&pol);
	pol.classes = &cls;
	pol.n_classes = 1;

	ok(cs_store_init(store, "U1") == 0, "init");
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0, "open writer");
	ok(ingest_bytes(st, base, "a", "one\n", "P〔1〕", a, sa) == 0 &&
	        ingest_bytes(st, base, "b", "two\n", "P〔1〕", b, sb) == 0 &&
	        ingest_bytes(st, base, "c", "three\n", "P〔1〕", c, sc) == 0 &&
	        ingest_bytes(st, base, "g", "four\n", "P〔2〕", g, sg) == 0 &&
	        ingest_bytes(st, base, "h", "five\n", "P〔3〕", h, sh) == 0 &&
	        ingest_bytes(st, base, "f", "six\n", "P〔4〕", f, sf) == 0,
	    "six items in four cases");
	/* c is in an open case too: the same bytes kept for the other case */
	ok(cs_case_open(st, "OPEN〔1〕", NULL, &seq) == 0 &&
	        cs_case_add(st, "OPEN〔1〕", c, "investigation", NULL, &seq, &what) == 0,
	    "c is also in an open case");
	ok(cs_case_close(st, "P〔1〕", "decided", &seq) == 0 &&
	        cs_case_close(st, "P〔2〕", "decided", &seq) == 0 &&
	        cs_case_close(st, "P〔3〕", "decided", &seq) == 0 &&
	        cs_case_close(st, "P〔4〕", "decided", &seq) == 0,
	    "the P cases closed");

	is_int(cs_purge_plan(st, &pol, &p1), 0, "a plan before any period is over");
	ok(p1 == 0, "nothing due: no plan written");
	set_clock("2027-06-01T00:00:00Z");

	/* plan 1: a and b (c stays for its open case); g, h, f too */
	is_int(cs_purge_plan(st, &pol, &p1), 0, "plan after the period");
	ok(cs_purge_plan_get(st, p1, &pl) == 0 &&
	        json_array_size(json_object_get(pl, "items")) == 5 &&
	        strcmp(json_string_value(json_object_get(pl, "state")), "proposed") == 0,
	    "plan 1 lists the five due items (not c, in an open case), proposed");
	json_decref(pl);
	is_int(cs_purge_plan(st, &pol, &p2), 0, "a second plan at once");
	ok(p2 == 0, "the planned items are in no second plan");

	/* approvals */
	is_int(cs_purge_approve(st, &pol, &arch, p1, &seq, &rule), CS_EDENIED,
	    "an archivist does not approve");
	ok(rule != NULL && strcmp(rule, CS_RULE_PURGE_APPROVER) == 0, "rule purge-approver-role");
	is_int(cs_purge_approve(st, &pol, &head1, p1, &seq, &rule), 0, "first approval");
	is_int(cs_purge_approve(st, &pol, &head1, p1, &seq, &rule), CS_EDENIED,
	    "the same user approves once");
	ok(rule != NULL && strcmp(rule, CS_RULE_SAME_APPROVER) == 0, "rule purge-same-approver");
	set_clock("2027-09-01T00:00:00Z");
	is_int(cs_purge_execute(st, p1, &hooks, &rule), CS_EDENIED,
	    "one approval: no execution, however long after");
	ok(blob_there(store, sa) && blob_there(store, sb), "the bytes are there");
	is_int(cs_purge_approve(st, &pol, &head2, p1, &seq, &rule), 0, "second approval");
	ok(strcmp(plan_state(st, p1), "approved") == 0, "approved");
	is_int(cs_purge_execute(st, p1, &hooks, &rule), CS_EDENIED, "not during the grace");
	ok(rule != NULL && strcmp(rule, CS_RULE_PLAN_STATE) == 0, "rule purge-plan-state");
	ok(blob_there(store, sa), "the bytes stay during the grace");
	/* h meets an open case during the grace: skipped */
	ok(cs_case_add(st, "OPEN〔1〕", h, "investigation", NULL, &seq, &what) == 0,
	    "h added to an open case during the grace");

	set_clock("2027-09-08T00:00:01Z");
	remote_fail = 1;
	is_int(cs_purge_execute(st, p1, &hooks, &rule), -EIO,
	    "after the grace: runs, the remote could not be asked");
	ok(!blob_there(store, sa) && !blob_there(store, sb) && !blob_there(store, sf),
	    "the local bytes are gone");
	ok(blob_there(store, sh) && blob_there(store, sc), "h (skipped) and c keep their bytes");
	ok(strcmp(plan_state(st, p1), "executing") == 0, "the plan is not done yet");
	/* as a crash before the unlink leaves it: a's bytes back in place */
	snprintf(path, sizeof(path), "%s/objects/sha256/%.2s/%.2s/%s", store, sa, sa + 2, sa);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0444);
	ok(fd >= 0 && write(fd, "one\n", 4) == 4, "a's blob put back");
	if (fd >= 0)
		close(fd);
	/*
	 * a's bytes come in while the run resumes: the ingest found them stored
	 * (parked right after its link), the run removes them (a is still
	 * purged), then the ingest records: it must not count on bytes gone.
	 */
	{
		struct again ag = {st, base, "a-racing", "one\n", 0, ""};
		char parked[600];
		pthread_t t;
		snprintf(ag.park, sizeof(ag.park), "%s/park", base);
		snprintf(parked, sizeof(parked), "%s.parked", ag.park);
		setenv("CUSTOS_PARK_AT", "ingest-linked", 1);
		setenv("CUSTOS_PARK_FILE", ag.park, 1);
		ok(pthread_create(&t, NULL, ingest_again, &ag) == 0, "an ingest of a's bytes");
		while (access(parked, F_OK) < 0)
			usleep(10000);
		unsetenv("CUSTOS_PARK_AT");
		remote_fail = 1;
		(void)cs_purge_execute(st, p1, &hooks, &rule);
		ok(!blob_there(store, sa), "... the resumed run removes a's bytes meanwhile");
		fd = open(ag.park, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0)
			close(fd);
		pthread_join(t, NULL);
		is_int(ag.rc, CS_EPURGED, "... the ingest is refused, not recorded on bytes gone");
		ok(cs_store_verify(st, NULL, 0, no_problem, NULL, NULL, NULL) == 0,
		    "... verify passes");
	}
	/* b's bytes come in again before the run resumes: evidence again, kept */
	{
		char b2[80], sb2[65];
		ok(ingest_bytes(st, base, "b-again", "two\n", NULL, b2, sb2) == 0 &&
		        strcmp(b2, b) == 0 && blob_there(store, sb),
		    "b's bytes ingested again before the run resumes");
	}
	remote_fail = 0;
	remote_calls = 0;
	is_int(cs_purge_execute(st, p1, &hooks, &rule), 0, "the run resumes and ends");
	is_int(remote_calls, 3, "each purged item's remote asked once more, but b's");
	ok(!blob_there(store, sa), "a's bytes removed again");
	ok(blob_there(store, sb), "b's bytes, evidence again, stay");
	ok(strcmp(plan_state(st, p1), "done") == 0, "done");
	ok(cs_purge_plan_get(st, p1, &pl) == 0 &&
	        json_array_size(json_object_get(pl, "skipped")) == 1 &&
	        strcmp(json_string_value(json_object_get(
	                   json_array_get(json_object_get(pl, "skipped"), 0), "id")),
	            h) == 0,
	    "the plan names h as skipped");
	json_decref(pl);
	is_int(cs_purge_execute(st, p1, &hooks, &rule), CS_EDENIED, "a done plan runs no more");
	ok(cs_destruction_register(st, &reg) == 0 && json_array_size(reg) == 4 &&
	        entries_of(reg, a) == 1 && entries_of(reg, b) == 1 && entries_of(reg, g) == 1 &&
	        entries_of(reg, f) == 1 && entries_of(reg, h) == 0,
	    "one register entry per purged item");
	{
		json_t *e;
		size_t i, with = 0;
		json_array_foreach(reg, i, e)
			with += json_object_get(e, "remote") != NULL &&
			    strcmp(json_string_value(json_object_get(e, "id")), b) != 0;
		is_int(with, 3, "the register entries say what became of the remote objects "
		                "(but b's: evidence again before its remote was asked)");
	}
	is_int(cs_store_verify(st, NULL, 0, no_problem, NULL, NULL, NULL), 0,
	    "verify passes after the purge");

	/* a's bytes arrive again after its purge: evidence again, stored and checked */
	{
		char a2[80], sa2[65];
		json_t *rec = NULL;
		ok(ingest_bytes(st, base, "a-again", "one\n", NULL, a2, sa2) == 0 &&
		        strcmp(a2, a) == 0,
		    "a's bytes ingested again: a sighting of a");
		ok(blob_there(store, sa), "... its blob is stored again");
		ok(cs_store_get(st, a, &rec) == 0 && json_object_get(rec, "purged") == NULL &&
		        json_array_size(json_object_get(rec, "purges")) == 1,
		    "... the record is live again, its purge kept in its history");
		json_decref(rec);
		is_int(cs_store_verify(st, NULL, 0, no_problem, NULL, NULL, NULL), 0,
		    "verify passes with the bytes back");
		ok(cs_destruction_register(st, &reg2) == 0 && entries_of(reg2, a) == 1,
		    "the register still has a's entry");
		json_decref(reg2);
		reg2 = NULL;
	}

	/* a cancelled plan: h, once its open case is closed */
	ok(cs_case_close(st, "OPEN〔1〕", "decided", &seq) == 0, "the open case closed");
	set_clock("2028-10-01T00:00:00Z");
	is_int(cs_purge_plan(st, &pol, &p3), 0, "plan 3");
	ok(p3 > 0, "h and c are due now");
	ok(cs_purge_approve(st, &pol, &head1, p3, &seq, &rule) == 0 &&
	        cs_purge_approve(st, &pol, &head2, p3, &seq, &rule) == 0,
	    "approved by two");
	is_int(cs_purge_cancel(st, &pol, &head1, p3, "", &seq, &rule), CS_EFORMAT,
	    "a cancellation needs its reason");
	is_int(cs_purge_cancel(st, &pol, &head1, p3, "a court asked", &seq, &rule), 0,
	    "cancelled during the grace");
	set_clock("2028-11-01T00:00:00Z");
	is_int(cs_purge_execute(st, p3, &hooks, &rule), CS_EDENIED, "a cancelled plan never runs");
	ok(blob_there(store, sh) && blob_there(store, sc), "nothing purged");
	is_int(cs_purge_approve(st, &pol, &head1, p3, &seq, &rule), CS_EDENIED,
	    "no approval of a cancelled plan");
	is_int(cs_purge_plan(st, &pol, &p4), 0, "plan 4");
	ok(p4 > p3, "the cancelled plan's items are planned again");
	json_decref(reg);
	reg = NULL;
	ok(cs_destruction_register(st, &reg) == 0, "register read");
	cs_store_close(st);
	st = NULL;

	ok(cs_store_rebuild(store, NULL, NULL) >= 0, "rebuild");
	ok(cs_store_open(&st, store, CS_OPEN_READ, NULL, NULL) == 0 &&
	        cs_destruction_register(st, &reg2) == 0 && json_equal(reg, reg2),
	    "after a rebuild the register is the same");
	ok(strcmp(plan_state(st, p1), "done") == 0 && strcmp(plan_state(st, p3), "cancelled") == 0,
	    "and so are the plans' states");
	json_decref(reg);
	json_decref(reg2);
	cs_store_close(st);
	tap_rm_rf(base);
	return tap_done();
}
