/*
 * Unit tests for lib/note.c, lib/keys.c and lib/tlog.c. The published signed-note examples in
 * $CS_VECTORS/signed-notes.txt must verify, must fail after any one-byte
 * change or truncation and under any other key, and re-signing the example
 * that comes with its private key must give the published note byte for
 * byte. Then: key generation on disk, tables of malformed keys and notes,
 * checkpoint and tlog-proof round trips with malformed cases, and base64.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custos/error.h"
#include "custos/note.h"
#include "tap.h"

#define EM "\xe2\x80\x94" /* U+2014 em dash */
#define MAX_EXAMPLES 8

/* The checkpoint example from C2SP tlog-checkpoint. */
#define CP_ORIGIN "example.com/behind-the-sofa"
#define CP_ROOT "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
/* A hash from the C2SP tlog-proof example. */
#define HASH "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="

struct example {
	char *vkey;
	char *skey; /* NULL when the file gives no private key */
	char *note;
	size_t note_len;
};

static struct example examples[MAX_EXAMPLES];
static int nexamples;
static char tmpdir[256];

static char *
dup_range(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		abort();
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int
starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/*
 * Reads signed-notes.txt: '#' comment lines name what the next line holds
 * ("# verifier key", "# private key ...", "# note ..."). A note runs from the
 * line after "# note" through its last consecutive signature line, newline
 * included.
 */
static int
load_vectors(const char *path)
{
	enum { WANT_NONE, WANT_VKEY, WANT_SKEY } want = WANT_NONE;
	struct example *ex = NULL;
	const char *note_at = NULL;
	int in_note = 0, seen_sig = 0;
	size_t len = 0, pos = 0;
	char *buf;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	buf = malloc(1 << 20);
	if (buf == NULL)
		abort();
	len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[len] = '\0';

	while (pos <= len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
		size_t next = pos + ll + (nl != NULL ? 1 : 0);

		if (pos == len)
			ll = 0;
		if (in_note) {
			int sig = starts_with(line, ll, EM " ");
			if (pos < len && (!seen_sig || sig)) {
				seen_sig |= sig;
				pos = next;
				continue;
			}
			ex->note = dup_range(note_at, (size_t)(line - note_at));
			ex->note_len = (size_t)(line - note_at);
			in_note = 0;
		}
		if (pos == len)
			break;
		if (starts_with(line, ll, "# verifier key")) {
			if (nexamples == MAX_EXAMPLES)
				break;
			ex = &examples[nexamples++];
			want = WANT_VKEY;
		} else if (ex != NULL && starts_with(line, ll, "# private key")) {
			want = WANT_SKEY;
		} else if (ex != NULL && starts_with(line, ll, "# note")) {
			in_note = 1;
			seen_sig = 0;
			note_at = buf + next;
		} else if (ll > 0 && line[0] != '#') {
			if (want == WANT_VKEY)
				ex->vkey = dup_range(line, ll);
			else if (want == WANT_SKEY)
				ex->skey = dup_range(line, ll);
			want = WANT_NONE;
		}
		pos = next;
	}
	free(buf);
	return 0;
}

/* Where the signed text ends: just after the last blank line's start. */
static size_t
text_end(const char *note, size_t len)
{
	for (size_t i = len - 1; i > 0; i--) {
		if (note[i - 1] == '\n' && note[i] == '\n')
			return i;
	}
	return 0;
}

static struct cs_verifier *
verifier(const char *vkey)
{
	struct cs_verifier *v = NULL;

	if (cs_verifier_parse(&v, vkey, strlen(vkey)) < 0)
		return NULL;
	return v;
}

/* Generates a key named `name` in tmpdir and loads it. */
static struct cs_signer *
fresh_signer(const char *file, const char *name)
{
	struct cs_signer *s = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
	if (cs_signer_generate(path, name) < 0 || cs_signer_load(&s, path) < 0)
		return NULL;
	return s;
}

static void
test_example(int k)
{
	struct example *ex = &examples[k];
	struct cs_verifier *v, *other;
	struct cs_signer *fake;
	size_t tl = 0, want = text_end(ex->note, ex->note_len);
	size_t bad = 0, badtrunc = 0;
	char *copy;
	int rc;

	v = verifier(ex->vkey);
	ok(v != NULL, "example %d: verifier key parses", k);
	if (v == NULL)
		return;
	is_int(cs_note_verify(v, ex->note, ex->note_len, &tl), 0, "example %d: note verifies", k);
	is_int(tl, want, "example %d: signed text ends at the last blank line", k);

	/* Every one-byte change must be caught, including in padding bits. */
	copy = dup_range(ex->note, ex->note_len);
	for (size_t i = 0; i < ex->note_len; i++) {
		copy[i] ^= 0x01;
		rc = cs_note_verify(v, copy, ex->note_len, &tl);
		if (rc != CS_ESIG && rc != CS_EFORMAT) {
			bad++;
			printf("# byte %zu changed: rc %d\n", i, rc);
		}
		copy[i] ^= 0x01;
	}
	ok(bad == 0, "example %d: all %zu one-byte changes are rejected", k, ex->note_len);
	for (size_t n = 0; n < ex->note_len; n++) {
		rc = cs_note_verify(v, copy, n, &tl);
		if (rc != CS_ESIG && rc != CS_EFORMAT)
			badtrunc++;
	}
	ok(badtrunc == 0, "example %d: every truncation is rejected", k);

	/*
	 * xor 0x01 always changes a base64 digit's data bits, so try every
	 * digit in the signature's last place too: the ones that differ only in
	 * the unused bits decode to the same bytes and must still be refused.
	 */
	{
		static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                               "abcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t at = ex->note_len - 2; /* before the final newline */
		size_t alt = 0;
		char orig;

		while (at > 0 && copy[at] == '=')
			at--;
		orig = copy[at];
		for (size_t c = 0; c < sizeof(alphabet) - 1; c++) {
			if (alphabet[c] == orig)
				continue;
			copy[at] = alphabet[c];
			rc = cs_note_verify(v, copy, ex->note_len, &tl);
			if (rc != CS_ESIG && rc != CS_EFORMAT)
				alt++;
		}
		copy[at] = orig;
		ok(alt == 0 && at + 1 < ex->note_len - 1,
		    "example %d: no other digit in the padded last place verifies", k);
	}
	free(copy);

	other = verifier(examples[(k + 1) % nexamples].vkey);
	is_int(cs_note_verify(other, ex->note, ex->note_len, &tl), CS_ESIG,
	    "example %d: another example's key does not verify it", k);
	cs_verifier_free(other);

	/* Same name, another key: a different key ID, so the line is ignored. */
	fake = fresh_signer(k == 0 ? "same-name-0" : "same-name-n", cs_verifier_name(v));
	other = NULL;
	if (fake != NULL) {
		char *vk = NULL;
		if (cs_signer_verifier_key(fake, &vk) == 0)
			other = verifier(vk);
		free(vk);
	}
	ok(other != NULL, "example %d: made a key with the same name", k);
	if (other != NULL)
		is_int(cs_note_verify(other, ex->note, ex->note_len, &tl), CS_ESIG,
		    "example %d: a same-name key does not verify it", k);
	cs_verifier_free(other);
	cs_signer_free(fake);

	if (ex->skey != NULL) {
		struct cs_signer *s = NULL;
		char *vk = NULL, *out = NULL;
		size_t outlen = 0;

		is_int(cs_signer_parse(&s, ex->skey, strlen(ex->skey)), 0,
		    "example %d: private key parses", k);
		if (s != NULL) {
			ok(strcmp(cs_signer_name(s), cs_verifier_name(v)) == 0,
			    "example %d: private key has the verifier's name", k);
			is_int(cs_signer_verifier_key(s, &vk), 0, "example %d: verifier key", k);
			ok(vk != NULL && strcmp(vk, ex->vkey) == 0,
			    "example %d: derived verifier key equals the published one", k);
			is_int(cs_note_sign(s, ex->note, want, &out, &outlen), 0,
			    "example %d: re-signs the text", k);
			ok(out != NULL && outlen == ex->note_len &&
			        memcmp(out, ex->note, outlen) == 0 && out[outlen] == '\0',
			    "example %d: re-signed note is the published note byte for byte", k);
		}
		free(vk);
		free(out);
		cs_signer_free(s);
	}
	cs_verifier_free(v);
}

static int
count_entries(const char *dir)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static char *
slurp(const char *path, size_t *len)
{
	char *buf = malloc(4096);
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (buf == NULL)
		abort();
	n = fd >= 0 ? read(fd, buf, 4095) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void
test_generate(void)
{
	static const char *bad_names[] = {
	    "", "a b", "a+b", "a\nb", "a\tb", "a\xc2\xa0" "b", "a\xe3\x80\x80" "b", "\xff",
	    "a\xc0\xaf",
	};
	char sub[300], path[512], *before, *after, *vk = NULL, *note = NULL;
	struct cs_signer *s = NULL;
	struct cs_verifier *v = NULL;
	size_t blen = 0, alen = 0, nlen = 0, tl = 0;
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/gen", tmpdir);
	ok(mkdir(sub, 0700) == 0, "made a directory for key generation");
	snprintf(path, sizeof(path), "%s/log.key", sub);
	is_int(cs_signer_generate(path, "custos.example/log"), 0, "generates a key");
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0400,
	    "key file is a regular file with mode 0400");
	is_int(count_entries(sub), 1, "no temp file is left behind");
	before = slurp(path, &blen);
	ok(before != NULL && starts_with(before, blen, "PRIVATE+KEY+custos.example/log+") &&
	        blen > 0 && before[blen - 1] == '\n',
	    "key file holds one PRIVATE+KEY line");
	is_int(cs_signer_generate(path, "custos.example/log"), CS_EEXIST,
	    "a second generate at the same path is CS_EEXIST");
	after = slurp(path, &alen);
	ok(before != NULL && after != NULL && alen == blen && memcmp(before, after, blen) == 0,
	    "the existing key is left unchanged");
	is_int(count_entries(sub), 1, "still no temp file after CS_EEXIST");
	free(before);
	free(after);

	is_int(cs_signer_load(&s, path), 0, "loads the generated key");
	if (s != NULL) {
		ok(strcmp(cs_signer_name(s), "custos.example/log") == 0, "loaded key has its name");
		is_int(cs_signer_verifier_key(s, &vk), 0, "verifier key of the generated key");
		if (vk != NULL)
			v = verifier(vk);
		ok(v != NULL, "that verifier key parses");
		is_int(cs_note_sign(s, "hello\n", 6, &note, &nlen), 0, "signs with it");
		if (v != NULL && note != NULL) {
			is_int(cs_note_verify(v, note, nlen, &tl), 0, "round trip verifies");
			is_int(tl, 6, "round trip text length");
			note[0] ^= 0x20;
			is_int(cs_note_verify(v, note, nlen, &tl), CS_ESIG, "changed text fails");
		}
	}
	free(note);
	free(vk);
	cs_verifier_free(v);
	cs_signer_free(s);

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		char p2[600];
		snprintf(p2, sizeof(p2), "%s/bad%zu.key", sub, i);
		is_int(cs_signer_generate(p2, bad_names[i]), CS_EFORMAT, "bad key name %zu", i);
	}
	is_int(count_entries(sub), 1, "bad names create no file");

	snprintf(path, sizeof(path), "%s/missing/x.key", tmpdir);
	is_int(cs_signer_generate(path, "n"), -ENOENT, "generate into a missing directory");
	s = NULL;
	is_int(cs_signer_load(&s, path), -ENOENT, "load a missing file");
	is_int(cs_signer_load(&s, sub), CS_ENOTREG, "load a directory");
	ok(s == NULL, "*out untouched on failure");
}

