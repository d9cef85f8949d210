/*
 * Receipts: a signed note left in a recorder's folder, naming what the store
 * secured from it and carrying a checkpoint that covers it.
 */
#include <errno.h>
#include <stdlib.h>

#include "custos/error.h"
#include "custos/note.h"
#include "custos/receipt.h"
#include "store_internal.h"
#include "util.h"

int
cs_receipt_write(struct cs_store *st, int dirfd, json_t *body)
{
	char *cp = NULL, *text = NULL, *note = NULL;
	size_t len, notelen;
	int rc;

	rc = cs_store_checkpoint(st, &cp);
	if (rc < 0)
		return rc;
	/* json_string() is NULL when out of memory: the field would be left out. */
	if (json_object_set_new(body, "checkpoint", json_string(cp)) < 0 ||
	    json_object_set_new(body, "station", json_string(st->station)) < 0 ||
	    json_object_set_new(body, "origin", json_string(st->origin)) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	text = cs__json_canonical(body, &len);
	if (text == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* A note's text ends with a newline; canonical JSON has none inside. */
	{
		char *t = realloc(text, len + 2);
		if (t == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		text = t;
		text[len++] = '\n';
		text[len] = '\0';
	}
	rc = cs_note_sign(st->signer, text, len, &note, &notelen);
	if (rc < 0)
		goto out;
	CS_FAILPOINT("receipt");
	rc = cs__write_file_replace(dirfd, "CUSTOS-RECEIPT.json", note, notelen, 0444);
out:
	free(cp);
	free(text);
	free(note);
	return rc;
}
