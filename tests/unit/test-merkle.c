/*
 * Unit tests for lib/merkle.c. They check the basic hashes from
 * tests/vectors/README.md; every published proof vector (transparency-dev,
 * under $CS_VECTORS/merkle/{inclusion,consistency}) against its wantErr, and
 * that the happy-path proofs are reproduced byte for byte from the RFC 6962
 * test tree; trees of 1..130 leaves built with cs_merkle_append(), whose
 * roots, stream roots and proofs are compared with a direct transcription of
 * the RFC 9162 definitions and then tampered with; and trees near 2^64
 * leaves, where every leaf is the same so each level has one hash.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "custos/error.h"
#include "custos/merkle.h"
#include "tap.h"

/*
 * In ISO C before C2x, uint8_t (*)[32] does not convert to
 * const uint8_t (*)[32] without a cast, and -Wpedantic says so.
 */
#define CPROOF(p) ((const uint8_t(*)[32])(p))

#define MAX_LEAVES 130
#define MAX_LEVELS 8 /* 2^7 <= MAX_LEAVES < 2^8 */

/* The published set holds 98 files of each kind outside subtree*. */
#define MIN_INCLUSION_VECTORS 98
#define MIN_CONSISTENCY_VECTORS 98

/*
 * An in-memory node store: one array per level. get() fails for a subtree
 * that was never put, so a test notices any read outside the tree.
 */
struct mem_tree {
	uint8_t node[MAX_LEVELS][MAX_LEAVES][32];
	bool have[MAX_LEVELS][MAX_LEAVES];
	unsigned gets;    /* get() calls, reset by the caller */
	unsigned fail_at; /* fail the fail_at-th get() or put() from now; 0: never */
};

static int
mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	struct mem_tree *t = ctx;

	t->gets++;
	if (t->fail_at != 0 && --t->fail_at == 0)
		return -EIO;
	if (level >= MAX_LEVELS || index >= MAX_LEAVES || !t->have[level][index])
		return CS_ENOTFOUND;
	memcpy(out, t->node[level][index], 32);
	return 0;
}

static int
mem_put(void *ctx, unsigned level, uint64_t index, const uint8_t h[32])
{
	struct mem_tree *t = ctx;

	if (t->fail_at != 0 && --t->fail_at == 0)
		return -EIO;
	if (level >= MAX_LEVELS || index >= MAX_LEAVES)
		return -ENOSPC;
	/* Appending never rewrites a stored subtree. */
	if (t->have[level][index])
		return CS_EEXIST;
	memcpy(t->node[level][index], h, 32);
	t->have[level][index] = true;
	return 0;
}

static void
hex(const uint8_t *b, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ok() on a hash against its expected hex form; prints both on failure. */
static void
is_hash(const uint8_t got[32], const char *want, const char *what)
{
	char g[65];

	hex(got, 32, g);
	if (!ok(strcmp(g, want) == 0, "%s", what))
		printf("#   got  %s\n#   want %s\n", g, want);
}

/* SHA-256 of prefix || a || b, written out here to pin the constructions. */
static void
sha256_3(uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, &prefix, 1) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    EVP_DigestUpdate(ctx, b, blen) != 1 || EVP_DigestFinal_ex(ctx, out, NULL) != 1) {
		printf("Bail out! OpenSSL SHA-256 failed\n");
		exit(1);
	}
	EVP_MD_CTX_free(ctx);
}

