/*
 * RFC 9162 Merkle tree hashing and proofs. Leaf hash = SHA-256(0x00 || leaf),
 * node hash = SHA-256(0x01 || left || right), the empty tree's root is
 * SHA-256(""). The tree is stored as the hashes of its perfect subtrees:
 * node (level L, index i) covers leaves [i * 2^L, (i + 1) * 2^L). Callers
 * provide those hashes through a getter (the catalog keeps them in LMDB), so
 * roots and proofs cost O(log n) lookups per subtree range.
 * Pure computation: no I/O and no allocation of our own, thread-safe. Hashing
 * goes through OpenSSL, which allocates a digest context and can fail, so
 * every function that hashes returns 0 or a negative error (CS_ECRYPTO,
 * -ENOMEM) and leaves its outputs unwritten on failure.
 */
#ifndef CUSTOS_MERKLE_H
#define CUSTOS_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define CS_HASH_LEN 32
/*
 * Enough for any 64-bit tree size: an inclusion proof has at most 64 hashes,
 * a consistency proof at most 65 (e.g. from size 3 to size 2^64 - 1).
 */
#define CS_MERKLE_MAX_PROOF 65

/* Returns the hash of perfect subtree (level, index) in `out`, 0 or < 0. */
typedef int (*cs_merkle_get_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);
/* Stores the hash of perfect subtree (level, index); 0 or < 0. */
typedef int (*cs_merkle_put_fn)(void *ctx, unsigned level, uint64_t index, const uint8_t h[32]);

/* SHA-256(0x00 || data) and SHA-256(0x01 || left || right); 0, CS_ECRYPTO or -ENOMEM. */
int cs_merkle_leaf_hash(const void *data, size_t len, uint8_t out[32]);
int cs_merkle_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);

/*
 * Records leaf `index` (which must equal the current tree size) with hash
 * `leaf`: calls put() for (0, index) and for every perfect subtree that the
 * leaf completes, reading siblings with get(). Returns 0 or the first error.
 */
int cs_merkle_append(cs_merkle_get_fn get, cs_merkle_put_fn put, void *ctx, uint64_t index,
    const uint8_t leaf[32]);

/*
 * MTH(D[lo:hi]) for 0 <= lo < hi, lo aligned as RFC 9162 ranges are (lo is a
 * multiple of the smallest power of two >= hi - lo); -EINVAL otherwise.
 */
int cs_merkle_range_hash(cs_merkle_get_fn get, void *ctx, uint64_t lo, uint64_t hi,
    uint8_t out[32]);
/* Root of the first `size` leaves (size 0: SHA-256 of the empty string). */
int cs_merkle_root(cs_merkle_get_fn get, void *ctx, uint64_t size, uint8_t out[32]);

/*
 * Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162
 * 2.1.3.1). Writes up to CS_MERKLE_MAX_PROOF hashes to `proof` and their
 * count to `*count`. -EINVAL if index >= size, or an error from get().
 */
int cs_merkle_inclusion_proof(cs_merkle_get_fn get, void *ctx, uint64_t index, uint64_t size,
    uint8_t proof[][32], size_t *count);
/*
 * Consistency proof from size m to size n, 0 < m <= n (RFC 9162 2.1.4.1);
 * empty when m == n. -EINVAL for other sizes, or an error from get().
 */
int cs_merkle_consistency_proof(cs_merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
    uint8_t proof[][32], size_t *count);

/*
 * RFC 9162 2.1.3.2: 0 if the proof verifies, CS_EPROOF if not, -EINVAL if
 * index >= size, or a hashing error.
 */
int cs_merkle_verify_inclusion(uint64_t index, uint64_t size, const uint8_t leaf[32],
    const uint8_t proof[][32], size_t count, const uint8_t root[32]);
/*
 * RFC 9162 2.1.4.2: 0 if the proof verifies, CS_EPROOF if not, -EINVAL if
 * m == 0 or m > n, or a hashing error. For m == n the proof must be empty and
 * the roots equal.
 */
int cs_merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root1[32],
    const uint8_t root2[32], const uint8_t proof[][32], size_t count);

/*
 * A streaming root computer for re-hashing a whole ledger in one pass with
 * O(log n) memory: push leaf hashes in order, ask for the root at any size.
 * push returns 0, CS_ECRYPTO or -ENOMEM (the stream is unchanged on failure),
 * or -EOVERFLOW once 2^64 - 1 leaves are in; root returns 0 or an error.
 */
struct cs_merkle_stream {
	uint64_t size;
	uint8_t stack[64][32]; /* stack[k]: perfect subtree for bit k of size */
};
void cs_merkle_stream_init(struct cs_merkle_stream *s);
int cs_merkle_stream_push(struct cs_merkle_stream *s, const uint8_t leaf[32]);
int cs_merkle_stream_root(const struct cs_merkle_stream *s, uint8_t out[32]);

#endif
