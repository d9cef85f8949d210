/*
 * Items' listings: the fields `custos find` prints (id, digest, name, size,
 * recorded start, ingest time, device, category, officers, case files with
 * their stages, and each sighting's officers and time for the officer
 * flags, and for a purged item when and by which plan) encoded from the
 * item's record and decoded without JSON. Layout (docs/formats.md,
 * "listing"): a version byte, the size (8 bytes big-endian), then strings
 * and counted lists of strings; a string is a 4-byte big-endian length
 * (0xffffffff: absent) and its bytes and a NUL. The purge string comes last,
 * only for a purged item.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "listing.h"

#define LISTING_VERSION 1
#define ABSENT 0xffffffffu

/* ---- the arena ---- */

struct cs__arena {
	struct cs__arena *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

static void *
arena_alloc(struct cs__arena **a, size_t n)
{
	struct cs__arena *b = *a;
	size_t al = alignof(max_align_t);

	n = (n + al - 1) / al * al;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->next = *a;
		b->used = 0;
		b->cap = cap;
		*a = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

void
cs__arena_free(struct cs__arena *a)
{
	while (a != NULL) {
		struct cs__arena *n = a->next;
		free(a);
		a = n;
	}
}

/* ---- encoding ---- */

struct buf {
	unsigned char *p;
	size_t n, cap;
	int oom;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->n < n) {
		size_t cap = b->cap * 2 > b->n + n ? b->cap * 2 : b->n + n + 256;
		unsigned char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
		(unsigned char)(v >> 8), (unsigned char)v};

	put(b, x, 4);
}

static void
put_text(struct buf *b, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (s == NULL || n >= ABSENT) {
		put_u32(b, ABSENT);
		return;
	}
	put_u32(b, (uint32_t)n);
	put(b, s, n + 1);
}

/* A list of strings: an array's strings (`field` of its objects when not NULL). */
static void
put_list(struct buf *b, const json_t *arr, const char *field)
{
	size_t i;
	json_t *v;

	put_u32(b, (uint32_t)json_array_size(arr));
	json_array_foreach(arr, i, v)
		put_text(b, json_string_value(field != NULL ? json_object_get(v, field) : v));
}

static const char *
str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int
cs__listing_encode(const json_t *rec, unsigned char **out, size_t *len)
{
	static const char *const fields[] = {"id", "sha256", "name", "recorded_start",
		"ingested_at", "device", "category"};
	unsigned char v = LISTING_VERSION, sz[8];
	uint64_t size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
	const json_t *cases = json_object_get(rec, "cases"), *seen = json_object_get(rec, "seen");
	struct buf b = {NULL, 0, 0, 0};
	json_t *m;
	size_t i;

	for (int j = 0; j < 8; j++)
		sz[j] = (unsigned char)(size >> (56 - 8 * j));
	put(&b, &v, 1);
	put(&b, sz, 8);
	for (size_t j = 0; j < sizeof(fields) / sizeof(fields[0]); j++)
		put_text(&b, str(rec, fields[j]));
	put_list(&b, json_object_get(rec, "officers"), NULL);
	put_u32(&b, (uint32_t)json_array_size(cases));
	json_array_foreach(cases, i, m)
	{
		put_text(&b, str(m, "key"));
		put_text(&b, str(m, "case"));
		put_text(&b, str(m, "stage"));
	}
	put_u32(&b, (uint32_t)json_array_size(seen));
	json_array_foreach(seen, i, m)
	{
		put_text(&b, str(m, "recorded_start"));
		put_text(&b, str(m, "time"));
		put_list(&b, json_object_get(m, "officers"), NULL);
	}
	/* since schema 9: when and by which plan it was purged, if it was */
	m = json_object_get(rec, "purged");
	if (m != NULL) {
		char pg[64];
		snprintf(pg, sizeof(pg), "%s plan %lld",
		    str(m, "time") != NULL ? str(m, "time") : "?",
		    (long long)json_integer_value(json_object_get(m, "plan")));
		put_text(&b, pg);
	}
	if (b.oom) {
		free(b.p);
		return ENOMEM;
	}
	*out = b.p;
	*len = b.n;
	return 0;
}

/* ---- decoding ---- */

struct rd {
	const unsigned char *p, *end;
	int bad;
};

static uint32_t
get_u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->end - r->p < 4) {
		r->bad = 1;
		return 0;
	}
	v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return v;
}

