/*
 * Names from outside in records (see custos/name.h): a clean name as it
 * is, any other as a readable form beside its exact bytes in hex. The
 * clean-text rule is cs__utf8_clean(), the same as for metadata text.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/name.h"
#include "util.h"

#define FIELD_MAX 56

/* Length of the clean character at p (1 to 4 bytes), 0 if p does not start one. */
static size_t
clean_char(const char *p, const char *end)
{
	unsigned char c = (unsigned char)*p;
	size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
	    c >= 0xf0 && c <= 0xf4 ? 4 : 0;

	return n != 0 && (size_t)(end - p) >= n && cs__utf8_clean(p, n) ? n : 0;
}

int
cs_name_is_text(const char *s, size_t len)
{
	/* cs__utf8_clean refuses every control character, NUL included. */
	return cs__utf8_clean(s, len);
}

size_t
cs_name_readable(const char *s, size_t len, char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const char *p = s, *end = s + len;
	size_t o = 0, total = 0;
	int cut = 0;

	while (p < end) {
		size_t c = clean_char(p, end), ul = c;
		const char *u = p;
		char esc[4];

		if (c == 0) {
			unsigned char b = (unsigned char)*p;
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = digits[b >> 4];
			esc[3] = digits[b & 15];
			u = esc;
			ul = 4;
			c = 1;
		}
		if (!cut && o + ul < n) {
			memcpy(out + o, u, ul);
			o += ul;
		} else {
			cut = 1;
		}
		total += ul;
		p += c;
	}
	if (n > 0)
		out[o] = '\0';
	return total;
}

static int
hex_key(char *buf, size_t n, const char *field)
{
	if (strlen(field) > FIELD_MAX || snprintf(buf, n, "%s_hex", field) >= (int)n)
		return -EINVAL;
	return 0;
}

int
cs_name_json_set(json_t *obj, const char *field, const char *s, size_t len)
{
	char key[FIELD_MAX + 8], *text = NULL, *hex = NULL;
	size_t need;
	int rc;

	if ((rc = hex_key(key, sizeof(key), field)) < 0)
		return rc;
	if (cs_name_is_text(s, len)) {
		/* The value is valid UTF-8: NULL here is a lack of memory, nothing else. */
		if (json_object_set_new(obj, field, json_stringn(s, len)) < 0)
			return -ENOMEM;
		(void)json_object_del(obj, key);
		return 0;
	}
	need = cs_name_readable(s, len, NULL, 0);
	text = malloc(need + 1);
	hex = malloc(2 * len + 1);
	rc = -ENOMEM;
	if (text == NULL || hex == NULL)
		goto out;
	cs_name_readable(s, len, text, need + 1);
	cs__hex((const uint8_t *)s, len, hex);
	if (json_object_set_new(obj, field, json_stringn(text, need)) < 0 ||
	    json_object_set_new(obj, key, json_stringn(hex, 2 * len)) < 0)
		goto out;
	rc = 0;
out:
	free(text);
	free(hex);
	return rc;
}

int
cs_name_json_get(const json_t *obj, const char *field, char **out, size_t *len)
{
	char key[FIELD_MAX + 8], *buf;
	const json_t *h, *v;
	size_t n;
	int rc;

	if ((rc = hex_key(key, sizeof(key), field)) < 0)
		return rc;
	h = json_object_get(obj, key);
	v = json_object_get(obj, field);
	if (h != NULL) {
		if (!json_is_string(h) || json_string_length(h) % 2 != 0)
			return CS_EFORMAT;
		n = json_string_length(h) / 2;
	} else if (json_is_string(v)) {
		n = json_string_length(v);
	} else {
		return CS_ENOTFOUND;
	}
	buf = malloc(n + 1);
	if (buf == NULL)
		return -ENOMEM;
	if (h != NULL)
		rc = cs__unhex(json_string_value(h), 2 * n, (uint8_t *)buf);
	else
		memcpy(buf, json_string_value(v), n);
	buf[n] = '\0';
	if (rc == 0 && memchr(buf, '\0', n) != NULL)
		rc = CS_EFORMAT;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}
