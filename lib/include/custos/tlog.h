/*
 * The texts of a transparency log (lib/tlog.c), pinned to C2SP
 * tlog-checkpoint v1.0.0 and tlog-proof v1: a checkpoint's text is
 * "<origin>\n<decimal size>\n<base64 root>\n" and optional extension lines
 * (it is signed as a note, custos/note.h); a proof is "c2sp.org/tlog-proof@v1\n",
 * optional "extra <b64>\n", "index <n>\n", one base64 hash per line, a blank
 * line, then the signed checkpoint note. Parsers accept only the canonical
 * form. Pure text work: every function may run on any thread, several at
 * once. Returns are 0 or a negative code (custos/error.h) unless said.
 */
#ifndef CUSTOS_TLOG_H
#define CUSTOS_TLOG_H

#include <stddef.h>
#include <stdint.h>

struct cs_checkpoint {
	char origin[256];
	uint64_t size;
	uint8_t root[32];
};
/* Writes the checkpoint text (with trailing '\n') into buf; returns its length or < 0. */
int cs_checkpoint_format(const struct cs_checkpoint *cp, char *buf, size_t n);
/*
 * Parses checkpoint text (extension lines are allowed and ignored) into *cp
 * (the caller's storage); CS_EFORMAT if it is not one.
 */
int cs_checkpoint_parse(struct cs_checkpoint *cp, const char *text, size_t len);

struct cs_tlog_proof {
	uint64_t index;
	uint8_t *extra; /* malloc'd, may be NULL */
	size_t extra_len;
	uint8_t hashes[64][32];
	size_t count;
	char *checkpoint; /* malloc'd note text, NUL-terminated */
	size_t checkpoint_len;
};
/* The proof's text in *out (malloc'd, the caller's), *outlen its length. */
int cs_tlog_proof_format(const struct cs_tlog_proof *p, char **out, size_t *outlen);
/*
 * Parses proof text into *p (the caller's storage; on success it owns
 * malloc'd parts: release them with cs_tlog_proof_fini). CS_EFORMAT if it is
 * not one.
 */
int cs_tlog_proof_parse(struct cs_tlog_proof *p, const char *text, size_t len);
/* Frees what cs_tlog_proof_parse allocated in *p (not p itself). */
void cs_tlog_proof_fini(struct cs_tlog_proof *p);

#endif
