/*
 * RFC 9162 Merkle trees over a store of perfect subtree hashes. A tree of n
 * leaves is the left-to-right fold of the perfect subtrees given by the set
 * bits of n, so a root, a range hash or a proof needs one lookup per subtree
 * on the path instead of a pass over the leaves. Proof generation follows the
 * recursive definitions of RFC 9162 2.1.3.1 and 2.1.4.1 (walked top-down, then
 * reversed into the RFC order); verification is the bit-twiddling algorithm
 * of 2.1.3.2 and 2.1.4.2, which needs no tree at all.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "custos/error.h"
#include "custos/merkle.h"

/* Number of significant bits in x: 0 for 0, 64 for values >= 2^63. */
static unsigned
bit_len(uint64_t x)
{
	return x == 0 ? 0 : 64 - (unsigned)__builtin_clzll(x);
}

/* Index of the lowest set bit of x, which must not be 0. */
static unsigned
low_bit(uint64_t x)
{
	return (unsigned)__builtin_ctzll(x);
}

/* The largest power of two strictly less than n, for n >= 2 (RFC 9162's k). */
static uint64_t
split_point(uint64_t n)
{
	return UINT64_C(1) << (bit_len(n - 1) - 1);
}

/*
 * SHA-256 of prefix || a || b. The digest goes to a local buffer first, so
 * `out` is written only on success and may alias `a` or `b`.
 */
static int
hash3(uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int rc;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, &prefix, 1) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    EVP_DigestUpdate(ctx, b, blen) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
	    mdlen != CS_HASH_LEN) {
		rc = CS_ECRYPTO;
		goto out;
	}
	memcpy(out, md, CS_HASH_LEN);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* SHA-256 of the empty string: the root of the empty tree. */
static int
empty_root(uint8_t out[32])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest("", 0, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != CS_HASH_LEN)
		return CS_ECRYPTO;
	memcpy(out, md, CS_HASH_LEN);
	return 0;
}

int
cs_merkle_leaf_hash(const void *data, size_t len, uint8_t out[32])
{
	return hash3(0x00, data, len, "", 0, out);
}

int
cs_merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
	return hash3(0x01, left, CS_HASH_LEN, right, CS_HASH_LEN, out);
}

