/*
 * The officer registry (lib/officer.c): who may enforce, with what
 * certificate, valid when (the rules' 执法人员 list: name, post, certificate
 * number and validity). Imported from CSV as "officer" ledger events, one per
 * officer (a later one for the same certificate replaces the registry entry;
 * the ledger keeps both). A sighting names its officers by certificate
 * number; once the registry holds anyone, a recording whose officer is not in
 * it, or whose certificate was not valid at the recording time, is flagged.
 *
 * Writing calls need the writer handle; reading calls any handle and thread.
 * Every call returns 0 or a negative code (custos/error.h).
 */
#ifndef CUSTOS_OFFICER_H
#define CUSTOS_OFFICER_H

#include <jansson.h>
#include <stddef.h>

#include "custos/store.h"

/* Where an import was refused: the CSV line (1-based; 0: the whole file), the field, why. */
struct cs_officer_error {
	size_t line;
	const char *field; /* the column's name (static text), or NULL */
	const char *why;   /* static text */
};

/*
 * Imports the officers of a CSV text (RFC 4180, custos/csv.h). The first
 * record is the header naming the columns, in any order: name, post (or
 * unit), certificate, valid_from, valid_to (also 姓名, 岗位/单位, 执法证号,
 * 有效期起, 有效期止). Dates are YYYY-MM-DD (a whole day, UTC) or RFC 3339
 * times; valid_to may be empty (no end). Every record is checked before any
 * is written: CS_EFORMAT with *err naming the line, field and problem, and
 * nothing imported. On success *count officers were written.
 */
int cs_officers_import(struct cs_store *st, const char *text, size_t len, size_t *count,
    struct cs_officer_error *err);

/* The registry: an array of officer records in certificate order. */
int cs_store_officers(struct cs_store *st, json_t **out);

/*
 * The officer flags of an item record (as cs_store_get gives it): an array
 * of {"sighting", "officer"?, "flag", "why"} with flag "officer-unknown",
 * "no-officer" or "certificate-not-valid", empty when all is well or when
 * the registry is empty (not kept). cs_store_get and cs_store_find put a
 * non-empty one in the record as "flags".
 */
int cs_store_item_flags(struct cs_store *st, const json_t *rec, json_t **out);

#endif