/* Largest power of two strictly less than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

static unsigned
bit_len(uint64_t x)
{
	unsigned n = 0;

	for (; x != 0; x >>= 1)
		n++;
	return n;
}

/* The RFC 6962 test tree used by transparency-dev, and its roots at sizes 1..8. */
static const struct {
	const char *data;
	size_t len;
} rfc_leaves[8] = {
	{ "", 0 },
	{ "\x00", 1 },
	{ "\x10", 1 },
	{ "\x20\x21", 2 },
	{ "\x30\x31", 2 },
	{ "\x40\x41\x42\x43", 4 },
	{ "\x50\x51\x52\x53\x54\x55\x56\x57", 8 },
	{ "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16 },
};
static const char *const rfc_roots[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static struct mem_tree rfc_tree;

static void
test_basic_hashes(void)
{
	uint8_t h[32], a[32], b[32], want[32];
	struct cs_merkle_stream s;
	char what[64];
	unsigned i;

	is_int(cs_merkle_root(mem_get, &rfc_tree, 0, h), 0, "root of the empty tree");
	is_hash(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "empty tree root is SHA-256(\"\")");
	cs_merkle_stream_init(&s);
	is_int(cs_merkle_stream_root(&s, h), 0, "stream root of the empty tree");
	is_hash(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "empty stream root is SHA-256(\"\")");

	is_int(cs_merkle_leaf_hash("", 0, h), 0, "leaf(\"\")");
	is_hash(h, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	    "leaf(\"\") matches the README");
	is_int(cs_merkle_leaf_hash("L123456", 7, h), 0, "leaf(\"L123456\")");
	is_hash(h, "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56",
	    "leaf(\"L123456\") matches the README");

	/*
	 * The README's node vector has 4-byte children, which the 32-byte API
	 * cannot take: pin the construction with it, then compare the library
	 * with the construction on 32-byte children.
	 */
	sha256_3(0x01, "N123", 4, "N456", 4, h);
	is_hash(h, "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb",
	    "node(\"N123\", \"N456\") is SHA-256(0x01 || l || r)");
	cs_merkle_leaf_hash("", 0, a);
	cs_merkle_leaf_hash("L123456", 7, b);
	sha256_3(0x01, a, 32, b, 32, want);
	is_int(cs_merkle_node_hash(a, b, h), 0, "node hash of two leaves");
	ok(memcmp(h, want, 32) == 0, "cs_merkle_node_hash is SHA-256(0x01 || l || r)");

	/* The RFC 6962 test tree: appended leaf by leaf, root after each. */
	for (i = 0; i < 8; i++) {
		cs_merkle_leaf_hash(rfc_leaves[i].data, rfc_leaves[i].len, h);
		is_int(cs_merkle_append(mem_get, mem_put, &rfc_tree, i, h), 0, "append RFC leaf %u",
		    i);
		snprintf(what, sizeof(what), "RFC 6962 test tree root at size %u", i + 1);
		cs_merkle_root(mem_get, &rfc_tree, i + 1, h);
		is_hash(h, rfc_roots[i], what);
	}
}

/* --- Published vectors ------------------------------------------------- */

struct bytes {
	uint8_t b[96];
	int len; /* decoded length */
};

struct vec_stats {
	unsigned inclusion, consistency, reproduced;
	const char *base; /* the vector directory, left off names in the output */
};

/*
 * jansson rejects integers above INT64_MAX, and the vectors hold 2^64 - 1
 * (a leaf index of 0 minus 1). Quote every bare number so that it parses as
 * a string, then read it with strtoull(). The result is malloc'd.
 */
static char *
quote_numbers(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(3 * len + 1);
	bool in_str = false, esc = false;
	size_t i, o = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			out[o++] = c;
		} else if (c == '"') {
			in_str = true;
			out[o++] = c;
		} else if (c == '-' || isdigit((unsigned char)c)) {
			out[o++] = '"';
			while (i < len && strchr("0123456789+-.eE", in[i]) != NULL)
				out[o++] = in[i++];
			out[o++] = '"';
			i--;
		} else {
			out[o++] = c;
		}
	}
	*outlen = o;
	return out;
}

static bool
json_u64(json_t *obj, const char *key, uint64_t *out)
{
	const char *s = json_string_value(json_object_get(obj, key));
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Standard base64 with padding, as Go's encoding/json writes []byte. */
static bool
b64_decode(json_t *v, struct bytes *out)
{
	const char *s = json_string_value(v);
	size_t len;
	int n;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len % 4 != 0 || len / 4 * 3 > sizeof(out->b))
		return false;
	out->len = 0;
	if (len == 0)
		return true;
	n = EVP_DecodeBlock(out->b, (const unsigned char *)s, (int)len);
	if (n < 0)
		return false;
	n -= (s[len - 1] == '=') + (s[len - 2] == '=');
	out->len = n;
	return true;
}

/*
 * The API takes 32-byte roots. The reference compares roots as byte strings,
 * so a root of another length never equals a computed root but does equal an
 * identical given root. A tagged SHA-256 of its bytes keeps both properties.
 */
static void
root_arg(const struct bytes *r, uint8_t out[32])
{
	static const char tag[] = "custos test: not a 32-byte root";

	if (r->len == 32)
		memcpy(out, r->b, 32);
	else
		sha256_3(0x02, tag, sizeof(tag) - 1, r->b, (size_t)r->len, out);
}

/*
 * Decodes the "proof" member (an array or null) into a malloc'd array.
 * *all32 says whether every hash is 32 bytes. Returns false on bad JSON.
 */
static bool
decode_proof(json_t *v, uint8_t (**proof)[32], size_t *count, bool *all32)
{
	struct bytes b;
	size_t i, n;

	*proof = NULL;
	*count = 0;
	*all32 = true;
	if (json_is_null(v))
		return true;
	if (!json_is_array(v))
		return false;
	n = json_array_size(v);
	*proof = calloc(n + 1, 32);
	if (*proof == NULL)
		return false;
	for (i = 0; i < n; i++) {
		if (!b64_decode(json_array_get(v, i), &b))
			return false;
		if (b.len == 32)
			memcpy((*proof)[i], b.b, 32);
		else
			*all32 = false;
	}
	*count = n;
	return true;
}

