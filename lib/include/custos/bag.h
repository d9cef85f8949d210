/*
 * Offline carriers (lib/bag.c): a case file exported as a BagIt 1.0 bag
 * (RFC 8493) that proves itself, and the check of such a bag with nothing
 * but the bag (docs/formats.md, "Export bags").
 *
 * A bag holds data/ (the originals, named "<item id>[.<ext>]": never a path
 * made from metadata; if asked, data/access/<id>.mp4, the access copies),
 * manifest-sha256.txt, tagmanifest-sha256.txt,
 * bagit.txt, bag-info.txt (External-Identifier = the case number,
 * Bagging-Date, Payload-Oxum, Source-Organization = the station, the
 * purpose, the approval and the register entry that let it out),
 * catalog.json and catalog.csv (the machine-readable catalogue),
 * records/<id>.json (each item's record), proofs/<id>.proof (tlog-proof@v1
 * of each of the item's ledger events), export.proof (of the register
 * entry), checkpoint (the signed checkpoint they are proven against),
 * verifier-key.txt, README.txt (how to check it, in plain words) and
 * tagmanifest-sha256.sig (the tag manifest signed by the store's key).
 */
#ifndef CUSTOS_BAG_H
#define CUSTOS_BAG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custos/access.h"
#include "custos/store.h"

/* What an export asks: the case, why, and under which approved export request. */
struct cs_bag_export {
	const char *number;  /* the case number */
	const char *purpose; /* the export's purpose, for bag-info.txt */
	int64_t approval;    /* the approved "export" request (< 0: none: refused) */
	const struct cs_access_policy *pol;
	const struct cs_access_who *who;
	/* called as payload bytes are written (done of total); may be NULL */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
	/* also each item's access copy (the newest with status ok), as data/access/<id>.mp4 */
	int access_copies;
};

struct cs_bag_result {
	uint64_t entry;   /* the register entry (ledger index) that authorised the export */
	size_t items;     /* payload files */
	uint64_t bytes;   /* payload bytes */
	const char *rule; /* a refusal: the rule (CS_RULE_*) */
	char item[80];    /* ... and the item it concerns ("" if none) */
};

/*
 * Exports case `x->number` into the new directory `dir` (it may exist if it
 * is empty). The register entry (cs_access_grant, action "export", every
 * member) is written before the first byte of the bag; a checkpoint is then
 * signed so that the entry is proven too. The bag is made beside `dir`
 * under a temporary name (".<name>.partial-<pid>", files O_EXCL|O_NOFOLLOW,
 * each fsynced) and renamed to `dir` at the end; on failure it is removed.
 * Writer handle. Returns 0; CS_EDENIED (res->rule, res->item);
 * CS_ENOTFOUND (no such case); CS_EEXIST (`dir` is not an empty
 * directory); CS_EDIGEST (a stored original does not match its digest);
 * CS_EFORMAT (a purpose that is not UTF-8 text); or another negative code.
 */
int cs_bag_export(struct cs_store *st, const struct cs_bag_export *x, const char *dir,
    struct cs_bag_result *res);

/*
 * The two halves of cs_bag_export, for a writer that is not the store's
 * process (custosd's socket users): cs_bag_plan does the store's part (the
 * register entry, a checkpoint, every tag file and the signed tag manifest)
 * and gives the plan, {"case", "register_entry", "bytes", "payload": [{"id",
 * "file", "sha256", "size", "kind"?}], "files": [[path, text], ...]}, as JSON
 * ("kind": "access" for an access copy, file "access/<id>.mp4");
 * cs_bag_write writes a plan into `dir` (as cs_bag_export says), each
 * payload file's bytes made by `copy` (`kind` NULL: the original, or
 * "access": its access copy) and checked against the plan
 * (CS_EDIGEST, res->item the item). Writer handle for the plan; the
 * writing needs no store. cs_bag_target_free: 0 if `dir` is missing or an
 * empty directory, CS_EEXIST if not (ask before the plan).
 */
typedef int (*cs_bag_copy_fn)(void *ctx, const char *id, const char *kind, int out, char hex[65],
    uint64_t *size);
int cs_bag_plan(struct cs_store *st, const struct cs_bag_export *x, json_t **plan,
    struct cs_bag_result *res);
int cs_bag_write(const json_t *plan, const char *dir, cs_bag_copy_fn copy, void *ctx,
    struct cs_bag_result *res);
int cs_bag_target_free(const char *dir);

/* One problem a check found: the item it concerns (or NULL), the bag file, what is wrong. */
typedef void (*cs_bag_problem_fn)(void *ctx, const char *item, const char *file, const char *what);

/*
 * Checks the bag at `dir` with nothing else: bagit.txt, every payload file
 * against manifest-sha256.txt (and files it does not list), the tag files
 * against tagmanifest-sha256.txt, Payload-Oxum, each item's record against
 * its payload, its proofs (signatures by the bag's verifier key, inclusion
 * in the signed tree, the ingest event's digest) and the register entry's
 * proof, the checkpoint's signature and the tag manifest's. Calls `problem` for each problem.
 * Returns the number of problems (>= 0) with *info (if not NULL) a summary
 * (case, entry, items, bytes, key, tree size), or a negative code (-ENOMEM;
 * a `dir` that cannot be opened).
 */
int cs_bag_verify(const char *dir, cs_bag_problem_fn problem, void *ctx, json_t **info);

/*
 * The payload file name of an item: its id, and the extension of its
 * original name `name` (may be NULL) if that is 1..8 ASCII letters or
 * digits (lower-cased), else none. `out` holds at least 96 bytes. Pure.
 */
void cs_bag_file_name(const char *id, const char *name, char *out, size_t n);

/*
 * One line of a BagIt manifest: "<64 hex> <path>" (one or more spaces or a
 * tab between). Sets *hex (the digest's start) and *path (NUL-terminated in
 * place). 0, or CS_EFORMAT for a line that is not one or a path that leaves
 * the bag (absolute, "..", empty components, a backslash). Pure.
 */
int cs_bag_manifest_line(char *line, const char **hex, const char **path);

#endif
