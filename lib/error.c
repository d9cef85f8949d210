/*
 * cs_strerror(): one place that turns custos's negative error codes and
 * negated errno values into text for people.
 */
#include <string.h>

#include "custos/error.h"

const char *
cs_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case CS_ENOTFOUND:
		return "not found";
	case CS_EFORMAT:
		return "malformed input";
	case CS_EDIGEST:
		return "stored bytes do not match their SHA-256 digest";
	case CS_ESTORE:
		return "the catalog is damaged or missing (`custos rebuild` makes it again from "
		       "the ledger)";
	case CS_ELEDGER:
		return "ledger journal is damaged or does not match the catalog";
	case CS_ESIG:
		return "signature missing or invalid";
	case CS_EPROOF:
		return "Merkle proof does not verify";
	case CS_ECRYPTO:
		return "cryptography library error";
	case CS_ECHANGED:
		return "file changed while it was being read";
	case CS_ENOTREG:
		return "not a regular file";
	case CS_EBUSY:
		return "store is in use by another writer";
	case CS_EFAILED:
		return "store stopped after an earlier write or fsync failure";
	case CS_EEXIST:
		return "already exists";
	case CS_ESOURCE:
		return "the source file could not be read (I/O error on the source)";
	case CS_ELINKED:
		return "file has more than one hard link";
	case CS_ESEALED:
		return "the case file is sealed: nothing may be added, removed or corrected in it";
	case CS_EREMOTE:
		return "the object store refused the request";
	case CS_EREMOTEIO:
		return "the object store could not be reached or kept failing";
	case CS_EDENIED:
		return "refused by an access rule";
	case CS_EPURGED:
		return "the stored copy of these bytes was purged while they came in: ingest the "
		       "file again";
	case CS_ECONFLICT:
		return "checkpoint would be inconsistent with an earlier one";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