static bool
same_proof(const uint8_t a[][32], size_t na, const uint8_t b[][32], size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * 32) == 0);
}

/*
 * Checks one inclusion vector. A leaf or proof hash that is not 32 bytes is
 * an error by the reference's policy; everything else goes to the verifier.
 * Returns whether verification failed, or -1 for a malformed vector.
 */
static int
run_inclusion(json_t *doc, struct vec_stats *st)
{
	uint8_t (*proof)[32] = NULL;
	uint8_t root[32], gen[CS_MERKLE_MAX_PROOF][32];
	struct bytes leaf, rootb;
	uint64_t index, size;
	size_t count, gcount;
	bool all32;
	int rc, res = -1;

	if (!json_u64(doc, "leafIdx", &index) || !json_u64(doc, "treeSize", &size) ||
	    !b64_decode(json_object_get(doc, "leafHash"), &leaf) ||
	    !b64_decode(json_object_get(doc, "root"), &rootb) ||
	    !decode_proof(json_object_get(doc, "proof"), &proof, &count, &all32))
		goto out;
	st->inclusion++;
	if (leaf.len != 32 || !all32) {
		res = 1;
		goto out;
	}
	root_arg(&rootb, root);
	rc = cs_merkle_verify_inclusion(index, size, leaf.b, CPROOF(proof), count, root);
	if (rc != 0 && rc != CS_EPROOF && rc != -EINVAL)
		goto out;
	res = rc != 0;
	/* A valid proof in the RFC 6962 test tree must be exactly ours. */
	if (rc == 0 && size <= 8 && rootb.len == 32) {
		cs_merkle_root(mem_get, &rfc_tree, size, root);
		if (memcmp(root, rootb.b, 32) == 0) {
			rc = cs_merkle_inclusion_proof(
			    mem_get, &rfc_tree, index, size, gen, &gcount);
			if (rc != 0 || !same_proof(CPROOF(gen), gcount, CPROOF(proof), count))
				res = -1;
			else
				st->reproduced++;
		}
	}
out:
	free(proof);
	return res;
}

static int
run_consistency(json_t *doc, struct vec_stats *st)
{
	uint8_t (*proof)[32] = NULL;
	uint8_t root1[32], root2[32], want1[32], want2[32], gen[CS_MERKLE_MAX_PROOF][32];
	struct bytes r1, r2;
	uint64_t m, n;
	size_t count, gcount;
	bool all32;
	int rc, res = -1;

	if (!json_u64(doc, "size1", &m) || !json_u64(doc, "size2", &n) ||
	    !b64_decode(json_object_get(doc, "root1"), &r1) ||
	    !b64_decode(json_object_get(doc, "root2"), &r2) ||
	    !decode_proof(json_object_get(doc, "proof"), &proof, &count, &all32))
		goto out;
	st->consistency++;
	if (!all32) {
		res = 1;
		goto out;
	}
	root_arg(&r1, root1);
	root_arg(&r2, root2);
	rc = cs_merkle_verify_consistency(m, n, root1, root2, CPROOF(proof), count);
	if (rc != 0 && rc != CS_EPROOF && rc != -EINVAL)
		goto out;
	res = rc != 0;
	if (rc == 0 && n <= 8 && r1.len == 32 && r2.len == 32) {
		cs_merkle_root(mem_get, &rfc_tree, m, want1);
		cs_merkle_root(mem_get, &rfc_tree, n, want2);
		if (memcmp(want1, root1, 32) == 0 && memcmp(want2, root2, 32) == 0) {
			rc = cs_merkle_consistency_proof(mem_get, &rfc_tree, m, n, gen, &gcount);
			if (rc != 0 || !same_proof(CPROOF(gen), gcount, CPROOF(proof), count))
				res = -1;
			else
				st->reproduced++;
		}
	}
out:
	free(proof);
	return res;
}

