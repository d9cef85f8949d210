/*
 * Receipts (lib/receipt.c): a signed note left in a recorder's folder that
 * names what the store secured from it.
 */
#ifndef CUSTOS_RECEIPT_H
#define CUSTOS_RECEIPT_H

#include <jansson.h>

struct cs_store;

/*
 * Writes a signed receipt as "CUSTOS-RECEIPT.json" into directory `dirfd`
 * (a recorder's folder, the caller's): signs a checkpoint covering every
 * event so far, adds it to `body` (borrowed; "checkpoint", "station" and
 * "origin" are set in it) and signs the canonical JSON of body as a C2SP
 * signed note with the store's key. The file is written durably (temp,
 * fsync, rename, directory fsync). Returns 0 or a negative code. Writer
 * handle only; any thread (the checkpoint is serialised with ingest).
 */
int cs_receipt_write(struct cs_store *st, int dirfd, json_t *body);

#endif
