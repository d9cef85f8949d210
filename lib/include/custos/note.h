/*
 * Signed notes (lib/note.c), pinned to the C2SP specification signed-note
 * v1.0.0 (Ed25519 only), and the strict base64 they are written in.
 *
 * - A note is text ending in '\n', a blank line, and signature lines
 *   "— <name> <base64(keyID || signature)>\n" (U+2014 em dash).
 *
 * OpenSSL EVP does the Ed25519 work. Every function may run on any thread,
 * several at once. Keys are in custos/keys.h and the checkpoint and proof
 * texts in custos/tlog.h; for callers of the whole note API this header
 * includes both.
 */
#ifndef CUSTOS_NOTE_H
#define CUSTOS_NOTE_H

#include <stddef.h>
#include <stdint.h>

struct cs_signer;
struct cs_verifier;

/*
 * Signs `text` (which must end in '\n' and be UTF-8 without control
 * characters other than '\n'; blank lines are allowed, since the spec ends
 * the text at the note's last blank line) and returns the whole note,
 * malloc'd and NUL-terminated, in *out (*outlen without the NUL); the caller
 * frees it. Returns 0, CS_EFORMAT for text that breaks the rule, or another
 * negative code.
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

/*
 * Base64 (standard alphabet, padded, canonical). Return the output length or
 * < 0. Encoding NUL-terminates `out`; decoding rejects whitespace and
 * non-zero unused bits (CS_EFORMAT) and never writes past the decoded length.
 */
int cs_base64_encode(const uint8_t *in, size_t len, char *out, size_t outcap);
int cs_base64_decode(const char *in, size_t len, uint8_t *out, size_t outcap);

/* For callers of the whole note API: keys and the tlog texts. */
#include "custos/keys.h"
#include "custos/tlog.h"

#endif
