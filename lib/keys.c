/*
 * Ed25519 keys for signed notes (C2SP signed-note v1.0.0): generating a
 * private key file (Go x/mod/sumdb/note format), parsing and loading it,
 * the verifier key text and its parser, and key IDs. Secrets are wiped from
 * memory before they are freed. The key structures are never written after
 * they are built, so every function may run on several threads at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "custos/error.h"
#include "custos/keys.h"
#include "custos/note.h"
#include "note_internal.h"
#include "util.h"

#define KEY_FILE_MAX 4096 /* a key file is one line of about 100 bytes */
#define PRIVATE_PREFIX "PRIVATE+KEY+"

/* Key ID = SHA-256(name || "\n" || 0x01 || public key)[:4], big-endian. */
static int
key_id(const char *name, size_t namelen, const uint8_t pub[32], uint32_t *id)
{
	static const uint8_t sep[2] = {'\n', ALG_ED25519};
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int rc;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, name, namelen) != 1 ||
	    EVP_DigestUpdate(ctx, sep, sizeof(sep)) != 1 || EVP_DigestUpdate(ctx, pub, 32) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		rc = cs__note_ssl_error();
		goto out;
	}
	*id = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Derives the Ed25519 public key from a 32-byte seed. */
static int
ed25519_public(const uint8_t seed[32], uint8_t pub[32])
{
	EVP_PKEY *pk;
	size_t n = 32;
	int rc = 0;

	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, pub, &n) != 1 || n != 32)
		rc = cs__note_ssl_error();
	EVP_PKEY_free(pk); /* OpenSSL wipes the private key it copied */
	return rc;
}

/*
 * Splits "<name>+<8 hex>+<base64(0x01 || 32 bytes)>" (a verifier key, or a
 * private key after its "PRIVATE+KEY+" prefix). The base64 part may itself
 * contain '+', so only the first two are separators.
 */