static void
run_vector(const char *path, bool inclusion, struct vec_stats *st)
{
	const char *name = path + strlen(st->base) + 1;
	char *text = NULL, *quoted = NULL;
	size_t len = 0, qlen;
	const char *desc;
	json_t *doc = NULL;
	json_error_t jerr;
	FILE *f;
	int wanterr = -1, goterr = -1;

	f = fopen(path, "r");
	if (f == NULL)
		goto out;
	/* A vector is a few hundred bytes; 64 KiB is already absurd. */
	text = malloc(1 << 16);
	if (text != NULL)
		len = fread(text, 1, 1 << 16, f);
	fclose(f);
	if (text == NULL || len == 1 << 16)
		goto out;
	quoted = quote_numbers(text, len, &qlen);
	if (quoted == NULL)
		goto out;
	doc = json_loadb(quoted, qlen, 0, &jerr);
	if (doc == NULL || !json_is_boolean(json_object_get(doc, "wantErr")))
		goto out;
	wanterr = json_is_true(json_object_get(doc, "wantErr"));
	goterr = inclusion ? run_inclusion(doc, st) : run_consistency(doc, st);
out:
	if (goterr < 0) {
		ok(0, "%s: malformed vector, unexpected error, or proof not reproduced", name);
	} else {
		desc = json_string_value(json_object_get(doc, "desc"));
		ok(goterr == wanterr, "%s: %s (%s)", name, desc != NULL ? desc : "",
		    wanterr ? "rejected" : "accepted");
	}
	json_decref(doc);
	free(quoted);
	free(text);
}

/* Runs every *.json below `dir`, skipping the optional subtree* vectors. */
static void
walk(const char *dir, bool inclusion, struct vec_stats *st)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	d = opendir(dir);
	if (d == NULL) {
		ok(0, "open %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nlen = strlen(de->d_name);

		if (de->d_name[0] == '.' || strncmp(de->d_name, "subtree", 7) == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
			sizeof(path) ||
		    stat(path, &sb) != 0) {
			ok(0, "%s/%s: path too long or unreadable", dir, de->d_name);
			continue;
		}
		if (S_ISDIR(sb.st_mode))
			walk(path, inclusion, st);
		else if (nlen > 5 && strcmp(de->d_name + nlen - 5, ".json") == 0)
			run_vector(path, inclusion, st);
	}
	closedir(d);
}

static void
test_vectors(void)
{
	const char *base = getenv("CS_VECTORS");
	struct vec_stats st = { 0 };
	char dir[PATH_MAX];

	if (base == NULL || base[0] == '\0')
		base = "tests/vectors";
	st.base = base;
	snprintf(dir, sizeof(dir), "%s/merkle/inclusion", base);
	walk(dir, true, &st);
	snprintf(dir, sizeof(dir), "%s/merkle/consistency", base);
	walk(dir, false, &st);
	if (!ok(st.inclusion >= MIN_INCLUSION_VECTORS, "%u inclusion vectors checked",
		st.inclusion))
		printf("#   want at least %d (is CS_VECTORS=%s right?)\n", MIN_INCLUSION_VECTORS,
		    base);
	if (!ok(st.consistency >= MIN_CONSISTENCY_VECTORS, "%u consistency vectors checked",
		st.consistency))
		printf("#   want at least %d\n", MIN_CONSISTENCY_VECTORS);
	/* The happy paths of inclusion/{0..4} and consistency/{0..4}. */
	ok(st.reproduced >= 10, "%u happy-path proofs reproduced byte for byte", st.reproduced);
}

/* --- Trees of 1..MAX_LEAVES leaves against the RFC definitions ---------- */

static struct mem_tree tree;
static uint8_t leaves[MAX_LEAVES][32];
/* mth[lo][hi] = MTH(D[lo:hi]) by the RFC 9162 2.1.1 recursion. */
static uint8_t mth[MAX_LEAVES + 1][MAX_LEAVES + 1][32];

static void
build_reference(void)
{
	char data[32];
	unsigned lo, len, k;

	for (lo = 0; lo < MAX_LEAVES; lo++) {
		snprintf(data, sizeof(data), "evidence %u", lo);
		cs_merkle_leaf_hash(data, strlen(data), leaves[lo]);
		memcpy(mth[lo][lo + 1], leaves[lo], 32);
	}
	for (len = 2; len <= MAX_LEAVES; len++) {
		k = (unsigned)split_point(len);
		for (lo = 0; lo + len <= MAX_LEAVES; lo++)
			cs_merkle_node_hash(
			    mth[lo][lo + k], mth[lo + k][lo + len], mth[lo][lo + len]);
	}
}

/* PATH(m, D[lo:hi]) of RFC 9162 2.1.3.1, m relative to lo. */
static void
ref_path(unsigned m, unsigned lo, unsigned hi, uint8_t out[][32], size_t *n)
{
	unsigned k;

	if (hi - lo <= 1)
		return;
	k = (unsigned)split_point(hi - lo);
	if (m < k) {
		ref_path(m, lo, lo + k, out, n);
		memcpy(out[(*n)++], mth[lo + k][hi], 32);
	} else {
		ref_path(m - k, lo + k, hi, out, n);
		memcpy(out[(*n)++], mth[lo][lo + k], 32);
	}
}