int
cs_merkle_append(cs_merkle_get_fn get, cs_merkle_put_fn put, void *ctx, uint64_t index,
    const uint8_t leaf[32])
{
	uint8_t h[CS_HASH_LEN], sibling[CS_HASH_LEN];
	unsigned level;
	int rc;

	/* The tree would hold 2^64 leaves, and its size no longer fits. */
	if (index == UINT64_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	rc = put(ctx, 0, index, leaf);
	if (rc < 0)
		goto out;
	memcpy(h, leaf, CS_HASH_LEN);
	/*
	 * Each trailing one bit of `index` means the new leaf ends the right half
	 * of a perfect subtree one level up. `index` has a zero bit below 64, so
	 * the loop stops there.
	 */
	for (level = 0; (index >> level) & 1; level++) {
		rc = get(ctx, level, (index >> level) - 1, sibling);
		if (rc < 0)
			goto out;
		rc = cs_merkle_node_hash(sibling, h, h);
		if (rc < 0)
			goto out;
		rc = put(ctx, level + 1, index >> (level + 1), h);
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	return rc;
}

int
cs_merkle_range_hash(cs_merkle_get_fn get, void *ctx, uint64_t lo, uint64_t hi, uint8_t out[32])
{
	uint8_t acc[CS_HASH_LEN], h[CS_HASH_LEN];
	uint64_t n, rest, mask;
	unsigned ceil_bits;
	bool have = false;
	int rc;

	if (lo >= hi) {
		rc = -EINVAL;
		goto out;
	}
	n = hi - lo;
	/*
	 * RFC ranges start at a multiple of the smallest power of two that holds
	 * them. With that alignment each perfect piece below is a stored subtree.
	 */
	ceil_bits = bit_len(n - 1);
	mask = ceil_bits == 64 ? UINT64_MAX : (UINT64_C(1) << ceil_bits) - 1;
	if ((lo & mask) != 0) {
		rc = -EINVAL;
		goto out;
	}
	/*
	 * MTH(D[lo:hi]) splits at the largest power of two below n, again and
	 * again, until only perfect subtrees are left: one per set bit of n, the
	 * highest bit leftmost. Fold them from the right: acc = node(piece, acc).
	 */
	rest = n;
	while (rest != 0) {
		unsigned b = low_bit(rest);

		rest &= rest - 1;
		/* The piece for bit b starts after the pieces for the higher bits. */
		rc = get(ctx, b, (lo + rest) >> b, h);
		if (rc < 0)
			goto out;
		if (have) {
			rc = cs_merkle_node_hash(h, acc, acc);
			if (rc < 0)
				goto out;
		} else {
			memcpy(acc, h, CS_HASH_LEN);
			have = true;
		}
	}
	memcpy(out, acc, CS_HASH_LEN);
	rc = 0;
out:
	return rc;
}

int
cs_merkle_root(cs_merkle_get_fn get, void *ctx, uint64_t size, uint8_t out[32])
{
	if (size == 0)
		return empty_root(out);
	return cs_merkle_range_hash(get, ctx, 0, size, out);
}

/* Copies the n hashes of `path` into `proof` in reverse order. */
static void
reverse_into(uint8_t proof[][32], const uint8_t path[][32], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		memcpy(proof[i], path[n - 1 - i], CS_HASH_LEN);
}

int
cs_merkle_inclusion_proof(cs_merkle_get_fn get, void *ctx, uint64_t index, uint64_t size,
    uint8_t proof[][32], size_t *count)
{
	/*
	 * The walk below halves the power of two that bounds the range on every
	 * step, starting from at most 2^64, so it records at most 64 hashes.
	 */
	uint8_t path[CS_MERKLE_MAX_PROOF][CS_HASH_LEN];
	uint64_t lo = 0, hi = size, k;
	size_t n = 0;
	int rc;

	if (index >= size) {
		rc = -EINVAL;
		goto out;
	}
	/*
	 * PATH(m, D[lo:hi]) descends into the half that holds the leaf and adds
	 * the other half's hash after the deeper part of the path. Walking from
	 * the root finds the siblings in the reverse of the RFC order.
	 */
	while (hi - lo > 1) {
		k = split_point(hi - lo);
		if (index < lo + k) {
			rc = cs_merkle_range_hash(get, ctx, lo + k, hi, path[n]);
			hi = lo + k;
		} else {
			rc = cs_merkle_range_hash(get, ctx, lo, lo + k, path[n]);
			lo += k;
		}
		if (rc < 0)
			goto out;
		n++;
	}
	reverse_into(proof, (const uint8_t(*)[32])path, n);
	*count = n;
	rc = 0;
out:
	return rc;
}

int
cs_merkle_consistency_proof(cs_merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
    uint8_t proof[][32], size_t *count)
{
	/*
	 * At most 64 halving steps as in the inclusion proof, plus the hash of
	 * the old tree's last subtree: 65, which is CS_MERKLE_MAX_PROOF.
	 */
	uint8_t path[CS_MERKLE_MAX_PROOF][CS_HASH_LEN];
	uint64_t lo = 0, hi = n, k;
	size_t cnt = 0;
	int rc;

	if (m == 0 || m > n) {
		rc = -EINVAL;
		goto out;
	}
	/*
	 * SUBPROOF(m, D[lo:hi], b) recurses into the half that holds the old
	 * tree's right edge (m, an absolute leaf count here) and adds the other
	 * half's hash after the deeper part, until the range ends exactly at m.
	 */
	while (m != hi) {
		k = split_point(hi - lo);
		if (m - lo <= k) {
			rc = cs_merkle_range_hash(get, ctx, lo + k, hi, path[cnt]);
			hi = lo + k;
		} else {
			rc = cs_merkle_range_hash(get, ctx, lo, lo + k, path[cnt]);
			lo += k;
		}
		if (rc < 0)
			goto out;
		cnt++;
	}
	/*
	 * SUBPROOF(m, D[m], false) adds MTH(D[lo:m]), the verifier's starting
	 * point. SUBPROOF's flag b stays true until the walk first turns right,
	 * that is while lo == 0: then D[lo:m] is the whole old tree, whose hash
	 * the verifier already has (root1), so the RFC leaves it out.
	 */
	if (lo != 0) {
		rc = cs_merkle_range_hash(get, ctx, lo, hi, path[cnt]);
		if (rc < 0)
			goto out;
		cnt++;
	}
	reverse_into(proof, (const uint8_t(*)[32])path, cnt);
	*count = cnt;
	rc = 0;
out:
	return rc;
}

int
cs_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
    const uint8_t proof[][32], size_t count, const uint8_t root[32])
{
	uint8_t r[CS_HASH_LEN];
	uint64_t fn, sn;
	size_t i;
	int rc;

	if (index >= size) {
		rc = -EINVAL;
		goto out;
	}
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, CS_HASH_LEN);
	for (i = 0; i < count; i++) {
		/* The path is longer than the tree is deep. */
		if (sn == 0) {
			rc = CS_EPROOF;
			goto out;
		}
		if ((fn & 1) || fn == sn) {
			rc = cs_merkle_node_hash(proof[i], r, r);
			if (rc < 0)
				goto out;
			/* Skip the levels where a right-edge node has no sibling. */
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			rc = cs_merkle_node_hash(r, proof[i], r);
			if (rc < 0)
				goto out;
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, CS_HASH_LEN) != 0) {
		rc = CS_EPROOF;
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
cs_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root1[32],
    const uint8_t root2[32], const uint8_t proof[][32], size_t count)
{
	uint8_t fr[CS_HASH_LEN], sr[CS_HASH_LEN];
	uint64_t fn, sn;
	size_t i;
	int rc;

	/* A consistency proof from the empty tree proves nothing: refuse it. */
	if (m == 0 || m > n) {
		rc = -EINVAL;
		goto out;
	}
	/* Equal sizes: the proof is empty and the trees are the same tree. */
	if (m == n) {
		rc = count == 0 && memcmp(root1, root2, CS_HASH_LEN) == 0 ? 0 : CS_EPROOF;
		goto out;
	}
	if (count == 0) {
		rc = CS_EPROOF;
		goto out;
	}
	/*
	 * A power-of-two old tree is a perfect subtree of the new one, so the
	 * proof omits its hash and the verifier starts from root1 (RFC 9162
	 * step 2 prepends it; indexing past it instead saves a copy).
	 */
	i = 0;
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root1, CS_HASH_LEN);
	} else {
		memcpy(fr, proof[0], CS_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, CS_HASH_LEN);
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < count; i++) {
		if (sn == 0) {
			rc = CS_EPROOF;
			goto out;
		}
		if ((fn & 1) || fn == sn) {
			rc = cs_merkle_node_hash(proof[i], fr, fr);
			if (rc < 0)
				goto out;
			rc = cs_merkle_node_hash(proof[i], sr, sr);
			if (rc < 0)
				goto out;
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			rc = cs_merkle_node_hash(sr, proof[i], sr);
			if (rc < 0)
				goto out;
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, root1, CS_HASH_LEN) != 0 || memcmp(sr, root2, CS_HASH_LEN) != 0) {
		rc = CS_EPROOF;
		goto out;
	}
	rc = 0;
