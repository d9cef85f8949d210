/*
 * Signed notes (C2SP signed-note v1.0.0) with Ed25519 keys, the checkpoints
 * they carry (C2SP tlog-checkpoint v1.0.0), offline inclusion proofs (C2SP
 * tlog-proof v1) and the strict base64 they are all written in. Every byte
 * that reaches a parser here is untrusted, so parsers accept exactly the
 * canonical form and nothing else: a lenient reader would let two different
 * byte strings carry the same signature. OpenSSL does SHA-256, Ed25519 and the
 * base64 block work. Each call makes its own OpenSSL objects and the key
 * structures are never written after they are built, so every function may
 * run on several threads at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "custos/error.h"
#include "custos/note.h"
#include "util.h"

#define ALG_ED25519 0x01
#define KEY_FILE_MAX 4096 /* a key file is one line of about 100 bytes */
#define NOTE_SIGS_MAX 100 /* the spec asks for at least 16; Go's reader stops at 100 */
#define PROOF_MAGIC "c2sp.org/tlog-proof@v1"
#define PRIVATE_PREFIX "PRIVATE+KEY+"
#define SIG_PREFIX "\xe2\x80\x94 " /* U+2014 em dash, then a space */

struct cs_signer {
	char *name;
	uint32_t id;
	uint8_t seed[32]; /* the secret: RFC 8032 private key */
	uint8_t pub[32];
};

struct cs_verifier {
	char *name;
	uint32_t id;
	uint8_t pub[32];
};

/*
 * Maps a failed OpenSSL call to CS_ECRYPTO. The thread's error queue is
 * emptied so that a stale entry cannot be blamed on a later, unrelated call.
 */
static int
ssl_error(void)
{
	ERR_clear_error();
	return CS_ECRYPTO;
}

/*
 * Decodes the UTF-8 sequence at s[*i] and advances *i past it. Returns the
 * code point, or -1 for anything that is not the shortest encoding of a
 * Unicode scalar value (overlong forms, surrogates, values past U+10FFFF and
 * truncated sequences), which is what Go's utf8.DecodeRune rejects too.
 */
static int32_t
utf8_next(const char *str, size_t len, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str + *i;
	size_t left = len - *i, n;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*i += 1;
		return (int32_t)c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (left <= n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*i += n + 1;
	return (int32_t)c;
}

/*
 * Checks the rule every signed note obeys: valid UTF-8 and no ASCII control
 * character other than newline. Checkpoints and proofs live inside notes, so
 * they obey it too. Returns 0 or CS_EFORMAT.
 */
static int
text_check(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		int32_t c = utf8_next(s, len, &i);
		if (c < 0 || (c < 0x20 && c != '\n'))
			return CS_EFORMAT;
	}
	return 0;
}

