/*
 * The evidence model in lib: the canonical key table of case numbers, and
 * the seal rule (after case-seal every add, remove and correction touching
 * the case is refused with CS_ESEALED and the ledger does not change), the
 * member digest a seal carries, and an ingest with a sealed case's number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "custos/case.h"
#include "custos/error.h"
#include "custos/store.h"
#include "tap.h"

static void
key_is(const char *number, const char *want)
{
	char *key = NULL;
	int rc = cs_case_key(number, &key);

	ok(rc == 0 && key != NULL && strcmp(key, want) == 0, "key of '%s' is '%s' (got '%s')",
	    number, want, key != NULL ? key : "(error)");
	free(key);
}

static void
key_refused(const char *number, const char *why)
{
	char *key = NULL;

	ok(cs_case_key(number, &key) == CS_EFORMAT && key == NULL, "no key for %s", why);
}

static void
test_keys(void)
{
	const char *canon = "平司罚[2020]1号";

	key_is("平司罚〔2020〕1号", canon);
	key_is("平司罚[2020]1号", canon);
	key_is("平司罚［２０２０］１号", canon);
	key_is("平司罚【2020】1号", canon);
	key_is("平司罚〖2020〗1号", canon);
	key_is("平司罚(2020)1号", canon);
	key_is("平司罚（2020）1号", canon);
	key_is("平司罚﹝2020﹞1号", canon);
	key_is("平司罚〘2020〙1号", canon);
	key_is("平司罚{2020}1号", canon);
	key_is("  平司罚〔2020〕1号 ", canon);
	key_is("\xe3\x80\x80平司罚〔2020〕1号\xe3\x80\x80", canon); /* ideographic spaces */
	key_is("平司罚〔2020〕 1号", "平司罚[2020] 1号");      /* white space inside stays */
	key_is("ＡＢ－１", "AB-1");
	key_is("X-2", "X-2");
	key_refused("", "an empty number");
	key_refused("   ", "white space only");
	key_refused("C\x01", "a control character");
	key_refused("\xff\xfe", "bytes that are not UTF-8");
	{
		char big[300];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		key_refused(big, "a number longer than 256 bytes");
	}
	{
		char *a = NULL, *b = NULL;
		ok(cs_case_key("平司罚〔2020〕1号", &a) == 0 &&
		        cs_case_key("平司罚〔2020〕11号", &b) == 0 && strcmp(a, b) != 0,
		    "a different number has a different key");
		free(a);
		free(b);
	}
}

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
	m.stage = "取证";
	rc = cs_store_ingest_path(st, path, &m, &r);
	if (rc == 0)
		memcpy(id, r.id, 80);
	return rc;
}

