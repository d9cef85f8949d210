/*
 * An RFC 4180 CSV parser (custos/csv.h): one pass over the text, each field
 * unquoted into a buffer of its own with a ceiling, every refusal naming the
 * line and field where it happened; and the writer of one record, which
 * neutralises formula cells.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "custos/csv.h"
#include "custos/error.h"

struct row {
	char *f[CS_CSV_MAX_FIELDS];
	size_t len[CS_CSV_MAX_FIELDS];
	size_t n;
};

static void
row_clear(struct row *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i]);
	r->n = 0;
}

static int
fail(struct cs_csv_error *err, size_t line, size_t field, const char *why)
{
	if (err != NULL) {
		err->line = line;
		err->field = field;
		err->why = why;
	}
	return CS_EFORMAT;
}

/* Appends byte `c` to the current (last) field. */
static int
put(struct row *r, char c)
{
	size_t i = r->n - 1;

	if (r->len[i] >= CS_CSV_MAX_FIELD)
		return CS_EFORMAT;
	r->f[i][r->len[i]++] = c;
	r->f[i][r->len[i]] = '\0';
	return 0;
}

static int
new_field(struct row *r)
{
	if (r->n == CS_CSV_MAX_FIELDS)
		return CS_EFORMAT;
	r->f[r->n] = malloc(CS_CSV_MAX_FIELD + 1);
	if (r->f[r->n] == NULL)
		return -ENOMEM;
	r->f[r->n][0] = '\0';
	r->len[r->n++] = 0;
	return 0;
}

int
cs_csv_parse(const char *text, size_t len, cs_csv_row_fn cb, void *ctx, struct cs_csv_error *err)
{
	struct row r = {.n = 0};
	size_t i = 0, line = 1, start = 1;
	int rc = 0;

	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && rc == 0) {
		/* the start of a record */
		start = line;
		rc = new_field(&r);
		while (rc == 0) {
			int quoted = i < len && text[i] == '"';
			size_t fline = line;
			if (quoted) {
				i++;
				for (;;) {
					if (i >= len) {
						rc = fail(err, fline, r.n,
						    "a quoted field is never "
						    "closed (a \" is missing)");
						break;
					}
					if (text[i] == '"' &&
					    (i + 1 >= len || text[i + 1] != '"')) {
						i++;
						break;
					}
					if (text[i] == '\0') {
						rc = fail(err, line, r.n, "a NUL byte");
						break;
					}
					if (put(&r, text[i]) != 0) {
						rc = fail(err, fline, r.n,
						    "a field is longer than 4096 bytes");
						break;
					}
					if (text[i] == '\n')
						line++;
					i += text[i] == '"' ? 2 : 1;
				}
				if (rc == 0 && i < len && text[i] != ',' && text[i] != '\n' &&
				    !(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') &&
				    !(text[i] == '\r' && i + 1 == len))
					rc = fail(err, line, r.n,
					    "text after a closing quote (a "
					    "quote inside a field is written \"\")");
			} else {
				while (rc == 0 && i < len && text[i] != ',' && text[i] != '\n' &&
				    text[i] != '\r') {
					if (text[i] == '"')
						rc = fail(err, line, r.n,
						    "a quote inside an "
						    "unquoted field (quote the whole field and "
						    "write the quote \"\")");
					else if (text[i] == '\0')
						rc = fail(err, line, r.n, "a NUL byte");
					else if (put(&r, text[i]) != 0)
						rc = fail(err, line, r.n,
						    "a field is longer than 4096 bytes");
					i++;
				}
				if (rc == 0 && i < len && text[i] == '\r' &&
				    !(i + 1 < len && text[i + 1] == '\n') && i + 1 != len)
					rc = fail(err, line, r.n,
					    "a carriage return inside an unquoted field");
			}
			if (rc != 0)
				break;
			if (i < len && text[i] == ',') {
				i++;
				rc = new_field(&r);
				if (rc == CS_EFORMAT)
					rc = fail(err, line, r.n, "more than 64 fields");
				continue;
			}
			/* the end of the record: CRLF, LF, CR at the very end, or the text's end */
			if (i < len && text[i] == '\r')
				i++;
			if (i < len && text[i] == '\n')
				i++;
			line++;
			break;
		}
		if (rc == 0 && !(r.n == 1 && r.len[0] == 0))
			rc = cb(ctx, start, r.f, r.n);
		row_clear(&r);
	}
	row_clear(&r);
	return rc;
}

int
cs_csv_formula(const char *s)
{
	return s != NULL && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

char *
cs_csv_record(const char *const *fields, size_t n)
{
	size_t cap = 3, at = 0;
	char *out;

	for (size_t i = 0; i < n; i++)
		cap += 2 * (fields[i] != NULL ? strlen(fields[i]) : 0) + 4;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = fields[i] != NULL ? fields[i] : "";
		size_t len = strlen(s);
		int quote = strpbrk(s, ",\"\r\n") != NULL ||
		    (len > 0 && (s[0] == ' ' || s[len - 1] == ' '));

		if (i > 0)
			out[at++] = ',';
		if (quote)
			out[at++] = '"';
		if (cs_csv_formula(s))
			out[at++] = '\'';
		for (; *s != '\0'; s++) {
			if (*s == '"')
				out[at++] = '"';
			out[at++] = *s;
		}
		if (quote)
			out[at++] = '"';
	}
	memcpy(out + at, "\r\n", 3);
	return out;
}
