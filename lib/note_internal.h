/*
 * What the note files share (lib/note.c, lib/keys.c, lib/tlog.c): the key
 * structures and the strict text rules of signed notes. lib-internal.
 */
#ifndef CS_NOTE_INTERNAL_H
#define CS_NOTE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define ALG_ED25519 0x01


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
int cs__note_ssl_error(void);
/*
 * Checks the rule every signed note obeys: valid UTF-8 and no ASCII control
 * character other than newline. Returns 0 or CS_EFORMAT.
 */
int cs__note_text_check(const char *s, size_t len);
/* Checks a key name: non-empty UTF-8 without spaces, '+' or control characters. */
int cs__note_name_check(const char *s, size_t len);
/* Finds the line at s[*pos]; fails unless a newline ends it. */
int cs__note_next_line(const char *s, size_t len, size_t *pos, const char **line,
    size_t *linelen);
/* Parses an ASCII decimal without sign or leading zeros ("0" alone is fine). */
int cs__note_parse_u64(const char *s, size_t len, uint64_t *out);
/* Parses exactly 8 hex digits (either case). */
int cs__note_parse_hex8(const char *s, size_t len, uint32_t *out);
/* Checks canonical padded base64; *n: the length it decodes to. 0 or CS_EFORMAT. */
int cs__note_b64_check(const char *in, size_t len, size_t *n);
/* Decodes base64 that must hold exactly n bytes; 0 or CS_EFORMAT. */
int cs__note_b64_decode_exact(const char *in, size_t len, uint8_t *out, size_t n);
/*
 * Splits a note into its text and its signature lines (checked for form);
 * *text_len: the signed text's length, *sigs_at: where the signatures start.
 */
int cs__note_split(const char *note, size_t len, size_t *text_len, size_t *sigs_at);

#endif
