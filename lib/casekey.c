/*
 * The canonical key of a case number, so that the same case is found however
 * it was typed: 平司罚〔2020〕1号, 平司罚[2020]1号, 平司罚［２０２０］１号 and
 * 平司罚【2020】1号 all have the key 平司罚[2020]1号. Unicode NFKC (libutf8proc)
 * folds full-width forms; a fixed table then maps every bracket variant to
 * '[' or ']'; white space around the number is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "custos/case.h"
#include "custos/error.h"
#include "util.h"

/* Opening and closing brackets that mean the same in a case number (after NFKC). */
static const utf8proc_int32_t opening[] = {
	'(', '[', '{', 0x3008, 0x300A, 0x3010, 0x3014, 0x3016, 0x3018, 0x301A, 0x2985, 0x2997,
	0xFE59, 0xFE5B, 0xFE5D, 0x2045, 0x27E6, 0x27EE,
};
static const utf8proc_int32_t closing[] = {
	')', ']', '}', 0x3009, 0x300B, 0x3011, 0x3015, 0x3017, 0x3019, 0x301B, 0x2986, 0x2998,
	0xFE5A, 0xFE5C, 0xFE5E, 0x2046, 0x27E7, 0x27EF,
};

static int
in(const utf8proc_int32_t *set, size_t n, utf8proc_int32_t c)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == c)
			return 1;
	return 0;
}

static int
is_space(utf8proc_int32_t c)
{
	utf8proc_category_t cat = utf8proc_category(c);

	return c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
	    cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
	    cat == UTF8PROC_CATEGORY_ZP;
}

int
cs_case_key(const char *number, char **key)
{
	utf8proc_uint8_t *nfkc;
	size_t len = strlen(number), start, end, o = 0;
	char *out;

	if (len == 0 || len > 256 || !cs__utf8_clean(number, len))
		return CS_EFORMAT;
	nfkc = utf8proc_NFKC((const utf8proc_uint8_t *)number);
	if (nfkc == NULL)
		return -ENOMEM; /* the input was checked: only an allocation can fail */
	len = strlen((char *)nfkc);
	/* NFKC at most triples a character's bytes; '[' and ']' are shorter than any bracket. */
	out = malloc(len + 1);
	if (out == NULL) {
		free(nfkc);
		return -ENOMEM;
	}
	start = 0;
	end = len;
	for (size_t i = 0; i < len;) {
		utf8proc_int32_t c;
		utf8proc_ssize_t n = utf8proc_iterate(nfkc + i, (utf8proc_ssize_t)(len - i), &c);
		if (n <= 0)
			break;
		if (in(opening, sizeof(opening) / sizeof(opening[0]), c))
			out[o++] = '[';
		else if (in(closing, sizeof(closing) / sizeof(closing[0]), c))
			out[o++] = ']';
		else if (is_space(c))
			out[o++] = ' ';
		else {
			memcpy(out + o, nfkc + i, (size_t)n);
			o += (size_t)n;
		}
		i += (size_t)n;
	}
	free(nfkc);
	out[o] = '\0';
	/* drop white space around the number (now plain spaces) */
	end = o;
	while (end > 0 && out[end - 1] == ' ')
		end--;
	start = 0;
	while (start < end && out[start] == ' ')
		start++;
	memmove(out, out + start, end - start);
	out[end - start] = '\0';
	if (end == start || end - start > CS_CASE_KEY_MAX) {
		free(out);
		return CS_EFORMAT;
	}
	*key = out;
	return 0;
}
