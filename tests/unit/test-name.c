/*
 * Names from outside in records (custos/name.h): a table of byte strings
 * with their clean-text verdict, readable form and hex, each put into a
 * JSON object and taken out again byte for byte; the readable form cut to
 * small buffers; and the refusals of cs_name_json_get().
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/name.h"
#include "tap.h"

static const struct {
	const char *what;
	const char *bytes; /* no NUL: a name has none */
	int text;
	const char *readable;
	const char *hex; /* NULL: clean text, no "_hex" member */
} cases[] = {
	{"plain ASCII", "clip_0001.mp4", 1, "clip_0001.mp4", NULL},
	{"empty", "", 1, "", NULL},
	{"UTF-8 case number", "平司罚〔2020〕1号", 1, "平司罚〔2020〕1号", NULL},
	{"a backslash is text", "a\\xe9", 1, "a\\xe9", NULL},
	{"Latin-1 e-acute", "caf\xe9.mp4", 0, "caf\\xe9.mp4", "636166e92e6d7034"},
	{"newline and ESC", "a\nb\x1b[", 0, "a\\x0ab\\x1b[", "610a621b5b"},
	{"DEL", "x\x7f", 0, "x\\x7f", "787f"},
	{"C1 control U+0085", "\xc2\x85", 0, "\\xc2\\x85", "c285"},
	{"overlong slash", "\xc0\xaf", 0, "\\xc0\\xaf", "c0af"},
	{"surrogate U+D800", "\xed\xa0\x80", 0, "\\xed\\xa0\\x80", "eda080"},
	{"beyond U+10FFFF", "\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80", "f4908080"},
	{"truncated sequence at the end", "ab\xe8\xaf", 0, "ab\\xe8\\xaf", "6162e8af"},
	{"valid 4-byte then bad", "\xf0\x9f\x98\x80\xff", 0, "\xf0\x9f\x98\x80\\xff",
	    "f09f9880ff"},
	{"lone continuation bytes", "\x80\xbf", 0, "\\x80\\xbf", "80bf"},
	{"bad byte between Chinese", "证\xfe据", 0, "证\\xfe据", "e8af81fee68dae"},
};

int
main(void)
{
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *b = cases[i].bytes;
		size_t len = strlen(b), n, got_len = 0;
		json_t *o = json_object(), *h;
		char *got = NULL;

		is_int(cs_name_is_text(b, len), cases[i].text, "%s: clean text or not",
		    cases[i].what);
		n = cs_name_readable(b, len, buf, sizeof(buf));
		ok(n == strlen(cases[i].readable) && strcmp(buf, cases[i].readable) == 0,
		    "%s: readable form '%s'", cases[i].what, buf);
		ok(cs_name_json_set(o, "name", b, len) == 0, "%s: set", cases[i].what);
		ok(strcmp(json_string_value(json_object_get(o, "name")), cases[i].readable) == 0,
		    "%s: \"name\" holds the readable form", cases[i].what);
		h = json_object_get(o, "name_hex");
		ok(cases[i].hex == NULL ? h == NULL :
		                          strcmp(json_string_value(h), cases[i].hex) == 0,
		    "%s: \"name_hex\" %s", cases[i].what, cases[i].hex ? cases[i].hex : "absent");
		ok(cs_name_json_get(o, "name", &got, &got_len) == 0 && got_len == len &&
		        memcmp(got, b, len) == 0 && got[len] == '\0',
		    "%s: the exact bytes come back", cases[i].what);
		free(got);
		/* Through text: what a reader of the record gets is the same. */
		{
			char *dump = json_dumps(o, JSON_COMPACT);
			json_t *back = dump != NULL ? json_loads(dump, 0, NULL) : NULL;
			got = NULL;
			ok(back != NULL && cs_name_json_get(back, "name", &got, &got_len) == 0 &&
			        got_len == len && memcmp(got, b, len) == 0,
			    "%s: round trip through JSON text", cases[i].what);
			free(got);
			free(dump);
			json_decref(back);
		}
		json_decref(o);
	}

	/* A clean name set over a bad one leaves no stale "_hex". */
	{
		json_t *o = json_object();
		cs_name_json_set(o, "key", "\xff", 1);
		cs_name_json_set(o, "key", "ok", 2);
		ok(json_object_get(o, "key_hex") == NULL &&
		        strcmp(json_string_value(json_object_get(o, "key")), "ok") == 0,
		    "setting a clean name removes the old key_hex");
		json_decref(o);
	}

	/* The readable form cut to a small buffer: never inside a character or an escape. */
	{
		const char *b = "a\xe9证b";
		is_int(cs_name_readable(b, 6, buf, 1), 9, "the whole length is returned when cut");
		ok(strcmp(buf, "") == 0, "a 1-byte buffer holds the empty string");
		cs_name_readable(b, 6, buf, 4);
		ok(strcmp(buf, "a") == 0, "an escape that does not fit is left out whole ('%s')",
		    buf);
		cs_name_readable(b, 6, buf, 6);
		ok(strcmp(buf, "a\\xe9") == 0, "then the escape fits ('%s')", buf);
		cs_name_readable(b, 6, buf, 8);
		ok(strcmp(buf, "a\\xe9") == 0,
		    "a character that does not fit is left out whole");
		is_int(cs_name_readable(b, 6, NULL, 0), 9,
		    "NULL buffer of size 0: the length only");
	}

	/* cs_name_json_get refusals. */
	{
		static const struct {
			const char *json;
			int want;
		} bad[] = {
			{"{}", CS_ENOTFOUND},
			{"{\"name\": 5}", CS_ENOTFOUND},
			{"{\"name\": \"x\", \"name_hex\": \"abc\"}", CS_EFORMAT},
			{"{\"name\": \"x\", \"name_hex\": \"zz\"}", CS_EFORMAT},
			{"{\"name\": \"x\", \"name_hex\": 7}", CS_EFORMAT},
			{"{\"name\": \"x\", \"name_hex\": \"610062\"}", CS_EFORMAT},
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			json_t *o = json_loads(bad[i].json, 0, NULL);
			char *got = NULL;
			size_t len = 0;
			is_int(cs_name_json_get(o, "name", &got, &len), bad[i].want, "get from %s",
			    bad[i].json);
			free(got);
			json_decref(o);
		}
	}
	{
		json_t *o = json_object();
		char field[80];
		memset(field, 'f', sizeof(field) - 1);
		field[sizeof(field) - 1] = '\0';
		is_int(cs_name_json_set(o, field, "x", 1), -EINVAL, "a field name over 56 bytes");
		json_decref(o);
	}
	return tap_done();
}
