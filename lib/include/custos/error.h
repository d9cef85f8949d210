/*
 * custos error codes. Every function in lib/ returns 0 (or a non-negative
 * count) on success and a negative value on failure: either a negated errno
 * value (-ENOENT, -EIO, ...) or one of custos's own codes below, which live in
 * a range of their own so that the two never collide. cs_strerror() turns
 * either kind into a sentence for a person.
 */
#ifndef CUSTOS_ERROR_H
#define CUSTOS_ERROR_H

enum {
	CS_ENOTFOUND = -20001, /* no such record, event or item */
	CS_EFORMAT = -20002,   /* malformed input: JSON, note, proof, key, name */
	CS_EDIGEST = -20003,   /* stored bytes do not match their digest */
	CS_ESTORE = -20004,    /* catalog damaged, missing, or an LMDB failure with no errno */
	CS_ELEDGER = -20005,   /* ledger journal damaged or inconsistent */
	CS_ESIG = -20006,      /* signature missing or does not verify */
	CS_EPROOF = -20007,    /* Merkle proof does not verify */
	CS_ECRYPTO = -20008,   /* OpenSSL failure */
	CS_ECHANGED = -20009,  /* source file changed while it was being read */
	CS_ENOTREG = -20010,   /* not a regular file (directory, FIFO, device) */
	CS_EBUSY = -20011,     /* the store is held by another writer */
	CS_EFAILED = -20012,   /* an earlier durability failure stopped the store */
	CS_EEXIST = -20013,    /* already exists (store, key) */
	CS_ECONFLICT = -20014, /* checkpoint would be inconsistent with an older one */
	CS_ELINKED = -20015,   /* source file has more than one hard link */
	CS_ESOURCE = -20016,   /* reading the source file failed (an I/O error) */
	CS_ESEALED = -20017,   /* the case file is sealed: nothing is added, removed or corrected */
	CS_EREMOTE = -20030,   /* the object store refused a request (credentials, bucket, data) */
	CS_EREMOTEIO = -20031, /* the object store could not be reached or kept failing */
	CS_EDENIED = -20018,   /* refused by an access rule (custos/access.h names it) */
	CS_EPURGED = -20032,   /* the stored copy was purged while the same bytes came in */
};

/* Returns a static sentence describing `err` (a negative code); never NULL. */
const char *cs_strerror(int err);

#endif
