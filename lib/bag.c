/*
 * BagIt exports of a case file and their offline check (custos/bag.h):
 * the register entry first, then the bag under a temporary name beside its
 * destination, every file created O_EXCL|O_NOFOLLOW under the bag's dirfd
 * and fsynced, renamed into place at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "custos/bag.h"
#include "custos/case.h"
#include "custos/check.h"
#include "custos/csv.h"
#include "custos/error.h"
#include "custos/media.h"
#include "custos/note.h"
#include "custos/query.h"
#include "store_internal.h"
#include "util.h"

#define TEXT_MAX (64u << 20) /* the largest tag file read back (catalog.json, proofs) */
#define CHUNK (1u << 20)

static const char *text_of(const json_t *j);

/* ---- pure helpers ---- */

void
cs_bag_file_name(const char *id, const char *name, char *out, size_t n)
{
	const char *dot = name != NULL ? strrchr(name, '.') : NULL;
	size_t len = dot != NULL ? strlen(dot + 1) : 0;
	char ext[10] = "";

	for (size_t i = 0; i < len && len <= 8; i++) {
		char c = dot[1 + i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			ext[0] = '\0';
			break;
		}
		ext[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		ext[i + 1] = '\0';
	}
	snprintf(out, n, "%s%s%s", id, ext[0] != '\0' ? "." : "", ext);
}

int
cs_bag_manifest_line(char *line, const char **hex, const char **path)
{
	char *p = line + 64, *s;

	for (size_t i = 0; i < 64; i++)
		if (!((line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f') ||
		        (line[i] >= 'A' && line[i] <= 'F')))
			return CS_EFORMAT;
	if (*p != ' ' && *p != '\t')
		return CS_EFORMAT;
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	*hex = line;
	*path = p;
	if (*p == '\0' || *p == '/' || strchr(p, '\\') != NULL)
		return CS_EFORMAT;
	for (s = p;;) {
		char *slash = strchr(s, '/');
		size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
		if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && memcmp(s, "..", 2) == 0))
			return CS_EFORMAT;
		if (slash == NULL)
			break;
		s = slash + 1;
	}
	return 0;
}

/* ---- a growing text ---- */

struct buf {
	char *p;
	size_t len, cap;
	int err;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->err != 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[1024], *big = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		buf_add(b, small, (size_t)n);
		return;
	}
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->err = -ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

static int
sha256_hex(const void *data, size_t len, char hex[65])
{
	uint8_t md[32];

	if (EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1)
		return CS_ECRYPTO;
	cs__hex(md, 32, hex);
	return 0;
}

/* ---- the export ---- */

/* An export: its plan while it is made, then the writing of the bag. */
struct exp {
	int bfd;             /* the bag under its temporary name */
	json_t *files;       /* the plan's tag files: [[path, text], ...] in order */
	json_t *payload;     /* the plan's payload: [{"id", "file", "sha256", "size"}] */
	struct buf manifest; /* manifest-sha256.txt */
	struct buf tags;     /* tagmanifest-sha256.txt */
	uint64_t done, total;
	const struct cs_bag_export *x;
	struct cs_store *st;
};

/*
 * Reads fd `in` to its end: the SHA-256 (hex) and length of its bytes; each
 * chunk is also written to `out` if it is >= 0 and counted in the progress
 * of `e` if it is not NULL.
 */
static int
hash_copy(int in, int out, struct exp *e, char hex[65], uint64_t *size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t dg[32], *chunk = malloc(CHUNK);
	ssize_t r;
	int rc = 0;

	*size = 0;
	if (md == NULL || chunk == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = md == NULL || chunk == NULL ? -ENOMEM : CS_ECRYPTO;
		goto out;
	}
	while ((r = read(in, chunk, CHUNK)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (EVP_DigestUpdate(md, chunk, (size_t)r) != 1) {
			rc = CS_ECRYPTO;
			goto out;
		}
		if (out >= 0 && (rc = cs__write_all(out, chunk, (size_t)r)) < 0)
			goto out;
		*size += (uint64_t)r;
		if (e != NULL) {
			e->done += (uint64_t)r;
			if (e->x->progress != NULL)
				e->x->progress(e->x->ctx, e->done, e->total);
		}
	}
	if (EVP_DigestFinal_ex(md, dg, NULL) != 1)
		rc = CS_ECRYPTO;
	else
		cs__hex(dg, 32, hex);
out:
	EVP_MD_CTX_free(md);
	free(chunk);
	return rc;
}

/* Creates `path` under the bag (O_EXCL|O_NOFOLLOW), writes it whole and fsyncs it. */
static int
write_file(int bfd, const char *path, const void *data, size_t len)
{
	int fd, rc;

	fd = openat(bfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = cs__write_all(fd, data, len);
	if (rc == 0)
		rc = cs__fsync(fd, 0);
	close(fd);
	CS_FAILPOINT("bag-file");
	return rc;
}

/* Adds tag file `path` to the plan (and, with `tag`, to the tag manifest). */
static int
put_file(struct exp *e, const char *path, const void *data, size_t len, int tag)
{
	char hex[65];
	int rc = 0;

	if (json_array_append_new(e->files, json_pack("[s, s%]", path, (const char *)data, len)) <
	    0)
		return -ENOMEM;
	if (tag) {
		rc = sha256_hex(data, len, hex);
		buf_printf(&e->tags, "%s  %s\n", hex, path);
	}
	return rc < 0 ? rc : e->tags.err;
}

static int
put_json(struct exp *e, const char *path, const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (s == NULL)
		return -ENOMEM;
	rc = put_file(e, path, s, strlen(s), 1);
	free(s);
	return rc;
}

/* Adds the payload file of item `id` (its digest and size from its record) to the plan. */
static int
put_payload(struct exp *e, const json_t *rec, const char *id, const char *file, char sha[65],
    uint64_t *size)
{
	const char *hex = json_string_value(json_object_get(rec, "sha256"));

	if (hex == NULL || strlen(hex) != 64)
		return CS_ESTORE;
	memcpy(sha, hex, 65);
	*size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
	buf_printf(&e->manifest, "%s  data/%s\n", sha, file);
	if (json_array_append_new(e->payload,
	        json_pack("{s:s, s:s, s:s, s:I}", "id", id, "file", file, "sha256", sha, "size",
	            (json_int_t)*size)) < 0)
		return -ENOMEM;
	return e->manifest.err;
}

/* The record's newest access copy with status ok and a digest, or NULL. */
static json_t *
access_copy(const json_t *rec)
{
	json_t *d, *found = NULL;
	size_t i;

	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		const char *hex = json_string_value(json_object_get(d, "sha256"));
		if (strcmp(text_of(json_object_get(d, "kind")), "access") == 0 &&
		    strcmp(text_of(json_object_get(d, "status")), "ok") == 0 && hex != NULL &&
		    strlen(hex) == 64)
			found = d;
	}
	return found;
}

/* Adds item `id`'s access copy `d` (data/access/<id>.mp4) to the plan and catalogue item `it`. */
static int
put_copy(struct exp *e, const char *id, const json_t *d, json_t *it)
{
	const char *hex = json_string_value(json_object_get(d, "sha256"));
	json_int_t size = json_integer_value(json_object_get(d, "size"));
	char file[128];

	snprintf(file, sizeof(file), "access/%s.mp4", id);
	e->total += (uint64_t)size;
	buf_printf(&e->manifest, "%s  data/%s\n", hex, file);
	if (json_array_append_new(e->payload,
	        json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", id, "file", file, "sha256", hex,
	            "size", size, "kind", "access")) < 0 ||
	    json_object_set_new(it, "access",
	        json_pack("{s:s, s:s, s:I}", "file", file, "sha256", hex, "size", size)) < 0)
		return -ENOMEM;
	return e->manifest.err;
}