/* Builds a PRIVATE+KEY or verifier line around a modified 0x01||key blob. */
static char *
rekey(const char *prefix, const char *name, const char *hex, const uint8_t *raw, size_t n)
{
	char b64[128], *out = malloc(512);

	if (out == NULL || cs_base64_encode(raw, n, b64, sizeof(b64)) < 0)
		abort();
	snprintf(out, 512, "%s%s+%s+%s", prefix, name, hex, b64);
	return out;
}

static void
test_key_parsing(void)
{
	static const char *sk = "PRIVATE+KEY+PeterNeumann+c74f20a3+"
	                        "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	static const char *vk = "PeterNeumann+c74f20a3+"
	                        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
	static const char *bad_sk[] = {
	    "",
	    "PRIVATE+KEY+",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+",
	    "private+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+PeterNeumann+c74f20a+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+PeterNeumann+0c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+PeterNeumanN+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY++c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz ",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n\n",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+ AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	};
	static const char *bad_vk[] = {
	    "",
	    "PeterNeumann",
	    "PeterNeumann+c74f20a3",
	    "PeterNeumann+c74f20a3+",
	    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	    "Peterneumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	    "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	    "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
	    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
	    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\r\n",
	    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
	};
	struct cs_signer *s = NULL;
	struct cs_verifier *v = NULL;
	uint8_t raw[40];
	const char *line;
	char *made, buf[256];
	int n;

	snprintf(buf, sizeof(buf), "%s\n", sk);
	is_int(cs_signer_parse(&s, buf, strlen(buf)), 0, "private key with its final newline");
	cs_signer_free(s);
	s = NULL;
	line = "PRIVATE+KEY+PeterNeumann+C74F20A3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	is_int(cs_signer_parse(&s, line, strlen(line)), 0, "upper-case key ID (Go accepts it)");
	cs_signer_free(s);
	s = NULL;
	for (size_t i = 0; i < sizeof(bad_sk) / sizeof(bad_sk[0]); i++)
		is_int(cs_signer_parse(&s, bad_sk[i], strlen(bad_sk[i])), CS_EFORMAT,
		    "malformed private key %zu", i);
	ok(s == NULL, "*out untouched by failed parses");

	/* Algorithm byte and length of the decoded key. */
	n = cs_base64_decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", 44, raw, sizeof(raw));
	is_int(n, 33, "private key blob is 33 bytes");
	raw[0] = 0x02;
	made = rekey("PRIVATE+KEY+", "PeterNeumann", "c74f20a3", raw, 33);
	is_int(cs_signer_parse(&s, made, strlen(made)), CS_EFORMAT, "private key of type 0x02");
	free(made);
	raw[0] = 0x01;
	made = rekey("PRIVATE+KEY+", "PeterNeumann", "c74f20a3", raw, 32);
	is_int(cs_signer_parse(&s, made, strlen(made)), CS_EFORMAT, "31-byte seed");
	free(made);
	raw[33] = 0;
	made = rekey("PRIVATE+KEY+", "PeterNeumann", "c74f20a3", raw, 34);
	is_int(cs_signer_parse(&s, made, strlen(made)), CS_EFORMAT, "33-byte seed");
	free(made);

	snprintf(buf, sizeof(buf), "%s\n", vk);
	is_int(cs_verifier_parse(&v, buf, strlen(buf)), 0, "verifier key with a final newline");
	ok(v != NULL && strcmp(cs_verifier_name(v), "PeterNeumann") == 0, "verifier name");
	cs_verifier_free(v);
	v = NULL;
	for (size_t i = 0; i < sizeof(bad_vk) / sizeof(bad_vk[0]); i++)
		is_int(cs_verifier_parse(&v, bad_vk[i], strlen(bad_vk[i])), CS_EFORMAT,
		    "malformed verifier key %zu", i);
	n = cs_base64_decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", 44, raw, sizeof(raw));
	raw[0] = 0x04;
	made = rekey("", "PeterNeumann", "c74f20a3", raw, (size_t)n);
	is_int(cs_verifier_parse(&v, made, strlen(made)), CS_EFORMAT, "verifier key of type 0x04");
	free(made);
	ok(v == NULL, "*out untouched by failed verifier parses");
}

/* Appends to a growing test buffer (tests only: aborts on overflow). */
struct sbuf {
	char b[16384];
	size_t n;
};

static void
sb_add(struct sbuf *sb, const char *s, size_t n)
{
	if (sb->n + n >= sizeof(sb->b))
		abort();
	memcpy(sb->b + sb->n, s, n);
	sb->n += n;
	sb->b[sb->n] = '\0';
}

static void
sb_str(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

static void
test_notes(void)
{
	static const char *sk = "PRIVATE+KEY+PeterNeumann+c74f20a3+"
	                        "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	static const char *vk = "PeterNeumann+c74f20a3+"
	                        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
	struct cs_signer *s = NULL;
	struct cs_verifier *v = NULL;
	char *note = NULL, sig[200], badsig[200], unknown[200], b64[128];
	size_t nlen = 0, tl = 0, siglen;
	uint8_t raw[80];
	struct sbuf sb;
	int n;

	if (cs_signer_parse(&s, sk, strlen(sk)) < 0 || cs_verifier_parse(&v, vk, strlen(vk)) < 0) {
		ok(0, "test keys parse");
		return;
	}
	is_int(cs_note_sign(s, "hello\n", 6, &note, &nlen), 0, "signs hello");
	/* sig = the signature line; badsig = the same key ID with a flipped bit. */
	siglen = nlen - 7;
	memcpy(sig, note + 7, siglen);
	sig[siglen] = '\0';
	n = cs_base64_decode(sig + 17, siglen - 18, raw, sizeof(raw));
	is_int(n, 68, "signature is key ID plus 64 bytes");
	raw[20] ^= 0x01;
	cs_base64_encode(raw, 68, b64, sizeof(b64));
	snprintf(badsig, sizeof(badsig), EM " PeterNeumann %s\n", b64);
	/* A well-formed line by a key the verifier does not know. */
	memset(raw, 0x5a, sizeof(raw));
	cs_base64_encode(raw, 68, b64, sizeof(b64));
	snprintf(unknown, sizeof(unknown), EM " other.example/key %s\n", b64);
	free(note);
	note = NULL;

	struct {
		const char *text, *sigs;
		int repeat; /* how many copies of `unknown` go first */
		int want;
	} cases[] = {
	    {"hello\n", sig, 0, 0},
	    {"hello\n", sig, 16, 0},
	    {"hello\n", sig, 99, 0},
	    {"hello\n", sig, 100, CS_EFORMAT}, /* 101 signature lines */
	    {"hello\n", "", 1, CS_ESIG},       /* only an unknown key */
	    {"hello\n", badsig, 0, CS_ESIG},
	    {"hello\n", badsig, 1, CS_ESIG},
	    {"hello\n", "", 0, CS_EFORMAT}, /* no signature lines */
	    {"hello\n\n", sig, 0, CS_ESIG}, /* signed text is "hello\n" not "hello\n\n" */
	    {"hello", sig, 0, CS_EFORMAT},
	    {"hello\r\n", sig, 0, CS_EFORMAT},
	    {"he\tllo\n", sig, 0, CS_EFORMAT},
	    {"he\xffllo\n", sig, 0, CS_EFORMAT},
	    {"he\xc0\xafllo\n", sig, 0, CS_EFORMAT},     /* overlong '/' */
	    {"he\xed\xa0\x80llo\n", sig, 0, CS_EFORMAT}, /* surrogate */
	    {"he\xf4\x90\x80\x80llo\n", sig, 0, CS_EFORMAT}, /* past U+10FFFF */
	    {"hello\n", "- PeterNeumann x\n", 0, CS_EFORMAT},
	    {"hello\n", EM "PeterNeumann AAAAAAAA\n", 0, CS_EFORMAT},
	    {"hello\n", EM " PeterNeumann  AAAAAAAA\n", 0, CS_EFORMAT},
	    {"hello\n", EM " PeterNeumann\n", 0, CS_EFORMAT},
	    {"hello\n", EM "  AAAAAAAA\n", 0, CS_EFORMAT},             /* empty name */
	    {"hello\n", EM " a+b AAAAAAAA\n", 0, CS_EFORMAT},          /* '+' in name */
	    {"hello\n", EM " a\xc2\xa0" "b AAAAAAAA\n", 0, CS_EFORMAT}, /* NBSP in name */
	    {"hello\n", EM " x AAAAAA==\n", 0, CS_EFORMAT},            /* key ID only */
	    {"hello\n", EM " x AAAAAAA=\n", 0, CS_ESIG},               /* 5 bytes: well formed */
	    {"hello\n", EM " x AAAAAAB=\n", 0, CS_EFORMAT},            /* non-canonical */
	    {"hello\n", EM " x AAAAAAA\n", 0, CS_EFORMAT},
	    {"hello\n", EM " x AAAAAAA=", 0, CS_EFORMAT},              /* no final newline */
	    {"hello\n", EM " PeterNeumann x08go/ZJ\n", 0, CS_ESIG},    /* v's ID, 6 bytes */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb.n = 0;
		sb_str(&sb, cases[i].text);
		sb_str(&sb, "\n");
		for (int r = 0; r < cases[i].repeat; r++)
			sb_str(&sb, unknown);
		sb_str(&sb, cases[i].sigs);
		tl = 12345;
		is_int(cs_note_verify(v, sb.b, sb.n, &tl), cases[i].want, "note case %zu", i);
		if (cases[i].want != 0)
			ok(tl == 12345, "note case %zu: text_len untouched", i);
	}

	/* Two good copies are fine; a good one then a bad one is not. */
	sb.n = 0;
	sb_str(&sb, "hello\n\n");
	sb_str(&sb, sig);
	sb_str(&sb, sig);
	is_int(cs_note_verify(v, sb.b, sb.n, &tl), 0, "a repeated good signature verifies");
	sb.n = 0;
	sb_str(&sb, "hello\n\n");
	sb_str(&sb, sig);
	sb_str(&sb, badsig);
	is_int(cs_note_verify(v, sb.b, sb.n, &tl), CS_ESIG, "a good and a bad signature by v");
	sb.n = 0;
	sb_str(&sb, "hello\n\n");
	sb_str(&sb, sig);
	sb_str(&sb, "\n");
	is_int(cs_note_verify(v, sb.b, sb.n, &tl), CS_EFORMAT, "blank line after signatures");
	sb.n = 0;
	sb_add(&sb, "he\0llo\n\n", 8);
	sb_str(&sb, sig);
	is_int(cs_note_verify(v, sb.b, sb.n, &tl), CS_EFORMAT, "NUL byte in the text");

	/* Text with blank lines inside signs and splits at the last one. */
	is_int(cs_note_sign(s, "a\n\nb\n\n", 6, &note, &nlen), 0, "signs text with blank lines");
	if (note != NULL) {
		is_int(cs_note_verify(v, note, nlen, &tl), 0, "it verifies");
		is_int(tl, 6, "its text length includes the blank lines");
		free(note);
		note = NULL;
	}
	is_int(cs_note_sign(s, "\n", 1, &note, &nlen), 0, "signs a text that is one newline");
	if (note != NULL) {
		is_int(cs_note_verify(v, note, nlen, &tl), 0, "it verifies");
		is_int(tl, 1, "its text length is 1");
		free(note);
		note = NULL;
	}
	/* A signed note signed again: the older signature becomes text. */
	{
		static const char *inner = "hello\n\n" EM " x AAAAAAA=\n";
		is_int(cs_note_sign(s, inner, strlen(inner), &note, &nlen), 0, "signs a note");
		ok(note == NULL || cs_note_verify(v, note, nlen, &tl) == 0, "it verifies");
		ok(note == NULL || tl == strlen(inner), "the inner note is the text");
	}
	if (note != NULL) {
		free(note);
		note = NULL;
	}

	is_int(cs_note_sign(s, "", 0, &note, &nlen), CS_EFORMAT, "sign: empty text");
	is_int(cs_note_sign(s, "hello", 5, &note, &nlen), CS_EFORMAT, "sign: no final newline");
	is_int(cs_note_sign(s, "he\tllo\n", 7, &note, &nlen), CS_EFORMAT, "sign: tab");
	is_int(cs_note_sign(s, "he\xffllo\n", 7, &note, &nlen), CS_EFORMAT, "sign: bad UTF-8");
	ok(note == NULL, "sign: *out untouched on failure");

	cs_signer_free(s);
	cs_verifier_free(v);
}

static void
test_checkpoints(void)
{
	static const char *good_text = CP_ORIGIN "\n20852163\n" CP_ROOT "\n";
	static const struct {
		const char *text;
		int want;
	} cases[] = {
	    {CP_ORIGIN "\n20852163\n" CP_ROOT "\n", 0},
	    {CP_ORIGIN "\n0\n" CP_ROOT "\n", 0},
	    {CP_ORIGIN "\n18446744073709551615\n" CP_ROOT "\n", 0},
	    {CP_ORIGIN "\n1\n" CP_ROOT "\next one\n\xc3\xa9xt two\n", 0},
	    {"a b+c\n1\n" CP_ROOT "\n", 0}, /* spaces and '+' are only discouraged */
	    {CP_ORIGIN "\n01\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n00\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n+1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n-1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n 1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1 \n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n0x10\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n18446744073709551616\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n" CP_ROOT, CS_EFORMAT},
	    {"\n1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n\n", CS_EFORMAT},
	    {CP_ORIGIN "\n", CS_EFORMAT},
	    {"", CS_EFORMAT},
	    {CP_ORIGIN "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n", CS_EFORMAT}, /* 31 */
	    {CP_ORIGIN "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n", CS_EFORMAT}, /* 33 */
	    {CP_ORIGIN "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62\n",
	        CS_EFORMAT}, /* hex */
	    {CP_ORIGIN "\n1\n" CP_ROOT "\n\n", CS_EFORMAT},     /* empty extension line */
	    {CP_ORIGIN "\n1\n" CP_ROOT "\next\n\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n" CP_ROOT "\next", CS_EFORMAT},
	    {CP_ORIGIN "\r\n1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\r\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\xff\n1\n" CP_ROOT "\n", CS_EFORMAT},
	    {CP_ORIGIN "\n1\n" CP_ROOT "\n\n" EM " x AAAAAAA=\n", CS_EFORMAT}, /* a whole note */
	};
	struct cs_checkpoint cp, back;
	char buf[512], longer[600];
	int n;

	memset(&cp, 0, sizeof(cp));
	memcpy(cp.origin, CP_ORIGIN, sizeof(CP_ORIGIN));
	cp.size = 20852163;
	is_int(cs_base64_decode(CP_ROOT, 44, cp.root, sizeof(cp.root)), 32, "spec root decodes");
	n = cs_checkpoint_format(&cp, buf, sizeof(buf));
	is_int(n, (int)strlen(good_text), "format returns the length");
	ok(n > 0 && strcmp(buf, good_text) == 0, "format gives the spec's checkpoint text");
	is_int(cs_checkpoint_format(&cp, buf, strlen(good_text) + 1), n, "format into exact room");
	is_int(cs_checkpoint_format(&cp, buf, strlen(good_text)), -ENOBUFS,
	    "format without room for the NUL");
	memset(&back, 0xa5, sizeof(back));
	is_int(cs_checkpoint_parse(&back, buf, (size_t)n), 0, "parse the formatted text");
	ok(strcmp(back.origin, cp.origin) == 0 && back.size == cp.size &&
	        memcmp(back.root, cp.root, 32) == 0,
	    "parse gives back origin, size and root");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&back, 0xa5, sizeof(back));
		size_t len = strlen(cases[i].text);

		is_int(cs_checkpoint_parse(&back, cases[i].text, len), cases[i].want,
		    "checkpoint case %zu", i);
		if (cases[i].want != 0)
			ok(back.size == 0xa5a5a5a5a5a5a5a5ULL, "checkpoint case %zu: *cp kept", i);
	}
	is_int(cs_checkpoint_parse(&back, CP_ORIGIN "\n1\n" CP_ROOT "\n", 4), CS_EFORMAT,
	    "checkpoint cut short by len");

	/* The origin must fit cs_checkpoint.origin with its NUL. */
	memset(longer, 'o', 255);
	snprintf(longer + 255, sizeof(longer) - 255, "\n7\n%s\n", CP_ROOT);
	is_int(cs_checkpoint_parse(&back, longer, strlen(longer)), 0, "255-byte origin");
	is_int(back.size, 7, "255-byte origin: size");
	ok(strlen(back.origin) == 255, "255-byte origin kept whole");
	memset(longer, 'o', 256);
	snprintf(longer + 256, sizeof(longer) - 256, "\n7\n%s\n", CP_ROOT);
	is_int(cs_checkpoint_parse(&back, longer, strlen(longer)), CS_EFORMAT, "256-byte origin");

	cp.size = UINT64_MAX;
	n = cs_checkpoint_format(&cp, buf, sizeof(buf));
	ok(n > 0 && cs_checkpoint_parse(&back, buf, (size_t)n) == 0 && back.size == UINT64_MAX,
	    "UINT64_MAX round trip");
	cp.origin[0] = '\0';
	is_int(cs_checkpoint_format(&cp, buf, sizeof(buf)), CS_EFORMAT, "format: empty origin");
	memcpy(cp.origin, "a\nb", 4);
	is_int(cs_checkpoint_format(&cp, buf, sizeof(buf)), CS_EFORMAT, "format: newline");
	memset(cp.origin, 'o', sizeof(cp.origin));
	is_int(cs_checkpoint_format(&cp, buf, sizeof(buf)), CS_EFORMAT, "format: no NUL");
}

