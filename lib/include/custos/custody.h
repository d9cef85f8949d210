/*
 * Reading for archivists and auditors (lib/custody.c): the chain of custody
 * of one item, and the yearly statistics. Any handle, any thread, beside
 * the writer. JSON handed out is the caller's (json_decref it).
 */
#ifndef CUSTOS_CUSTODY_H
#define CUSTOS_CUSTODY_H

#include <jansson.h>

#include "custos/store.h"

/*
 * The chain of custody of item `id`, from its docking to now: {"id",
 * "record" (with "flags" when it has any), "checkpoint": {"size", "note"}
 * (the latest signed one, absent when there is none), "events": [...]}.
 * Each event, in ledger order, is every event about the item whatever its
 * type (ingest, sighting, case-*, amend, fixity, and the kinds of later
 * versions: media, replicas, accesses): {"seq", "time", "type", "actor"?,
 * "event" (the whole event), "proof" (tlog-proof@v1 text, absent when not
 * yet covered), "proof_status": "verified" (checked with the verifier key
 * against the latest checkpoint), "not-covered" (newer than the latest
 * checkpoint) or "failed" (with "why")}. CS_ENOTFOUND for an unknown id.
 */
int cs_store_custody(struct cs_store *st, const char *id, json_t **out);

/*
 * The figures of year `year` (the items with a sighting recorded in it, by
 * recorded start, UTC): {"year", "items", "bytes", "flagged",
 * "by_category" / "by_stage" / "by_officer" / "by_device": {value:
 * {"items", "bytes"}} (an item counts under each value it has; "(none)"
 * when it has none), "flags": {flag: items}, "accesses_by_requester_kind":
 * {kind: {"accesses", "view", "copy", "export"}} (the register entries of
 * the year, by the requester kind they name)}. Reads the year's part of the
 * time index and those items only, and the register.
 */
int cs_store_stats(struct cs_store *st, int year, json_t **out);

#endif
