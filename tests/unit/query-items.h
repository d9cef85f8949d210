/*
 * Synthetic evidence items for the query test (tests/unit/test-query.c) and
 * the query benchmark (tests/bench/query-bench.c): item i's facts are pure
 * functions of i, so a test can count what a query must find independently
 * of the catalog. The items are ingest events applied to the catalog (see
 * qi_make), without blobs (queries read the catalog only).
 */
#ifndef CS_TEST_QUERY_ITEMS_H
#define CS_TEST_QUERY_ITEMS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "custos/merkle.h"
#include "store_internal.h"

/* Case families: 平司罚〔Y〕N号 written with 〔〕, 宁司检[Y]N号 written with []. */
static void __attribute__((unused))
qi_case(unsigned long i, char *buf, size_t n)
{
	unsigned long num = (i / 3) % 1000;
	int year = 2020 + (int)(i % 2);

	if (i % 3 == 2)
		snprintf(buf, n, "宁司检[%d]%lu号", year, num);
	else
		snprintf(buf, n, "平司罚〔%d〕%lu号", year, num);
}

/* The case number's digits after the bracket, as written: the part a prefix query sees. */
static unsigned long __attribute__((unused))
qi_case_num(unsigned long i)
{
	return (i / 3) % 1000;
}

static void __attribute__((unused))
qi_officer(unsigned long i, char *buf, size_t n)
{
	snprintf(buf, n, "3301-%04lu", i % 500);
}

static void __attribute__((unused))
qi_device(unsigned long i, char *buf, size_t n)
{
	snprintf(buf, n, "BWC-%03lu", (i / 7) % 100);
}

static const char * __attribute__((unused))
qi_category(unsigned long i)
{
	return i % 5 == 0 ? "行政检查" : "行政处罚";
}

static const char *const qi_stages[] = {"立案", "调查", "取证", "审查", "决定", "送达", "执行"};

static const char * __attribute__((unused))
qi_stage(unsigned long i)
{
	return qi_stages[(i / 11) % 7];
}

/* Recorded in 2023 or 2024: day of year and time from i. */
static int __attribute__((unused))
qi_year(unsigned long i)
{
	return i % 4 == 3 ? 2023 : 2024;
}

static void __attribute__((unused))
qi_time(unsigned long i, char *buf, size_t n)
{
	snprintf(buf, n, "%d-%02lu-%02luT%02lu:%02lu:00.000Z", qi_year(i), 1 + i % 12,
	    1 + (i / 12) % 28, (i / 7) % 24, i % 60);
}

static long long __attribute__((unused))
qi_size(unsigned long i)
{
	return (long long)(1000 + i % 977);
}

static void __attribute__((unused))
qi_id(unsigned long i, char *buf, size_t n)
{
	snprintf(buf, n, "Q-%08lu", i);
}

static json_t * __attribute__((unused))
qi_event(unsigned long i)
{
	char id[32], sha[65], cs[64], off[32], dev[32], t[40], name[40];

	qi_id(i, id, sizeof(id));
	snprintf(sha, sizeof(sha), "%064lx", i + 1);
	qi_case(i, cs, sizeof(cs));
	qi_officer(i, off, sizeof(off));
	qi_device(i, dev, sizeof(dev));
	qi_time(i, t, sizeof(t));
	snprintf(name, sizeof(name), "REC_%08lu.mp4", i);
	return json_pack("{s:s, s:{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:s}}",
	    "event", "ingest", "item", "id", id, "sha256", sha, "size", (json_int_t)qi_size(i),
	    "name", name, "source", "test", "case", cs, "category", qi_category(i), "stage",
	    qi_stage(i), "officers", off, "device", dev, "recorded_start", t, "station", "Q");
}

/*
 * Applies items [from, to) to the store's catalog in transactions of 10,000
 * through cs__catalog_apply, the one function that writes the catalog (as a
 * commit does after its journal append): the catalog is what ingesting them
 * would make, without the journal, which the queries do not read. The
 * handle must write nothing afterwards (its ledger size is not advanced).
 */
static int __attribute__((unused))
qi_make(struct cs_store *st, unsigned long from, unsigned long to)
{
	enum { BATCH = 10000 };
	struct cs__applied *a = calloc(BATCH, sizeof(*a));
	char **bytes = calloc(BATCH, sizeof(*bytes));
	struct cs__catalog_state cs;
	MDB_txn *txn;
	int rc = a != NULL && bytes != NULL ? cs__catalog_rtxn(&st->cat, &txn) : -ENOMEM;

	if (rc == 0) {
		rc = cs__catalog_state(&st->cat, txn, &cs);
		mdb_txn_abort(txn);
	}
	for (unsigned long i = from; i < to && rc == 0;) {
		size_t k = 0;
		for (; k < BATCH && i < to && rc == 0; k++, i++) {
			json_t *ev = qi_event(i);
			size_t len = 0;
			json_object_set_new(ev, "seq", json_integer((json_int_t)(cs.size + k)));
			json_object_set_new(ev, "time", json_string("2025-01-01T00:00:00.000Z"));
			json_object_set_new(ev, "v", json_integer(1));
			json_object_set_new(json_object_get(ev, "item"), "ingested_at",
			    json_string("2025-01-01T00:00:00.000Z"));
			bytes[k] = cs__json_canonical(ev, &len);
			json_decref(ev);
			if (bytes[k] == NULL) {
				rc = -ENOMEM;
				break;
			}
			a[k].seq = cs.size + k;
			a[k].ev = bytes[k];
			a[k].len = (uint32_t)len;
			a[k].data_off = cs.journal_end;
			cs.journal_end += len + 8;
			a[k].next = cs.journal_end;
			rc = cs_merkle_leaf_hash(bytes[k], len, a[k].leaf);
		}
		if (rc == 0)
			rc = cs__catalog_apply(&st->cat, a, k);
		cs.size += k;
		for (size_t j = 0; j < k; j++)
			free(bytes[j]);
	}
	free(a);
	free(bytes);
	return rc;
}

#endif
