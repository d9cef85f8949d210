/*
 * Signed notes (C2SP signed-note v1.0.0): signing and verifying them with
 * Ed25519, and the strict text rules every part of a note obeys, shared with
 * keys.c (keys and their names) and tlog.c (the checkpoints and proofs that
 * notes carry): UTF-8 without control characters, lines, decimals, and the
 * strict base64 they are all written in. Every byte that reaches a parser
 * here is untrusted, so parsers accept exactly the canonical form and nothing
 * else: a lenient reader would let two different byte strings carry the same
 * signature. OpenSSL does SHA-256, Ed25519 and the base64 block work. Each
 * call makes its own OpenSSL objects and the key structures are never
 * written after they are built, so every function may run on several
 * threads at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "custos/error.h"
#include "custos/note.h"
#include "note_internal.h"

#define NOTE_SIGS_MAX 100 /* the spec asks for at least 16; Go's reader stops at 100 */
#define SIG_PREFIX "\xe2\x80\x94 " /* U+2014 em dash, then a space */

/*
 * Maps a failed OpenSSL call to CS_ECRYPTO. The thread's error queue is
 * emptied so that a stale entry cannot be blamed on a later, unrelated call.
 */
int
cs__note_ssl_error(void)
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
int
cs__note_text_check(const char *s, size_t len)
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
int
cs__note_name_check(const char *s, size_t len)
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
int
cs__note_next_line(const char *s, size_t len, size_t *pos, const char **line, size_t *linelen)
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
int
cs__note_parse_u64(const char *s, size_t len, uint64_t *out)
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
int
cs__note_parse_hex8(const char *s, size_t len, uint32_t *out)
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
int
cs__note_b64_check(const char *in, size_t len, size_t *n)
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
	rc = cs__note_b64_check(in, len, &n);
	if (rc < 0)
		return rc;
	if (outcap < n)
		return -ENOBUFS;
	if (len == 0)
		return 0;

	/* Full groups go straight to out; the last one, maybe padded, through last[]. */
	head = len - 4;
	if (head > 0 && EVP_DecodeBlock(out, s, (int)head) != (int)(head / 4 * 3)) {
		rc = cs__note_ssl_error();
		goto out;
	}
	if (EVP_DecodeBlock(last, s + head, 4) != 3) {
		rc = cs__note_ssl_error();
		goto out;
	}
	memcpy(out + head / 4 * 3, last, n - head / 4 * 3);
	rc = (int)n;
out:
	OPENSSL_cleanse(last, sizeof(last)); /* it may hold key bytes */
	return rc;
}

/* Decodes base64 that must hold exactly n bytes; 0 or CS_EFORMAT. */
int
cs__note_b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t n)
{
	size_t m;
	int rc;

	rc = cs__note_b64_check(in, len, &m);
	if (rc < 0)
		return rc;
	if (m != n)
		return CS_EFORMAT;
	rc = cs_base64_decode(in, len, out, n);
	return rc < 0 ? rc : 0;
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
		rc = cs__note_ssl_error();
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
		rc = cs__note_ssl_error();
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
		rc = cs__note_ssl_error();
	}
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
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
	rc = cs__note_name_check(*name, *namelen);
	if (rc < 0)
		return rc;
	*b64 = sp + 1;
	*b64len = len - *namelen - 1;
	rc = cs__note_b64_check(*b64, *b64len, &n);
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
int
cs__note_split(const char *note, size_t len, size_t *text_len, size_t *sigs_at)
{
	const char *line, *name, *b64;
	size_t i, pos, ll, namelen, b64len;
	uint32_t id;
	int rc, count = 0;

	rc = cs__note_text_check(note, len);
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
		rc = cs__note_next_line(note, len, &pos, &line, &ll);
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
	rc = cs__note_text_check(text, len);
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

	rc = cs__note_split(note, len, &tlen, &pos);
	if (rc < 0)
		return rc;
	while (pos < len && !bad) {
		rc = cs__note_next_line(note, len, &pos, &line, &ll);
		if (rc < 0)
			return rc;
		rc = sig_line(line, ll, &name, &namelen, &b64, &b64len, &id);
		if (rc < 0)
			return rc;
		if (namelen != vnamelen || memcmp(name, v->name, namelen) != 0 || id != v->id)
			continue;
		if (cs__note_b64_decode_exact(b64, b64len, raw, sizeof(raw)) < 0) {
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
