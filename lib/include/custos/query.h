/*
 * The read side of the store (lib/query.c): finding items, an item's record
 * and events, the ledger's events, and proofs of inclusion. Every call
 * reads in its own LMDB read transaction: any handle (reader or writer),
 * any thread, concurrently with the writer. JSON handed out is a new
 * reference owned by the caller (json_decref it); text is malloc'd and the
 * caller's.
 */
#ifndef CUSTOS_QUERY_H
#define CUSTOS_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct cs_store;

struct cs_query {
	const char *case_no;     /* matched on its canonical key (cs_case_key) */
	const char *officer;
	const char *device;
	const char *sha256; /* hex */
	const char *from;   /* RFC 3339, recorded_start >= from */
	const char *to;     /* RFC 3339, recorded_start <= to */
	const char *case_prefix; /* case keys starting with this one's key */
	const char *category;    /* a sighting's enforcement category, exactly */
	const char *stage;       /* a sighting's or membership's stage (立案 … or an alias) */
	int case_exact;          /* with case_no: also the number exactly as first written */
	/*
	 * Order and page (cs_store_find_page): sort "id" (default), "time"
	 * (recorded start), "ingested", "case" (first case number), "size";
	 * a leading '-' reverses it. limit 0: all. after: the "next" cursor of
	 * the page before.
	 */
	const char *sort;
	uint64_t limit;
	const char *after;
};
/*
 * Matching records as a JSON array in *out, each with its officer "flags"
 * when it has any (custos/officer.h). Candidates come from one index (case
 * key or prefix, officer, device, category, digest, time, stage: the first
 * given), the other criteria filter them: the cost follows the matches, not
 * the catalog. Returns 0, CS_EFORMAT for a malformed criterion, -EINVAL for
 * none, or a negative code.
 */
int cs_store_find(struct cs_store *st, const struct cs_query *q, json_t **out);
/*
 * One page of the matches in q's order: {"items": [...], "total": N,
 * "next": cursor} ("next" only when more follow; pass it as q->after for
 * the next page). CS_EFORMAT for an unknown sort or a malformed cursor.
 */
int cs_store_find_page(struct cs_store *st, const struct cs_query *q, json_t **out);
/*
 * An item as `custos find` lists it, read from the compact listing the
 * catalog keeps beside its record (no JSON parsed): the record's fields of
 * the same names (NULL when the record has none), its case files (key,
 * number as first written, stage) and its officer flags' names
 * ("officer-unknown", "no-officer", "certificate-not-valid": one per flag
 * that cs_store_item_flags gives, in its order).
 */
struct cs_listing_case {
	const char *key, *number, *stage;
};
struct cs_listing {
	const char *id, *sha256, *name, *recorded_start, *ingested_at, *device, *category;
	int64_t size;
	const char **officers;
	size_t n_officers;
	const struct cs_listing_case *cases;
	size_t n_cases;
	const char **flags;
	size_t n_flags;
	const char *purged; /* "TIME plan N" once purged (lib/purge.c), else NULL */
};
struct cs__arena;
/* Listings (each item once), and for a page its total and next cursor. */
struct cs_list {
	struct cs_listing *items;
	size_t n;
	uint64_t total; /* matches in every page */
	char *next;     /* the next page's cursor (q->after), NULL when none follow */
	size_t cap;               /* (private) */
	struct cs__arena *arena; /* (private) the memory the listings point into */
};
/*
 * The page of matches in q's order as listings (cs_store_find_page's items,
 * without their records): 0 with *out to free with cs_list_free, or the
 * codes of cs_store_find_page.
 */
int cs_store_list(struct cs_store *st, const struct cs_query *q, struct cs_list **out);
void cs_list_free(struct cs_list *l);

/* The item's record in *out: 0, CS_ENOTFOUND if no such id, or a negative code. */
int cs_store_get(struct cs_store *st, const char *id, json_t **out);
/* The item's ledger events: array of {"seq": n, "event": {...}}; CS_ENOTFOUND if no such id. */
int cs_store_item_events(struct cs_store *st, const char *id, json_t **out);
/*
 * Event `seq` as parsed JSON (if `event` is not NULL), and optionally its
 * exact bytes (malloc'd) and their length. CS_ENOTFOUND past the end.
 */
int cs_store_event(struct cs_store *st, uint64_t seq, json_t **event, char **raw, size_t *rawlen);

/*
 * Iterates events [from, from + count) in order; stops early if cb returns
 * nonzero. `event` is borrowed for the call only. cb runs on the calling
 * thread inside a read transaction: it must not call the store's writing
 * calls. Returns 0 or a negative code.
 */
typedef int (*cs_event_fn)(void *ctx, uint64_t seq, json_t *event);
int cs_store_log(struct cs_store *st, uint64_t from, uint64_t count, cs_event_fn cb, void *ctx);

#endif