static void
test_proofs(void)
{
	static const char *sk = "PRIVATE+KEY+PeterNeumann+c74f20a3+"
	                        "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
	static const char *extra = "age-v1.2.1-darwin-arm64.tar.gz";
	static const char *cptext = CP_ORIGIN "\n20852163\n" CP_ROOT "\n";
	static const struct {
		const char *head;
		int want;
	} cases[] = {
	    {"c2sp.org/tlog-proof@v1\nindex 1\n" HASH "\n\n", 0},
	    {"c2sp.org/tlog-proof@v1\nindex 0\n\n", 0},
	    {"c2sp.org/tlog-proof@v1\nextra Zg==\nindex 18446744073709551615\n\n", 0},
	    {"c2sp.org/tlog-proof@v2\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1 \nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\r\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof\nindex 1\n\n", CS_EFORMAT},
	    {"\nc2sp.org/tlog-proof@v1\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 01\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex -1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex \n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex  1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1 \n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nIndex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nextra \nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nextra Zg=\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nextra Zh==\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nextra Zg==\nextra Zg==\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1\nextra Zg==\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nextra  Zg==\nindex 1\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPg==\n\n",
	        CS_EFORMAT}, /* 31-byte hash */
	    {"c2sp.org/tlog-proof@v1\nindex 1\n" HASH "AAAA\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1\nnot base64!\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1\n " HASH "\n\n", CS_EFORMAT},
	    {"c2sp.org/tlog-proof@v1\nindex 1\n" HASH "\n", CS_EFORMAT}, /* no blank line */
	    {"c2sp.org/tlog-proof@v1\nindex 1\n\n\n", CS_EFORMAT},
	};
	struct cs_signer *s = NULL;
	struct cs_tlog_proof p, q;
	char *cpnote = NULL, *out = NULL, *out2 = NULL;
	size_t cplen = 0, outlen = 0, out2len = 0;
	struct sbuf sb;

	if (cs_signer_parse(&s, sk, strlen(sk)) < 0 ||
	    cs_note_sign(s, cptext, strlen(cptext), &cpnote, &cplen) < 0) {
		ok(0, "checkpoint note for the proofs");
		cs_signer_free(s);
		return;
	}

	memset(&p, 0, sizeof(p));
	p.index = 73894;
	p.extra = (uint8_t *)extra;
	p.extra_len = strlen(extra);
	p.count = 3;
	for (size_t i = 0; i < 3; i++)
		memset(p.hashes[i], (int)(0x11 * (i + 1)), 32);
	p.checkpoint = cpnote;
	p.checkpoint_len = cplen;
	is_int(cs_tlog_proof_format(&p, &out, &outlen), 0, "format a proof");
	sb.n = 0;
	sb_str(&sb, "c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6\n"
	            "index 73894\nERERERERERERERERERERERERERERERERERERERERERE=\n"
	            "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=\n"
	            "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=\n\n");
	sb_add(&sb, cpnote, cplen);
	ok(out != NULL && outlen == sb.n && memcmp(out, sb.b, sb.n) == 0 && out[outlen] == '\0',
	    "formatted proof is as the spec lays it out");

	memset(&q, 0, sizeof(q));
	is_int(cs_tlog_proof_parse(&q, out, outlen), 0, "parse the proof");
	ok(q.index == 73894 && q.count == 3 && q.extra_len == strlen(extra) &&
	        memcmp(q.extra, extra, q.extra_len) == 0 &&
	        memcmp(q.hashes, p.hashes, sizeof(p.hashes[0]) * 3) == 0 &&
	        q.checkpoint_len == cplen && memcmp(q.checkpoint, cpnote, cplen) == 0 &&
	        q.checkpoint[cplen] == '\0',
	    "parse gives back every field");
	is_int(cs_tlog_proof_format(&q, &out2, &out2len), 0, "re-format the parsed proof");
	ok(out2 != NULL && out2len == outlen && memcmp(out, out2, outlen) == 0,
	    "format(parse(x)) == x");
	cs_tlog_proof_fini(&q);
	ok(q.extra == NULL && q.checkpoint == NULL && q.count == 0, "fini clears the struct");
	cs_tlog_proof_fini(&q);
	free(out2);
	out2 = NULL;

	/* No extra, no hashes. */
	p.extra = NULL;
	p.extra_len = 0;
	p.count = 0;
	p.index = 0;
	free(out);
	out = NULL;
	is_int(cs_tlog_proof_format(&p, &out, &outlen), 0, "format a proof without extra");
	ok(out != NULL && strncmp(out, "c2sp.org/tlog-proof@v1\nindex 0\n\n", 32) == 0,
	    "it has no extra line and no hashes");
	is_int(cs_tlog_proof_parse(&q, out, outlen), 0, "parse it");
	ok(q.extra == NULL && q.extra_len == 0 && q.count == 0 && q.index == 0,
	    "no extra, no hashes, index 0");
	cs_tlog_proof_fini(&q);

	/* Exactly 64 hashes parse; 65 do not. */
	for (int want = 0; want <= 1; want++) {
		sb.n = 0;
		sb_str(&sb, "c2sp.org/tlog-proof@v1\nindex 5\n");
		for (int i = 0; i < 64 + want; i++)
			sb_str(&sb, HASH "\n");
		sb_str(&sb, "\n");
		sb_add(&sb, cpnote, cplen);
		is_int(cs_tlog_proof_parse(&q, sb.b, sb.n), want ? CS_EFORMAT : 0, "%d hashes",
		    64 + want);
		if (!want)
			is_int(q.count, 64, "64 hashes counted");
		cs_tlog_proof_fini(&q);
	}

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sb.n = 0;
		sb_str(&sb, cases[i].head);
		sb_add(&sb, cpnote, cplen);
		memset(&q, 0, sizeof(q));
		q.index = 4242;
		is_int(cs_tlog_proof_parse(&q, sb.b, sb.n), cases[i].want, "proof case %zu", i);
		if (cases[i].want != 0)
			ok(q.index == 4242 && q.checkpoint == NULL, "proof case %zu: *p kept", i);
		cs_tlog_proof_fini(&q);
	}

	/* Broken checkpoints inside a well-formed proof. */
	{
		static const char *head = "c2sp.org/tlog-proof@v1\nindex 1\n\n";
		static const char *bad_cps[] = {
		    "",
		    CP_ORIGIN "\n1\n" CP_ROOT "\n",          /* no signature */
		    CP_ORIGIN "\n1\n" CP_ROOT "\n\n",        /* blank line, no signature */
		    CP_ORIGIN "\n1\n" CP_ROOT "\n\n" EM " x AAAAAAA=", /* no final newline */
		    CP_ORIGIN "\n01\n" CP_ROOT "\n\n" EM " x AAAAAAA=\n", /* bad checkpoint text */
		    "text\n\n" EM " x AAAAAAA=\n",            /* not a checkpoint */
		};
		for (size_t i = 0; i < sizeof(bad_cps) / sizeof(bad_cps[0]); i++) {
			sb.n = 0;
			sb_str(&sb, head);
			sb_str(&sb, bad_cps[i]);
			is_int(cs_tlog_proof_parse(&q, sb.b, sb.n), CS_EFORMAT, "bad cp %zu", i);
		}
		sb.n = 0;
		sb_str(&sb, head);
		sb_str(&sb, CP_ORIGIN "\n1\n" CP_ROOT "\nextension\n\n" EM " x AAAAAAA=\n");
		is_int(cs_tlog_proof_parse(&q, sb.b, sb.n), 0,
		    "checkpoint with an extension line and an unknown signature");
		cs_tlog_proof_fini(&q);
	}

	/* Invalid structs. */
	p.count = 65;
	is_int(cs_tlog_proof_format(&p, &out2, &out2len), -EINVAL, "format: 65 hashes");
	p.count = 0;
	p.extra_len = 3;
	is_int(cs_tlog_proof_format(&p, &out2, &out2len), -EINVAL, "format: extra_len, no extra");
	p.extra_len = 0;
	p.checkpoint_len = cplen - 1;
	is_int(cs_tlog_proof_format(&p, &out2, &out2len), CS_EFORMAT, "format: cut checkpoint");
	p.checkpoint = NULL;
	is_int(cs_tlog_proof_format(&p, &out2, &out2len), -EINVAL, "format: no checkpoint");
	ok(out2 == NULL, "format: *out untouched on failure");

	free(out);
	free(cpnote);
	cs_signer_free(s);
}

