/*
 * The access gate in lib (custos/access.h) as the export calls it: action
 * "export" with a case number and every item; an export needs an approval,
 * one for another case or action or of another user does not do, a
 * party's export leaves out nothing silently (the item not conclusive is
 * named), and a granted export is one register entry listing its items.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/access.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/store.h"
#include "tap.h"

static int
ingest_bytes(struct cs_store *st, const char *dir, const char *name, const char *body,
    const char *case_no, char id[80])
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
	if (rc == 0)
		memcpy(id, r.id, 80);
	return rc;
}

/* cs_access_grant of an export, its refusal's rule in *rule ("" when granted). */
static int export(struct cs_store *st, const struct cs_access_policy *p,
    const struct cs_access_who *w, const char *number, const char *const *ids, size_t n,
    int64_t appr, const char **rule, uint64_t *seq)
{
	const char *item;
	int rc = cs_access_grant(st, p, w, "export", number, ids, n, appr, NULL, seq, rule, &item);

	if (*rule == NULL)
		*rule = "";
	return rc;
}

int
main(void)
{
	char base[256], store[300], a[80], b[80], x[80];
	struct cs_access_policy p;
	struct cs_access_who arch = {1001, "arch", "archivist"}, head = {1002, "zhao", "head"};
	struct cs_access_who rev = {1003, "chen", "reviewer"}, legal = {1004, "li", "legal"};
	struct cs_access_req r = {"E〔1〕", "export", "carrier for the court", NULL, 0, NULL, NULL,
	    NULL, NULL};
	const char *ab[2], *rule, *what;
	uint64_t req, req_view, req_party, seq, size;
	struct cs_store *st = NULL;
	json_t *reg = NULL;

	cs_access_policy_default(&p);
	snprintf(base, sizeof(base), "%s/custos-test-access.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		return 2;
	snprintf(store, sizeof(store), "%s/store", base);
	ok(cs_store_init(store, "U1") == 0, "init");
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0, "open writer");
	ok(ingest_bytes(st, base, "a", "one\n", "E〔1〕", a) == 0 &&
	        ingest_bytes(st, base, "b", "two\n", "E〔1〕", b) == 0 &&
	        ingest_bytes(st, base, "x", "three\n", "E〔2〕", x) == 0,
	    "two items in E〔1〕, one in E〔2〕");
	ab[0] = a;
	ab[1] = b;

	ok(cs_access_in_list("archivist, legal ,admin", "legal") &&
	        !cs_access_in_list("archivist,legalese", "legal"),
	    "role lists: words separated by commas, spaces allowed");
	is_int(export(st, &p, &arch, "E[1]", ab, 2, -1, &rule, &seq), CS_EDENIED,
	    "an export without approval is refused");
	ok(strcmp(rule, CS_RULE_EXPORT_APPROVAL) == 0, "... by %s (%s)", CS_RULE_EXPORT_APPROVAL,
	    rule);
	is_int(export(st, &p, &legal, "E[1]", ab, 2, -1, &rule, &seq), CS_EDENIED,
	    "legal staff too need one for an export");
	ok(cs_access_request(st, &p, &arch, &r, &req, &rule, &what) == 0, "export request");
	r.action = "view";
	ok(cs_access_request(st, &p, &arch, &r, &req_view, &rule, &what) == 0, "view request");
	r.action = "export";
	r.kind = "party";
	r.name = "王某";
	ok(cs_access_request(st, &p, &arch, &r, &req_party, &rule, &what) == 0,
	    "export request for a party, filed by the archivist");
	r.kind = "police";
	is_int(cs_access_request(st, &p, &arch, &r, &seq, &rule, &what), CS_EFORMAT,
	    "a police request without a letter");
	ok(what != NULL && strcmp(what, "letter") == 0, "... names the letter");
	r.kind = "party";
	is_int(cs_access_request(st, &p, &rev, &r, &seq, &rule, &what), CS_EDENIED,
	    "a reviewer files for a party");
	is_int(export(st, &p, &arch, "E[1]", ab, 2, (int64_t)req, &rule, &seq), CS_EDENIED,
	    "an export under a pending request");
	ok(strcmp(rule, CS_RULE_PENDING) == 0, "... %s (%s)", CS_RULE_PENDING, rule);
	is_int(cs_access_decide(st, &p, &arch, req, 1, 0, NULL, &seq, &rule), CS_EDENIED,
	    "an archivist approves");
	ok(cs_access_decide(st, &p, &head, req, 1, 0, NULL, &seq, &rule) == 0 &&
	        cs_access_decide(st, &p, &head, req_view, 1, 0, NULL, &seq, &rule) == 0 &&
	        cs_access_decide(st, &p, &head, req_party, 1, 0, NULL, &seq, &rule) == 0,
	    "the head approves the three");
	size = cs_store_size(st);
	is_int(export(st, &p, &arch, "E[2]", &ab[0], 1, (int64_t)req, &rule, &seq), CS_EDENIED,
	    "an export of another case under it");
	ok(strcmp(rule, CS_RULE_OTHER_CASE) == 0, "... %s (%s)", CS_RULE_OTHER_CASE, rule);
	is_int(export(st, &p, &arch, "E[1]", ab, 2, (int64_t)req_view, &rule, &seq), CS_EDENIED,
	    "an export under a view approval");
	ok(strcmp(rule, CS_RULE_OTHER_ACTION) == 0, "... %s (%s)", CS_RULE_OTHER_ACTION, rule);
	is_int(export(st, &p, &rev, "E[1]", ab, 2, (int64_t)req, &rule, &seq), CS_EDENIED,
	    "another user's export under it");
	ok(strcmp(rule, CS_RULE_NOT_YOURS) == 0, "... %s (%s)", CS_RULE_NOT_YOURS, rule);
	{
		const char *ax[2] = {a, x};
		is_int(export(st, &p, &arch, "E[1]", ax, 2, (int64_t)req, &rule, &seq), CS_EDENIED,
		    "an export that slips in an item of another case");
		ok(strcmp(rule, CS_RULE_OTHER_CASE) == 0, "... %s (%s)", CS_RULE_OTHER_CASE, rule);
	}
	is_int(export(st, &p, &arch, "E[1]", ab, 2, (int64_t)req_party, &rule, &seq), CS_EDENIED,
	    "a party's export of items not marked conclusive");
	ok(strcmp(rule, CS_RULE_CONCLUSIVE) == 0, "... %s (%s)", CS_RULE_CONCLUSIVE, rule);
	ok(cs_store_size(st) == size, "the refusals wrote nothing");
	ok(export(st, &p, &arch, "E〔1〕", ab, 2, (int64_t)req, &rule, &seq) == 0,
	    "the export under its approval is let through");
	ok(cs_access_register(st, "E(1)", 0, 0, 0, &reg) == 0 && json_array_size(reg) == 1 &&
	        json_integer_value(json_object_get(json_array_get(reg, 0), "seq")) ==
	            (json_int_t)seq &&
	        json_array_size(json_object_get(json_array_get(reg, 0), "items")) == 2 &&
	        json_integer_value(json_object_get(json_array_get(reg, 0), "approval")) ==
	            (json_int_t)req,
	    "one register entry, of the case, with both items and the approval");
	json_decref(reg);
	cs_store_close(st);
	st = NULL;
	ok(cs_store_rebuild(store, NULL, NULL) >= 0, "rebuild");
	ok(cs_store_open(&st, store, CS_OPEN_READ, NULL, NULL) == 0 &&
	        cs_access_register(st, NULL, 0, 0, 0, &reg) == 0 && json_array_size(reg) == 1,
	    "after a rebuild the register is the same");
	json_decref(reg);
	cs_store_close(st);
	tap_rm_rf(base);
	return tap_done();
}