static void
test_seal(void)
{
	char base[256], store[300], id1[80], id2[80], id3[80];
	const char *fields[] = {"officers"}, *values[] = {"A-1"};
	const char *sfields[] = {"stage"}, *svalues[] = {"执行"};
	const char *cfields[] = {"title"}, *cvalues[] = {"t"};
	struct cs_store *st = NULL;
	json_t *members = NULL, *crec = NULL;
	uint64_t seq, size;
	const char *what;
	char hex[65];

	snprintf(base, sizeof(base), "%s/custos-test-case.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL)
		exit(2);
	snprintf(store, sizeof(store), "%s/store", base);
	ok(cs_store_init(store, "U1") == 0, "init");
	ok(cs_store_open(&st, store, CS_OPEN_WRITE, NULL, NULL) == 0, "open writer");
	ok(cs_store_set_actor(st, "user", "tester", 1000) == 0, "set actor");
	ok(ingest_bytes(st, base, "a", "first\n", NULL, id1) == 0, "ingest without a case");
	ok(ingest_bytes(st, base, "b", "second\n", "K〔1〕", id2) == 0,
	    "ingest with a case number (the case opens)");
	ok(ingest_bytes(st, base, "c", "third\n", NULL, id3) == 0, "ingest a third item");
	ok(cs_case_add(st, "K[1]", id1, "collection", "found later", &seq, &what) == 0,
	    "case add (English stage alias, other bracket spelling)");
	what = NULL;
	is_int(cs_case_add(st, "K[1]", id1, "取证", NULL, &seq, &what), CS_EEXIST,
	    "adding a member again: CS_EEXIST");
	what = NULL;
	is_int(cs_case_add(st, "K[2]", id1, "取证", NULL, &seq, &what), CS_ENOTFOUND,
	    "adding to an unknown case: CS_ENOTFOUND");
	ok(what != NULL && strcmp(what, "case") == 0, "... naming the case");
	is_int(cs_case_add(st, "K[1]", id1, "午饭", NULL, &seq, &what), CS_EFORMAT,
	    "an unknown stage: CS_EFORMAT");
	is_int(cs_case_remove(st, "K[1]", id1, NULL, &seq, &what), CS_EFORMAT,
	    "a removal without a reason: CS_EFORMAT");
	ok(cs_store_case_members(st, "K【1】", &members) == 0 && json_array_size(members) == 2,
	    "two members");
	ok(cs_case_members_digest(members, hex) == 0, "member digest");
	json_decref(members);
	ok(cs_case_seal(st, "K〔1〕", NULL, &seq) == 0, "seal");
	ok(cs_store_case_get(st, "K(1)", &crec) == 0 &&
	        strcmp(json_string_value(json_object_get(json_object_get(crec, "seal"),
	                   "members_sha256")),
	            hex) == 0 &&
	        strcmp(json_string_value(json_object_get(crec, "state")), "sealed") == 0 &&
	        strcmp(json_string_value(json_object_get(crec, "number")), "K〔1〕") == 0,
	    "the seal carries the member digest; the number is shown as first written");
	json_decref(crec);

	size = cs_store_size(st);
	is_int(cs_case_add(st, "K[1]", id3, "取证", NULL, &seq, &what), CS_ESEALED,
	    "add to a sealed case: CS_ESEALED");
	is_int(cs_case_remove(st, "K[1]", id1, "wrong", &seq, &what), CS_ESEALED,
	    "remove from a sealed case: CS_ESEALED");
	is_int(cs_amend(st, id1, -1, "K[1]", sfields, svalues, 1, "r", &seq, &what),
	    CS_ESEALED, "correcting a membership of a sealed case: CS_ESEALED");
	is_int(cs_amend(st, id1, -1, NULL, fields, values, 1, "r", &seq, &what), CS_ESEALED,
	    "correcting a sighting of a member of a sealed case: CS_ESEALED");
	is_int(cs_amend(st, NULL, -1, "K[1]", cfields, cvalues, 1, "r", &seq, &what), CS_ESEALED,
	    "correcting the sealed case file: CS_ESEALED");
	is_int(cs_case_close(st, "K[1]", NULL, &seq), CS_ESEALED, "closing it: CS_ESEALED");
	is_int(cs_case_seal(st, "K[1]", NULL, &seq), CS_ESEALED, "sealing it again: CS_ESEALED");
	ok(cs_store_size(st) == size, "the refusals left the ledger as it was");
	ok(ingest_bytes(st, base, "d", "third\n", "K[1]", id3) == 0 &&
	        cs_store_size(st) == size + 1,
	    "the same bytes with the sealed case's number are secured (one sighting event)");
	ok(cs_store_case_members(st, "K[1]", &members) == 0 && json_array_size(members) == 2,
	    "... and not added: still two members");
	json_decref(members);
	ok(cs_amend(st, id3, -1, NULL, fields, values, 1, "r", &seq, &what) == CS_EEXIST,
	    "a correction of an item with two sightings must name the sighting");
	cs_store_close(st);
	st = NULL;
	ok(cs_store_rebuild(store, NULL, NULL) >= 0, "rebuild");
	ok(cs_store_open(&st, store, CS_OPEN_READ, NULL, NULL) == 0 &&
	        cs_store_case_get(st, "K[1]", &crec) == 0 &&
	        strcmp(json_string_value(json_object_get(crec, "state")), "sealed") == 0,
	    "after rebuild the case is still sealed");
	json_decref(crec);
	cs_store_close(st);
	tap_rm_rf(base);
}

int
main(void)
{
	test_keys();
	test_seal();
	return tap_done();
}