/* SUBPROOF(m, D[lo:hi], b) of RFC 9162 2.1.4.1, m relative to lo. */
static void
ref_subproof(unsigned m, unsigned lo, unsigned hi, bool b, uint8_t out[][32], size_t *n)
{
	unsigned k;

	if (m == hi - lo) {
		if (!b)
			memcpy(out[(*n)++], mth[lo][hi], 32);
		return;
	}
	k = (unsigned)split_point(hi - lo);
	if (m <= k) {
		ref_subproof(m, lo, lo + k, b, out, n);
		memcpy(out[(*n)++], mth[lo + k][hi], 32);
	} else {
		ref_subproof(m - k, lo + k, hi, false, out, n);
		memcpy(out[(*n)++], mth[lo][lo + k], 32);
	}
}

/* Counts failures in one group of checks and describes the first few. */
struct tally {
	unsigned fails;
};

__attribute__((format(printf, 3, 4))) static void
check(struct tally *t, bool cond, const char *fmt, ...)
{
	va_list ap;

	if (cond)
		return;
	if (t->fails++ < 3) {
		printf("#   ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
}

/* The store holds (level, i) exactly when that perfect subtree is complete. */
static bool
store_shape_ok(unsigned size)
{
	unsigned level, i;
	uint8_t h[32];

	for (level = 0; level < MAX_LEVELS; level++) {
		for (i = 0; i < MAX_LEAVES; i++) {
			bool want = ((uint64_t)(i + 1) << level) <= size;

			if (tree.have[level][i] != want)
				return false;
			if (!want)
				continue;
			if (level == 0 && memcmp(tree.node[0][i], leaves[i], 32) != 0)
				return false;
			if (level > 0) {
				cs_merkle_node_hash(tree.node[level - 1][2 * i],
				    tree.node[level - 1][2 * i + 1], h);
				if (memcmp(h, tree.node[level][i], 32) != 0)
					return false;
			}
		}
	}
	return true;
}

static void
check_inclusion(unsigned n, struct tally *t)
{
	uint8_t proof[CS_MERKLE_MAX_PROOF + 1][32], want[CS_MERKLE_MAX_PROOF][32];
	const uint8_t *root = mth[0][n];
	size_t count, wcount;
	unsigned i;
	int rc;

	for (i = 0; i < n; i++) {
		wcount = 0;
		ref_path(i, 0, n, want, &wcount);
		tree.gets = 0;
		rc = cs_merkle_inclusion_proof(mem_get, &tree, i, n, proof, &count);
		check(t, rc == 0, "inclusion_proof(%u, %u) = %d", i, n, rc);
		if (rc != 0)
			continue;
		check(t, tree.gets <= 2 * bit_len(n), "inclusion_proof(%u, %u) took %u gets", i, n,
		    tree.gets);
		check(t, same_proof(CPROOF(proof), count, CPROOF(want), wcount),
		    "inclusion_proof(%u, %u) is not RFC PATH", i, n);
		rc = cs_merkle_verify_inclusion(i, n, leaves[i], CPROOF(proof), count, root);
		check(t, rc == 0, "verify_inclusion(%u, %u) = %d", i, n, rc);
		if (n > 1) {
			rc = cs_merkle_verify_inclusion(
			    (i + 1) % n, n, leaves[i], CPROOF(proof), count, root);
			check(t, rc == CS_EPROOF, "verify_inclusion at wrong index %u of %u = %d",
			    (i + 1) % n, n, rc);
			rc = cs_merkle_verify_inclusion(
			    i, n, leaves[(i + 1) % n], CPROOF(proof), count, root);
			check(t, rc == CS_EPROOF, "verify_inclusion(%u, %u) of the wrong leaf = %d",
			    i, n, rc);
			rc = cs_merkle_verify_inclusion(
			    i, n, leaves[i], CPROOF(proof), count - 1, root);
			check(t, rc == CS_EPROOF, "verify_inclusion(%u, %u) truncated = %d", i, n,
			    rc);
			/* One flipped bit, in a different hash and bit from case to case. */
			proof[i % count][(i * 7 + n) % 32] ^= (uint8_t)(1u << (i % 8));
			rc = cs_merkle_verify_inclusion(
			    i, n, leaves[i], CPROOF(proof), count, root);
			check(t, rc == CS_EPROOF,
			    "verify_inclusion(%u, %u) with a flipped bit = %d", i, n, rc);
			proof[i % count][(i * 7 + n) % 32] ^= (uint8_t)(1u << (i % 8));
		}
		memcpy(proof[count], root, 32);
		rc = cs_merkle_verify_inclusion(i, n, leaves[i], CPROOF(proof), count + 1, root);
		check(t, rc == CS_EPROOF, "verify_inclusion(%u, %u) with a trailing hash = %d", i,
		    n, rc);
	}
	rc = cs_merkle_inclusion_proof(mem_get, &tree, n, n, proof, &count);
	check(t, rc == -EINVAL, "inclusion_proof(%u, %u) = %d", n, n, rc);
	rc = cs_merkle_verify_inclusion(n, n, leaves[0], CPROOF(proof), 0, root);
	check(t, rc == -EINVAL, "verify_inclusion(%u, %u) = %d", n, n, rc);
}

static void
check_consistency(unsigned n, struct tally *t)
{
	uint8_t proof[CS_MERKLE_MAX_PROOF + 1][32], want[CS_MERKLE_MAX_PROOF][32], bad[32];
	const uint8_t *root2 = mth[0][n];
	size_t count, wcount;
	unsigned m;
	int rc;

	for (m = 1; m <= n; m++) {
		const uint8_t *root1 = mth[0][m];

		wcount = 0;
		ref_subproof(m, 0, n, true, want, &wcount);
		tree.gets = 0;
		rc = cs_merkle_consistency_proof(mem_get, &tree, m, n, proof, &count);
		check(t, rc == 0, "consistency_proof(%u, %u) = %d", m, n, rc);
		if (rc != 0)
			continue;
		check(t, tree.gets <= 2 * bit_len(n) + 1, "consistency_proof(%u, %u) took %u gets",
		    m, n, tree.gets);
		check(t, same_proof(CPROOF(proof), count, CPROOF(want), wcount),
		    "consistency_proof(%u, %u) is not RFC PROOF", m, n);
		rc = cs_merkle_verify_consistency(m, n, root1, root2, CPROOF(proof), count);
		check(t, rc == 0, "verify_consistency(%u, %u) = %d", m, n, rc);
		memcpy(bad, root1, 32);
		bad[m % 32] ^= 0x80;
		rc = cs_merkle_verify_consistency(m, n, bad, root2, CPROOF(proof), count);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) with a bad root1 = %d", m, n,
		    rc);
		memcpy(bad, root2, 32);
		bad[n % 32] ^= 0x01;
		rc = cs_merkle_verify_consistency(m, n, root1, bad, CPROOF(proof), count);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) with a bad root2 = %d", m, n,
		    rc);
		memcpy(proof[count], root2, 32);
		rc = cs_merkle_verify_consistency(m, n, root1, root2, CPROOF(proof), count + 1);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) with a trailing hash = %d", m,
		    n, rc);
		if (m == n)
			continue;
		rc = cs_merkle_verify_consistency(
		    m + 1, n, mth[0][m + 1], root2, CPROOF(proof), count);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) given the proof for %u = %d",
		    m + 1, n, m, rc);
		rc = cs_merkle_verify_consistency(m, n, root1, root2, CPROOF(proof), count - 1);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) truncated = %d", m, n, rc);
		proof[m % count][(m * 5 + n) % 32] ^= (uint8_t)(1u << (n % 8));
		rc = cs_merkle_verify_consistency(m, n, root1, root2, CPROOF(proof), count);
		check(t, rc == CS_EPROOF, "verify_consistency(%u, %u) with a flipped bit = %d", m,
		    n, rc);
	}
	rc = cs_merkle_consistency_proof(mem_get, &tree, 0, n, proof, &count);
	check(t, rc == -EINVAL, "consistency_proof(0, %u) = %d", n, rc);
	rc = cs_merkle_consistency_proof(mem_get, &tree, n + 1, n, proof, &count);
	check(t, rc == -EINVAL, "consistency_proof(%u, %u) = %d", n + 1, n, rc);
	rc = cs_merkle_verify_consistency(0, n, mth[0][0], root2, CPROOF(proof), 0);
	check(t, rc == -EINVAL, "verify_consistency(0, %u) = %d", n, rc);
	rc = cs_merkle_verify_consistency(n + 1, n, root2, root2, CPROOF(proof), 0);
	check(t, rc == -EINVAL, "verify_consistency(%u, %u) = %d", n + 1, n, rc);
}

