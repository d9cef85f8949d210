/*
 * Signed checkpoints of the store's ledger (lib/checkpoint.c): signing a
 * new one, reading the latest, and the verifier key that checks them. The
 * formats are in custos/tlog.h and custos/note.h.
 */
#ifndef CUSTOS_CHECKPOINT_H
#define CUSTOS_CHECKPOINT_H

struct cs_store;

/*
 * Signs a checkpoint for the current tree if it grew since the last one
 * (refusing with CS_ECONFLICT if the last one is not a prefix of this tree).
 * If `note` is not NULL, *note is the latest checkpoint note (malloc'd, the
 * caller's). Returns 0, -EBADF on a reader handle, CS_EFAILED on a failed
 * store, or another negative code. Writer handle; any thread (serialised
 * with ingest by the write lock).
 */
int cs_store_checkpoint(struct cs_store *st, char **note);
/*
 * The latest validly signed checkpoint note (malloc'd, the caller's) or
 * CS_ENOTFOUND. Any handle, any thread, beside the writer.
 */
int cs_store_latest_checkpoint(struct cs_store *st, char **note);
/*
 * The verifier key text (malloc'd, the caller's; no trailing newline).
 * Any handle, any thread.
 */
int cs_store_verifier_key(struct cs_store *st, char **vkey);

#endif