out:
	return rc;
}

void
cs_merkle_stream_init(struct cs_merkle_stream *s)
{
	memset(s, 0, sizeof(*s));
}

int
cs_merkle_stream_push(struct cs_merkle_stream *s, const uint8_t leaf[32])
{
	uint8_t h[CS_HASH_LEN];
	unsigned k;
	int rc;

	if (s->size == UINT64_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	/*
	 * Adding one to the size carries through its trailing one bits; each
	 * carry merges the subtree stored for that bit with the new one. Only
	 * the last step writes to the stream, so a failed hash leaves it as it
	 * was.
	 */
	memcpy(h, leaf, CS_HASH_LEN);
	for (k = 0; (s->size >> k) & 1; k++) {
		rc = cs_merkle_node_hash(s->stack[k], h, h);
		if (rc < 0)
			goto out;
	}
	memcpy(s->stack[k], h, CS_HASH_LEN);
	s->size++;
	rc = 0;
out:
	return rc;
}

int
cs_merkle_stream_root(const struct cs_merkle_stream *s, uint8_t out[32])
{
	uint8_t acc[CS_HASH_LEN];
	uint64_t rest = s->size;
	bool have = false;
	int rc;

	if (rest == 0) {
		rc = empty_root(out);
		goto out;
	}
	/* The same right-to-left fold as cs_merkle_range_hash(), over the stack. */
	while (rest != 0) {
		unsigned b = low_bit(rest);

		rest &= rest - 1;
		if (have) {
			rc = cs_merkle_node_hash(s->stack[b], acc, acc);
			if (rc < 0)
				goto out;
		} else {
			memcpy(acc, s->stack[b], CS_HASH_LEN);
			have = true;
		}
	}
	memcpy(out, acc, CS_HASH_LEN);
	rc = 0;
out:
	return rc;
}
