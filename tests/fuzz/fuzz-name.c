/*
 * Fuzzes the form of names from outside in records (lib/name.c): any bytes
 * without NUL, put into a JSON object with cs_name_json_set, written out as
 * JSON text and read back, give the same bytes through cs_name_json_get;
 * the readable form is clean text of at most 4 bytes per byte, and the
 * "_hex" member is there exactly when the name is not clean text.
 *
 * Input: the name (cut at the first NUL).
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "custos/name.h"
#include "fuzz.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t len = nul != NULL ? (size_t)(nul - data) : size, n, got_len = 0;
	const char *s = (const char *)data;
	json_t *o = json_object(), *back;
	char *text, *dump, *got = NULL;

	CHECK(o != NULL);
	n = cs_name_readable(s, len, NULL, 0);
	CHECK(n <= 4 * len);
	text = malloc(n + 1);
	CHECK(text != NULL);
	CHECK(cs_name_readable(s, len, text, n + 1) == n && strlen(text) == n);
	CHECK(cs__utf8_clean(text, n));
	CHECK(cs_name_is_text(s, len) == (n == len && memcmp(text, s, len) == 0));
	CHECK(cs_name_json_set(o, "name", s, len) == 0);
	CHECK((json_object_get(o, "name_hex") == NULL) == cs_name_is_text(s, len));
	CHECK(strcmp(json_string_value(json_object_get(o, "name")), text) == 0);
	dump = json_dumps(o, JSON_COMPACT);
	CHECK(dump != NULL);
	back = json_loads(dump, 0, NULL);
	CHECK(back != NULL);
	CHECK(cs_name_json_get(back, "name", &got, &got_len) == 0);
	CHECK(got_len == len && memcmp(got, s, len) == 0);
	free(got);
	free(dump);
	free(text);
	json_decref(back);
	json_decref(o);
	return 0;
}
