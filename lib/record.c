/*
 * Validation of evidence metadata. Every byte of metadata is untrusted: text
 * fields must be valid UTF-8 without control characters and within a length
 * limit, stages come from the fixed list of enforcement stages, times are
 * RFC 3339 and are stored normalised to UTC.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "custos/case.h"
#include "custos/error.h"
#include "record.h"
#include "util.h"

#define TEXT_MAX 256

static const struct {
	const char *name;  /* canonical, as the rules write it */
	const char *alias; /* English alias accepted on input */
} stages[] = {
	{"立案", "filing"},   {"调查", "investigation"}, {"取证", "collection"},
	{"审查", "review"},   {"决定", "decision"},      {"送达", "service"},
	{"执行", "enforcement"},
};

int
cs__station_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int
text_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= TEXT_MAX && cs__utf8_clean(s, n);
}

int
cs__text_ok(const char *s)
{
	return s != NULL && text_ok(s);
}

const char *
cs__stage_canon(const char *s)
{
	for (size_t i = 0; s != NULL && i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(s, stages[i].name) == 0 || strcasecmp(s, stages[i].alias) == 0)
			return stages[i].name;
	return NULL;
}

int
cs__stage_rank(const char *s)
{
	for (size_t i = 0; s != NULL && i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(s, stages[i].name) == 0)
			return (int)i;
	return (int)(sizeof(stages) / sizeof(stages[0]));
}

const char *
cs_stage_name(int rank)
{
	if (rank < 0 || rank >= (int)(sizeof(stages) / sizeof(stages[0])))
		return NULL;
	return stages[rank].name;
}

static int
add_text(json_t *o, const char *key, const char *val)
{
	if (val == NULL)
		return 0;
	if (!text_ok(val))
		return CS_EFORMAT;
	if (json_object_set_new(o, key, json_string(val)) < 0)
		return -ENOMEM;
	return 0;
}

static int
add_time(json_t *o, const char *key, const char *val)
{
	char buf[32];
	int64_t ms;

	if (val == NULL)
		return 0;
	if (cs__time_parse(val, &ms) < 0)
		return CS_EFORMAT;
	cs__time_format(ms, buf, sizeof(buf));
	if (json_object_set_new(o, key, json_string(buf)) < 0)
		return -ENOMEM;
	return 0;
}

int
cs__meta_json(const struct cs_meta *m, json_t **out, const char **field)
{
	json_t *o = json_object(), *officers = NULL;
	const char *bad = NULL;
	int rc = 0;

	if (o == NULL)
		return -ENOMEM;
	/* rc: -ENOMEM if a field could not be added (it is then not "bad") */
	if ((rc = add_text(o, "case", m->case_no)) < 0)
		bad = "case";
	else if ((rc = add_text(o, "category", m->category)) < 0)
		bad = "category";
	else if ((rc = add_text(o, "device", m->device)) < 0)
		bad = "device";
	else if ((rc = add_text(o, "source", m->source)) < 0)
		bad = "source";
	else if ((rc = add_time(o, "recorded_start", m->recorded_start)) < 0)
		bad = "recorded_start";
	else if ((rc = add_time(o, "recorded_end", m->recorded_end)) < 0)
		bad = "recorded_end";
	if (bad == NULL && m->stage != NULL) {
		const char *canon = cs__stage_canon(m->stage);
		if (canon == NULL)
			bad = "stage";
		else if (json_object_set_new(o, "stage", json_string(canon)) < 0)
			rc = -ENOMEM;
	}
	if (bad == NULL && rc == 0 && m->recorded_start != NULL && m->recorded_end != NULL &&
	    strcmp(json_string_value(json_object_get(o, "recorded_end")),
	        json_string_value(json_object_get(o, "recorded_start"))) < 0)
		bad = "recorded_end";
	if (bad == NULL && rc == 0 && m->n_officers > 0) {
		if (m->n_officers > 64) {
			bad = "officers";
		} else {
			officers = json_array();
			if (officers == NULL)
				rc = -ENOMEM;
			for (size_t i = 0; i < m->n_officers && bad == NULL && rc == 0; i++) {
				if (m->officers[i] == NULL || !text_ok(m->officers[i]))
					bad = "officers";
				else if (json_array_append_new(officers,
				             json_string(m->officers[i])) < 0)
					rc = -ENOMEM;
			}
			if (officers != NULL && json_object_set_new(o, "officers", officers) < 0)
				rc = -ENOMEM;
		}
	}
	if (bad == NULL && rc == 0 && m->extra != NULL) {
		if (!json_is_object(m->extra))
			bad = "extra";
		else if (json_object_set(o, "extra", m->extra) < 0)
			rc = -ENOMEM;
	}
	if (rc == -ENOMEM) {
		json_decref(o);
		return rc;
	}
	if (bad != NULL) {
		if (field != NULL)
			*field = bad;
		json_decref(o);
		return CS_EFORMAT;
	}
	*out = o;
	return rc;
}

