/*
 * Validation of evidence metadata. Every byte of metadata is untrusted: text
 * fields must be valid UTF-8 without control characters and within a length
 * limit, stages come from the fixed list of enforcement stages, times are
 * RFC 3339 and are stored normalised to UTC.
 */
#include <errno.h>
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
				else if (json_array_append_new(officers, json_string(m->officers[i])) < 0)
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

json_t *
cs__name_json(const char *name)
{
	const char *base = strrchr(name, '/');
	char buf[TEXT_MAX * 3 + 1];
	size_t n = 0;

	base = base != NULL ? base + 1 : name;
	/* Keep valid UTF-8 sequences; replace every other byte with '?'. */
	for (const char *p = base; *p != '\0' && n + 4 < sizeof(buf);) {
		size_t len = 1;
		unsigned char c = (unsigned char)*p;
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		if (strnlen(p, len) == len && cs__utf8_clean(p, len)) {
			memcpy(buf + n, p, len);
			n += len;
			p += len;
		} else {
			buf[n++] = '?';
			p++;
		}
	}
	buf[n] = '\0';
	return json_string(buf);
}
