/*
 * Unit tests of lib/check.c (custos/check.h): proofs made by a real store
 * checked with its verifier key, then doctored (another key, changed event
 * bytes, a dropped membership before a seal, not a proof); dock receipts
 * written by the store, then re-signed by the store's own key with the
 * checkpoint inside altered, missing or of another origin.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "custos/case.h"
#include "custos/check.h"
#include "custos/error.h"
#include "custos/note.h"
#include "custos/store.h"
#include "tap.h"

static char base[256];

static void
make_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);

	if (f == NULL || buf == NULL) {
		perror(path);
		exit(2);
	}
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Checks proofs text; returns the status (-1 if the check could not run). */
static int
proof_status(const char *text, const char *vkey, struct cs_check *c)
{
	int rc = cs_check_proofs(text, strlen(text), vkey, c);

	return rc < 0 ? -1 : (int)c->status;
}

static void
test_proofs(struct cs_store *st, const char *vkey, const char *id)
{
	struct cs_check c = {0};
	char *proof = NULL, *other = NULL, *bad, *p;
	struct cs_signer *s = NULL;
	char path[400];

	ok(cs_store_prove_item(st, id, &proof) == 0, "the store proves the item");
	is_int(proof_status(proof, vkey, &c), CS_CHECK_OK, "its proof checks out with the key");
	ok(c.n_proven >= 1 && c.proven[0].event != NULL && c.proven[0].extra_len > 0 &&
	        strncmp(c.proven[0].origin, "custos/CHK", 10) == 0,
	    "the proven event, its bytes and the checkpoint's origin are given");
	ok(!c.case_file, "an item's proof without a case is not a case file's");
	cs_check_fini(&c);

	is_int(proof_status(proof, "not a key", &c), CS_CHECK_BADKEY, "a malformed key");
	cs_check_fini(&c);
	snprintf(path, sizeof(path), "%s/other.key", base);
	ok(cs_signer_generate(path, "custos/CHK") == 0 && cs_signer_load(&s, path) == 0 &&
	        cs_signer_verifier_key(s, &other) == 0,
	    "another key of the same name");
	is_int(proof_status(proof, other, &c), CS_CHECK_SIGNATURE,
	    "with another key: the checkpoint is not signed by it");
	is_int(c.part, 1, "... the first proof is named");
	cs_check_fini(&c);

	/* Changed event bytes: one base64 letter of the extra line. */
	bad = strdup(proof);
	p = strstr(bad, "\nextra ");
	ok(p != NULL, "the proof carries the event's bytes");
	p += 7 + 10;
	*p = *p == 'A' ? 'B' : 'A';
	is_int(proof_status(bad, vkey, &c), CS_CHECK_INCLUSION,
	    "changed event bytes are not included in the signed tree");
	cs_check_fini(&c);
	free(bad);

	is_int(proof_status("", vkey, &c), CS_CHECK_MALFORMED, "an empty file is not a proof");
	is_int(c.part, 0, "... of the whole file");
	cs_check_fini(&c);
	is_int(proof_status("hello\n", vkey, &c), CS_CHECK_MALFORMED, "text is not a proof");
	is_int(c.part, 1, "... its first part");
	cs_check_fini(&c);
	cs_signer_free(s);
	free(other);
	free(proof);
}