static void
test_base64(void)
{
	static const struct {
		const char *raw, *b64;
	} rfc[] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	static const char *bad[] = {
	    "Zg",       "Zg=",       "Zg===",    "Zh==",     "Zm9=",     "Z===",      "====",
	    "=Zm9",     "Zm=v",      "Zm9v\n",   " Zm9v",    "Zm9v ",    "Zg==Zg==",  "Zm9-",
	    "Zm9_",     "Zm9v====",  "Zm9vY",    "Zm\x80v",  "Zm9vYh==", "Zm9vYmF=",  "A",
	};
	uint8_t out[16];
	char enc[16];

	for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
		size_t rl = strlen(rfc[i].raw), bl = strlen(rfc[i].b64);
		int n;

		memset(enc, 'x', sizeof(enc));
		n = cs_base64_encode((const uint8_t *)rfc[i].raw, rl, enc, sizeof(enc));
		ok(n == (int)bl && strcmp(enc, rfc[i].b64) == 0, "encode \"%s\"", rfc[i].raw);
		n = cs_base64_decode(rfc[i].b64, bl, out, sizeof(out));
		ok(n == (int)rl && memcmp(out, rfc[i].raw, rl) == 0, "decode \"%s\"", rfc[i].b64);
		n = cs_base64_decode(rfc[i].b64, bl, out, rl);
		is_int(n, (int)rl, "decode \"%s\" into exactly %zu bytes", rfc[i].b64, rl);
		if (rl > 0)
			is_int(cs_base64_decode(rfc[i].b64, bl, out, rl - 1), -ENOBUFS,
			    "decode \"%s\" into %zu bytes", rfc[i].b64, rl - 1);
		is_int(cs_base64_encode((const uint8_t *)rfc[i].raw, rl, enc, bl + 1), (int)bl,
		    "encode \"%s\" into exact room", rfc[i].raw);
		is_int(cs_base64_encode((const uint8_t *)rfc[i].raw, rl, enc, bl), -ENOBUFS,
		    "encode \"%s\" without room for the NUL", rfc[i].raw);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(cs_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), CS_EFORMAT,
		    "decode rejects bad case %zu", i);
	is_int(cs_base64_decode("Zm\0v", 4, out, sizeof(out)), CS_EFORMAT, "decode rejects NUL");

	/* EVP_DecodeBlock writes three bytes per group; ours stops at the real length. */
	memset(out, 0xaa, sizeof(out));
	is_int(cs_base64_decode("Zg==", 4, out, 1), 1, "decode one byte into one byte");
	ok(out[0] == 'f' && out[1] == 0xaa && out[2] == 0xaa, "nothing written past it");
	memset(out, 0xaa, sizeof(out));
	is_int(cs_base64_decode("Zm9vYmE=", 8, out, 5), 5, "decode five bytes into five bytes");
	ok(memcmp(out, "fooba", 5) == 0 && out[5] == 0xaa, "nothing written past them");
}

int
main(void)
{
	const char *vdir = getenv("CS_VECTORS");
	const char *tmp = getenv("TMPDIR");
	char path[1024];
	int rc;

	if (vdir == NULL || *vdir == '\0')
		vdir = "tests/vectors";
	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test-note-XXXXXX", tmp);
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}

	snprintf(path, sizeof(path), "%s/signed-notes.txt", vdir);
	rc = load_vectors(path);
	is_int(rc, 0, "read %s", path);
	is_int(nexamples, 2, "found both published examples");
	for (int k = 0; k < nexamples; k++) {
		ok(examples[k].vkey != NULL && examples[k].note != NULL, "example %d complete", k);
		if (examples[k].vkey != NULL && examples[k].note != NULL)
			test_example(k);
	}
	ok(nexamples > 1 && examples[1].skey != NULL, "the second example has a private key");

	test_generate();
	test_key_parsing();
	test_notes();
	test_checkpoints();
	test_proofs();
	test_base64();

	for (int k = 0; k < nexamples; k++) {
		free(examples[k].vkey);
		free(examples[k].skey);
		free(examples[k].note);
	}
	tap_rm_rf(tmpdir);
	return tap_done();
}