/* A string in place (the listing's bytes are copied into the arena first). */
static const char *
get_text(struct rd *r)
{
	uint32_t n = get_u32(r);
	const char *s;

	if (r->bad || n == ABSENT)
		return NULL;
	if ((size_t)(r->end - r->p) < (size_t)n + 1 || r->p[n] != '\0') {
		r->bad = 1;
		return NULL;
	}
	s = (const char *)r->p;
	r->p += (size_t)n + 1;
	return s;
}

/* A count of entries of at least `min` bytes each that the rest can hold. */
static size_t
get_count(struct rd *r, size_t min)
{
	uint32_t n = get_u32(r);

	if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / min)
		r->bad = 1;
	return r->bad ? 0 : n;
}

static const char **
get_list(struct rd *r, struct cs__arena **a, size_t *n, int *oom)
{
	const char **v;

	*n = get_count(r, 4);
	v = arena_alloc(a, (*n + 1) * sizeof(*v));
	if (v == NULL) {
		*oom = 1;
		return NULL;
	}
	for (size_t i = 0; i < *n; i++)
		v[i] = get_text(r);
	return v;
}

int
cs__listing_decode(const void *buf, size_t len, struct cs__arena **a, struct cs_listing *l,
    struct cs__lseen **seen, size_t *nseen)
{
	unsigned char *copy = arena_alloc(a, len);
	struct rd r = {copy, copy + len, 0};
	struct cs_listing_case *cases;
	struct cs__lseen *s;
	size_t nflags = 0;
	uint64_t size = 0;
	int oom = 0;

	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, buf, len);
	if (len < 9 || copy[0] != LISTING_VERSION)
		return CS_ESTORE;
	for (int j = 0; j < 8; j++)
		size = size << 8 | copy[1 + j];
	r.p += 9;
	memset(l, 0, sizeof(*l));
	l->size = (int64_t)size;
	l->id = get_text(&r);
	l->sha256 = get_text(&r);
	l->name = get_text(&r);
	l->recorded_start = get_text(&r);
	l->ingested_at = get_text(&r);
	l->device = get_text(&r);
	l->category = get_text(&r);
	l->officers = get_list(&r, a, &l->n_officers, &oom);
	l->n_cases = get_count(&r, 12);
	cases = arena_alloc(a, (l->n_cases + 1) * sizeof(*cases));
	oom |= cases == NULL;
	for (size_t i = 0; !oom && i < l->n_cases; i++) {
		cases[i].key = get_text(&r);
		cases[i].number = get_text(&r);
		cases[i].stage = get_text(&r);
	}
	l->cases = cases;
	*nseen = get_count(&r, 12);
	s = oom ? NULL : arena_alloc(a, (*nseen + 1) * sizeof(*s));
	oom |= s == NULL;
	for (size_t i = 0; !oom && i < *nseen; i++) {
		s[i].start = get_text(&r);
		s[i].time = get_text(&r);
		s[i].officers = get_list(&r, a, &s[i].n_officers, &oom);
		nflags += s[i].n_officers > 0 ? s[i].n_officers : 1;
	}
	*seen = s;
	if (!oom && !r.bad && r.p != r.end)
		l->purged = get_text(&r);
	l->flags = oom ? NULL : arena_alloc(a, (nflags + 1) * sizeof(*l->flags));
	if (oom || l->flags == NULL)
		return -ENOMEM;
	if (r.bad || r.p != r.end || l->id == NULL)
		return CS_ESTORE;
	return 0;
}