static void
test_case_proof(struct cs_store *st, const char *vkey, const char *a, const char *b)
{
	static const char magic[] = "c2sp.org/tlog-proof@v1\n";
	struct cs_check c = {0};
	char *proof = NULL, *parts[8], *cut;
	size_t n = 0;
	uint64_t seq;

	ok(cs_case_open(st, "平司罚〔2020〕1号", NULL, &seq) == 0 &&
	        cs_case_add(st, "平司罚〔2020〕1号", a, "调查", NULL, &seq, NULL) == 0 &&
	        cs_case_add(st, "平司罚〔2020〕1号", b, "取证", NULL, &seq, NULL) == 0 &&
	        cs_case_seal(st, "平司罚〔2020〕1号", NULL, &seq) == 0 &&
	        cs_store_checkpoint(st, NULL) == 0,
	    "a case file with two items, sealed");
	ok(cs_store_prove_case(st, "平司罚[2020]1号", &proof) == 0, "the store proves the case");
	is_int(proof_status(proof, vkey, &c), CS_CHECK_OK, "the case proof checks out");
	ok(c.case_file && c.members == 2 && c.seals == 1 && c.n_proven == 4,
	    "four events of one case file, two members, the seal matching them");
	cs_check_fini(&c);

	/* Drop the second proof (the first add): every remaining event is included. */
	for (char *p = proof; p != NULL && n < 8; p = strstr(p + 1, magic))
		parts[n++] = p;
	ok(n == 4, "four proofs in the file");
	cut = malloc(strlen(proof) + 1);
	memcpy(cut, proof, (size_t)(parts[1] - proof));
	strcpy(cut + (parts[1] - proof), parts[2]);
	is_int(proof_status(cut, vkey, &c), CS_CHECK_CASE,
	    "without a membership event the seal does not match");
	ok(c.why != NULL && strstr(c.why, "seal") != NULL, "... and why says so (%s)",
	    c.why ? c.why : "-");
	is_int(c.n_proven, 3, "... though the three events left are each proven");
	cs_check_fini(&c);
	free(cut);
	free(proof);
}

/* Re-signs receipt `text` with the store's key after `edit` changed its body. */
static char *
resign(const char *root, const char *text, void (*edit)(json_t *body, const char *root))
{
	struct cs_signer *s = NULL;
	char path[400], *body, *out = NULL;
	size_t outlen, len;
	json_t *j;

	snprintf(path, sizeof(path), "%s/keys/ledger.key", root);
	j = json_loadb(text, strcspn(text, "\n"), 0, NULL);
	if (j == NULL || cs_signer_load(&s, path) != 0)
		return NULL;
	edit(j, root);
	body = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	len = strlen(body);
	body = realloc(body, len + 2);
	strcpy(body + len, "\n");
	if (cs_note_sign(s, body, len + 1, &out, &outlen) != 0)
		out = NULL;
	free(body);
	json_decref(j);
	cs_signer_free(s);
	return out;
}

/* The checkpoint's tree size line changed: the signature no longer holds. */
static void
edit_size(json_t *body, const char *root)
{
	char *cp = strdup(json_string_value(json_object_get(body, "checkpoint")));
	char *nl = strchr(cp, '\n');

	(void)root;
	nl[1] = nl[1] == '9' ? '8' : '9';
	json_object_set_new(body, "checkpoint", json_string(cp));
	free(cp);
}

static void
edit_drop(json_t *body, const char *root)
{
	(void)root;
	json_object_del(body, "checkpoint");
}

/* A checkpoint truly signed by the store's key, but for another origin. */
static void
edit_origin(json_t *body, const char *root)
{
	struct cs_signer *s = NULL;
	char path[400], *note = NULL;
	size_t len;
	const char *text = "custos/ELSEWHERE\n3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";

	snprintf(path, sizeof(path), "%s/keys/ledger.key", root);
	if (cs_signer_load(&s, path) == 0 && cs_note_sign(s, text, strlen(text), &note, &len) == 0)
		json_object_set_new(body, "checkpoint", json_string(note));
	free(note);
	cs_signer_free(s);
}

static void
edit_nothing(json_t *body, const char *root)
{
	(void)body;
	(void)root;
}