static void
test_trees(void)
{
	struct cs_merkle_stream s;
	uint8_t h[32];
	unsigned n;
	int rc;

	build_reference();
	cs_merkle_stream_init(&s);
	for (n = 1; n <= MAX_LEAVES; n++) {
		struct tally tr = { 0 }, ti = { 0 }, tc = { 0 };

		rc = cs_merkle_append(mem_get, mem_put, &tree, n - 1, leaves[n - 1]);
		check(&tr, rc == 0, "append(%u) = %d", n - 1, rc);
		check(&tr, store_shape_ok(n), "store does not hold the perfect subtrees of %u", n);
		tree.gets = 0;
		rc = cs_merkle_root(mem_get, &tree, n, h);
		check(&tr, rc == 0 && memcmp(h, mth[0][n], 32) == 0, "root(%u) is not MTH", n);
		check(&tr, tree.gets <= bit_len(n), "root(%u) took %u gets", n, tree.gets);
		rc = cs_merkle_stream_push(&s, leaves[n - 1]);
		check(&tr, rc == 0, "stream_push = %d", rc);
		rc = cs_merkle_stream_root(&s, h);
		check(
		    &tr, rc == 0 && memcmp(h, mth[0][n], 32) == 0, "stream root(%u) is not MTH", n);
		ok(tr.fails == 0, "size %u: append, root and stream root", n);

		check_inclusion(n, &ti);
		ok(ti.fails == 0,
		    "size %u: inclusion proofs are RFC PATH, verify, reject tampering", n);
		check_consistency(n, &tc);
		ok(tc.fails == 0,
		    "size %u: consistency proofs are RFC PROOF, verify, reject tampering", n);
	}
}