/* A bag-info.txt value on one line: control characters made spaces. */
static void
info_line(struct buf *b, const char *label, const char *value)
{
	buf_printf(b, "%s: ", label);
	for (const char *s = value != NULL ? value : ""; *s != '\0'; s++) {
		char c = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
		buf_add(b, &c, 1);
	}
	buf_add(b, "\n", 1);
}

static const char readme[] =
    "This directory is a BagIt bag (RFC 8493) made by custos: the evidence of one\n"
    "case file as it was kept, with everything needed to check it, offline.\n"
    "\n"
    "What is in it\n"
    "  data/                  the original files, named by their evidence id\n"
    "  data/access/ID.mp4     if asked for: each item's access copy (a derivative\n"
    "                         made by the archive for viewing; the original is the\n"
    "                         evidence), checked like any other file in data/\n"
    "  bag-info.txt           the case number, when and why it was exported, the\n"
    "                         approval, and the register entry that let it out\n"
    "  catalog.json, .csv     the catalogue: one line per item (id, file, digest, size,\n"
    "                         original name, stage, officers, time of intake)\n"
    "  records/ID.json        each item's full record as the archive holds it\n"
    "  proofs/ID.proof        proofs that each event of the item is in the archive's\n"
    "                         signed ledger (C2SP tlog-proof@v1)\n"
    "  export.proof           the same for the register entry of this export\n"
    "  checkpoint             the signed state of the ledger the proofs refer to\n"
    "  verifier-key.txt       the archive's public key that signed it\n"
    "  manifest-sha256.txt    the SHA-256 digest of every file in data/\n"
    "  tagmanifest-sha256.txt the SHA-256 digest of every other file\n"
    "  tagmanifest-sha256.sig the same, signed by the archive's key\n"
    "\n"
    "How to check it\n"
    "1. With standard tools, in this directory:\n"
    "     sha256sum -c manifest-sha256.txt\n"
    "     sha256sum -c tagmanifest-sha256.txt\n"
    "   Every line must say OK. The number of files in data/ and their total size\n"
    "   must match Payload-Oxum in bag-info.txt (bytes.files).\n"
    "2. With custos (no archive needed):\n"
    "     custos verify-bag THIS-DIRECTORY\n"
    "   It checks all of the above, each record against its file, every proof and\n"
    "   signature, and names every problem with the item and file it concerns.\n"
    "3. By hand: compare verifier-key.txt with the key the archive publishes\n"
    "   (`custos pubkey` at the archive); a bag signed by another key proves nothing.\n"
    "   Each proof holds the exact bytes of one ledger event (its 'extra' line,\n"
    "   base64) and the Merkle path to the signed checkpoint; `custos check-proof\n"
    "   proofs/ID.proof --key \"$(cat verifier-key.txt)\"` checks one.\n";

static const char *const csv_head[] = {"id", "file", "sha256", "size", "original_name", "stage",
    "officers", "ingested_at", "access_file", "access_sha256"};

/* The catalogue line of one item (catalog.csv). */
static int
csv_item(struct buf *csv, const json_t *it, const json_t *rec)
{
	struct buf off = {0};
	json_t *acc = json_object_get(it, "access");
	char size[24], afile[160] = "", *line;
	const char *f[10];
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(rec, "officers"), i, v)
	{
		buf_printf(&off, "%s%s", i > 0 ? ";" : "", json_string_value(v));
	}
	snprintf(size, sizeof(size), "%lld",
	    (long long)json_integer_value(json_object_get(it, "size")));
	f[0] = json_string_value(json_object_get(it, "id"));
	f[1] = json_string_value(json_object_get(it, "file"));
	f[2] = json_string_value(json_object_get(it, "sha256"));
	f[3] = size;
	f[4] = json_string_value(json_object_get(rec, "name"));
	f[5] = json_string_value(json_object_get(it, "stage"));
	f[6] = off.p;
	f[7] = json_string_value(json_object_get(rec, "ingested_at"));
	if (acc != NULL)
		snprintf(afile, sizeof(afile), "data/%s", text_of(json_object_get(acc, "file")));
	f[8] = afile;
	f[9] = json_string_value(json_object_get(acc, "sha256"));
	line = off.err == 0 ? cs_csv_record(f, 10) : NULL;
	free(off.p);
	if (line == NULL)
		return -ENOMEM;
	buf_add(csv, line, strlen(line));
	free(line);
	return csv->err;
}

/* Removes the half-made bag `name` under pfd (three levels at most). */
static void
remove_tree(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		(void)unlinkat(pfd, name, 0);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) < 0 && errno == EISDIR)
			remove_tree(fd, de->d_name);
	}
	closedir(d);
	(void)unlinkat(pfd, name, AT_REMOVEDIR);
}

