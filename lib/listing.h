/*
 * An item's listing (lib/listing.c): the fields `custos find` prints and
 * filters by, kept in the catalog's "listing" table beside the item's
 * record in a length-prefixed binary layout, so that a lookup reads them
 * without parsing JSON. Written from the record by cs__cat_put_item (the
 * one way a record is stored), so it is replayed and verified with the
 * catalog. lib-internal.
 */
#ifndef CS_LISTING_H
#define CS_LISTING_H

#include <lmdb.h>
#include <stddef.h>

#include <jansson.h>

#include "custos/query.h"

/* One sighting's recording start, time and officers (for --from/--to and the officer flags). */
struct cs__lseen {
	const char *start; /* recorded start as corrected; NULL: none */
	const char *time;  /* when the sighting was recorded in the ledger */
	const char **officers;
	size_t n_officers;
};

/* Memory that lives as long as the listings decoded into it. */
struct cs__arena;
void cs__arena_free(struct cs__arena *a);

/* The listing of record `rec` (malloc'd in *out): 0 or ENOMEM. */
int cs__listing_encode(const json_t *rec, unsigned char **out, size_t *len);

/*
 * Decodes listing bytes into *l (strings and arrays in *a; l->flags has
 * room for every flag its sightings can give, l->n_flags 0) and its
 * sightings into *seen, *nseen. 0, -ENOMEM, or CS_ESTORE when the bytes are
 * not a listing (a damaged catalog).
 */
int cs__listing_decode(const void *buf, size_t len, struct cs__arena **a, struct cs_listing *l,
    struct cs__lseen **seen, size_t *nseen);

#endif