/* --- Sizes near 2^64 ---------------------------------------------------- */

/* A tree whose leaves are all equal: every subtree at a level has one hash. */
static uint8_t uni[64][32];
static unsigned uni_bad_gets;

static int
uni_get(void *ctx, unsigned level, uint64_t index, uint8_t out[32])
{
	(void)ctx;
	if (level >= 64 || index > (UINT64_MAX >> level)) {
		uni_bad_gets++;
		return -ERANGE;
	}
	memcpy(out, uni[level], 32);
	return 0;
}

/* MTH of n equal leaves, by the RFC recursion. */
static void
uni_mth(uint64_t n, uint8_t out[32])
{
	uint8_t right[32];
	uint64_t k;

	if ((n & (n - 1)) == 0) {
		memcpy(out, uni[bit_len(n) - 1], 32);
		return;
	}
	k = split_point(n);
	uni_mth(n - k, right);
	cs_merkle_node_hash(uni[bit_len(k) - 1], right, out);
}

static void
test_huge(void)
{
	static const struct {
		uint64_t index, size;
		size_t count;
	} incl[] = {
		{ 0, UINT64_MAX, 64 },
		{ UINT64_MAX - 1, UINT64_MAX, 63 },
		{ UINT64_MAX - 2, UINT64_MAX, 64 },
		{ UINT64_C(1) << 63, (UINT64_C(1) << 63) + 1, 1 },
		{ (UINT64_C(1) << 63) - 1, UINT64_C(1) << 63, 63 },
	};
	static const struct {
		uint64_t m, n;
		size_t count;
	} cons[] = {
		{ 3, UINT64_MAX, CS_MERKLE_MAX_PROOF }, /* the longest proof there is */
		{ 1, UINT64_MAX, 64 },
		{ UINT64_C(1) << 63, UINT64_MAX, 1 },
		{ UINT64_MAX - 1, UINT64_MAX, 64 },
		{ (UINT64_C(1) << 63) - 1, UINT64_MAX, 65 },
		{ (UINT64_C(1) << 63) + 1, UINT64_MAX, 65 },
		{ UINT64_MAX, UINT64_MAX, 0 },
	};
	uint8_t proof[CS_MERKLE_MAX_PROOF][32], r1[32], r2[32], h[32];
	struct cs_merkle_stream s;
	size_t count, i;
	unsigned level;
	int rc;

	cs_merkle_leaf_hash("same", 4, uni[0]);
	for (level = 1; level < 64; level++)
		cs_merkle_node_hash(uni[level - 1], uni[level - 1], uni[level]);

	uni_mth(UINT64_MAX, r2);
	is_int(cs_merkle_root(uni_get, NULL, UINT64_MAX, h), 0, "root of 2^64 - 1 leaves");
	ok(memcmp(h, r2, 32) == 0, "root of 2^64 - 1 equal leaves is MTH");
	for (i = 0; i < sizeof(incl) / sizeof(incl[0]); i++) {
		count = 0;
		uni_mth(incl[i].size, r2);
		rc = cs_merkle_inclusion_proof(
		    uni_get, NULL, incl[i].index, incl[i].size, proof, &count);
		is_int(rc, 0, "inclusion_proof(%#llx, %#llx)", (unsigned long long)incl[i].index,
		    (unsigned long long)incl[i].size);
		is_int(count, incl[i].count, "... has %zu hashes", incl[i].count);
		is_int(cs_merkle_verify_inclusion(
			   incl[i].index, incl[i].size, uni[0], CPROOF(proof), count, r2),
		    0, "... and verifies");
	}
	for (i = 0; i < sizeof(cons) / sizeof(cons[0]); i++) {
		count = 0;
		uni_mth(cons[i].m, r1);
		uni_mth(cons[i].n, r2);
		rc = cs_merkle_consistency_proof(
		    uni_get, NULL, cons[i].m, cons[i].n, proof, &count);
		is_int(rc, 0, "consistency_proof(%#llx, %#llx)", (unsigned long long)cons[i].m,
		    (unsigned long long)cons[i].n);
		is_int(count, cons[i].count, "... has %zu hashes", cons[i].count);
		is_int(cs_merkle_verify_consistency(
			   cons[i].m, cons[i].n, r1, r2, CPROOF(proof), count),
		    0, "... and verifies");
	}
	is_int(uni_bad_gets, 0, "no get() outside the 64-bit leaf space");

	is_int(cs_merkle_verify_inclusion(UINT64_MAX, UINT64_MAX, uni[0], CPROOF(proof), 0, r2),
	    -EINVAL, "verify_inclusion: index == size");
	is_int(cs_merkle_verify_inclusion(0, 0, uni[0], CPROOF(proof), 0, r2), -EINVAL,
	    "verify_inclusion: size 0");
	is_int(cs_merkle_verify_consistency(0, 0, r2, r2, CPROOF(proof), 0), -EINVAL,
	    "verify_consistency: from size 0 to size 0");
	is_int(cs_merkle_inclusion_proof(uni_get, NULL, 0, 0, proof, &count), -EINVAL,
	    "inclusion_proof: size 0");

	/* Ranges must be aligned as RFC 9162's split makes them. */
	is_int(cs_merkle_range_hash(uni_get, NULL, 4, 7, h), 0, "range_hash [4, 7)");
	uni_mth(3, r1);
	ok(memcmp(h, r1, 32) == 0, "range_hash [4, 7) is MTH of 3 leaves");
	is_int(
	    cs_merkle_range_hash(uni_get, NULL, 2, 5, h), -EINVAL, "range_hash [2, 5): unaligned");
	is_int(
	    cs_merkle_range_hash(uni_get, NULL, 1, 3, h), -EINVAL, "range_hash [1, 3): unaligned");
	is_int(cs_merkle_range_hash(uni_get, NULL, 5, 5, h), -EINVAL, "range_hash [5, 5): empty");
	is_int(cs_merkle_range_hash(uni_get, NULL, 1, UINT64_MAX, h), -EINVAL,
	    "range_hash [1, 2^64 - 1): unaligned");

	is_int(cs_merkle_append(uni_get, NULL, NULL, UINT64_MAX, uni[0]), -EOVERFLOW,
	    "append: no leaf 2^64 - 1");
	cs_merkle_stream_init(&s);
	s.size = UINT64_MAX;
	is_int(cs_merkle_stream_push(&s, uni[0]), -EOVERFLOW, "stream_push: no leaf 2^64 - 1");
	ok(s.size == UINT64_MAX, "... and the stream is unchanged");
}

