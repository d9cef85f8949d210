/*
 * Ed25519 keys for C2SP signed notes (lib/keys.c).
 *
 * - A key's name is a non-empty string without spaces, '+' or newlines.
 * - Key ID = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
 * - Verifier key text: "<name>+<8 hex keyID>+<base64(0x01 || public key)>".
 * - Private key file (Go x/mod/sumdb/note format):
 *   "PRIVATE+KEY+<name>+<8 hex keyID>+<base64(0x01 || 32-byte seed)>\n".
 *
 * Every function may run on any thread, several at once (a key is never
 * changed after it is made); secrets are wiped from memory before they are
 * freed. Returns are 0 or a negative code (custos/error.h) unless said.
 */
#ifndef CUSTOS_KEYS_H
#define CUSTOS_KEYS_H

#include <stddef.h>

struct cs_signer;   /* an Ed25519 private key with its name */
struct cs_verifier; /* an Ed25519 public key with its name and key ID */

/*
 * Generates a new key named `name` and writes it to `path` (which must not
 * exist) with mode 0400, through temp file, fsync, link, directory fsync.
 * Returns 0, CS_EEXIST, CS_EFORMAT for a bad name, or a negative errno.
 */
int cs_signer_generate(const char *path, const char *name);
/*
 * Loads a private key file. *out is set only on success; the caller owns it
 * (cs_signer_free). CS_EFORMAT if the file is not a key.
 */
int cs_signer_load(struct cs_signer **out, const char *path);
/* Parses private key text (the file's content), as cs_signer_load. */
int cs_signer_parse(struct cs_signer **out, const char *text, size_t len);
void cs_signer_free(struct cs_signer *s); /* NULL is a no-op; wipes the key */
/* The key's name, owned by `s`. */
const char *cs_signer_name(const struct cs_signer *s);
/* The verifier key text in *out, malloc'd, NUL-terminated; the caller frees it. */
int cs_signer_verifier_key(const struct cs_signer *s, char **out);

/*
 * Parses verifier key text (with or without one final newline). *out is set
 * only on success; the caller owns it (cs_verifier_free). CS_EFORMAT if it
 * is not a verifier key.
 */
int cs_verifier_parse(struct cs_verifier **out, const char *vkey, size_t len);
void cs_verifier_free(struct cs_verifier *v); /* NULL is a no-op */
/* The key's name, owned by `v`. */
const char *cs_verifier_name(const struct cs_verifier *v);

#endif
