/*
 * Evidence metadata: validation and canonical JSON form of struct cs_meta,
 * shared by ingest and sighting events. lib-internal.
 */
#ifndef CS_RECORD_H
#define CS_RECORD_H

#include <jansson.h>

#include "custos/store.h"

/*
 * Validates `m` and returns its JSON object form (new reference) in *out:
 * keys "case", "category", "stage" (canonical Chinese name), "officers",
 * "device", "recorded_start", "recorded_end" (RFC 3339 UTC, ms), "source",
 * "extra"; absent fields are left out. On CS_EFORMAT, *field names the
 * offending field.
 */
int cs__meta_json(const struct cs_meta *m, json_t **out, const char **field);

/* 1 if `s` is metadata text: 1..256 bytes of UTF-8 without control characters. */
int cs__text_ok(const char *s);
/* The canonical name of stage `s` (立案 … 执行 or an English alias), or NULL. */
const char *cs__stage_canon(const char *s);
/* The place of canonical stage `s` in 立案 … 执行 (0..6); 7 for none or unknown. */
int cs__stage_rank(const char *s);

/* 1 if `s` is a valid station name: [A-Za-z0-9._-], 1..32 chars. */
int cs__station_valid(const char *s);

#endif