int
cs_meta_check(const struct cs_meta *meta, const char **field)
{
	json_t *o = NULL;
	int rc = cs__meta_json(meta, &o, field);

	json_decref(o);
	return rc;
}

/* The sidecar's text fields, and where each goes in struct cs_meta. */
static const char *const side_text[] = {
	"case", "category", "stage", "device", "recorded_start", "recorded_end",
};

static const char **
side_field(struct cs_meta *m, const char *key)
{
	if (strcmp(key, "case") == 0)
		return &m->case_no;
	if (strcmp(key, "category") == 0)
		return &m->category;
	if (strcmp(key, "stage") == 0)
		return &m->stage;
	if (strcmp(key, "device") == 0)
		return &m->device;
	if (strcmp(key, "recorded_start") == 0)
		return &m->recorded_start;
	if (strcmp(key, "recorded_end") == 0)
		return &m->recorded_end;
	return NULL;
}

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "true or false";
	default:
		return "null";
	}
}

/* Appends one clause to `buf` (n bytes), whole, or else "..." once. */
static void problem(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
problem(char *buf, size_t n, const char *fmt, ...)
{
	size_t len = strnlen(buf, n);
	char clause[512];
	va_list ap;

	if (n == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(clause, sizeof(clause), fmt, ap);
	va_end(ap);
	if (len + 2 + strlen(clause) + 5 < n)
		snprintf(buf + len, n - len, "%s%s", len ? "; " : "", clause);
	else if (len + 5 < n && (len < 3 || strcmp(buf + len - 3, "...") != 0))
		snprintf(buf + len, n - len, "%s...", len ? "; " : "");
}

int
cs_meta_from_sidecar(const json_t *side, struct cs_meta *m, const char **officers,
    char *problems, size_t n)
{
	struct cs_meta t = {.officers = officers};
	const char *key, **dst;
	json_t *v, *e;
	size_t i;

	if (n > 0)
		problems[0] = '\0';
	json_object_foreach((json_t *)side, key, v)
	{
		if ((dst = side_field(&t, key)) != NULL) {
			if (json_is_string(v))
				*dst = json_string_value(v);
			else
				problem(problems, n,
				    "field '%s' is %s, not a string, and was left out", key,
				    type_name(v));
		} else if (strcmp(key, "officers") != 0) {
			problem(problems, n, "unknown field '%s' was ignored", key);
		} else if (!json_is_array(v)) {
			problem(problems, n,
			    "field 'officers' is %s, not an array of strings, and was left out",
			    type_name(v));
		} else if (json_array_size(v) > 64) {
			problem(problems, n,
			    "field 'officers' has %zu entries, more than 64, and was left out",
			    json_array_size(v));
		} else {
			json_array_foreach(v, i, e)
			{
				if (!json_is_string(e)) {
					problem(problems, n, "field 'officers' holds %s, "
					    "not only strings, and was left out", type_name(e));
					t.n_officers = 0;
					break;
				}
				officers[t.n_officers++] = json_string_value(e);
			}
		}
	}
	/* A field whose value breaks the metadata rules is left out; the others are kept. */
	for (size_t tries = 0; tries <= sizeof(side_text) / sizeof(side_text[0]); tries++) {
		const char *field = NULL;
		int rc = cs_meta_check(&t, &field);
		if (rc == 0 || rc == -ENOMEM) {
			if (rc < 0)
				return rc;
			break;
		}
		if (field == NULL || (dst = side_field(&t, field)) == NULL) {
			field = "officers";
			t.n_officers = 0;
		} else {
			*dst = NULL;
		}
		problem(problems, n, "field '%s' is invalid and was left out", field);
	}
	for (i = 0; i < sizeof(side_text) / sizeof(side_text[0]); i++)
		*side_field(m, side_text[i]) = *side_field(&t, side_text[i]);
	m->officers = officers;
	m->n_officers = t.n_officers;
	return 0;
}