/*
 * tagmanifest-sha256.sig: the tag manifest as a note signed by the store's
 * key, so that no tag file (records, catalogue, bag-info.txt, the payload
 * manifest) can be changed with its line rewritten unseen.
 */
static int
sign_tags(struct exp *e, struct cs_store *st)
{
	char *note = NULL;
	size_t len = 0;
	int rc;

	if (st->signer == NULL)
		return -EBADF;
	rc = cs_note_sign(st->signer, e->tags.p, e->tags.len, &note, &len);
	if (rc == 0)
		rc = put_file(e, "tagmanifest-sha256.sig", note, len, 0);
	free(note);
	return rc;
}

/* The bag's directory layout and everything after the payload: tag files, manifests. */
static int
put_tags(struct exp *e, struct cs_store *st, json_t *cat, const struct buf *csv, uint64_t seq,
    const char *note, const char *vkey)
{
	const struct cs_bag_export *x = e->x;
	struct buf info = {0};
	char date[40], num[48], *proof = NULL;
	int rc;

	rc = cs_store_prove_events(st, &seq, 1, &proof);
	if (rc == 0)
		rc = put_file(e, "export.proof", proof, strlen(proof), 1);
	free(proof);
	if (rc == 0)
		rc = put_file(e, "checkpoint", note, strlen(note), 1);
	if (rc == 0) {
		struct buf k = {0};
		buf_printf(&k, "%s\n", vkey);
		rc = k.err != 0 ? k.err : put_file(e, "verifier-key.txt", k.p, k.len, 1);
		free(k.p);
	}
	if (rc == 0)
		rc = put_json(e, "catalog.json", cat);
	if (rc == 0)
		rc = put_file(e, "catalog.csv", csv->p, csv->len, 1);
	if (rc == 0)
		rc = put_file(e, "README.txt", readme, strlen(readme), 1);
	if (rc == 0) {
		static const char bagit[] =
		    "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
		rc = put_file(e, "bagit.txt", bagit, strlen(bagit), 1);
	}
	if (rc < 0)
		return rc;
	cs__time_format(cs__now_ms(), date, sizeof(date));
	date[10] = '\0';
	info_line(&info, "Source-Organization", cs_store_station(st));
	info_line(&info, "External-Identifier", x->number);
	info_line(&info, "External-Description", "case file exported by custos");
	info_line(&info, "Bagging-Date", date);
	snprintf(num, sizeof(num), "%llu.%zu", (unsigned long long)e->total,
	    json_array_size(e->payload));
	info_line(&info, "Payload-Oxum", num);
	info_line(&info, "Export-Purpose", x->purpose);
	snprintf(num, sizeof(num), "%lld", (long long)x->approval);
	info_line(&info, "Export-Approval", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)seq);
	info_line(&info, "Export-Register-Entry", num);
	info_line(&info, "Exported-By", x->who->name);
	info_line(&info, "Ledger-Origin", cs_store_origin(st));
	info_line(&info, "Bag-Software-Agent", "custos");
	rc = info.err != 0 ? info.err : put_file(e, "bag-info.txt", info.p, info.len, 1);
	free(info.p);
	if (rc == 0)
		rc = e->manifest.err != 0
		    ? e->manifest.err
		    : put_file(e, "manifest-sha256.txt", e->manifest.p, e->manifest.len, 1);
	if (rc == 0)
		rc = e->tags.err != 0
		    ? e->tags.err
		    : put_file(e, "tagmanifest-sha256.txt", e->tags.p, e->tags.len, 0);
	if (rc == 0)
		rc = sign_tags(e, st);
	return rc;
}

/* The items: payload, record and proofs of each member, and its catalogue entry. */
static int
put_items(struct exp *e, struct cs_store *st, json_t *members, json_t *recs, json_t *items,
    struct buf *csv)
{
	size_t i;
	json_t *m;
	int rc = 0;

