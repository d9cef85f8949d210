/*
 * Remote purge (issue 13): an item's objects in the bucket removed version
 * by version when their Object Lock retention is over, and S3 legal hold
 * set or cleared on them. Never a governance bypass: a version still
 * retained, or on legal hold, is left and reported with its retain-until.
 * Records, checkpoints and the identity are never touched (a purge removes
 * bytes, never history). These calls block (they run their own requests
 * with cs_remote_poll): the CLI calls them in the foreground, custosd on
 * its thread pool. docs/formats.md 13.6 describes what is sent.
 */
#ifndef CUSTOS_REMOTE_PURGE_H
#define CUSTOS_REMOTE_PURGE_H

#include <jansson.h>
#include <stdint.h>

#include "custos/remote.h"
#include "custos/store.h"

/*
 * The keys of item record `rec`'s objects at `cfg` (its blob's, then each
 * made derivative's; the keys its replica events at this remote name too),
 * each once, into *keys (an array of strings). 0, -ENOMEM, -ENAMETOOLONG.
 * An object whose "sha256" the record lacks has no key: a caller whose
 * purge keeps a blob another item shares passes a copy of the record
 * without that "sha256" (or without that derivative entry).
 */
int cs_remote_purge_keys(const struct cs_remote_config *cfg, json_t *rec, json_t **keys);

/*
 * Purges item record `rec`'s objects: each key's versions (ListObjectVersions,
 * exactly that key, every page) are looked at (GetObjectRetention,
 * GetObjectLegalHold) and DELETEd by version id when neither a legal hold
 * nor a retain-until later than the server's clock (its Date) keeps them;
 * delete markers are deleted too. *outcome:
 *   {"objects": [{"key", "versions": [{"version", "marker"?: true,
 *     "outcome": "deleted"|"locked"|"held"|"failed", "mode"?, "retain_until"?,
 *     "error"?}], "state": "gone"|"left"}], "state": "gone"|"left"}
 * Returns 0 when every object was listed and every version answered
 * (locked ones included), CS_EREMOTE or CS_EREMOTEIO when something could
 * not be asked or was refused ("failed", or a listing: *outcome then names
 * it in the object's "error"), or -ENOMEM. *outcome is set in every case
 * but -ENOMEM.
 */
int cs_remote_purge_item(const struct cs_remote_config *cfg, json_t *rec, json_t **outcome);

/*
 * What a purge of `key` would find, asked on the caller's remote `r`
 * (driven here with cs_remote_poll; nothing else may be pending on it):
 * *out {"key", "versions": [{"version", "marker"?, "outcome":
 * "expired"|"locked"|"held"|"failed", "mode"?, "retain_until"?, "error"?}]}.
 * cs_remote_check uses it for purged items. 0, CS_EREMOTE(IO) or -ENOMEM.
 */
int cs_remote_purge_look(struct cs_remote *r, const char *key, json_t **out);

/*
 * Sets (on 1) or clears (on 0) S3 legal hold on every version of item
 * record `rec`'s objects (PutObjectLegalHold with Content-MD5). *outcome:
 *   {"status": "ON"|"OFF", "state": "done"|"partial"|"unsupported",
 *    "objects": [{"key", "versions": [{"version", "outcome": "set"|"failed",
 *    "error"?}]}], "why"?}
 * "unsupported" (the bucket has no Object Lock) is an answer, not an error.
 * 0, CS_EREMOTE(IO) (some version failed, or the bucket could not be asked:
 * "why"), or -ENOMEM.
 */
int cs_remote_legal_hold(const struct cs_remote_config *cfg, json_t *rec, int on,
    json_t **outcome);

/*
 * cs_remote_purge_item for the item of destruction register entry `entry`
 * (custos/retention.h): its record read from `st`, less the bytes the
 * entry says stayed because another item shares them ("local" other than
 * "removed", for the blob or a derivative). The purge's remote hook in
 * custosd and the CLI. Returns as cs_remote_purge_item; CS_ENOTFOUND.
 */
int cs_remote_purge_entry(const struct cs_remote_config *cfg, struct cs_store *st,
    const json_t *entry, json_t **outcome);

/*
 * cs_remote_legal_hold for item `id` of `st` (on 1: ON), recorded as its
 * "hold-remote" event naming hold `hold`. *state: "done", "unsupported"
 * (no Object Lock: not an error) or "failed". 0, CS_EREMOTE(IO), or the
 * store's error.
 */
int cs_remote_hold_item(const struct cs_remote_config *cfg, struct cs_store *st, uint64_t hold,
    const char *id, int on, const char **state);

#endif
