/*
 * Names from outside in records. A file name, a path, a folder name or a
 * job key made of them is bytes: any byte but NUL, in any encoding or none.
 * Records are JSON, whose strings are Unicode text, so a name that is not
 * clean text (valid UTF-8 without control characters) cannot go in as it
 * is. Such a name is kept as two members: "<field>", its readable form
 * (every clean character as it is, every other byte as the four characters
 * \xHH, lowercase hex), and "<field>_hex", its exact bytes in lowercase hex.
 * A clean name is kept as "<field>" alone. So the bytes are never lost, a
 * record always holds text, and bad bytes are never mistaken for a lack of
 * memory. docs/formats.md (section 5.6) describes the form.
 */
#ifndef CUSTOS_NAME_H
#define CUSTOS_NAME_H

#include <jansson.h>
#include <stddef.h>

/* 1 if the `len` bytes at `s` are clean text: valid UTF-8, no control characters, no NUL. */
int cs_name_is_text(const char *s, size_t len);

/*
 * Writes the readable form of the `len` bytes at `s` into `out` (`n` bytes,
 * always NUL-terminated when n > 0; a form that does not fit is cut before a
 * whole character or escape). Returns the length of the whole form, as
 * snprintf() does: at most 4 * len. `out` may be NULL when n is 0.
 */
size_t cs_name_readable(const char *s, size_t len, char *out, size_t n);

/*
 * Sets obj["<field>"] to the name (its readable form if it is not clean
 * text) and, only when it is not clean text, obj["<field>_hex"] to its
 * bytes in hex (a stale "<field>_hex" is removed otherwise). `field` is at
 * most 56 bytes. Returns 0, -EINVAL for a longer field name, or -ENOMEM:
 * whatever the bytes, failing for them is impossible.
 */
int cs_name_json_set(json_t *obj, const char *field, const char *s, size_t len);

/*
 * The exact bytes of the name kept in obj["<field>"] (and
 * obj["<field>_hex"]): a malloc'd, NUL-terminated copy in *out and its
 * length in *len, both set only on success. Returns 0, CS_ENOTFOUND when obj
 * has no such name, CS_EFORMAT when "<field>_hex" is not hex of a name
 * without NUL bytes, -EINVAL for a field name over 56 bytes, or -ENOMEM.
 */
int cs_name_json_get(const json_t *obj, const char *field, char **out, size_t *len);

#endif