	json_array_foreach(members, i, m)
	{
		const char *id = json_string_value(json_object_get(m, "id"));
		json_t *rec = json_array_get(recs, i), *it;
		char file[128], path[160], sha[65], *proof = NULL;
		uint64_t size = 0;

		cs_bag_file_name(id, json_string_value(json_object_get(rec, "name")), file,
		    sizeof(file));
		rc = put_payload(e, rec, id, file, sha, &size);
		if (rc < 0)
			return rc;
		snprintf(path, sizeof(path), "records/%s.json", id);
		rc = put_json(e, path, rec);
		if (rc == 0)
			rc = cs_store_prove_item(st, id, &proof);
		snprintf(path, sizeof(path), "proofs/%s.proof", id);
		if (rc == 0)
			rc = put_file(e, path, proof, strlen(proof), 1);
		free(proof);
		if (rc < 0)
			return rc;
		it = json_pack("{s:s, s:s, s:s, s:I, s:O*, s:s++, s:s++}", "id", id, "file", file,
		    "sha256", sha, "size", (json_int_t)size, "stage", json_object_get(m, "stage"),
		    "record", "records/", id, ".json", "proof", "proofs/", id, ".proof");
		if (it == NULL || json_array_append_new(items, it) < 0)
			return -ENOMEM;
		if (e->x->access_copies && access_copy(rec) != NULL &&
		    (rc = put_copy(e, id, access_copy(rec), it)) < 0)
			return rc;
		rc = csv_item(csv, it, rec);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
cs_bag_plan(struct cs_store *st, const struct cs_bag_export *x, json_t **plan,
    struct cs_bag_result *res)
{
	struct exp e = {.bfd = -1, .x = x, .st = st};
	struct buf csv = {0};
	json_t *kase = NULL, *members = NULL, *recs = json_array(), *items = json_array(),
	       *cat = NULL;
	const char **ids = NULL, *item = NULL;
	char *note = NULL, *vkey = NULL, *head;
	size_t n, i;
	json_t *m;
	int rc;

	memset(res, 0, sizeof(*res));
	*plan = NULL;
	CS_FAILPARK("bag-plan");
	e.files = json_array();
	e.payload = json_array();
	if (recs == NULL || items == NULL || e.files == NULL || e.payload == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (x->purpose == NULL || cs__utf8_clean(x->purpose, strlen(x->purpose)) < 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	rc = cs_store_case_get(st, x->number, &kase);
	if (rc == 0)
		rc = cs_store_case_members(st, x->number, &members);
	if (rc < 0)
		goto out;
	n = json_array_size(members);
	ids = calloc(n + 1, sizeof(*ids));
	if (ids == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	json_array_foreach(members, i, m)
	{
		json_t *rec = NULL;
		ids[i] = json_string_value(json_object_get(m, "id"));
		rc = cs_store_get(st, ids[i], &rec);
		if (rc < 0)
			goto out;
		json_array_append_new(recs, rec);
		e.total += (uint64_t)json_integer_value(json_object_get(rec, "size"));
	}
	/* the register entry before the first byte of the bag */
	rc = cs_access_grant(st, x->pol, x->who, "export", x->number, ids, n, x->approval,
	    x->purpose, &res->entry, &res->rule, &item);
	if (item != NULL)
		snprintf(res->item, sizeof(res->item), "%s", item);
	if (rc < 0)
		goto out;
	rc = cs_store_checkpoint(st, &note);
	if (rc == 0)
		rc = cs_store_verifier_key(st, &vkey);
	if (rc < 0)
		goto out;
	head = cs_csv_record(csv_head, 10);
	if (head != NULL)
		buf_add(&csv, head, strlen(head));
	free(head);
	if (head == NULL || csv.err != 0) {
		rc = -ENOMEM;
		goto out;
	}
	CS_FAILPARK("bag-proofs"); /* after its checkpoint, before the proofs against it */
	rc = put_items(&e, st, members, recs, items, &csv);
	if (rc < 0)
		goto out;
	cat = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s*, s:I, s:I, s:O}", "format", "custos-bag/1",
	    "case", x->number, "case_record", kase, "station", cs_store_station(st), "origin",
	    cs_store_origin(st), "purpose", x->purpose, "approval", (json_int_t)x->approval,
	    "register_entry", (json_int_t)res->entry, "items", items);
	if (cat == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = put_tags(&e, st, cat, &csv, res->entry, note, vkey);
	if (rc < 0)
		goto out;
	res->items = n;
	res->bytes = e.total;
	*plan = json_pack("{s:s, s:I, s:I, s:O, s:O}", "case", x->number, "register_entry",
	    (json_int_t)res->entry, "bytes", (json_int_t)e.total, "payload", e.payload, "files",
	    e.files);
	if (*plan == NULL)
		rc = -ENOMEM;
out:
	free(e.manifest.p);
	free(e.tags.p);
	free(csv.p);
	free(ids);
	free(note);
	free(vkey);
	json_decref(e.files);
	json_decref(e.payload);
	json_decref(cat);
	json_decref(kase);
	json_decref(members);
	json_decref(recs);
	json_decref(items);
	return rc;
}

int
cs_bag_target_free(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : errno == ENOTDIR ? CS_EEXIST : -errno;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = CS_EEXIST;
	closedir(d);
	return rc;
}

/* The payload files: each made by `copy` and checked against the plan's digest and size. */
static int
write_payload(int bfd, const json_t *payload, cs_bag_copy_fn copy, void *ctx, char *bad,
    size_t badn)
{
	int copies = 0;
	size_t i;
	json_t *p;

	json_array_foreach(payload, i, p)
	{
		const char *id = json_string_value(json_object_get(p, "id"));
		const char *file = json_string_value(json_object_get(p, "file"));
		const char *want = json_string_value(json_object_get(p, "sha256"));
		const char *kind = json_string_value(json_object_get(p, "kind"));
		int sub = kind != NULL && file != NULL && strncmp(file, "access/", 7) == 0;
		const char *base = sub ? file + 7 : file;
		char path[300], hex[65] = "";
		uint64_t size = 0;
		int fd, rc;

		if (id == NULL || file == NULL || want == NULL || strchr(base, '/') != NULL ||
		    base[0] == '.' || (kind != NULL && strcmp(kind, "access") != 0))
			return CS_EFORMAT;
		snprintf(path, sizeof(path), "data/%s", file);
		if (kind != NULL && !copies++ && mkdirat(bfd, "data/access", 0755) < 0)
			return -errno;
		fd = openat(bfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		rc = copy(ctx, id, kind, fd, hex, &size);
		if (rc == 0 &&
		    (strcmp(hex, want) != 0 ||
		        size != (uint64_t)json_integer_value(json_object_get(p, "size"))))
			rc = CS_EDIGEST;
		if (rc == 0)
			rc = cs__fsync(fd, 0);
		close(fd);
		CS_FAILPOINT("bag-file");
		if (rc < 0) {
			snprintf(bad, badn, "%s", id);
			return rc;
		}
	}
	return copies > 0 && cs__fsync_dir(bfd, "data/access") < 0 ? -EIO : 0;
}

int
cs_bag_write(const json_t *plan, const char *dir, cs_bag_copy_fn copy, void *ctx,
    struct cs_bag_result *res)
{
	char *parent = strdup(dir), *base, tmp[300];
	int pfd = -1, bfd = -1, rc, made = 0;
	size_t i;
	json_t *f;

	if (parent == NULL)
		return -ENOMEM;
	for (size_t l = strlen(parent); l > 1 && parent[l - 1] == '/'; l--)
		parent[l - 1] = '\0';
	base = strrchr(parent, '/');
	if (base != NULL) {
		*base++ = '\0';
		pfd = open(parent[0] != '\0' ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		base = parent;
		pfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    strlen(base) > 200) {
		rc = -EINVAL;
		goto out;
	}
	if (pfd < 0 || (rc = cs_bag_target_free(dir)) < 0) {
		rc = pfd < 0 ? -errno : rc;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), ".%s.partial-%ld", base, (long)getpid());
	if (mkdirat(pfd, tmp, 0755) < 0) {
		rc = -errno;
		goto out;
	}
	made = 1;
	bfd = openat(pfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bfd < 0 || mkdirat(bfd, "data", 0755) < 0 || mkdirat(bfd, "records", 0755) < 0 ||
	    mkdirat(bfd, "proofs", 0755) < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_payload(bfd, json_object_get(plan, "payload"), copy, ctx, res->item,
	    sizeof(res->item));
	json_array_foreach(json_object_get(plan, "files"), i, f)
	{
		const char *path = json_string_value(json_array_get(f, 0));
		json_t *text = json_array_get(f, 1);
		if (rc < 0)
			break;
		if (path == NULL || !json_is_string(text) || path[0] == '/' ||
		    strstr(path, "..") != NULL)
			rc = CS_EFORMAT;
		else
			rc = write_file(bfd, path, json_string_value(text),
			    json_string_length(text));
	}
	if (rc < 0)
		goto out;
	if (cs__fsync_dir(bfd, "data") < 0 || cs__fsync_dir(bfd, "records") < 0 ||
	    cs__fsync_dir(bfd, "proofs") < 0 || cs__fsync_dir(bfd, NULL) < 0) {
		rc = -EIO;
		goto out;
	}
	/* whole: it takes its name (an empty directory there is replaced) */
	CS_FAILPOINT("bag-rename");
	if (renameat(pfd, tmp, pfd, base) < 0) {
		rc = errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR ? CS_EEXIST : -errno;
		goto out;
	}
	made = 0;
	rc = cs__fsync_dir(pfd, NULL);
out:
	if (bfd >= 0)
		close(bfd);
	if (made)
		remove_tree(pfd, tmp);
	if (pfd >= 0)
		close(pfd);
	free(parent);
	return rc;
}

/* The export's copy of a stored original (cs_bag_copy_fn), with progress. */
static int
copy_blob(void *ctx, const char *id, const char *kind, int out, char hex[65], uint64_t *size)
{
	struct exp *e = ctx;
	char sha[65];
	uint64_t stored;
	int in, rc;

	if (kind != NULL)
		rc = cs_media_derivative_open(e->st, id, kind, &in, NULL);
	else
		rc = cs_access_open_blob(e->st, id, &in, &stored, sha);
	if (rc < 0)
		return rc;
	rc = hash_copy(in, out, e, hex, size);
	close(in);
	return rc;
}

int
cs_bag_export(struct cs_store *st, const struct cs_bag_export *x, const char *dir,
    struct cs_bag_result *res)
{
	struct exp e = {.bfd = -1, .x = x, .st = st};
	json_t *plan = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = cs_bag_target_free(dir);
	if (rc == 0)
		rc = cs_bag_plan(st, x, &plan, res);
	if (rc < 0)
		return rc;
	e.total = res->bytes;
	rc = cs_bag_write(plan, dir, copy_blob, &e, res);
	json_decref(plan);
	return rc;
}

/* ---- the offline check ---- */

/* A JSON string's text, "" if it is not one. */
static const char *
text_of(const json_t *j)
{
	const char *s = json_string_value(j);

	return s != NULL ? s : "";
}

struct ver {
	int dfd;
	cs_bag_problem_fn fn;
	void *ctx;
	int problems;
	json_t *byfile;  /* bag file -> item id (from catalog.json) */
	json_t *digests; /* data/ path -> the SHA-256 of its bytes as read */
	json_t *listed;  /* the paths manifest-sha256.txt lists */
};

__attribute__((format(printf, 4, 5))) static void
problem(struct ver *v, const char *item, const char *file, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (item == NULL && file != NULL)
		item = json_string_value(json_object_get(v->byfile, file));
	v->problems++;
	v->fn(v->ctx, item, file, what);
}

/* Reads bag file `path` (no symbolic links); NULL with a problem said if it cannot. */
static char *
slurp(struct ver *v, const char *path, size_t *len, const char *item)
{
	int fd = openat(v->dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;
	char *text = NULL;
	ssize_t r;

	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > TEXT_MAX) {
		problem(v, item, path, "%s",
		    fd < 0 && errno == ENOENT ? "missing" : "not a readable regular file");
		goto out;
	}
	text = malloc((size_t)sb.st_size + 1);
	if (text == NULL)
		goto out;
	r = cs__pread_all(fd, text, (size_t)sb.st_size, 0);
	if (r != sb.st_size) {
		problem(v, item, path, "cannot be read");
		free(text);
		text = NULL;
		goto out;
	}
	text[r] = '\0';
	*len = (size_t)r;
out:
	if (fd >= 0)
		close(fd);
	return text;
}

/* The SHA-256 of bag file `path`, a regular file (not followed if a link); CS_ENOTFOUND. */
static int
digest_file(struct ver *v, const char *path, char hex[65], uint64_t *size)
{
	int fd = openat(v->dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
	struct stat sb;

	if (fd < 0)
		return errno == ENOENT ? CS_ENOTFOUND : -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		rc = CS_ENOTREG;
	else
		rc = hash_copy(fd, -1, NULL, hex, size);
	close(fd);
	return rc;
}

/*
 * Checks a manifest: each listed file's digest. data: the payload manifest
 * (paths in data/, digests kept in v->digests). Marks every listed path in
 * `listed`. Returns 1 if the manifest was read, 0 if not (a problem said).
 */
static int
check_manifest(struct ver *v, const char *name, int data, json_t *listed)
{
	size_t len, lineno = 0;
	char *text = slurp(v, name, &len, NULL), *line, *next;

	if (text == NULL)
		return 0;
	for (line = text; line != NULL && *line != '\0'; line = next) {
		const char *hex, *path;
		char got[65];
		uint64_t size;
		int rc;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (line[0] != '\0' && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (strlen(line) < 66 || cs_bag_manifest_line(line, &hex, &path) < 0 ||
		    (data && strncmp(path, "data/", 5) != 0) ||
		    (!data && strncmp(path, "data/", 5) == 0)) {
			problem(v, NULL, name, "line %zu is not \"<sha256>  <path>\" of a %s file",
			    lineno, data ? "data/" : "tag");
			continue;
		}
		if (json_object_get(listed, path) != NULL) {
			problem(v, NULL, path, "listed twice in %s", name);
			continue;
		}
		json_object_set_new(listed, path, json_true());
		rc = digest_file(v, path, got, &size);
		if (rc == CS_ENOTFOUND) {
			problem(v, NULL, path, "missing (%s lists it)", name);
		} else if (rc < 0) {
			problem(v, NULL, path, "cannot be read: %s",
			    rc == CS_ENOTREG ? "not a regular file" : cs_strerror(rc));
		} else {
			if (data)
				json_object_set_new(v->digests, path, json_string(got));
			if (strcasecmp(got, hex) != 0)
				problem(v, NULL, path,
				    "its SHA-256 is %s, %s says %.64s: the file was changed", got,
				    name, hex);
		}
	}
	free(text);
	return 1;
}

/*
 * Files in directory `sub` that `listed` (by "sub/name"; NULL: there is no
 * manifest to compare with) does not list; counts and sizes them.
 */
static void
check_unlisted(struct ver *v, const char *sub, json_t *listed, const char *manifest,
    uint64_t *files, uint64_t *bytes)
{
	int fd = openat(v->dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char path[600];

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		problem(v, NULL, sub, "missing or not a directory");
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
			(*files)++;
			*bytes += (uint64_t)sb.st_size;
		} else if (S_ISDIR(sb.st_mode) && strcmp(path, "data/access") == 0) {
			check_unlisted(v, path, listed, manifest, files, bytes);
			continue;
		} else {
			problem(v, NULL, path, "not a regular file");
			continue;
		}
		if (listed != NULL && json_object_get(listed, path) == NULL)
			problem(v, NULL, path, "not listed in %s: a file was added", manifest);
	}
	closedir(d);
}

/* The value of bag-info.txt's `label` (a copy, the caller's), or NULL. */
static char *
info_value(const char *info, const char *label)
{
	size_t n = strlen(label);

	for (const char *l = info; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n');
		size_t len = end != NULL ? (size_t)(end - l) : strlen(l);
		if (len > n + 1 && strncmp(l, label, n) == 0 && l[n] == ':') {
			const char *s = l + n + 1;
			while (*s == ' ' || *s == '\t')
				s++;
			len -= (size_t)(s - l);
			if (len > 0 && s[len - 1] == '\r')
				len--;
			return strndup(s, len);
		}
		l = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

/* The proven ingest event's digest of item `id` in a check result, or NULL. */
static const char *
ingest_digest(const struct cs_check *c, const char *id)
{
	for (size_t i = 0; i < c->n_proven; i++) {
		json_t *ev = c->proven[i].event, *it = json_object_get(ev, "item");
		const char *what = json_string_value(json_object_get(ev, "event"));
		const char *iid = json_string_value(json_object_get(it, "id"));
		if (what != NULL && strcmp(what, "ingest") == 0 && iid != NULL &&
		    strcmp(iid, id) == 0)
			return json_string_value(json_object_get(it, "sha256"));
	}
	return NULL;
}

/* Proofs file `path` checked with the key; 0 with *c filled, or < 0 with a problem said. */
static int
check_proof_file(struct ver *v, const char *path, const char *id, const char *vkey, uint64_t tree,
    struct cs_check *c)
{
	size_t len;
	char *text = slurp(v, path, &len, id);
	int rc;

	if (text == NULL)
		return -ENOENT;
	rc = cs_check_proofs(text, len, vkey, c);
	free(text);
	if (rc < 0)
		return rc;
	if (c->status != CS_CHECK_OK) {
		problem(v, id, path, "%s (proof %zu)",
		    c->status == CS_CHECK_SIGNATURE ? "a checkpoint is not signed by the bag's key"
		        : c->status == CS_CHECK_INCLUSION
		        ? "an event is not included in the signed tree: the proof was changed"
		        : "not a valid tlog-proof@v1 file",
		    c->part);
		return CS_EPROOF;
	}
	for (size_t i = 0; i < c->n_proven; i++)
		if (c->proven[i].tree_size != tree) {
			problem(v, id, path,
			    "proof %zu is against a tree of %llu events, the bag's "
			    "checkpoint has %llu",
			    i + 1, (unsigned long long)c->proven[i].tree_size,
			    (unsigned long long)tree);
			return CS_EPROOF;
		}
	return 0;
}

/*
 * An item's access copy (catalogue "access"): in the payload manifest, its
 * bytes as read a derivative "access" of the item's record with status ok,
 * and that derivative event proven in the item's proofs `c`.
 */
static void
check_copy(struct ver *v, const json_t *it, const json_t *rec, const struct cs_check *c)
{
	const char *id = json_string_value(json_object_get(it, "id"));
	const json_t *acc = json_object_get(it, "access");
	const char *file = json_string_value(json_object_get(acc, "file"));
	const char *got, *rsha = NULL, *psha = NULL;
	char data[300];
	size_t i;
	json_t *d;

	if (file == NULL || strncmp(file, "access/", 7) != 0 || strchr(file + 7, '/') != NULL) {
		problem(v, id, "catalog.json", "the item's access copy has no valid file name");
		return;
	}
	snprintf(data, sizeof(data), "data/%s", file);
	got = json_string_value(json_object_get(v->digests, data));
	if (json_object_get(v->listed, data) == NULL) {
		problem(v, id, data, "the item's access copy is not in manifest-sha256.txt");
		return;
	}
	if (got == NULL)
		return; /* missing or unreadable: said */
	json_array_foreach(json_object_get(rec, "derivatives"), i, d)
	{
		if (strcmp(text_of(json_object_get(d, "kind")), "access") == 0 &&
		    strcmp(text_of(json_object_get(d, "status")), "ok") == 0 &&
		    strcmp(text_of(json_object_get(d, "sha256")), got) == 0)
			rsha = got;
	}
	for (i = 0; i < c->n_proven; i++) {
		json_t *ev = c->proven[i].event, *dv = json_object_get(ev, "derivative");
		if (strcmp(text_of(json_object_get(ev, "event")), "derivative") == 0 &&
		    strcmp(text_of(json_object_get(ev, "id")), id) == 0 &&
		    strcmp(text_of(json_object_get(dv, "kind")), "access") == 0 &&
		    strcmp(text_of(json_object_get(dv, "sha256")), got) == 0)
			psha = got;
	}
	if (rsha == NULL)
		problem(v, id, data,
		    "its SHA-256 %s is not that of an access copy in the item's record: "
		    "the copy was changed",
		    got);
	else if (psha == NULL)
		problem(v, id, data, "no proven derivative event of the item has its SHA-256 %s",
		    got);
}

/* One catalogue item: its record and proofs against its payload's digest as read. */
static void
check_item(struct ver *v, json_t *it, const char *vkey, uint64_t tree)
{
	const char *id = json_string_value(json_object_get(it, "id"));
	const char *file = json_string_value(json_object_get(it, "file"));
	const char *rsha, *psha, *got;
	char data[300], path[300], *text;
	struct cs_check c = {0};
	json_t *rec = NULL;
	size_t len;

	if (id == NULL || file == NULL || strchr(file, '/') != NULL || strchr(id, '/') != NULL) {
		problem(v, id, "catalog.json", "an item without a valid id or file name");
		return;
	}
	snprintf(data, sizeof(data), "data/%s", file);
	got = json_string_value(json_object_get(v->digests, data));
	if (json_object_get(v->listed, data) == NULL)
		problem(v, id, data, "the item's payload file is not in manifest-sha256.txt");
	snprintf(path, sizeof(path), "records/%s.json", id);
	text = slurp(v, path, &len, id);
	if (text != NULL && (rec = json_loadb(text, len, 0, NULL)) == NULL)
		problem(v, id, path, "not a JSON record");
	free(text);
	rsha = json_string_value(json_object_get(rec, "sha256"));
	if (rec != NULL &&
	    (rsha == NULL || json_string_value(json_object_get(rec, "id")) == NULL ||
	        strcmp(json_string_value(json_object_get(rec, "id")), id) != 0))
		problem(v, id, path, "the record is not the item's (id or digest missing)");
	else if (rec != NULL && got != NULL && strcmp(rsha, got) != 0)
		problem(v, id, path, "the record's SHA-256 %s is not the payload's %s (%s)", rsha,
		    got, data);
	snprintf(path, sizeof(path), "proofs/%s.proof", id);
	if (check_proof_file(v, path, id, vkey, tree, &c) == 0) {
		psha = ingest_digest(&c, id);
		if (psha == NULL)
			problem(v, id, path, "no proven ingest event of the item");
		else if (got != NULL && strcmp(psha, got) != 0)
			problem(v, id, path, "the ledger's SHA-256 %s is not the payload's %s (%s)",
			    psha, got, data);
		if (json_object_get(it, "access") != NULL)
			check_copy(v, it, rec, &c);
	}
	json_decref(rec);
	cs_check_fini(&c);
}

/* The register entry's proof: an export of exactly the catalogue's items, the entry cited. */
static void
check_entry(struct ver *v, const char *info, json_t *items, const char *vkey, uint64_t tree,
    json_t *sum)
{
	char *entry = info_value(info, "Export-Register-Entry");
	struct cs_check c = {0};
	json_t *ev, *ids, *it;
	size_t i, j;

	if (entry == NULL)
		problem(v, NULL, "bag-info.txt", "no Export-Register-Entry");
	if (check_proof_file(v, "export.proof", NULL, vkey, tree, &c) == 0 && entry != NULL) {
		ev = c.n_proven == 1 ? c.proven[0].event : NULL;
		ids = json_object_get(ev, "items");
		if (ev == NULL || strcmp(text_of(json_object_get(ev, "event")), "access") != 0 ||
		    strcmp(text_of(json_object_get(ev, "action")), "export") != 0 ||
		    strtoull(entry, NULL, 10) != c.proven[0].index) {
			problem(v, NULL, "export.proof",
			    "it does not prove register entry %s, an "
			    "export",
			    entry);
		} else {
			json_object_set_new(sum, "register_entry",
			    json_integer((json_int_t)c.proven[0].index));
			json_object_set(sum, "register_event", ev);
			json_array_foreach(items, i, it)
			{
				int found = 0;
				json_t *x;
				json_array_foreach(ids, j, x)
				{
					found |= json_equal(x, json_object_get(it, "id"));
				}
				if (!found)
					problem(v, json_string_value(json_object_get(it, "id")),
					    "export.proof",
					    "the register entry does not name the item");
			}
			if (json_array_size(ids) != json_array_size(items))
				problem(v, NULL, "export.proof",
				    "the register entry names %zu "
				    "items, the bag holds %zu",
				    json_array_size(ids), json_array_size(items));
		}
	}
	cs_check_fini(&c);
	free(entry);
}

/* tagmanifest-sha256.sig: the tag manifest, whole, signed by the bag's key. */
static void
check_tag_signature(struct ver *v, const char *key)
{
	size_t tlen = 0, nlen = 0, slen = 0;
	char *tags = slurp(v, "tagmanifest-sha256.txt", &tlen, NULL);
	char *note = tags != NULL ? slurp(v, "tagmanifest-sha256.sig", &nlen, NULL) : NULL;
	struct cs_verifier *ver = NULL;

	if (note != NULL && cs_verifier_parse(&ver, key, strlen(key)) == 0 &&
	    (cs_note_verify(ver, note, nlen, &slen) < 0 || slen != tlen ||
	        memcmp(note, tags, tlen) != 0))
		problem(v, NULL, "tagmanifest-sha256.txt",
		    "it is not the tag manifest signed by the bag's key "
		    "(tagmanifest-sha256.sig): a tag file was changed and its line rewritten");
	cs_verifier_free(ver);
	free(tags);
	free(note);
}

/* The key and the checkpoint: *tree the signed tree's size; the key text or NULL. */
static char *
check_checkpoint(struct ver *v, uint64_t *tree, json_t *sum)
{
	size_t klen = 0, nlen = 0, tlen = 0;
	char *key = slurp(v, "verifier-key.txt", &klen, NULL);
	char *note = slurp(v, "checkpoint", &nlen, NULL);
	struct cs_verifier *ver = NULL;
	struct cs_checkpoint cp;

	*tree = 0;
	if (key != NULL && klen > 0 && key[klen - 1] == '\n')
		key[--klen] = '\0';
	if (key != NULL && cs_verifier_parse(&ver, key, klen) < 0) {
		problem(v, NULL, "verifier-key.txt", "not a verifier key");
		free(key);
		key = NULL;
	}
	if (ver != NULL && note != NULL) {
		if (cs_note_verify(ver, note, nlen, &tlen) < 0)
			problem(v, NULL, "checkpoint", "not signed by the bag's verifier key");
		else if (cs_checkpoint_parse(&cp, note, tlen) < 0)
			problem(v, NULL, "checkpoint", "not a checkpoint");
		else {
			*tree = cp.size;
			json_object_set_new(sum, "tree_size", json_integer((json_int_t)cp.size));
			json_object_set_new(sum, "origin", json_string(cp.origin));
		}
	}
	if (key != NULL)
		json_object_set_new(sum, "key", json_string(key));
	cs_verifier_free(ver);
	free(note);
	return key;
}

static void
check_oxum(struct ver *v, const char *info, uint64_t files, uint64_t bytes, json_t *sum)
{
	char *oxum = info_value(info, "Payload-Oxum"), want[48];

	snprintf(want, sizeof(want), "%llu.%llu", (unsigned long long)bytes,
	    (unsigned long long)files);
	if (oxum == NULL)
		problem(v, NULL, "bag-info.txt", "no Payload-Oxum");
	else if (strcmp(oxum, want) != 0)
		problem(v, NULL, "bag-info.txt",
		    "Payload-Oxum is %s, data/ holds %s "
		    "(bytes.files)",
		    oxum, want);
	json_object_set_new(sum, "files", json_integer((json_int_t)files));
	json_object_set_new(sum, "bytes", json_integer((json_int_t)bytes));
	free(oxum);
}

int
cs_bag_verify(const char *dir, cs_bag_problem_fn fn, void *ctx, json_t **info)
{
	struct ver v = {.dfd = -1, .fn = fn, .ctx = ctx};
	json_t *sum = json_object(), *listed = json_object(), *tagged = json_object();
	json_t *cat = NULL, *items, *it;
	char *bagit = NULL, *bag_info = NULL, *text, *key = NULL;
	uint64_t files = 0, bytes = 0, tree = 0, tf = 0, tb = 0;
	size_t len, i;
	int rc = 0, have;

	v.byfile = json_object();
	v.digests = json_object();
	v.listed = listed;
	if (sum == NULL || listed == NULL || tagged == NULL || v.byfile == NULL ||
	    v.digests == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	v.dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v.dfd < 0) {
		rc = -errno;
		goto out;
	}
	bagit = slurp(&v, "bagit.txt", &len, NULL);
	if (bagit != NULL &&
	    (strstr(bagit, "BagIt-Version: 1.0") == NULL ||
	        strstr(bagit, "Tag-File-Character-Encoding: UTF-8") == NULL))
		problem(&v, NULL, "bagit.txt", "not a BagIt 1.0 declaration");
	text = slurp(&v, "catalog.json", &len, NULL);
	if (text != NULL && (cat = json_loadb(text, len, 0, NULL)) == NULL)
		problem(&v, NULL, "catalog.json", "not JSON");
	free(text);
	items = json_object_get(cat, "items");
	json_array_foreach(items, i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		const char *file = json_string_value(json_object_get(it, "file"));
		char path[300];
		if (id == NULL || file == NULL)
			continue;
		snprintf(path, sizeof(path), "data/%s", file);
		json_object_set_new(v.byfile, path, json_string(id));
		snprintf(path, sizeof(path), "records/%s.json", id);
		json_object_set_new(v.byfile, path, json_string(id));
		snprintf(path, sizeof(path), "proofs/%s.proof", id);
		json_object_set_new(v.byfile, path, json_string(id));
		file = json_string_value(json_object_get(json_object_get(it, "access"), "file"));
		snprintf(path, sizeof(path), "data/%s", file != NULL ? file : "");
		if (file != NULL)
			json_object_set_new(v.byfile, path, json_string(id));
	}
	json_object_set(sum, "case", json_object_get(cat, "case"));
	json_object_set_new(sum, "items", json_integer((json_int_t)json_array_size(items)));
	have = check_manifest(&v, "manifest-sha256.txt", 1, listed);
	check_unlisted(&v, "data", have ? listed : NULL, "manifest-sha256.txt", &files, &bytes);
	{
		const char *p;
		json_object_foreach(v.digests, p, it)
		{
			if (json_object_get(v.byfile, p) == NULL)
				problem(&v, NULL, p,
				    "a payload file that catalog.json does not name");
		}
	}
	have = check_manifest(&v, "tagmanifest-sha256.txt", 0, tagged);
	check_unlisted(&v, "records", have ? tagged : NULL, "tagmanifest-sha256.txt", &tf, &tb);
	check_unlisted(&v, "proofs", have ? tagged : NULL, "tagmanifest-sha256.txt", &tf, &tb);
	if (have) {
		static const char *const need[] = {"bagit.txt", "bag-info.txt",
		    "manifest-sha256.txt", "catalog.json", "catalog.csv", "checkpoint",
		    "verifier-key.txt", "export.proof"};
		for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
			if (json_object_get(tagged, need[i]) == NULL)
				problem(&v, NULL, need[i], "not listed in tagmanifest-sha256.txt");
	}
	bag_info = slurp(&v, "bag-info.txt", &len, NULL);
	if (bag_info != NULL) {
		char *ext = info_value(bag_info, "External-Identifier");
		if (ext == NULL || cat == NULL ||
		    strcmp(ext, text_of(json_object_get(cat, "case"))) != 0)
			problem(&v, NULL, "bag-info.txt",
			    "External-Identifier is not the case number of catalog.json");
		free(ext);
		check_oxum(&v, bag_info, files, bytes, sum);
	}
	key = check_checkpoint(&v, &tree, sum);
	if (key != NULL)
		check_tag_signature(&v, key);
	if (key != NULL && tree > 0) {
		json_array_foreach(items, i, it)
		{
			check_item(&v, it, key, tree);
		}
		if (bag_info != NULL)
			check_entry(&v, bag_info, items, key, tree, sum);
	}
	rc = v.problems;
	if (info != NULL) {
		*info = sum;
		sum = NULL;
	}
out:
	if (v.dfd >= 0)
		close(v.dfd);
	free(bagit);
	free(bag_info);
	free(key);
	json_decref(cat);
	json_decref(sum);
	json_decref(listed);
	json_decref(tagged);
	json_decref(v.byfile);
	json_decref(v.digests);
	return rc;
}
