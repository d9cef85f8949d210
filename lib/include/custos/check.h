/*
 * Checking what custos hands out, with only the store's verifier key: a file
 * of tlog-proof@v1 proofs (`custos prove`) and a recorder's dock receipt
 * (CUSTOS-RECEIPT.json). Each check gives a structured result (status, the
 * proof or problem it concerns, what was proven) for the caller to print;
 * nothing here prints. Functions are thread-safe (no shared state).
 */
#ifndef CUSTOS_CHECK_H
#define CUSTOS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum cs_check_status {
	CS_CHECK_OK = 0,       /* all of it holds */
	CS_CHECK_BADKEY,       /* the verifier key is malformed */
	CS_CHECK_MALFORMED,    /* not a tlog-proof@v1 file / not a custos receipt */
	CS_CHECK_SIGNATURE,    /* a checkpoint or receipt is not signed by the key */
	CS_CHECK_CHECKPOINT,   /* a proof without event bytes or with a malformed checkpoint */
	CS_CHECK_INCLUSION,    /* an event is not included in the signed tree */
	CS_CHECK_CASE,         /* a case file's seal does not match its members (`why`) */
	CS_CHECK_RECEIPT_CP,   /* the checkpoint inside a receipt does not check out (`why`) */
};

/* One proof that checked out. */
struct cs_proven {
	char origin[256];    /* the signed checkpoint's origin */
	uint64_t tree_size;  /* its tree size */
	uint64_t index;      /* the event's position in the tree */
	json_t *event;       /* the event parsed, or NULL if its bytes are not JSON */
	uint8_t *extra;      /* the event's exact bytes */
	size_t extra_len;
};

struct cs_check {
	enum cs_check_status status;
	size_t part;           /* the 1-based proof a failure concerns; 0 for the whole file */
	const char *why;       /* static text: the detail of CS_CHECK_CASE and _RECEIPT_CP */
	struct cs_proven *proven; /* proofs: every proof that checked out, in file order */
	size_t n_proven;
	int case_file;         /* proofs: the events are one case file's and its seals match */
	size_t members;        /* ... with so many members at the end */
	int seals;             /* ... and so many seals among them */
	json_t *receipt;       /* receipts: the signed body once it checks out */
	const json_t *gaps;    /* receipts: its sequence_gaps ([first, last] runs) */
};

/*
 * Checks `text` (one or more tlog-proof@v1 concatenated) with the verifier
 * key `vkey`: each checkpoint's signature, each event's inclusion in its
 * signed tree, and for a case file's proofs (`custos prove --case`) every
 * seal against the members the events before it give. Returns 0 with
 * out->status saying whether it holds, or -ENOMEM; free out with
 * cs_check_fini in either case.
 */
int cs_check_proofs(const char *text, size_t len, const char *vkey, struct cs_check *out);

/*
 * Checks a dock receipt (a signed note over canonical JSON) with `vkey`: the
 * receipt's signature, its form, and the signed checkpoint inside it, which
 * must be signed by the same key for the receipt's origin. Returns 0 with
 * out->status set, or -ENOMEM; free out with cs_check_fini in either case.
 */
int cs_check_receipt(const char *text, size_t len, const char *vkey, struct cs_check *out);

/* Frees what a check result holds and zeroes it; a zeroed result is a no-op. */
void cs_check_fini(struct cs_check *c);

#endif
