/*
 * CSV as RFC 4180 defines it (lib/csv.c): a parser for the files archivists
 * hand in (the officer registry) and the writer of every CSV custos hands
 * out (listings, the register, a bag's catalog.csv). Fields are separated by commas, records by
 * CRLF or LF; a field in double quotes may hold commas, line breaks and
 * doubled quotes (""). A UTF-8 byte order mark at the start is skipped.
 * Pure computation: no I/O, thread-safe.
 */
#ifndef CUSTOS_CSV_H
#define CUSTOS_CSV_H

#include <stddef.h>

/* The most fields in one record, and the longest field (bytes). */
#define CS_CSV_MAX_FIELDS 64
#define CS_CSV_MAX_FIELD 4096

/* Where and why a text is not CSV: line (1-based, of the field's start) and field (1-based). */
struct cs_csv_error {
	size_t line;
	size_t field;
	const char *why; /* static text */
};

/*
 * Called once per record with its fields (NUL-terminated, valid during the
 * call only) and the line it starts on. A record that is one empty field
 * (a blank line) is skipped. Returning nonzero stops the parse with that
 * value.
 */
typedef int (*cs_csv_row_fn)(void *ctx, size_t line, char *const *fields, size_t n);

/*
 * Parses `len` bytes of `text`. Returns 0, CS_EFORMAT with *err saying where
 * and why (an unterminated quoted field, a quote inside an unquoted field,
 * text after a closing quote, a field or record too long, a NUL byte),
 * -ENOMEM, or the callback's nonzero value.
 */
int cs_csv_parse(const char *text, size_t len, cs_csv_row_fn cb, void *ctx,
    struct cs_csv_error *err);

/*
 * 1 if a spreadsheet would take cell `s` for a formula (CSV injection): it
 * starts with '=', '+', '-', '@', a TAB or a CR.
 */
int cs_csv_formula(const char *s);

/*
 * One CSV record of the n fields (a NULL field is empty), CRLF-ended: a
 * field is quoted when it holds a comma, a quote, CR or LF or starts or ends
 * with a space, a quote inside it doubled, and a formula cell
 * (cs_csv_formula) gets a leading apostrophe so that a spreadsheet shows it
 * as text. Returns the malloc'd record (the caller's), NULL without memory.
 */
char *cs_csv_record(const char *const *fields, size_t n);

#endif
