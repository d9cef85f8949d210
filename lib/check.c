/*
 * Checking proofs and receipts with only the verifier key (custos/check.h):
 * the rules an outside checker applies, moved here from tools/ so the CLI
 * only prints what they find. A proof file is split at its tlog-proof@v1
 * magic lines; each part's checkpoint signature and inclusion are checked,
 * then a case file's events are folded to check its seals. A receipt's
 * signature is checked, then the signed checkpoint it carries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "custos/case.h"
#include "custos/check.h"
#include "custos/error.h"
#include "custos/merkle.h"
#include "custos/note.h"

#define PROOF_MAGIC "c2sp.org/tlog-proof@v1\n"

void
cs_check_fini(struct cs_check *c)
{
	for (size_t i = 0; i < c->n_proven; i++) {
		json_decref(c->proven[i].event);
		free(c->proven[i].extra);
	}
	free(c->proven);
	json_decref(c->receipt);
	memset(c, 0, sizeof(*c));
}

/* Keeps a checked proof's event (taking its extra bytes) in c->proven. */
static int
keep_proven(struct cs_check *c, struct cs_tlog_proof *pr, const struct cs_checkpoint *cp,
    json_t *ev)
{
	struct cs_proven *np = realloc(c->proven, (c->n_proven + 1) * sizeof(*np));
	struct cs_proven *e;

	if (np == NULL)
		return -ENOMEM;
	c->proven = np;
	e = &np[c->n_proven++];
	memcpy(e->origin, cp->origin, sizeof(e->origin));
	e->tree_size = cp->size;
	e->index = pr->index;
	e->event = json_incref(ev);
	e->extra = pr->extra;
	e->extra_len = pr->extra_len;
	pr->extra = NULL;
	return 0;
}