/* Errors from get() and put() come back unchanged, and outputs stay unwritten. */
static void
test_errors(void)
{
	uint8_t proof[CS_MERKLE_MAX_PROOF][32], h[32];
	size_t count = 12345;
	unsigned k;
	int fails = 0;

	for (k = 1; k <= 3; k++) {
		tree.fail_at = k;
		fails += cs_merkle_inclusion_proof(mem_get, &tree, 5, 100, proof, &count) != -EIO;
		tree.fail_at = k;
		fails += cs_merkle_consistency_proof(mem_get, &tree, 7, 100, proof, &count) != -EIO;
		tree.fail_at = k;
		fails += cs_merkle_root(mem_get, &tree, 127, h) != -EIO;
	}
	tree.fail_at = 0;
	is_int(fails, 0, "get() errors propagate from proofs and roots");
	is_int(count, 12345, "... and the proof count stays unwritten");

	/*
	 * Appending leaf 7 completes subtrees up to level 3: put, then get, put
	 * three times over. Fail each of those seven calls in turn.
	 */
	fails = 0;
	for (k = 1; k <= 7; k++) {
		struct mem_tree *t = calloc(1, sizeof(*t));
		unsigned i;

		if (t == NULL)
			break;
		for (i = 0; i < 7; i++)
			cs_merkle_append(mem_get, mem_put, t, i, leaves[i]);
		t->fail_at = k;
		fails += cs_merkle_append(mem_get, mem_put, t, 7, leaves[7]) != -EIO;
		free(t);
	}
	is_int(fails, 0, "get() and put() errors propagate from append");
}

int
main(void)
{
	test_basic_hashes();
	test_vectors();
	test_trees();
	test_huge();
	test_errors();
	return tap_done();
}
