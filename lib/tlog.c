/*
 * The texts a transparency log signs and hands out: checkpoints (C2SP
 * tlog-checkpoint v1.0.0), carried in signed notes, and offline inclusion
 * proofs (C2SP tlog-proof v1). Parsers accept exactly the canonical form
 * (see note.c). Pure text work; every function may run on several threads
 * at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custos/error.h"
#include "custos/note.h"
#include "custos/tlog.h"
#include "note_internal.h"

#define PROOF_MAGIC "c2sp.org/tlog-proof@v1"

/* Checks an origin line: non-empty, no newline, fits cs_checkpoint.origin. */
static int
origin_check(const char *s, size_t len)
{
	if (len == 0 || len >= sizeof(((struct cs_checkpoint *)NULL)->origin))
		return CS_EFORMAT;
	if (memchr(s, '\n', len) != NULL)
		return CS_EFORMAT;
	return cs__note_text_check(s, len);
}

int
cs_checkpoint_format(const struct cs_checkpoint *cp, char *buf, size_t n)
{
	char root[48];
	size_t olen = strnlen(cp->origin, sizeof(cp->origin));
	int rc, m;

	rc = origin_check(cp->origin, olen);
	if (rc < 0)
		return rc;
	rc = cs_base64_encode(cp->root, sizeof(cp->root), root, sizeof(root));
	if (rc < 0)
		return rc;
	m = snprintf(NULL, 0, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, root);
	if (m < 0)
		return -EINVAL;
	if ((size_t)m >= n)
		return -ENOBUFS;
	return snprintf(buf, n, "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size, root);
}

/*
 * `text` is the note text only (cs_note_verify's *text_len bytes), not the
 * signed note: a blank line is an empty extension line and so malformed.
 */
int
cs_checkpoint_parse(struct cs_checkpoint *cp, const char *text, size_t len)
{
	struct cs_checkpoint c;
	const char *line;
	size_t pos = 0, ll;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = cs__note_text_check(text, len);
	if (rc < 0)
		return rc;
	rc = cs__note_next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = origin_check(line, ll);
	if (rc < 0)
		return rc;
	memcpy(c.origin, line, ll);
	rc = cs__note_next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = cs__note_parse_u64(line, ll, &c.size);
	if (rc < 0)
		return rc;
	rc = cs__note_next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		return rc;
	rc = cs__note_b64_decode_exact(line, ll, c.root, sizeof(c.root));
	if (rc < 0)
		return rc;
	while (pos < len) {
		rc = cs__note_next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			return rc;
		if (ll == 0)
			return CS_EFORMAT;
	}
	*cp = c;
	return 0;
}

/*
 * The embedded checkpoint must be a well-formed signed note with a
 * well-formed checkpoint text; its signatures are the caller's to verify.
 */
static int
proof_checkpoint_check(const char *note, size_t len)
{
	struct cs_checkpoint cp;
	size_t tlen, sigs_at;
	int rc;

	rc = cs__note_split(note, len, &tlen, &sigs_at);
	if (rc < 0)
		return rc;
	return cs_checkpoint_parse(&cp, note, tlen);
}

int
cs_tlog_proof_format(const struct cs_tlog_proof *p, char **out, size_t *outlen)
{
	const size_t mlen = sizeof(PROOF_MAGIC) - 1;
	char *buf = NULL;
	size_t b64len = 0, total, off;
	int rc, m;

	if (p->count > 64 || p->checkpoint == NULL || (p->extra == NULL && p->extra_len > 0)) {
		rc = -EINVAL;
		goto out;
	}
	rc = proof_checkpoint_check(p->checkpoint, p->checkpoint_len);
	if (rc < 0)
		goto out;
	if (p->extra_len > (size_t)INT_MAX / 4 * 3) {
		rc = -EOVERFLOW;
		goto out;
	}
	if (p->extra_len > 0)
		b64len = (p->extra_len + 2) / 3 * 4;
	if (p->checkpoint_len > SIZE_MAX / 2 - b64len - 64 * 45 - 128) {
		rc = -EOVERFLOW;
		goto out;
	}
	/* Magic, extra, index (at most 20 digits), hashes, blank line, checkpoint. */
	total = mlen + 1 + (p->extra_len > 0 ? 6 + b64len + 1 : 0) + 6 + 20 + 1 + p->count * 45 +
	    1 + p->checkpoint_len + 1;
	buf = malloc(total);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(buf, PROOF_MAGIC "\n", mlen + 1);
	off = mlen + 1;
	if (p->extra_len > 0) {
		memcpy(buf + off, "extra ", 6);
		off += 6;
		rc = cs_base64_encode(p->extra, p->extra_len, buf + off, total - off);
		if (rc < 0)
			goto out;
		off += (size_t)rc;
		buf[off++] = '\n';
	}
	m = snprintf(buf + off, total - off, "index %" PRIu64 "\n", p->index);
	if (m < 0 || (size_t)m >= total - off) {
		rc = -EOVERFLOW;
		goto out;
	}
	off += (size_t)m;
	for (size_t i = 0; i < p->count; i++) {
		rc = cs_base64_encode(p->hashes[i], 32, buf + off, total - off);
		if (rc < 0)
			goto out;
		off += (size_t)rc;
		buf[off++] = '\n';
	}
	buf[off++] = '\n';
	memcpy(buf + off, p->checkpoint, p->checkpoint_len);
	off += p->checkpoint_len;
	buf[off] = '\0';
	*out = buf;
	*outlen = off;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

/*
 * On success *p is overwritten without freeing what it held, so pass a
 * zeroed or finished struct; on failure *p is untouched. An "extra" line
 * with nothing after the space is refused: the spec says to omit the line
 * when there is no extra data, so accepting it would give one proof two
 * encodings.
 */
int
cs_tlog_proof_parse(struct cs_tlog_proof *p, const char *text, size_t len)
{
	struct cs_tlog_proof q;
	const char *line;
	size_t pos = 0, ll, n;
	int rc;

	memset(&q, 0, sizeof(q));
	rc = cs__note_text_check(text, len);
	if (rc < 0)
		goto out;
	rc = cs__note_next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		goto out;
	if (ll != sizeof(PROOF_MAGIC) - 1 || memcmp(line, PROOF_MAGIC, ll) != 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	rc = cs__note_next_line(text, len, &pos, &line, &ll);
	if (rc < 0)
		goto out;
	if (ll >= 6 && memcmp(line, "extra ", 6) == 0) {
		rc = cs__note_b64_check(line + 6, ll - 6, &n);
		if (rc < 0)
			goto out;
		if (n == 0) {
			rc = CS_EFORMAT;
			goto out;
		}
		q.extra = malloc(n);
		if (q.extra == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = cs_base64_decode(line + 6, ll - 6, q.extra, n);
		if (rc < 0)
			goto out;
		q.extra_len = n;
		rc = cs__note_next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			goto out;
	}
	if (ll < 6 || memcmp(line, "index ", 6) != 0) {
		rc = CS_EFORMAT;
		goto out;
	}
	rc = cs__note_parse_u64(line + 6, ll - 6, &q.index);
	if (rc < 0)
		goto out;
	for (;;) {
		rc = cs__note_next_line(text, len, &pos, &line, &ll);
		if (rc < 0)
			goto out;
		if (ll == 0)
			break;
		if (q.count == 64) {
			rc = CS_EFORMAT;
			goto out;
		}
		rc = cs__note_b64_decode_exact(line, ll, q.hashes[q.count], 32);
		if (rc < 0)
			goto out;
		q.count++;
	}
	rc = proof_checkpoint_check(text + pos, len - pos);
	if (rc < 0)
		goto out;
	q.checkpoint = malloc(len - pos + 1);
	if (q.checkpoint == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(q.checkpoint, text + pos, len - pos);
	q.checkpoint[len - pos] = '\0';
	q.checkpoint_len = len - pos;
	*p = q;
	memset(&q, 0, sizeof(q));
	rc = 0;
out:
	cs_tlog_proof_fini(&q);
	return rc;
}

void
cs_tlog_proof_fini(struct cs_tlog_proof *p)
{
	free(p->extra);
	free(p->checkpoint);
	memset(p, 0, sizeof(*p));
}
