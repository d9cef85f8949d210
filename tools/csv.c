/*
 * CSV output: one record on a stream, as lib/csv.c writes it (RFC 4180,
 * CRLF, quoted where needed, formula cells neutralised). Values come from
 * evidence metadata and may hold anything.
 */
#include <stdio.h>
#include <stdlib.h>

#include "custos/csv.h"
#include "cli.h"

void
csv_row(FILE *f, const char *const *fields, size_t n)
{
	char *rec = cs_csv_record(fields, n);

	if (rec == NULL) {
		output_failed = 1;
		return;
	}
	fputs(rec, f);
	free(rec);
}
