/*
 * Makes a store's catalog look like one custos 0.x wrote at schema 8: the
 * schema number set to 8 and, with `drop`, every table schema 9 added
 * dropped (without: schema 8 beside this version's tables, which is damage).
 * For the unit tests of the tables new in 9 (their upgrade path).
 */
#ifndef CUSTOS_TEST_SCHEMA8_H
#define CUSTOS_TEST_SCHEMA8_H

#include <lmdb.h>
#include <stdint.h>

#include "catalog.h"
#include "store_internal.h"

static inline int
make_schema8(struct cs_store *st, int drop)
{
	static const int since9[] = {CS_DBI_HOLDS, CS_DBI_DISCLOSURE, CS_DBI_PURGE_PLANS,
	    CS_DBI_DESTRUCTION};
	uint8_t b[8] = {0, 0, 0, 0, 0, 0, 0, 8};
	MDB_val k = {6, (void *)"schema"}, d = {8, b};
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(st->cat.env, NULL, 0, &txn);

	for (size_t i = 0; rc == 0 && drop && i < sizeof(since9) / sizeof(since9[0]); i++)
		rc = mdb_drop(txn, st->cat.dbi[since9[i]], 1);
	if (rc == 0)
		rc = mdb_put(txn, st->cat.dbi[CS_DBI_META], &k, &d, 0);
	if (txn != NULL)
		rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
	return rc;
}

#endif
