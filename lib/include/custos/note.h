/*
 * Signed notes and checkpoints, pinned to the C2SP specifications
 * signed-note v1.0.0, tlog-checkpoint v1.0.0 and tlog-proof v1 (Ed25519 only).
 *
 * - A key's name is a non-empty string without spaces, '+' or newlines.
 * - Key ID = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
 * - Verifier key text: "<name>+<8 hex keyID>+<base64(0x01 || public key)>".
 * - Private key file (Go x/mod/sumdb/note format):
 *   "PRIVATE+KEY+<name>+<8 hex keyID>+<base64(0x01 || 32-byte seed)>\n".
 * - A note is text ending in '\n', a blank line, and signature lines
 *   "— <name> <base64(keyID || signature)>\n" (U+2014 em dash).
 * - A checkpoint's text is "<origin>\n<decimal size>\n<base64 root>\n" and
 *   optional extension lines.
 * OpenSSL EVP does the Ed25519 work. Functions are thread-safe; secrets are
 * wiped from memory before they are freed.
 */
#ifndef CUSTOS_NOTE_H
#define CUSTOS_NOTE_H

#include <stddef.h>
#include <stdint.h>

struct cs_signer;   /* an Ed25519 private key with its name */
struct cs_verifier; /* an Ed25519 public key with its name and key ID */

/*
 * Generates a new key named `name` and writes it to `path` (which must not
 * exist) with mode 0400, through temp file, fsync, link, directory fsync.
 * Returns 0, CS_EEXIST, CS_EFORMAT for a bad name, or a negative errno.
 */
int cs_signer_generate(const char *path, const char *name);
/* Loads a private key file. *out is set only on success; free with cs_signer_free. */
int cs_signer_load(struct cs_signer **out, const char *path);
/* Parses private key text (the file's content). */
int cs_signer_parse(struct cs_signer **out, const char *text, size_t len);
void cs_signer_free(struct cs_signer *s); /* NULL is a no-op; wipes the key */
const char *cs_signer_name(const struct cs_signer *s);
/* The verifier key text, malloc'd, NUL-terminated; caller frees. */
int cs_signer_verifier_key(const struct cs_signer *s, char **out);

int cs_verifier_parse(struct cs_verifier **out, const char *vkey, size_t len);
void cs_verifier_free(struct cs_verifier *v);
const char *cs_verifier_name(const struct cs_verifier *v);

/*
 * Signs `text` (which must end in '\n' and be UTF-8 without control
 * characters other than '\n'; blank lines are allowed, since the spec ends
 * the text at the note's last blank line) and returns the whole note,
 * malloc'd and NUL-terminated, in *out (*outlen without the NUL).
 */
int cs_note_sign(const struct cs_signer *s, const char *text, size_t len, char **out,
    size_t *outlen);
/*
 * Checks `note` for a valid signature by `v`. Returns 0 and sets *text_len
 * to the length of the signed text (from the start of note) if one verifies;
 * CS_ESIG if the note is well formed but no signature by v verifies (a line
 * with v's name and key ID but a bad signature is CS_ESIG too); CS_EFORMAT
 * if the note is malformed.
 */
int cs_note_verify(const struct cs_verifier *v, const char *note, size_t len, size_t *text_len);

struct cs_checkpoint {
	char origin[256];
	uint64_t size;
	uint8_t root[32];
};
/* Writes the checkpoint text (with trailing '\n') into buf; returns its length or < 0. */
int cs_checkpoint_format(const struct cs_checkpoint *cp, char *buf, size_t n);
/* Parses checkpoint text (extension lines are allowed and ignored). */
int cs_checkpoint_parse(struct cs_checkpoint *cp, const char *text, size_t len);

/*
 * tlog-proof@v1 (C2SP): "c2sp.org/tlog-proof@v1\n", optional "extra <b64>\n",
 * "index <n>\n", one base64 hash per line, a blank line, then the signed
 * checkpoint note.
 */
struct cs_tlog_proof {
	uint64_t index;
	uint8_t *extra; /* malloc'd, may be NULL */
	size_t extra_len;
	uint8_t hashes[64][32];
	size_t count;
	char *checkpoint; /* malloc'd note text, NUL-terminated */
	size_t checkpoint_len;
};
int cs_tlog_proof_format(const struct cs_tlog_proof *p, char **out, size_t *outlen);
int cs_tlog_proof_parse(struct cs_tlog_proof *p, const char *text, size_t len);
void cs_tlog_proof_fini(struct cs_tlog_proof *p);

/*
 * Base64 (standard alphabet, padded, canonical). Return the output length or
 * < 0. Encoding NUL-terminates `out`; decoding rejects whitespace and
 * non-zero unused bits (CS_EFORMAT) and never writes past the decoded length.
 */
int cs_base64_encode(const uint8_t *in, size_t len, char *out, size_t outcap);
int cs_base64_decode(const char *in, size_t len, uint8_t *out, size_t outcap);

#endif