static int
split_key(const char *s, size_t len, const char **name, size_t *namelen, uint32_t *id,
    uint8_t key[32])
{
	uint8_t raw[33];
	const char *plus, *end = s + len;
	int rc;

	plus = memchr(s, '+', len);
	if (plus == NULL) {
		rc = CS_EFORMAT;
		goto out;
	}
	*name = s;
	*namelen = (size_t)(plus - s);
	rc = cs__note_name_check(s, *namelen);
	if (rc < 0)
		goto out;
	s = plus + 1;
	if (end - s < 9 || s[8] != '+' || cs__note_parse_hex8(s, 8, id) < 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	s += 9;
	rc = cs__note_b64_decode_exact(s, (size_t)(end - s), raw, sizeof(raw));
	if (rc < 0)
		goto out;
	if (raw[0] != ALG_ED25519) {
		rc = CS_EFORMAT;
		goto out;
	}
	memcpy(key, raw + 1, 32);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

void
cs_signer_free(struct cs_signer *s)
{
	if (s == NULL)
		return;
	free(s->name);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

const char *
cs_signer_name(const struct cs_signer *s)
{
	return s->name;
}

/*
 * Accepts the file's content: the key line with or without its final
 * newline. The key ID in the text must match the one derived from the seed,
 * which catches a key file that was damaged or pasted wrongly.
 */
int
cs_signer_parse(struct cs_signer **out, const char *text, size_t len)
{
	const size_t plen = sizeof(PRIVATE_PREFIX) - 1;
	struct cs_signer *s = NULL;
	const char *name;
	size_t namelen;
	uint32_t id;
	int rc;

	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len < plen || memcmp(text, PRIVATE_PREFIX, plen) != 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = split_key(text + plen, len - plen, &name, &namelen, &s->id, s->seed);
	if (rc < 0)
		goto out;
	s->name = strndup(name, namelen);
	if (s->name == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ed25519_public(s->seed, s->pub);
	if (rc < 0)
		goto out;
	rc = key_id(name, namelen, s->pub, &id);
	if (rc < 0)
		goto out;
	if (id != s->id) {
		rc = CS_EFORMAT;
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	cs_signer_free(s);
	return rc;
}

int
cs_signer_load(struct cs_signer **out, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = cs__read_file(AT_FDCWD, path, KEY_FILE_MAX, &buf, &len);
	if (rc < 0)
		goto out;
	rc = cs_signer_parse(out, buf, len);
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return rc;
}

/*
 * The key file is written through cs__write_file_new, which makes a temp
 * file in the same directory, sets the mode, fsyncs it, links it to the
 * final name (never replacing one), unlinks the temp file and then fsyncs
 * the directory, so that one fsync makes both the link and the unlink
 * durable and no stray copy of the key can come back after a crash.
 */
int
cs_signer_generate(const char *path, const char *name)
{
	uint8_t seed[32], pub[32], raw[33];
	char b64[48], *text = NULL, *dir = NULL;
	const char *base, *slash;
	size_t namelen = strlen(name), n = 0;
	uint32_t id;
	int dfd = -1, len, rc;

	rc = cs__note_name_check(name, namelen);
	if (rc < 0)
		goto out;
	if (RAND_bytes(seed, sizeof(seed)) != 1) {
		rc = cs__note_ssl_error();
		goto out;
	}
	rc = ed25519_public(seed, pub);
	if (rc < 0)
		goto out;
	rc = key_id(name, namelen, pub, &id);
	if (rc < 0)
		goto out;
	raw[0] = ALG_ED25519;
	memcpy(raw + 1, seed, 32);
	rc = cs_base64_encode(raw, sizeof(raw), b64, sizeof(b64));
	if (rc < 0)
		goto out;
	n = sizeof(PRIVATE_PREFIX) - 1 + namelen + 1 + 8 + 1 + (size_t)rc + 1 + 1;
	text = malloc(n);
	if (text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	len = snprintf(text, n, PRIVATE_PREFIX "%s+%08" PRIx32 "+%s\n", name, id, b64);
	if (len < 0 || (size_t)len >= n) {
		rc = -EOVERFLOW;
		goto out;
	}

	slash = strrchr(path, '/');
	if (slash == NULL) {
		dir = strdup(".");
		base = path;
	} else {
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
		base = slash + 1;
	}
	if (dir == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (*base == '\0') {
		rc = -EISDIR;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = cs__write_file_new(dfd, base, text, (size_t)len, 0400);
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	if (text != NULL) {
		OPENSSL_cleanse(text, n);
		free(text);
	}
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

/* Formats "<name>+<8 hex>+<base64(0x01 || pub)>" into a malloc'd string. */
static int
vkey_format(const char *name, uint32_t id, const uint8_t pub[32], char **out)
{
	uint8_t raw[33];
	char b64[48], *buf;
	size_t n;
	int rc;

	raw[0] = ALG_ED25519;
	memcpy(raw + 1, pub, 32);
	rc = cs_base64_encode(raw, sizeof(raw), b64, sizeof(b64));
	if (rc < 0)
		return rc;
	n = strlen(name) + 1 + 8 + 1 + (size_t)rc + 1;
	buf = malloc(n);
	if (buf == NULL)
		return -ENOMEM;
	snprintf(buf, n, "%s+%08" PRIx32 "+%s", name, id, b64);
	*out = buf;
	return 0;
}

int
cs_signer_verifier_key(const struct cs_signer *s, char **out)
{
	return vkey_format(s->name, s->id, s->pub, out);
}

void
cs_verifier_free(struct cs_verifier *v)
{
	if (v == NULL)
		return;
	free(v->name);
	free(v);
}

const char *
cs_verifier_name(const struct cs_verifier *v)
{
	return v->name;
}

/* Accepts the key with or without one final newline, as read from a file. */
int
cs_verifier_parse(struct cs_verifier **out, const char *vkey, size_t len)
{
	struct cs_verifier *v = NULL;
	const char *name;
	size_t namelen;
	uint32_t id;
	int rc;

	if (len > 0 && vkey[len - 1] == '\n')
		len--;
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = split_key(vkey, len, &name, &namelen, &v->id, v->pub);
	if (rc < 0)
		goto out;
	rc = key_id(name, namelen, v->pub, &id);
	if (rc < 0)
		goto out;
	if (id != v->id) {
		rc = CS_EFORMAT;
		goto out;
	}
	v->name = strndup(name, namelen);
	if (v->name == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*out = v;
	v = NULL;
	rc = 0;
out:
	cs_verifier_free(v);
	return rc;
}
