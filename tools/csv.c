/*
 * CSV output as RFC 4180 writes it: fields separated by commas, records
 * ended by CRLF, a field quoted when it holds a comma, a quote, CR or LF or
 * starts or ends with a space, and a quote inside it doubled. Values come
 * from evidence metadata and may hold anything.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void
csv_field(FILE *f, const char *s)
{
	size_t n = strlen(s);

	if (strpbrk(s, ",\"\r\n") == NULL && (n == 0 || (s[0] != ' ' && s[n - 1] != ' '))) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void
csv_row(FILE *f, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', f);
		csv_field(f, fields[i] != NULL ? fields[i] : "");
	}
	fputs("\r\n", f);
}