int
cs_check_proofs(const char *text, size_t len, const char *vkey, struct cs_check *out)
{
	struct cs_verifier *v = NULL;
	json_t *events = json_array(), *groups = json_object();
	const char *p = text, *end = text + len;
	int rc = 0, n = 0, keyless = 0;

	memset(out, 0, sizeof(*out));
	out->status = CS_CHECK_OK;
	if (events == NULL || groups == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (cs_verifier_parse(&v, vkey, strlen(vkey)) < 0) {
		out->status = CS_CHECK_BADKEY;
		goto out;
	}
	while (p < end) {
		struct cs_tlog_proof pr = {0};
		struct cs_checkpoint cp;
		const char *next = p + 1;
		uint8_t leaf[32];
		size_t tl;
		json_t *ev;
		int r;

		/* the next proof starts at a line that is the magic line */
		while (next < end) {
			next = memmem(next, (size_t)(end - next), "\n" PROOF_MAGIC,
			    sizeof(PROOF_MAGIC));
			if (next == NULL) {
				next = end;
				break;
			}
			next++;
			break;
		}
		out->part = (size_t)n + 1;
		if (cs_tlog_proof_parse(&pr, p, (size_t)(next - p)) < 0) {
			out->status = CS_CHECK_MALFORMED;
			goto out;
		}
		r = cs_note_verify(v, pr.checkpoint, pr.checkpoint_len, &tl);
		if (r < 0) {
			out->status = CS_CHECK_SIGNATURE;
			cs_tlog_proof_fini(&pr);
			goto out;
		}
		if (cs_checkpoint_parse(&cp, pr.checkpoint, tl) < 0 || pr.extra == NULL) {
			out->status = CS_CHECK_CHECKPOINT;
			cs_tlog_proof_fini(&pr);
			goto out;
		}
		r = cs_merkle_leaf_hash(pr.extra, pr.extra_len, leaf);
		if (r == 0)
			r = cs_merkle_verify_inclusion(pr.index, cp.size, leaf,
			    (const uint8_t(*)[32])pr.hashes, pr.count, cp.root);
		if (r < 0) {
			out->status = CS_CHECK_INCLUSION;
			cs_tlog_proof_fini(&pr);
			goto out;
		}
		ev = json_loadb((const char *)pr.extra, pr.extra_len, 0, NULL);
		if (ev != NULL) {
			const char *k = json_string_value(json_object_get(ev, "key"));
			const char *num = json_string_value(json_object_get(
			    json_object_get(ev, json_object_get(ev, "item") ? "item" : "sighting"),
			    "case"));
			char *key = NULL;
			json_t *g;
			if (k != NULL)
				key = strdup(k);
			else if (num != NULL && cs_case_key(num, &key) < 0)
				key = NULL;
			/* the events of each case file, in ledger order, for its seals */
			g = key != NULL ? json_object_get(groups, key) : NULL;
			if (key != NULL && g == NULL && json_object_set_new(groups, key,
			                                    g = json_array()) < 0)
				g = NULL;
			if (key != NULL && (g == NULL || json_array_append(g, ev) < 0)) {
				free(key);
				json_decref(ev);
				cs_tlog_proof_fini(&pr);
				rc = -ENOMEM;
				goto out;
			}
			keyless += key == NULL;
			free(key);
			json_array_append(events, ev);
			if (json_string_value(json_object_get(ev, "event")) != NULL &&
			    strcmp(json_string_value(json_object_get(ev, "event")),
			        "case-seal") == 0)
				out->seals++;
		}
		rc = keep_proven(out, &pr, &cp, ev);
		json_decref(ev);
		cs_tlog_proof_fini(&pr);
		if (rc < 0)
			goto out;
		n++;
		p = next;
	}
	out->part = 0;
	if (n == 0) {
		out->status = CS_CHECK_MALFORMED;
		goto out;
	}
	/*
	 * Every seal among the events must match the members that the events of
	 * its case before it give, so a dropped or changed membership event fails
	 * even though each event is included, whatever other events (of other
	 * cases, or of none) are put beside them. A proof whose events are all of
	 * one case file (`custos prove --case`) is reported as that case file.
	 */
	{
		const char *key;
		json_t *g;
		json_object_foreach(groups, key, g)
		{
			json_t *members = NULL, *ev;
			size_t i;
			int sealed = 0, r;
			json_array_foreach(g, i, ev)
				sealed |= json_string_value(json_object_get(ev, "event")) != NULL &&
				    strcmp(json_string_value(json_object_get(ev, "event")),
				        "case-seal") == 0;
			if (!sealed && (json_object_size(groups) > 1 || keyless > 0))
				continue;
			r = cs_case_fold(g, key, &members, &out->why);
			if (r == -ENOMEM) {
				rc = -ENOMEM;
				goto out;
			}
			if (r < 0 && out->status == CS_CHECK_OK)
				out->status = CS_CHECK_CASE;
			if (r == 0 && json_object_size(groups) == 1 && keyless == 0) {
				out->case_file = 1;
				out->members = json_array_size(members);
			}
			json_decref(members);
		}
	}
out:
	cs_verifier_free(v);
	json_decref(groups);
	json_decref(events);
	return rc;
}

int
cs_check_receipt(const char *text, size_t len, const char *vkey, struct cs_check *out)
{
	struct cs_verifier *v = NULL;
	struct cs_checkpoint cp;
	const char *note, *origin;
	json_t *r = NULL;
	size_t tl;

	memset(out, 0, sizeof(*out));
	out->status = CS_CHECK_OK;
	if (cs_verifier_parse(&v, vkey, strlen(vkey)) < 0) {
		out->status = CS_CHECK_BADKEY;
		goto out;
	}
	if (cs_note_verify(v, text, len, &tl) < 0) {
		out->status = CS_CHECK_SIGNATURE;
		goto out;
	}
	r = json_loadb(text, tl, 0, NULL);
	if (r == NULL || !json_is_array(json_object_get(r, "files"))) {
		out->status = CS_CHECK_MALFORMED;
		goto out;
	}
	/*
	 * The checkpoint inside: signed by the same key, for the receipt's
	 * origin, so the receipt's ids can be proven against the ledger later.
	 */
	note = json_string_value(json_object_get(r, "checkpoint"));
	origin = json_string_value(json_object_get(r, "origin"));
	out->status = CS_CHECK_RECEIPT_CP;
	if (note == NULL) {
		out->why = "the receipt holds no signed checkpoint";
		goto out;
	}
	if (cs_note_verify(v, note, strlen(note), &tl) < 0) {
		out->why = "the checkpoint inside the receipt is not signed by this key or was "
		           "altered";
		goto out;
	}
	if (cs_checkpoint_parse(&cp, note, tl) < 0) {
		out->why = "the checkpoint inside the receipt is malformed";
		goto out;
	}
	if (origin == NULL || strcmp(cp.origin, origin) != 0) {
		out->why =
		    "the checkpoint inside the receipt is of another origin than the receipt";
		goto out;
	}
	out->status = CS_CHECK_OK;
	out->receipt = r;
	out->gaps = json_object_get(r, "sequence_gaps");
	r = NULL;
out:
	json_decref(r);
	cs_verifier_free(v);
	return 0;
}