static void
test_receipt(struct cs_store *st, const char *root, const char *vkey, const char *id)
{
	static const struct {
		void (*edit)(json_t *, const char *);
		const char *what;
	} doctored[] = {
		{edit_size, "the checkpoint inside altered"},
		{edit_drop, "no checkpoint inside"},
		{edit_origin, "a checkpoint inside of another origin"},
	};
	struct cs_check c = {0};
	char dir[400], path[500], *text, *again;
	json_t *body;
	size_t len;
	int dfd;

	snprintf(dir, sizeof(dir), "%s/rec", base);
	mkdir(dir, 0755);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	body = json_pack("{s:s, s:s, s:[{s:s, s:i}], s:[[i,i]]}", "receipt",
	    "custos dock receipt v1", "session", "S1", "files", "id", id, "size", 1,
	    "sequence_gaps", 13, 13);
	ok(dfd >= 0 && cs_receipt_write(st, dfd, body) == 0, "the store writes a receipt");
	json_decref(body);
	close(dfd);
	snprintf(path, sizeof(path), "%s/CUSTOS-RECEIPT.json", dir);
	text = read_all(path, &len);
	ok(cs_check_receipt(text, len, vkey, &c) == 0 && c.status == CS_CHECK_OK,
	    "the receipt checks out with the key");
	ok(c.receipt != NULL && json_array_size(json_object_get(c.receipt, "files")) == 1 &&
	        json_array_size(c.gaps) == 1,
	    "its body and sequence gaps are given");
	cs_check_fini(&c);

	cs_check_receipt(text, len, "bad key", &c);
	is_int(c.status, CS_CHECK_BADKEY, "a malformed key");
	cs_check_fini(&c);
	text[strstr(text, "\"S1\"") - text + 2] = '2';
	cs_check_receipt(text, len, vkey, &c);
	is_int(c.status, CS_CHECK_SIGNATURE, "a receipt altered after signing");
	cs_check_fini(&c);
	text[strstr(text, "\"S2\"") - text + 2] = '1';

	again = resign(root, text, edit_nothing);
	ok(again != NULL && cs_check_receipt(again, strlen(again), vkey, &c) == 0 &&
	        c.status == CS_CHECK_OK,
	    "re-signed by the store's key unchanged, it still checks out");
	cs_check_fini(&c);
	free(again);
	for (size_t i = 0; i < sizeof(doctored) / sizeof(doctored[0]); i++) {
		int rc = -1;
		again = resign(root, text, doctored[i].edit);
		if (again != NULL)
			rc = cs_check_receipt(again, strlen(again), vkey, &c);
		ok(rc == 0 && c.status == CS_CHECK_RECEIPT_CP && c.why != NULL && c.receipt == NULL,
		    "re-signed by the store's key with %s: refused (%s)", doctored[i].what,
		    c.why != NULL ? c.why : "-");
		cs_check_fini(&c);
		free(again);
	}
	free(text);
}

int
main(void)
{
	struct cs_ingest_result a, b;
	struct cs_store *st = NULL;
	char root[300], path[400], *vkey = NULL;

	snprintf(base, sizeof(base), "%s/custos-test-check.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(root, sizeof(root), "%s/store", base);
	ok(cs_store_init(root, "CHK") == 0 &&
	        cs_store_open(&st, root, CS_OPEN_WRITE, NULL, NULL) == 0,
	    "a store");
	snprintf(path, sizeof(path), "%s/a.mp4", base);
	make_file(path, "the first recording\n");
	ok(cs_store_ingest_path(st, path, &(struct cs_meta){.source = "cli"}, &a) == 0, "item a");
	snprintf(path, sizeof(path), "%s/b.mp4", base);
	make_file(path, "the second recording\n");
	ok(cs_store_ingest_path(st, path, &(struct cs_meta){.source = "cli"}, &b) == 0, "item b");
	ok(cs_store_checkpoint(st, NULL) == 0 && cs_store_verifier_key(st, &vkey) == 0,
	    "a signed checkpoint and the verifier key");
	test_proofs(st, vkey, a.id);
	test_case_proof(st, vkey, a.id, b.id);
	test_receipt(st, root, vkey, a.id);
	free(vkey);
	cs_store_close(st);
	tap_rm_rf(base);
	return tap_done();
}