/* Unicode White_Space, the set Go's unicode.IsSpace tests. */
static int
is_space(int32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 ||
	    c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * Checks a key name: non-empty UTF-8 without Unicode spaces or '+', as the
 * spec says, and without control characters, which may not appear in a note.
 * Returns 0 or CS_EFORMAT.
 */
static int
name_check(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return CS_EFORMAT;
	while (i < len) {
		int32_t c = utf8_next(s, len, &i);
		if (c < 0x20 || c == '+' || is_space(c))
			return CS_EFORMAT;
	}
	return 0;
}

/* Finds the line at s[*pos]; fails unless a newline ends it. */
static int
next_line(const char *s, size_t len, size_t *pos, const char **line, size_t *linelen)
{
	const char *nl;

	if (*pos >= len)
		return CS_EFORMAT;
	nl = memchr(s + *pos, '\n', len - *pos);
	if (nl == NULL)
		return CS_EFORMAT;
	*line = s + *pos;
	*linelen = (size_t)(nl - *line);
	*pos += *linelen + 1;
	return 0;
}

/* Parses an ASCII decimal without sign or leading zeros ("0" alone is fine). */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || (s[0] == '0' && len > 1))
		return CS_EFORMAT;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return CS_EFORMAT;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Parses exactly 8 hex digits (either case, as Go's reader accepts). */
static int
parse_hex8(const char *s, size_t len, uint32_t *out)
{
	uint32_t v = 0;

	if (len != 8)
		return CS_EFORMAT;
	for (size_t i = 0; i < 8; i++) {
		unsigned char c = (unsigned char)s[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return CS_EFORMAT;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Checks that `in` is canonical padded base64 and sets *n to the length it
 * decodes to. EVP_DecodeBlock alone is not enough: it skips leading and
 * trailing whitespace, and it cannot tell "Zg==" from "Zh==", whose unused
 * bits differ, so a signature could be re-encoded without breaking it.
 */
static int
b64_check(const char *in, size_t len, size_t *n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pad = 0;
	int last;

	if (len % 4 != 0)
		return CS_EFORMAT;
	if (len == 0) {
		*n = 0;
		return 0;
	}
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++) {
		if (b64_value(s[i]) < 0)
			return CS_EFORMAT;
	}
	last = b64_value(s[len - pad - 1]);
	if ((pad == 1 && (last & 0x03) != 0) || (pad == 2 && (last & 0x0f) != 0))
		return CS_EFORMAT;
	*n = len / 4 * 3 - pad;
	return 0;
}

/*
 * Encodes into `out` and NUL-terminates it, so outcap must be at least
 * 4 * ceil(len / 3) + 1. Returns the length without the NUL, -ENOBUFS if out
 * is too small or -EOVERFLOW if the result would not fit an int.
 */
int
cs_base64_encode(const uint8_t *in, size_t len, char *out, size_t outcap)
{
	size_t need;

	if (len > (size_t)INT_MAX / 4 * 3)
		return -EOVERFLOW;
	need = (len + 2) / 3 * 4;
	if (outcap < need + 1)
		return -ENOBUFS;
	if (len == 0) {
		out[0] = '\0';
		return 0;
	}
	return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/*
 * Decodes canonical padded base64 (no whitespace, no line breaks, unused
 * bits zero). Returns the decoded length, CS_EFORMAT for anything else, or
 * -ENOBUFS if outcap is below the decoded length. Unlike EVP_DecodeBlock,
 * which writes the padding out as zero bytes, this never writes past the
 * decoded length, so a 32-byte buffer holds a 44-character hash.
 */
int
cs_base64_decode(const char *in, size_t len, uint8_t *out, size_t outcap)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned char last[3];
	size_t n, head;
	int rc;

	if (len > (size_t)INT_MAX)
		return -EOVERFLOW;
	rc = b64_check(in, len, &n);
	if (rc < 0)
		return rc;
	if (outcap < n)
		return -ENOBUFS;
	if (len == 0)
		return 0;

	/* Full groups go straight to out; the last one, maybe padded, through last[]. */
	head = len - 4;
	if (head > 0 && EVP_DecodeBlock(out, s, (int)head) != (int)(head / 4 * 3)) {
		rc = ssl_error();
		goto out;
	}
	if (EVP_DecodeBlock(last, s + head, 4) != 3) {
		rc = ssl_error();
		goto out;
	}
	memcpy(out + head / 4 * 3, last, n - head / 4 * 3);
	rc = (int)n;
out:
	OPENSSL_cleanse(last, sizeof(last)); /* it may hold key bytes */
	return rc;
}

/* Decodes base64 that must hold exactly n bytes; 0 or CS_EFORMAT. */
static int
b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t n)
{
	size_t m;
	int rc;

	rc = b64_check(in, len, &m);
	if (rc < 0)
		return rc;
	if (m != n)
		return CS_EFORMAT;
	rc = cs_base64_decode(in, len, out, n);
	return rc < 0 ? rc : 0;
}

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
		rc = ssl_error();
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
		rc = ssl_error();
	EVP_PKEY_free(pk); /* OpenSSL wipes the private key it copied */
	return rc;
}

static int
ed25519_sign(const uint8_t seed[32], const char *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *pk;
	size_t n = 64;
	int rc = 0;

	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (pk == NULL || (ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, len) != 1 || n != 64)
		rc = ssl_error();
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

static int ed25519_verify_once(const uint8_t pub[32], const char *msg, size_t len,
    const uint8_t sig[64]);

/*
 * Returns 0 if sig is valid, CS_ESIG if not, CS_ECRYPTO if OpenSSL failed.
 * OpenSSL 3.0 answers "does not verify" without queuing any error when an
 * allocation inside the Ed25519 verification fails, so a signature is called
 * bad only when a second, independent verification says so too.
 */
static int
ed25519_verify(const uint8_t pub[32], const char *msg, size_t len, const uint8_t sig[64])
{
	int rc = ed25519_verify_once(pub, msg, len, sig);

	return rc == CS_ESIG ? ed25519_verify_once(pub, msg, len, sig) : rc;
}

static int
ed25519_verify_once(const uint8_t pub[32], const char *msg, size_t len, const uint8_t sig[64])
{
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *pk;
	int rc, ok;

	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	if (pk == NULL || (ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1) {
		rc = ssl_error();
		goto out;
	}
	ERR_clear_error();
	ok = EVP_DigestVerify(ctx, sig, 64, (const unsigned char *)msg, len);
	if (ok == 1) {
		rc = 0;
	} else if (ok == 0 && ERR_peek_error() == 0) {
		rc = CS_ESIG;
	} else {
		/*
		 * OpenSSL 3.0 also answers 0 ("does not verify") when it could not
		 * check at all (out of memory fetching SHA-512), with an error
		 * queued: that is not a bad signature.
		 */
		rc = ssl_error();
	}
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
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
	rc = name_check(s, *namelen);
	if (rc < 0)
		goto out;
	s = plus + 1;
	if (end - s < 9 || s[8] != '+' || parse_hex8(s, 8, id) < 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	s += 9;
	rc = b64_decode_exact(s, (size_t)(end - s), raw, sizeof(raw));
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

	rc = name_check(name, namelen);
	if (rc < 0)
		goto out;
	if (RAND_bytes(seed, sizeof(seed)) != 1) {
		rc = ssl_error();
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

/*
 * Parses one signature line (without its newline): em dash, space, key
 * name, space, base64(key ID || signature). The key ID comes from the first
 * eight base64 characters only, so a long signature by an unknown key (a
 * post-quantum one, say) is checked but never decoded.
 */
static int
sig_line(const char *line, size_t len, const char **name, size_t *namelen, const char **b64,
    size_t *b64len, uint32_t *id)
{
	const size_t plen = sizeof(SIG_PREFIX) - 1;
	const char *sp;
	uint8_t head[6];
	size_t n;
	int rc;

	if (len < plen || memcmp(line, SIG_PREFIX, plen) != 0)
		return CS_EFORMAT;
	line += plen;
	len -= plen;
	sp = memchr(line, ' ', len);
	if (sp == NULL)
		return CS_EFORMAT;
	*name = line;
	*namelen = (size_t)(sp - line);
	rc = name_check(*name, *namelen);
	if (rc < 0)
		return rc;
	*b64 = sp + 1;
	*b64len = len - *namelen - 1;
	rc = b64_check(*b64, *b64len, &n);
	if (rc < 0)
		return rc;
	if (n < 5) /* a key ID and at least one byte of signature */
		return CS_EFORMAT;
	rc = cs_base64_decode(*b64, 8, head, sizeof(head));
	if (rc < 0)
		return rc;
	*id = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
	return 0;
}

/*
 * Checks a note's structure without verifying anything: UTF-8 without
 * control characters, a final newline, the text ending at the last blank
 * line, and one to NOTE_SIGS_MAX well-formed signature lines after it. Sets
 * *text_len and *sigs_at (where the signature lines begin).
 */
static int
note_split(const char *note, size_t len, size_t *text_len, size_t *sigs_at)
{
	const char *line, *name, *b64;
	size_t i, pos, ll, namelen, b64len;
	uint32_t id;
	int rc, count = 0;

	rc = text_check(note, len);
	if (rc < 0)
		return rc;
	if (len < 2 || note[len - 1] != '\n')
		return CS_EFORMAT;
	for (i = len - 1; i > 0; i--) {
		if (note[i - 1] == '\n' && note[i] == '\n')
			break;
	}
	if (i == 0)
		return CS_EFORMAT;
	pos = i + 1;
	if (pos == len) /* the blank line is the last line: no signatures */
		return CS_EFORMAT;
	while (pos < len) {
		if (++count > NOTE_SIGS_MAX)
			return CS_EFORMAT;
		rc = next_line(note, len, &pos, &line, &ll);
		if (rc < 0)
			return rc;
		rc = sig_line(line, ll, &name, &namelen, &b64, &b64len, &id);
		if (rc < 0)
			return rc;
	}
	*text_len = i;
	*sigs_at = i + 1;
	return 0;
}

/*
 * Blank lines inside the text are allowed: the spec puts the text's end at
 * the last blank line, and signature lines are never blank, so the note this
 * makes always splits back at the right place.
 */
int
cs_note_sign(const struct cs_signer *s, const char *text, size_t len, char **out,
    size_t *outlen)
{
	const size_t plen = sizeof(SIG_PREFIX) - 1;
	uint8_t raw[4 + 64];
	char b64[96];
	size_t namelen = strlen(s->name), total, off;
	char *buf;
	int rc;

	if (len == 0 || text[len - 1] != '\n')
		return CS_EFORMAT;
	rc = text_check(text, len);
	if (rc < 0)
		return rc;
	raw[0] = (uint8_t)(s->id >> 24);
	raw[1] = (uint8_t)(s->id >> 16);
	raw[2] = (uint8_t)(s->id >> 8);
	raw[3] = (uint8_t)s->id;
	rc = ed25519_sign(s->seed, text, len, raw + 4);
	if (rc < 0)
		return rc;
	rc = cs_base64_encode(raw, sizeof(raw), b64, sizeof(b64));
	if (rc < 0)
		return rc;
	if (len > SIZE_MAX / 2 - namelen - sizeof(b64))
		return -EOVERFLOW;
	total = len + 1 + plen + namelen + 1 + (size_t)rc + 1;
	buf = malloc(total + 1);
	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, text, len);
	off = len;
	buf[off++] = '\n';
	memcpy(buf + off, SIG_PREFIX, plen);
	off += plen;
	memcpy(buf + off, s->name, namelen);
	off += namelen;
	buf[off++] = ' ';
	memcpy(buf + off, b64, (size_t)rc);
	off += (size_t)rc;
	buf[off++] = '\n';
	buf[off] = '\0';
	*out = buf;
	*outlen = total;
	return 0;
}

/*
 * Every line with v's name and key ID is verified, not just the first: the
 * spec says a verifier MUST verify a known key's signature, and one bad
 * signature by v makes the whole note CS_ESIG. Lines by other keys are
 * checked for form and then ignored.
 */
int
cs_note_verify(const struct cs_verifier *v, const char *note, size_t len, size_t *text_len)
{
	const char *line, *name, *b64;
	size_t tlen, pos, ll, namelen, b64len, vnamelen = strlen(v->name);
	uint8_t raw[4 + 64];
	uint32_t id;
	int rc, good = 0, bad = 0;

	rc = note_split(note, len, &tlen, &pos);
	if (rc < 0)
		return rc;
	while (pos < len && !bad) {
		rc = next_line(note, len, &pos, &line, &ll);
		if (rc < 0)
			return rc;
		rc = sig_line(line, ll, &name, &namelen, &b64, &b64len, &id);
		if (rc < 0)
			return rc;
		if (namelen != vnamelen || memcmp(name, v->name, namelen) != 0 || id != v->id)
			continue;
		if (b64_decode_exact(b64, b64len, raw, sizeof(raw)) < 0) {
			bad = 1; /* v's key ID on something that is not an Ed25519 signature */
			continue;
		}
		rc = ed25519_verify(v->pub, note, tlen, raw + 4);
		if (rc == CS_ESIG)
			bad = 1;
		else if (rc < 0)
			return rc;
		else
			good = 1;
	}
	if (bad || !good)
		return CS_ESIG;
	*text_len = tlen;
	return 0;
}

/* Checks an origin line: non-empty, no newline, fits cs_checkpoint.origin. */
static int
origin_check(const char *s, size_t len)
{
	if (len == 0 || len >= sizeof(((struct cs_checkpoint *)NULL)->origin))
		return CS_EFORMAT;
	if (memchr(s, '\n', len) != NULL)
		return CS_EFORMAT;
	return text_check(s, len);
}

int
cs_checkpoint_format(const struct cs_checkpoint *cp, char *buf, size_t n)
{
	char root[48];
	size_t olen = strnlen(cp->origin, sizeof(cp->origin));
	int rc, m;

	rc = origin_check(cp->origin, olen);
	if (rc < 0)
		return rc;
	rc = cs_base64_encode(cp->root, sizeof(cp->root), root, sizeof(root));
	if (rc < 0)
		return rc;
	m = snprintf(NULL, 0, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, root);
	if (m < 0)
		return -EINVAL;
	if ((size_t)m >= n)
		return -ENOBUFS;
	return snprintf(buf, n, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, root);
}

/*
 * `text` is the note text only (cs_note_verify's *text_len bytes), not the
 * signed note: a blank line is an empty extension line and so malformed.
 */
int
cs_checkpoint_parse(struct cs_checkpoint *cp, const char *text, size_t len)
{
	struct cs_checkpoint c;
	const char *line;
	size_t pos = 0, ll;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = text_check(text, len);
	if (rc < 0)
		return rc;
	rc = next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = origin_check(line, ll);
	if (rc < 0)
		return rc;
	memcpy(c.origin, line, ll);
	rc = next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = parse_u64(line, ll, &c.size);
	if (rc < 0)
		return rc;
	rc = next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = b64_decode_exact(line, ll, c.root, sizeof(c.root));
	if (rc < 0)
		return rc;
	while (pos < len) {
		rc = next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			return rc;
		if (ll == 0)
			return CS_EFORMAT;
	}
	*cp = c;
	return 0;
}

/*
 * The embedded checkpoint must be a well-formed signed note with a
 * well-formed checkpoint text; its signatures are the caller's to verify.
 */
static int
proof_checkpoint_check(const char *note, size_t len)
{
	struct cs_checkpoint cp;
	size_t tlen, sigs_at;
	int rc;

	rc = note_split(note, len, &tlen, &sigs_at);
	if (rc < 0)
		return rc;
	return cs_checkpoint_parse(&cp, note, tlen);
}

int
cs_tlog_proof_format(const struct cs_tlog_proof *p, char **out, size_t *outlen)
{
	const size_t mlen = sizeof(PROOF_MAGIC) - 1;
	char *buf = NULL;
	size_t b64len = 0, total, off;
	int rc, m;

	if (p->count > 64 || p->checkpoint == NULL || (p->extra == NULL && p->extra_len > 0)) {
		rc = -EINVAL;
		goto out;
	}
	rc = proof_checkpoint_check(p->checkpoint, p->checkpoint_len);
	if (rc < 0)
		goto out;
	if (p->extra_len > (size_t)INT_MAX / 4 * 3) {
		rc = -EOVERFLOW;
		goto out;
	}
	if (p->extra_len > 0)
		b64len = (p->extra_len + 2) / 3 * 4;
	if (p->checkpoint_len > SIZE_MAX / 2 - b64len - 64 * 45 - 128) {
		rc = -EOVERFLOW;
		goto out;
	}
	/* Magic, extra, index (at most 20 digits), hashes, blank line, checkpoint. */
	total = mlen + 1 + (p->extra_len > 0 ? 6 + b64len + 1 : 0) + 6 + 20 + 1 + p->count * 45 +
	    1 + p->checkpoint_len + 1;
	buf = malloc(total);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(buf, PROOF_MAGIC "\n", mlen + 1);
	off = mlen + 1;
	if (p->extra_len > 0) {
		memcpy(buf + off, "extra ", 6);
		off += 6;
		rc = cs_base64_encode(p->extra, p->extra_len, buf + off, total - off);
		if (rc < 0)
			goto out;
		off += (size_t)rc;
		buf[off++] = '\n';
	}
	m = snprintf(buf + off, total - off, "index %" PRIu64 "\n", p->index);
	if (m < 0 || (size_t)m >= total - off) {
		rc = -EOVERFLOW;
		goto out;
	}
	off += (size_t)m;
	for (size_t i = 0; i < p->count; i++) {
		rc = cs_base64_encode(p->hashes[i], 32, buf + off, total - off);
		if (rc < 0)
			goto out;
		off += (size_t)rc;
		buf[off++] = '\n';
	}
	buf[off++] = '\n';
	memcpy(buf + off, p->checkpoint, p->checkpoint_len);
	off += p->checkpoint_len;
	buf[off] = '\0';
	*out = buf;
	*outlen = off;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

/*
 * On success *p is overwritten without freeing what it held, so pass a
 * zeroed or finished struct; on failure *p is untouched. An "extra" line
 * with nothing after the space is refused: the spec says to omit the line
 * when there is no extra data, so accepting it would give one proof two
 * encodings.
 */
int
cs_tlog_proof_parse(struct cs_tlog_proof *p, const char *text, size_t len)
{
	struct cs_tlog_proof q;
	const char *line;
	size_t pos = 0, ll, n;
	int rc;

	memset(&q, 0, sizeof(q));
	rc = text_check(text, len);
	if (rc < 0)
		goto out;
	rc = next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		goto out;
	if (ll != sizeof(PROOF_MAGIC) - 1 || memcmp(line, PROOF_MAGIC, ll) != 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	rc = next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		goto out;
	if (ll >= 6 && memcmp(line, "extra ", 6) == 0) {
		rc = b64_check(line + 6, ll - 6, &n);
		if (rc < 0)
			goto out;
		if (n == 0) {
			rc = CS_EFORMAT;
			goto out;
		}
		q.extra = malloc(n);
		if (q.extra == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = cs_base64_decode(line + 6, ll - 6, q.extra, n);
		if (rc < 0)
			goto out;
		q.extra_len = n;
		rc = next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			goto out;
	}
	if (ll < 6 || memcmp(line, "index ", 6) != 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	rc = parse_u64(line + 6, ll - 6, &q.index);
	if (rc < 0)
		goto out;
	for (;;) {
		rc = next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			goto out;
		if (ll == 0)
			break;
		if (q.count == 64) {
			rc = CS_EFORMAT;
			goto out;
		}
		rc = b64_decode_exact(line, ll, q.hashes[q.count], 32);
		if (rc < 0)
			goto out;
		q.count++;
	}
	rc = proof_checkpoint_check(text + pos, len - pos);
	if (rc < 0)
		goto out;
	q.checkpoint = malloc(len - pos + 1);
	if (q.checkpoint == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(q.checkpoint, text + pos, len - pos);
	q.checkpoint[len - pos] = '\0';
	q.checkpoint_len = len - pos;
	*p = q;
	memset(&q, 0, sizeof(q));
	rc = 0;
out:
	cs_tlog_proof_fini(&q);
	return rc;
}

void
cs_tlog_proof_fini(struct cs_tlog_proof *p)
{
	free(p->extra);
	free(p->checkpoint);
	memset(p, 0, sizeof(*p));
}
