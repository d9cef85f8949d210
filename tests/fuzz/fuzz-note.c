/*
 * Fuzzes the signed-note parsers (lib/include/custos/note.h) with one input
 * read every way: as a verifier key, a private key, a signed note checked
 * against three known keys, a checkpoint, a tlog-proof and
 * base64. Beyond "no crash", each parser must accept only the canonical
 * form, so whatever parses formats back to the same bytes, and whatever
 * text cs_note_sign accepts must verify.
 */
#include <errno.h>
#include <string.h>

#include "custos/error.h"
#include "custos/note.h"
#include "fuzz.h"

/*
 * The keys of tests/vectors/signed-notes.txt, and the key of the store that
 * signed the checkpoint and proof in corpus/note/.
 */
static const char *const vkeys[] = {
	"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
	"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	"custos/fuzz-seed+dc312ce4+ASlXBoYtwCrbOy+vFA4QUVuqm9qzRaZasf/a8sHb/tCL",
};
#define NKEYS (sizeof(vkeys) / sizeof(vkeys[0]))
static const char skey[] =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n";

static struct cs_verifier *verifiers[NKEYS];
static struct cs_signer *signer;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	for (size_t i = 0; i < NKEYS; i++)
		CHECK(cs_verifier_parse(&verifiers[i], vkeys[i], strlen(vkeys[i])) == 0);
	CHECK(cs_signer_parse(&signer, skey, strlen(skey)) == 0);
	return 0;
}

static int
known(int rc)
{
	return rc == CS_EFORMAT || rc == CS_ESIG || rc == -ENOBUFS || rc == -ENOMEM;
}

static void
keys(const char *s, size_t len)
{
	struct cs_verifier *v = NULL;
	struct cs_signer *sg = NULL;
	char *vk = NULL;
	int rc;

	rc = cs_verifier_parse(&v, s, len);
	CHECK(rc == 0 || known(rc));
	if (rc == 0) {
		const char *name = cs_verifier_name(v);
		CHECK(name[0] != '\0' && strchr(name, '+') == NULL && strlen(name) < len);
		CHECK(memcmp(name, s, strlen(name)) == 0);
		cs_verifier_free(v);
	}

	rc = cs_signer_parse(&sg, s, len);
	CHECK(rc == 0 || known(rc));
	if (rc == 0) {
		/* The private key's verifier key is well formed and names the same key. */
		CHECK(cs_signer_verifier_key(sg, &vk) == 0);
		CHECK(cs_verifier_parse(&v, vk, strlen(vk)) == 0);
		CHECK(strcmp(cs_verifier_name(v), cs_signer_name(sg)) == 0);
		cs_verifier_free(v);
		free(vk);
		cs_signer_free(sg);
	}
}

static void
note(const char *s, size_t len)
{
	size_t tlen;
	int rc;

	for (size_t i = 0; i < NKEYS; i++) {
		tlen = (size_t)-1;
		rc = cs_note_verify(verifiers[i], s, len, &tlen);
		CHECK(rc == 0 || known(rc));
		if (rc == 0) {
			/* The text ends at a blank line, inside the note. */
			CHECK(tlen > 0 && tlen < len && s[tlen - 1] == '\n' && s[tlen] == '\n');
		} else {
			CHECK(tlen == (size_t)-1);
		}
	}

	/* Whatever text can be signed verifies, whole, under the signer's key. */
	if (len > 0 && len <= 4096 && s[len - 1] == '\n') {
		char *signed_note = NULL;
		size_t nlen = 0;

		rc = cs_note_sign(signer, s, len, &signed_note, &nlen);
		CHECK(rc == 0 || rc == CS_EFORMAT);
		if (rc == 0) {
			CHECK(strlen(signed_note) == nlen);
			CHECK(cs_note_verify(verifiers[1], signed_note, nlen, &tlen) == 0);
			CHECK(tlen == len && memcmp(signed_note, s, len) == 0);
			CHECK(cs_note_verify(verifiers[0], signed_note, nlen, &tlen) == CS_ESIG);
			free(signed_note);
		}
	}
}

static void
checkpoint(const char *s, size_t len)
{
	struct cs_checkpoint cp;
	char buf[400];
	int rc, n;

	rc = cs_checkpoint_parse(&cp, s, len);
	CHECK(rc == 0 || known(rc));
	if (rc != 0)
		return;
	/* Extension lines are ignored: the formatted checkpoint is a prefix. */
	n = cs_checkpoint_format(&cp, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n <= len && memcmp(buf, s, (size_t)n) == 0);
}

static void
proof(const char *s, size_t len)
{
	struct cs_tlog_proof p;
	char *out = NULL;
	size_t outlen = 0;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = cs_tlog_proof_parse(&p, s, len);
	CHECK(rc == 0 || known(rc));
	if (rc != 0) {
		CHECK(p.checkpoint == NULL && p.extra == NULL && p.count == 0);
		return;
	}
	CHECK(p.count <= 64 && p.checkpoint != NULL && strlen(p.checkpoint) == p.checkpoint_len);
	CHECK(cs_tlog_proof_format(&p, &out, &outlen) == 0);
	CHECK(outlen == len && memcmp(out, s, len) == 0);
	free(out);
	cs_tlog_proof_fini(&p);
	CHECK(p.checkpoint == NULL && p.extra == NULL);
}

static void
base64(const char *s, size_t len)
{
	uint8_t *out;
	char *enc;
	int n, rc;

	/* First with room for anything, then into a buffer of exactly the decoded size. */
	out = malloc(len + 1);
	CHECK(out != NULL);
	n = cs_base64_decode(s, len, out, len + 1);
	free(out);
	CHECK(n >= 0 || n == CS_EFORMAT);
	if (n < 0)
		return;
	CHECK((size_t)n <= len / 4 * 3);
	out = malloc(n > 0 ? (size_t)n : 1);
	CHECK(out != NULL);
	CHECK(cs_base64_decode(s, len, out, (size_t)n) == n);
	if (n > 0)
		CHECK(cs_base64_decode(s, len, out, (size_t)n - 1) == -ENOBUFS);
	/* Canonical: the bytes encode back to the very input. */
	enc = malloc(len + 1);
	CHECK(enc != NULL);
	rc = cs_base64_encode(out, (size_t)n, enc, len + 1);
	CHECK(rc >= 0 && (size_t)rc == len && memcmp(enc, s, len) == 0 && enc[len] == '\0');
	free(enc);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	keys(s, size);
	note(s, size);
	checkpoint(s, size);
	proof(s, size);
	base64(s, size);
	return 0;
}
