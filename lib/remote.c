/*
 * Remote (custos/remote.h): puts objects into an S3-compatible bucket with
 * libcurl's multi interface. Each object is a small state machine of HTTP
 * requests: the bucket's Object Lock setting is asked once (GET
 * ?object-lock=) before the first object; then HEAD (present with this size
 * and SHA-256: done); then one PUT, or a multipart upload (ListMultipartUploads
 * for the key: resume the newest upload by ListParts, abort the others and
 * stale ones; else CreateMultipartUpload; the parts; CompleteMultipartUpload).
 * Requests wait in a FIFO for one of `parallel` slots; a transient failure
 * (a network error, 5xx, SlowDown, RequestTimeout) is retried after a capped
 * exponential backoff with jitter; anything else stops the object and says
 * why. Bodies are read from the caller's fd with pread(), so memory does not
 * grow with the object. libcurl 7.88 quirks handled here: the caller sends
 * x-amz-content-sha256, the query is written in sorted order, "?uploads=".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "custos/error.h"
#include "custos/remote.h"
#include "util.h"

#define MIB (1024ull * 1024)
#define BODY_MAX (4 * MIB) /* the most of an answer's body kept (XML) */
#define HASH_BUF (1 * MIB)
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 20000
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- configuration ---- */

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* 0 if the file open as `fd` is a regular file of this user that no one else can read. */
static int
private_file(int fd, const char *path, char *why, size_t whyn)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode)) {
		snprintf(why, whyn, "%s is not a regular file", path);
		return CS_EFORMAT;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
		snprintf(why, whyn,
		    "%s holds a secret key but others may read it (mode %03o, owner uid %u): "
		    "make it owned by this user with mode 0600 or 0400",
		    path, (unsigned)(sb.st_mode & 0777), (unsigned)sb.st_uid);
		return CS_EFORMAT;
	}
	return 0;
}

static int
parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;
	uint64_t mul = 1;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || end == v || v[0] < '0' || v[0] > '9')
		return -1;
	if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = MIB;
	else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
		mul = 1024 * MIB;
	else if (*end != '\0')
		return -1;
	if (n > UINT64_MAX / mul)
		return -1;
	*out = n * mul;
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (s == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/*
 * Reads "key = value" lines of `path` (of section `section`, or all lines
 * when it is NULL) and calls set(). A secret in a file others can read is
 * refused.
 */
static int
read_ini(struct cs_remote_config *cfg, const char *path, const char *section, int creds, char *why,
    size_t whyn)
{
	FILE *f = NULL;
	char line[4096];
	int in = section == NULL, lineno = 0, rc = 0, checked = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		rc = -errno;
		snprintf(why, whyn, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return -ENOMEM;
	}
	if (creds && (rc = private_file(fd, path, why, whyn)) < 0)
		goto out;
	checked = creds;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s = trim(line), *eq, *k, *v;
		uint64_t n;

		lineno++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']');
			if (e == NULL) {
				snprintf(why, whyn, "%s line %d: a section header lacks ']'", path,
				    lineno);
				rc = CS_EFORMAT;
				goto out;
			}
			*e = '\0';
			in = section == NULL || strcmp(trim(s + 1), section) == 0;
			continue;
		}
		if (!in)
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(why, whyn, "%s line %d: expected 'key = value'", path, lineno);
			rc = CS_EFORMAT;
			goto out;
		}
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		if (strcmp(k, "secret_key") == 0 && !checked) {
			rc = private_file(fd, path, why, whyn);
			if (rc < 0)
				goto out;
			checked = 1;
		}
		if (creds && strcmp(k, "access_key") != 0 && strcmp(k, "secret_key") != 0) {
			snprintf(why, whyn,
			    "%s line %d: a credentials file holds only access_key "
			    "and secret_key, not '%s'",
			    path, lineno, k);
			rc = CS_EFORMAT;
			goto out;
		}
		if (strcmp(k, "endpoint") == 0) {
			rc = set_str(&cfg->endpoint, v);
		} else if (strcmp(k, "region") == 0) {
			rc = set_str(&cfg->region, v);
		} else if (strcmp(k, "bucket") == 0) {
			rc = set_str(&cfg->bucket, v);
		} else if (strcmp(k, "prefix") == 0) {
			rc = set_str(&cfg->prefix, v);
		} else if (strcmp(k, "access_key") == 0) {
			rc = set_str(&cfg->access_key, v);
		} else if (strcmp(k, "secret_key") == 0) {
			rc = set_str(&cfg->secret_key, v);
		} else if (strcmp(k, "credentials") == 0 && !creds) {
			rc = read_ini(cfg, v, NULL, 1, why, whyn);
		} else if (strcmp(k, "addressing") == 0) {
			if (strcmp(v, "path") != 0 && strcmp(v, "virtual") != 0)
				goto bad;
			cfg->path_style = strcmp(v, "path") == 0;
		} else if (strcmp(k, "lock_mode") == 0) {
			if (strcmp(v, "governance") == 0)
				cfg->lock_mode = CS_REMOTE_LOCK_GOVERNANCE;
			else if (strcmp(v, "compliance") == 0)
				cfg->lock_mode = CS_REMOTE_LOCK_COMPLIANCE;
			else if (strcmp(v, "off") == 0)
				cfg->lock_mode = CS_REMOTE_LOCK_OFF;
			else
				goto bad;
		} else if (strcmp(k, "part_size") == 0) {
			if (parse_size(v, &n) < 0 || n < 5 * MIB || n > 5120 * MIB)
				goto bad;
			cfg->part_size = n;
		} else if (strcmp(k, "multipart_above") == 0) {
			if (parse_size(v, &n) < 0 || n < 5 * MIB || n > 5120 * MIB)
				goto bad;
			cfg->multipart_above = n;
		} else if (strcmp(k, "parallel") == 0) {
			if (parse_size(v, &n) < 0 || n < 1 || n > 64)
				goto bad;
			cfg->parallel = (unsigned)n;
		} else if (strcmp(k, "retain_days") == 0) {
			if (parse_size(v, &n) < 0 || n < 1 || n > 36500)
				goto bad;
			cfg->retain_days = (int64_t)n;
		} else if (strcmp(k, "retries") == 0) {
			if (parse_size(v, &n) < 0 || n > 100)
				goto bad;
			cfg->retries = (unsigned)n;
		} else if (strcmp(k, "connect_timeout") == 0) {
			if (parse_size(v, &n) < 0 || n < 1 || n > 3600)
				goto bad;
			cfg->connect_timeout_s = (long)n;
		} else if (strcmp(k, "stall_timeout") == 0) {
			if (parse_size(v, &n) < 0 || n < 1 || n > 3600)
				goto bad;
			cfg->stall_timeout_s = (long)n;
		} else if (strcmp(k, "stale_upload_days") == 0) {
			if (parse_size(v, &n) < 0 || n < 1 || n > 3650)
				goto bad;
			cfg->stale_upload_s = (int64_t)n * 86400;
		} else {
			snprintf(why, whyn, "%s line %d: unknown key '%s' in [%s]", path, lineno, k,
			    section != NULL ? section : "remote");
			rc = CS_EFORMAT;
			goto out;
		}
		if (rc < 0)
			goto out;
		continue;
bad:
		snprintf(why, whyn, "%s line %d: '%s' is not a valid %s (see custos(1), REMOTE)",
		    path, lineno, v, k);
		rc = CS_EFORMAT;
		goto out;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(why, whyn, "cannot read %s", path);
	}
out:
	fclose(f);
	return rc;
}

void
cs_remote_config_fini(struct cs_remote_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->endpoint);
	free(cfg->region);
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->access_key);
	if (cfg->secret_key != NULL)
		OPENSSL_cleanse(cfg->secret_key, strlen(cfg->secret_key));
	free(cfg->secret_key);
	memset(cfg, 0, sizeof(*cfg));
}

int
cs_remote_config_load(struct cs_remote_config *cfg, const char *path, char *why, size_t whyn)
{
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path_style = 1;
	cfg->part_size = 16 * MIB;
	cfg->parallel = 4;
	cfg->lock_mode = CS_REMOTE_LOCK_GOVERNANCE;
	cfg->retain_days = 3650;
	cfg->retries = 8;
	cfg->connect_timeout_s = 10;
	cfg->stall_timeout_s = 60;
	cfg->stale_upload_s = 7 * 86400;
	why[0] = '\0';
	rc = read_ini(cfg, path, "remote", 0, why, whyn);
	if (rc == 0 && (cfg->region == NULL || cfg->prefix == NULL)) {
		if ((cfg->region == NULL && set_str(&cfg->region, "us-east-1") < 0) ||
		    (cfg->prefix == NULL && set_str(&cfg->prefix, "custos") < 0))
			rc = -ENOMEM;
	}
	if (rc == 0 && (cfg->endpoint == NULL || cfg->bucket == NULL)) {
		snprintf(why, whyn, "%s: [remote] needs endpoint and bucket", path);
		rc = CS_EFORMAT;
	}
	if (rc == 0) {
		/* http[s]://HOST[:PORT][/PATH] as libcurl reads it: allowed scheme, a host. */
		size_t n = strlen(cfg->endpoint);
		CURLU *u = curl_url();
		char *scheme = NULL, *host = NULL;

		while (n > 0 && cfg->endpoint[n - 1] == '/')
			cfg->endpoint[--n] = '\0';
		if (u == NULL) {
			rc = -ENOMEM;
		} else if (curl_url_set(u, CURLUPART_URL, cfg->endpoint, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0' ||
		    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
		    (strncmp(cfg->endpoint, "http://", 7) != 0 &&
			strncmp(cfg->endpoint, "https://", 8) != 0)) {
			snprintf(why, whyn,
			    "%s: endpoint must be http://HOST[:PORT] or https://HOST[:PORT]", path);
			rc = CS_EFORMAT;
		}
		curl_free(scheme);
		curl_free(host);
		curl_url_cleanup(u);
	}
	if (rc == 0 && (cfg->access_key == NULL || cfg->secret_key == NULL)) {
		snprintf(why, whyn,
		    "%s: no access_key and secret_key (give `credentials = FILE`, "
		    "a file of mode 0600 with both)",
		    path);
		rc = CS_EFORMAT;
	}
	if (rc == 0 && (strchr(cfg->prefix, '\n') != NULL || cfg->prefix[0] == '/')) {
		snprintf(why, whyn, "%s: prefix must not start with '/'", path);
		rc = CS_EFORMAT;
	}
	if (rc == 0) {
		size_t n = strlen(cfg->prefix);

		while (n > 0 && cfg->prefix[n - 1] == '/')
			cfg->prefix[--n] = '\0';
		if (cfg->multipart_above == 0)
			cfg->multipart_above = cfg->part_size;
	}
	if (rc < 0)
		cs_remote_config_fini(cfg);
	return rc;
}

int
cs_remote_config_name(const struct cs_remote_config *cfg, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s/%s", cfg->endpoint, cfg->bucket);

	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

static int
key_fmt(char *buf, size_t n, int k)
{
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

static const char *
sep(const struct cs_remote_config *cfg)
{
	return cfg->prefix[0] != '\0' ? "/" : "";
}

int
cs_remote_key_blob(const struct cs_remote_config *cfg, const char *hex, char *buf, size_t n)
{
	return key_fmt(buf, n,
	    snprintf(buf, n, "%s%sobjects/sha256/%s", cfg->prefix, sep(cfg), hex));
}

int
cs_remote_key_record(const struct cs_remote_config *cfg, const char *station, uint64_t seq,
    char *buf, size_t n)
{
	return key_fmt(buf, n,
	    snprintf(buf, n, "%s%sstations/%s/ledger/%016llu.json", cfg->prefix, sep(cfg), station,
	        (unsigned long long)seq));
}

int
cs_remote_key_identity(const struct cs_remote_config *cfg, const char *station, char *buf,
    size_t n)
{
	return key_fmt(buf, n,
	    snprintf(buf, n, "%s%sstations/%s/custos.json", cfg->prefix, sep(cfg), station));
}

int
cs_remote_key_checkpoint(const struct cs_remote_config *cfg, const char *station, uint64_t size,
    char *buf, size_t n)
{
	return key_fmt(buf, n,
	    snprintf(buf, n, "%s%sstations/%s/checkpoints/%016llu", cfg->prefix, sep(cfg), station,
	        (unsigned long long)size));
}

/* ---- the machinery ---- */

enum kind {
	K_LOCK,
	K_HEAD,
	K_PUT,
	K_LISTUP,
	K_CREATE,
	K_LISTPARTS,
	K_PART,
	K_COMPLETE,
	K_ABORT,
	K_STAT,
	K_VERSIONS,
	K_GET,
	K_LIST,
	K_RETAIN,
	K_RAW
};
static const char *const kind_names[] = {"GET ?object-lock", "HEAD", "PUT", "ListMultipartUploads",
    "CreateMultipartUpload", "ListParts", "UploadPart", "CompleteMultipartUpload",
    "AbortMultipartUpload", "HEAD", "ListObjectVersions", "GET", "ListObjectsV2",
    "PutObjectRetention", "request"};

struct part {
	uint64_t off, len;
	uint8_t md5[16];
	uint8_t sha[32];
	int hashed;
	int done;
	char remote_etag[100]; /* ListParts: a part already there (checked against md5) */
};

struct obj {
	struct cs_remote *r;
	struct obj *next; /* waiting for the bucket's lock setting */
	char *key;
	int fd;
	uint64_t size;
	uint8_t sha[32];
	char shahex[65];
	char shab64[48];
	char *ctype;
	cs_remote_done_fn done;
	void *ctx;
	int reqs;     /* requests of this object queued or running */
	int finished; /* result decided */
	int rc;
	char why[800];
	char version[200], etag[100], mode[32], until[64];
	int skipped;
	uint64_t sent;
	/* multipart */
	char *upload_id;
	struct part *parts;
	size_t nparts, ndone, next_part; /* parts, parts confirmed, parts queued */
	EVP_MD_CTX *whole; /* SHA-256 over the parts as they are hashed, in order */
	size_t nhashed;    /* parts hashed (in order: 0 .. nhashed-1) */
	int hashing;       /* a part's hashing is out on the caller's worker (hooks.work) */
	char confirm[64];  /* the ETag a HEAD after Complete must show ("": none asked) */
	uint8_t md5[16];   /* single PUT: the body's MD5 */
	int md5_done;      /* ... computed (here, or on the caller's worker) */
	/* reading: cs_remote_stat (info) or cs_remote_list (each; key is the prefix) */
	cs_remote_info_fn info;
	cs_remote_list_fn each;
	int flags;
	int present, versions, marker, read;
	uint64_t got;
	char meta[80], cksum[80];
	/* one request of cs_remote_request (key "" with `bucket`: about the bucket) */
	cs_remote_answer_fn answer;
	char method[8];
	int bucket;
	char *rawbody, *abody; /* what is sent; what was answered */
	long status;
	char code[64], date[64];
};

struct req {
	struct cs_remote *r;
	struct obj *o; /* NULL for the bucket's lock request */
	struct req *next;
	struct req *rnext; /* in r->running */
	enum kind kind;
	size_t part; /* K_PART: index */
	char *query; /* sorted, without '?' */
	char *post;  /* in-memory body (Complete) */
	size_t postlen;
	char *abort_id; /* K_ABORT: the upload id */
	uint64_t off, len, pos;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	size_t bodylen;
	long status;
	unsigned attempt;
	int64_t due_ms;
	char errbuf[CURL_ERROR_SIZE];
	/* answer headers */
	char h_etag[100], h_version[200], h_meta_sha[80], h_cksum[80], h_mode[32], h_until[64];
	char h_date[64];
	int64_t h_len;
};

/* A part's hashing on the caller's workers (hooks.work). */
struct cs_remote_work {
	struct cs_remote *r; /* NULL: the remote was freed meanwhile */
	struct cs_remote_work *next;
	struct req *q; /* the part's request, parked meanwhile (it holds its object) */
	int rc;
};

struct cs_remote {
	const struct cs_remote_config *cfg;
	struct cs_remote_hooks hooks;
	int hooked;
	CURLM *multi;
	char *bucket_url; /* scheme://host[:port]/bucket or scheme://bucket.host[:port] */
	char *userpwd_user, *sigv4;
	int bucket_state; /* 0 unknown, 1 asking, 2 known, -1 failed */
	int lock_on;
	int bucket_rc;
	char bucket_why[800];
	struct obj *waiting, **waiting_tail;
	struct req *ready, **ready_tail;
	struct req *later;   /* retries not yet due */
	struct req *running; /* requests in the multi handle */
	struct req *parked;  /* parts waiting for their hashing (hooks.work), or a part before */
	struct cs_remote_work *works; /* hashings out on the caller's workers */
	int (*work)(void *ctx, struct cs_remote_work *w); /* cs_remote_set_work */
	unsigned active;
	size_t objects;
	long curl_timer; /* curl's wish, ms; -1 none */
	uint64_t sent, total;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
b64(const uint8_t *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/*
 * Percent-encodes a key: unreserved characters are kept, and '/' too in a
 * path (`slash`), not in a query value (SigV4's canonical forms).
 */
static char *
enc(const char *key, int slash)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t n = strlen(key);
	char *out = malloc(3 * n + 1), *p = out;

	if (out == NULL)
		return NULL;
	for (const unsigned char *s = (const unsigned char *)key; *s != '\0'; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' || *s == '~' ||
		    (*s == '/' && slash)) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hx[*s >> 4];
			*p++ = hx[*s & 15];
		}
	}
	*p = '\0';
	return out;
}

/* The text between <tag> and </tag> at or after *from (advanced past it); 0 or -1. */
static int
xml_get(const char *xml, const char **from, const char *tag, char *out, size_t n)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if (xml == NULL)
		return -1;
	a = strstr(from != NULL ? *from : xml, open);
	if (a == NULL)
		return -1;
	a += strlen(open);
	b = strstr(a, close);
	if (b == NULL || (size_t)(b - a) >= n)
		return -1;
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
	if (from != NULL)
		*from = b + strlen(close);
	return 0;
}

/* "&quot;" and quotes around an ETag removed. */
static void
unquote(char *s)
{
	size_t n = strlen(s);

	if (strncmp(s, "&quot;", 6) == 0 && n >= 12 && strcmp(s + n - 6, "&quot;") == 0) {
		memmove(s, s + 6, n - 12);
		s[n - 12] = '\0';
	} else if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
}

static void pump(struct cs_remote *r);
static void req_free(struct req *q);
static void obj_fail(struct obj *o, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
update_timer(struct cs_remote *r)
{
	long ms = r->curl_timer;

	if (!r->hooked)
		return;
	for (struct req *q = r->later; q != NULL; q = q->next) {
		int64_t d = q->due_ms - now_ms();
		if (d < 0)
			d = 0;
		if (ms < 0 || d < ms)
			ms = (long)d;
	}
	r->hooks.timer(r->hooks.ctx, ms);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct cs_remote *r = userp;
	int w = what == CURL_POLL_REMOVE
	    ? CS_REMOTE_REMOVE
	    : (what & CURL_POLL_IN ? CS_REMOTE_IN : 0) | (what & CURL_POLL_OUT ? CS_REMOTE_OUT : 0);

	r->hooks.socket(r->hooks.ctx, (int)s, w);
	return 0;
}

static int
timer_cb(CURLM *m, long ms, void *userp)
{
	struct cs_remote *r = userp;

	r->curl_timer = ms;
	update_timer(r);
	return 0;
}

int
cs_remote_new(struct cs_remote **out, const struct cs_remote_config *cfg,
    const struct cs_remote_hooks *hooks)
{
	struct cs_remote *r;
	const char *host;
	size_t n;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return CS_EREMOTE;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->cfg = cfg;
	r->curl_timer = -1;
	r->waiting_tail = &r->waiting;
	r->ready_tail = &r->ready;
	host = strstr(cfg->endpoint, "://") + 3;
	n = strlen(cfg->endpoint) + strlen(cfg->bucket) + 4;
	r->bucket_url = malloc(n);
	r->sigv4 = malloc(strlen(cfg->region) + 16);
	r->multi = curl_multi_init();
	if (r->bucket_url == NULL || r->sigv4 == NULL || r->multi == NULL) {
		cs_remote_free(r);
		return -ENOMEM;
	}
	if (cfg->path_style)
		snprintf(r->bucket_url, n, "%s/%s", cfg->endpoint, cfg->bucket);
	else
		snprintf(r->bucket_url, n, "%.*s%s.%s", (int)(host - cfg->endpoint), cfg->endpoint,
		    cfg->bucket, host);
	snprintf(r->sigv4, strlen(cfg->region) + 16, "aws:amz:%s:s3", cfg->region);
	if (hooks != NULL) {
		r->hooks = *hooks;
		r->hooked = 1;
		curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
		curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
		curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
		curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	}
	*out = r;
	return 0;
}

static void
obj_free(struct obj *o)
{
	if (o->fd >= 0)
		close(o->fd);
	free(o->key);
	free(o->ctype);
	free(o->upload_id);
	free(o->parts);
	EVP_MD_CTX_free(o->whole);
	free(o->rawbody);
	free(o->abody);
	free(o);
}

void
cs_remote_free(struct cs_remote *r)
{
	struct req *q, *nq;
	struct obj *o, *no;

	if (r == NULL)
		return;
	/* running requests: their easy handles are in the multi */
	for (q = r->running; q != NULL; q = nq) {
		nq = q->rnext;
		curl_multi_remove_handle(r->multi, q->easy);
		if (q->o != NULL && --q->o->reqs == 0)
			obj_free(q->o);
		req_free(q);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (q = pass == 0 ? r->ready : r->later; q != NULL; q = nq) {
			nq = q->next;
			if (q->o != NULL && --q->o->reqs == 0)
				obj_free(q->o);
			req_free(q);
		}
	}
	for (o = r->waiting; o != NULL; o = no) {
		no = o->next;
		obj_free(o);
	}
	for (q = r->parked; q != NULL; q = nq) {
		nq = q->next;
		if (q->o != NULL && --q->o->reqs == 0)
			obj_free(q->o);
		req_free(q);
	}
	/* hashings still out: their requests (and objects) are freed when they are done */
	for (struct cs_remote_work *w = r->works; w != NULL; w = w->next)
		w->r = NULL;
	if (r->multi != NULL)
		curl_multi_cleanup(r->multi);
	free(r->bucket_url);
	free(r->sigv4);
	free(r);
}

size_t
cs_remote_pending(const struct cs_remote *r)
{
	return r->objects;
}

void
cs_remote_progress(const struct cs_remote *r, uint64_t *sent, uint64_t *total)
{
	*sent = r->sent;
	*total = r->total;
}

static void
req_free(struct req *q)
{
	if (q == NULL)
		return;
	if (q->easy != NULL)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->hdrs);
	free(q->query);
	free(q->post);
	free(q->abort_id);
	free(q->body);
	free(q);
}

static struct req *
req_new(struct cs_remote *r, struct obj *o, enum kind kind, const char *query)
{
	struct req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->r = r;
	q->o = o;
	q->kind = kind;
	q->h_len = -1;
	if (query != NULL && (q->query = strdup(query)) == NULL) {
		free(q);
		return NULL;
	}
	if (o != NULL)
		o->reqs++;
	return q;
}

static void
enqueue(struct cs_remote *r, struct req *q)
{
	q->next = NULL;
	*r->ready_tail = q;
	r->ready_tail = &q->next;
}

/* Queues a new request for `o`; on no memory the object fails. */
static struct req *
add_req(struct obj *o, enum kind kind, const char *query)
{
	struct req *q = req_new(o->r, o, kind, query);

	if (q == NULL) {
		obj_fail(o, -ENOMEM, "out of memory");
		return NULL;
	}
	enqueue(o->r, q);
	return q;
}

static void
info_finish(struct obj *o)
{
	struct cs_remote_info in = {0};
	unsigned int dl = 0;

	in.rc = o->rc;
	in.present = o->present;
	in.key = o->key;
	in.size = o->size;
	in.version_id = o->version;
	in.etag = o->etag;
	in.meta_sha256 = o->meta;
	in.checksum_sha256 = o->cksum;
	in.lock_mode = o->mode;
	in.retain_until = o->until;
	in.versions = o->flags & CS_REMOTE_STAT_VERSIONS ? o->versions : -1;
	in.delete_marker = o->marker;
	in.read = o->read && o->rc == 0 && EVP_DigestFinal_ex(o->whole, in.sha256, &dl) == 1;
	in.got = o->got;
	in.why = o->why;
	o->info(o->ctx, &in);
}

static void
obj_finish(struct obj *o)
{
	struct cs_remote *r = o->r;
	struct cs_remote_result res = {0};

	res.rc = o->rc;
	res.skipped = o->skipped;
	res.multipart = o->upload_id != NULL ? (int)o->nparts : 0;
	res.key = o->key;
	res.version_id = o->version;
	res.etag = o->etag;
	res.lock_mode = o->mode;
	res.retain_until = o->until;
	res.why = o->why;
	res.sent = o->sent;
	r->objects--;
	if (o->answer != NULL) {
		struct cs_remote_answer a = {o->rc, o->status, o->code,
		    o->abody != NULL ? o->abody : "", o->version, o->date, o->why};
		o->answer(o->ctx, &a);
	} else if (o->info != NULL)
		info_finish(o);
	else if (o->each != NULL)
		o->each(o->ctx, NULL, 0, o->rc, o->why);
	else
		o->done(o->ctx, &res);
	obj_free(o);
}

/* Called when a request of `o` ends: the object ends when its last request has. */
static void
obj_release(struct obj *o)
{
	if (--o->reqs == 0 && o->finished)
		obj_finish(o);
}

static void
obj_fail(struct obj *o, int rc, const char *fmt, ...)
{
	va_list ap;

	if (o->finished)
		return;
	o->finished = 1;
	o->rc = rc;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
}

static void
obj_ok(struct obj *o, const char *version, const char *etag)
{
	o->finished = 1;
	o->rc = 0;
	snprintf(o->version, sizeof(o->version), "%s", version);
	snprintf(o->etag, sizeof(o->etag), "%s", etag);
}

/* ---- building a request ---- */

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct req *q = ud;
	size_t want = size * nitems;
	ssize_t n;

	if (q->post != NULL) {
		if (want > q->postlen - q->pos)
			want = (size_t)(q->postlen - q->pos);
		memcpy(buf, q->post + q->pos, want);
		q->pos += want;
		return want;
	}
	if (want > q->len - q->pos)
		want = (size_t)(q->len - q->pos);
	if (want == 0)
		return 0;
	n = cs__pread_all(q->o->fd, buf, want, (off_t)(q->off + q->pos));
	if (n <= 0)
		return CURL_READFUNC_ABORT;
	q->pos += (uint64_t)n;
	q->o->sent += (uint64_t)n;
	q->r->sent += (uint64_t)n;
	return (size_t)n;
}

static int
seek_cb(void *ud, curl_off_t off, int origin)
{
	struct req *q = ud;
	uint64_t lim = q->post != NULL ? q->postlen : q->len;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > lim)
		return CURL_SEEKFUNC_CANTSEEK;
	q->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct req *q = ud;
	size_t n = size * nmemb;
	char *nb;
	long status = 0;

	if (q->kind == K_GET &&
	    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	    status == 200) {
		/* the object's bytes: hashed, and written where asked */
		if (q->o->fd >= 0 && pwrite(q->o->fd, data, n, (off_t)q->pos) != (ssize_t)n)
			return 0;
		if (EVP_DigestUpdate(q->o->whole, data, n) != 1)
			return 0;
		q->pos += n;
		q->o->got = q->pos;
		return n;
	}
	if (q->bodylen + n > BODY_MAX)
		return n; /* keep the start: an error's code is there */
	nb = realloc(q->body, q->bodylen + n + 1);
	if (nb == NULL)
		return 0;
	q->body = nb;
	memcpy(q->body + q->bodylen, data, n);
	q->bodylen += n;
	q->body[q->bodylen] = '\0';
	return n;
}

static void
hval(const char *line, size_t n, size_t namelen, char *out, size_t outn)
{
	const char *v = line + namelen;
	size_t len;

	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	len = (size_t)(line + n - v);
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	if (len >= outn)
		len = outn - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t
header_cb(char *line, size_t size, size_t nitems, void *ud)
{
	struct req *q = ud;
	size_t n = size * nitems;
	char num[32];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new answer (after 100 Continue): forget the last one's headers */
		q->h_etag[0] = q->h_version[0] = q->h_meta_sha[0] = q->h_cksum[0] = '\0';
		q->h_mode[0] = q->h_until[0] = q->h_date[0] = '\0';
		q->h_len = -1;
	}
#define H(name, dst)                                                                               \
	else if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0)           \
	    hval(line, n, sizeof(name) - 1, dst, sizeof(dst))
	if (0) {
	}
	H("etag:", q->h_etag);
	H("x-amz-version-id:", q->h_version);
	H("x-amz-meta-sha256:", q->h_meta_sha);
	H("x-amz-checksum-sha256:", q->h_cksum);
	H("x-amz-object-lock-mode:", q->h_mode);
	H("x-amz-object-lock-retain-until-date:", q->h_until);
	H("date:", q->h_date);
	else if (n > 15 && strncasecmp(line, "content-length:", 15) == 0)
	{
		hval(line, n, 15, num, sizeof(num));
		q->h_len = strtoll(num, NULL, 10);
	}
#undef H
	return n;
}

static int add_header(struct req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
add_header(struct req *q, const char *fmt, ...)
{
	char buf[512];
	struct curl_slist *l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	l = curl_slist_append(q->hdrs, buf);
	if (l == NULL)
		return -ENOMEM;
	q->hdrs = l;
	return 0;
}

/* The retention a new object gets into o->mode and o->until; 0 when the bucket has none. */
static int
lock_set(struct obj *o)
{
	const struct cs_remote_config *cfg = o->r->cfg;
	time_t t;
	struct tm tm;

	if (!o->r->lock_on || cfg->lock_mode == CS_REMOTE_LOCK_OFF)
		return 0;
	t = time(NULL) + (time_t)(cfg->retain_days * 86400);
	gmtime_r(&t, &tm);
	strftime(o->until, sizeof(o->until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(o->mode, sizeof(o->mode), "%s",
	    cfg->lock_mode == CS_REMOTE_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE");
	return 1;
}

/* The retention headers for a new object, when the bucket has Object Lock. */
static int
lock_headers(struct req *q)
{
	struct obj *o = q->o;

	if (!lock_set(o))
		return 0;
	if (add_header(q, "x-amz-object-lock-mode: %s", o->mode) < 0 ||
	    add_header(q, "x-amz-object-lock-retain-until-date: %s", o->until) < 0)
		return -ENOMEM;
	return 0;
}

#ifdef CS_FAILPOINTS
/*
 * Test build: CUSTOS_TEST_PART_GATE=<dir>: a part's hashing makes
 * <dir>/waiting and waits (at most 10 minutes) until <dir>/go exists, so a
 * test can see whether the thread that drives the remote is held up by it.
 */
static void
part_gate(void)
{
	const char *dir = getenv("CUSTOS_TEST_PART_GATE");
	struct timespec ts = {0, 10000000};
	char path[4096];
	int fd;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/waiting", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/go", dir);
	for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++)
		nanosleep(&ts, NULL);
}
#else
#define part_gate() ((void)0)
#endif

/* MD5 and SHA-256 of `len` bytes of fd at `off`; 0 or -errno/CS_ECRYPTO. */
static int
hash_range(int fd, uint64_t off, uint64_t len, uint8_t md5[16], uint8_t sha[32], EVP_MD_CTX *whole)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new(), *s = EVP_MD_CTX_new();
	uint8_t *buf = malloc(HASH_BUF);
	int rc = CS_ECRYPTO;

	if (m == NULL || s == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(m, EVP_md5(), NULL) != 1 ||
	    EVP_DigestInit_ex(s, EVP_sha256(), NULL) != 1)
		goto out;
	while (len > 0) {
		size_t want = len < HASH_BUF ? (size_t)len : HASH_BUF;
		ssize_t n = cs__pread_all(fd, buf, want, (off_t)off);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if ((size_t)n != want) {
			rc = -EIO; /* the blob is shorter than its record */
			goto out;
		}
		if (EVP_DigestUpdate(m, buf, want) != 1 || EVP_DigestUpdate(s, buf, want) != 1 ||
		    (whole != NULL && EVP_DigestUpdate(whole, buf, want) != 1))
			goto out;
		off += want;
		len -= want;
	}
	if (EVP_DigestFinal_ex(m, md5, NULL) != 1 ||
	    (sha != NULL && EVP_DigestFinal_ex(s, sha, NULL) != 1))
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(m);
	EVP_MD_CTX_free(s);
	free(buf);
	return rc;
}

/* Sets up q's easy handle; 0 or < 0 (the object fails). */
static int
req_setup(struct req *q)
{
	struct cs_remote *r = q->r;
	const struct cs_remote_config *cfg = r->cfg;
	struct obj *o = q->o;
	char *ek = NULL, *url = NULL, hex[65], md5b[32];
	size_t n;
	int upload = 0, rc = -ENOMEM;

	q->easy = curl_easy_init();
	if (q->easy == NULL)
		goto out;
	if (o != NULL && (ek = enc(o->key, 1)) == NULL)
		goto out;
	n = strlen(r->bucket_url) + (ek != NULL ? strlen(ek) : 0) +
	    (q->query != NULL ? strlen(q->query) : 0) + 8;
	url = malloc(n);
	if (url == NULL)
		goto out;
	if (q->kind == K_LOCK || q->kind == K_LISTUP || q->kind == K_VERSIONS ||
	    q->kind == K_LIST || (q->kind == K_RAW && o->bucket)) /* requests about the bucket */
		snprintf(url, n, "%s%s?%s", r->bucket_url, cfg->path_style ? "" : "/", q->query);
	else
		snprintf(url, n, "%s/%s%s%s", r->bucket_url, ek, q->query != NULL ? "?" : "",
		    q->query != NULL ? q->query : "");
	curl_easy_setopt(q->easy, CURLOPT_URL, url);
	curl_easy_setopt(q->easy, CURLOPT_PRIVATE, (char *)q);
	curl_easy_setopt(q->easy, CURLOPT_AWS_SIGV4, r->sigv4);
	curl_easy_setopt(q->easy, CURLOPT_USERNAME, cfg->access_key);
	curl_easy_setopt(q->easy, CURLOPT_PASSWORD, cfg->secret_key);
	curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout_s);
	curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(q->easy, CURLOPT_LOW_SPEED_TIME, cfg->stall_timeout_s);
	curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(q->easy, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	switch (q->kind) {
	case K_HEAD:
	case K_STAT:
		curl_easy_setopt(q->easy, CURLOPT_NOBODY, 1L);
		rc = add_header(q, "x-amz-content-sha256: " EMPTY_SHA);
		break;
	case K_LOCK:
	case K_LISTUP:
	case K_LISTPARTS:
	case K_VERSIONS:
	case K_GET:
	case K_LIST:
		rc = add_header(q, "x-amz-content-sha256: " EMPTY_SHA);
		break;
	case K_ABORT:
		curl_easy_setopt(q->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
		rc = add_header(q, "x-amz-content-sha256: " EMPTY_SHA);
		break;
	case K_CREATE:
		curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, 0L);
		rc = add_header(q, "x-amz-content-sha256: " EMPTY_SHA);
		if (rc == 0)
			rc = add_header(q, "x-amz-meta-sha256: %s", o->shahex);
		if (rc == 0)
			rc = add_header(q, "x-amz-checksum-algorithm: SHA256");
		if (rc == 0)
			rc = add_header(q, "Content-Type: %s", o->ctype);
		if (rc == 0)
			rc = lock_headers(q);
		break;
	case K_RAW:
		if (strcmp(o->method, "DELETE") == 0)
			curl_easy_setopt(q->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
		else if (strcmp(o->method, "HEAD") == 0)
			curl_easy_setopt(q->easy, CURLOPT_NOBODY, 1L);
		if (q->post == NULL) {
			rc = add_header(q, "x-amz-content-sha256: " EMPTY_SHA);
			break;
		}
		/* a PUT with an XML body: as Complete's */
		/* fall through */
	case K_COMPLETE:
	case K_RETAIN: {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		uint8_t d[32];
		uint8_t m[16];
		if (c == NULL)
			goto out;
		if (EVP_Digest(q->post, q->postlen, d, NULL, EVP_sha256(), NULL) != 1 ||
		    EVP_Digest(q->post, q->postlen, m, NULL, EVP_md5(), NULL) != 1) {
			EVP_MD_CTX_free(c);
			rc = CS_ECRYPTO;
			goto out;
		}
		EVP_MD_CTX_free(c);
		cs__hex(d, 32, hex);
		b64(m, 16, md5b);
		if (q->kind != K_COMPLETE) {
			curl_easy_setopt(q->easy, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(q->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->postlen);
		} else {
			curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
			curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)q->postlen);
		}
		curl_easy_setopt(q->easy, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(q->easy, CURLOPT_READDATA, q);
		curl_easy_setopt(q->easy, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(q->easy, CURLOPT_SEEKDATA, q);
		rc = add_header(q, "x-amz-content-sha256: %s", hex);
		if (rc == 0)
			rc = add_header(q, "Content-MD5: %s", md5b);
		if (rc == 0)
			rc = add_header(q, "Content-Type: application/xml");
		break;
	}
	case K_PUT:
		upload = 1;
		q->off = 0;
		q->len = o->size;
		cs__hex(o->sha, 32, hex);
		b64(o->md5, 16, md5b);
		rc = add_header(q, "x-amz-content-sha256: %s", hex);
		if (rc == 0)
			rc = add_header(q, "x-amz-checksum-sha256: %s", o->shab64);
		if (rc == 0)
			rc = add_header(q, "x-amz-meta-sha256: %s", o->shahex);
		if (rc == 0)
			rc = add_header(q, "Content-Type: %s", o->ctype);
		if (rc == 0 && !r->lock_on)
			rc = add_header(q, "If-None-Match: *"); /* ignored on versioned buckets */
		if (rc == 0)
			rc = lock_headers(q);
		break;
	case K_PART: {
		struct part *p = &o->parts[q->part];
		char sb[48];
		upload = 1;
		q->off = p->off;
		q->len = p->len;
		cs__hex(p->sha, 32, hex);
		b64(p->md5, 16, md5b);
		b64(p->sha, 32, sb);
		rc = add_header(q, "x-amz-content-sha256: %s", hex);
		if (rc == 0)
			rc = add_header(q, "x-amz-checksum-sha256: %s", sb);
		break;
	}
	}
	if (rc == 0 && upload) {
		curl_easy_setopt(q->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(q->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->len);
		curl_easy_setopt(q->easy, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(q->easy, CURLOPT_READDATA, q);
		curl_easy_setopt(q->easy, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(q->easy, CURLOPT_SEEKDATA, q);
		/* no "Expect:" to turn 100-continue off: libcurl 7.88 would sign it */
		rc = add_header(q, "Content-MD5: %s", md5b);
	}
	if (rc == 0)
		curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->hdrs);
out:
	free(ek);
	free(url);
	return rc;
}

/* ---- the answers ---- */

/* "HTTP 403 SignatureDoesNotMatch: message" with a word for the operator. */
static void
describe(struct req *q, char *out, size_t n)
{
	const struct cs_remote_config *cfg = q->r->cfg;
	char code[128] = "", msg[256] = "";
	const char *hint = "";

	xml_get(q->body, NULL, "Code", code, sizeof(code));
	xml_get(q->body, NULL, "Message", msg, sizeof(msg));
	if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0)
		hint = "the credentials were refused: check access_key and secret_key";
	else if (strcmp(code, "NoSuchBucket") == 0)
		hint = "the bucket does not exist: create it or correct `bucket`";
	else if (strcmp(code, "AccessDenied") == 0 && strstr(msg, "object lock") != NULL)
		hint = "Object Lock retention or a legal hold still keeps this version";
	else if (strcmp(code, "AccessDenied") == 0)
		hint = "access denied: the user may not write to this bucket";
	else if (strcmp(code, "BadDigest") == 0 || strcmp(code, "XAmzContentSHA256Mismatch") == 0)
		hint = "the bytes sent did not match their checksum";
	else if (q->status == 403 && code[0] == '\0')
		hint = "refused (403): check the credentials and the bucket's policy";
	snprintf(out, n, "%s %s/%s: HTTP %ld%s%s%s%s%s%s",
	    q->kind == K_RAW ? q->o->method : kind_names[q->kind], cfg->bucket,
	    q->o != NULL ? q->o->key : "", q->status, code[0] ? " " : "", code, msg[0] ? ": " : "",
	    msg, hint[0] ? "; " : "", hint);
}

static int
transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

static int
transient_http(struct req *q)
{
	char code[64] = "";

	if ((q->status >= 500 && q->status != 501) || q->status == 429)
		return 1; /* 501 Not Implemented will not change by asking again */
	xml_get(q->body, NULL, "Code", code, sizeof(code));
	return strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
	    strcmp(code, "InternalError") == 0;
}

static uint64_t
jitter(void)
{
	uint32_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)now_ms();
	return v;
}

/* Puts q back to run again later; the easy handle is made anew. */
static void
retry_later(struct req *q)
{
	struct cs_remote *r = q->r;
	uint64_t d = BACKOFF_BASE_MS;

	for (unsigned i = 0; i < q->attempt && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	d = d / 2 + jitter() % (d / 2 + 1); /* "equal jitter" */
	q->attempt++;
	if (q->easy != NULL)
		curl_easy_cleanup(q->easy);
	q->easy = NULL;
	curl_slist_free_all(q->hdrs);
	q->hdrs = NULL;
	free(q->body);
	q->body = NULL;
	q->bodylen = 0;
	q->pos = 0;
	q->status = 0;
	q->due_ms = now_ms() + (int64_t)d;
	q->next = r->later;
	r->later = q;
}

/*
 * Queues the next parts, in order, keeping at most `parallel` of the
 * object's parts queued or running: memory does not grow with the object.
 */
static void
more_parts(struct obj *o)
{
	char qs[1200];

	while (o->next_part < o->nparts && o->next_part - o->ndone < o->r->cfg->parallel &&
	    !o->finished) {
		struct req *q;
		snprintf(qs, sizeof(qs), "partNumber=%zu&uploadId=%s", o->next_part + 1,
		    o->upload_id);
		q = add_req(o, K_PART, qs);
		if (q == NULL)
			return;
		q->part = o->next_part++;
	}
}

static int
setup_parts(struct obj *o)
{
	uint64_t ps = o->r->cfg->part_size;

	o->nparts = (size_t)((o->size + ps - 1) / ps);
	if (o->nparts > 10000) {
		/* S3 allows 10 000 parts: grow the part size for this object */
		ps = (o->size + 9999) / 10000;
		o->nparts = (size_t)((o->size + ps - 1) / ps);
	}
	o->parts = calloc(o->nparts, sizeof(*o->parts));
	o->whole = EVP_MD_CTX_new();
	if (o->parts == NULL || o->whole == NULL ||
	    EVP_DigestInit_ex(o->whole, EVP_sha256(), NULL) != 1)
		return -ENOMEM;
	for (size_t i = 0; i < o->nparts; i++) {
		o->parts[i].off = i * ps;
		o->parts[i].len = i + 1 < o->nparts ? ps : o->size - i * ps;
	}
	return 0;
}

static void
begin_upload(struct obj *o)
{
	char qs[1200], *ek;

	if (o->size <= o->r->cfg->multipart_above) {
		add_req(o, K_PUT, NULL); /* its MD5 when it starts (start(), on a worker if any) */
		return;
	}
	if (setup_parts(o) < 0) {
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	ek = enc(o->key, 0);
	if (ek == NULL) {
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	/* sorted query: prefix < uploads */
	snprintf(qs, sizeof(qs), "prefix=%s&uploads=", ek);
	free(ek);
	add_req(o, K_LISTUP, qs);
}

static void
abort_upload(struct obj *o, const char *id)
{
	char qs[1200];

	snprintf(qs, sizeof(qs), "uploadId=%s", id);
	add_req(o, K_ABORT, qs);
}

/* ListMultipartUploads: resume the newest fresh upload of the key; abort the rest. */
static void
on_listup(struct req *q)
{
	struct obj *o = q->o;
	const char *p = q->body;
	char up[8192], key[1100], id[1024], init[64], best[1024] = "";
	int64_t best_ms = -1, ms, now = cs__now_ms();

	while (p != NULL && xml_get(q->body, &p, "Upload", up, sizeof(up)) == 0) {
		if (xml_get(up, NULL, "Key", key, sizeof(key)) < 0 || strcmp(key, o->key) != 0 ||
		    xml_get(up, NULL, "UploadId", id, sizeof(id)) < 0)
			continue;
		if (xml_get(up, NULL, "Initiated", init, sizeof(init)) < 0 ||
		    cs__time_parse(init, &ms) < 0)
			ms = 0;
		if (now - ms > o->r->cfg->stale_upload_s * 1000) {
			abort_upload(o, id); /* stale */
			continue;
		}
		if (ms > best_ms) {
			if (best[0] != '\0')
				abort_upload(o, best);
			snprintf(best, sizeof(best), "%s", id);
			best_ms = ms;
		} else {
			abort_upload(o, id);
		}
	}
	if (best[0] != '\0') {
		char qs[1200];
		o->upload_id = strdup(best);
		if (o->upload_id == NULL) {
			obj_fail(o, -ENOMEM, "out of memory");
			return;
		}
		snprintf(qs, sizeof(qs), "uploadId=%s", best);
		add_req(o, K_LISTPARTS, qs);
		return;
	}
	add_req(o, K_CREATE, "uploads=");
}

static void
on_listparts(struct req *q)
{
	struct obj *o = q->o;
	const char *p = q->body;
	char part[2048], num[32], etag[100], size[32], trunc[16] = "", next[32] = "";

	while (p != NULL && xml_get(q->body, &p, "Part", part, sizeof(part)) == 0) {
		unsigned long n;
		if (xml_get(part, NULL, "PartNumber", num, sizeof(num)) < 0 ||
		    xml_get(part, NULL, "ETag", etag, sizeof(etag)) < 0 ||
		    xml_get(part, NULL, "Size", size, sizeof(size)) < 0)
			continue;
		n = strtoul(num, NULL, 10);
		unquote(etag);
		if (n >= 1 && n <= o->nparts && strtoull(size, NULL, 10) == o->parts[n - 1].len)
			snprintf(o->parts[n - 1].remote_etag, sizeof(o->parts[n - 1].remote_etag),
			    "%s", etag);
	}
	xml_get(q->body, NULL, "IsTruncated", trunc, sizeof(trunc));
	xml_get(q->body, NULL, "NextPartNumberMarker", next, sizeof(next));
	if (strcmp(trunc, "true") == 0 && next[0] != '\0') {
		char qs[1200];
		snprintf(qs, sizeof(qs), "part-number-marker=%s&uploadId=%s", next, o->upload_id);
		add_req(o, K_LISTPARTS, qs);
		return;
	}
	more_parts(o);
}

static void
complete(struct obj *o)
{
	size_t cap = o->nparts * 200 + 128, n;
	char *x = malloc(cap), hex[33], sb[48];
	struct req *q;
	uint8_t d[32];

	if (x == NULL) {
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	if (EVP_DigestFinal_ex(o->whole, d, NULL) != 1 || memcmp(d, o->sha, 32) != 0) {
		free(x);
		obj_fail(o, CS_EDIGEST,
		    "the local copy of %s does not match its SHA-256: not sent "
		    "(run `custos verify`)",
		    o->key);
		abort_upload(o, o->upload_id);
		return;
	}
	n = (size_t)snprintf(x, cap, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < o->nparts; i++) {
		cs__hex(o->parts[i].md5, 16, hex);
		b64(o->parts[i].sha, 32, sb);
		n += (size_t)snprintf(x + n, cap - n,
		    "<Part><PartNumber>%zu</PartNumber>"
		    "<ETag>\"%s\"</ETag><ChecksumSHA256>%s</ChecksumSHA256></Part>",
		    i + 1, hex, sb);
	}
	n += (size_t)snprintf(x + n, cap - n, "</CompleteMultipartUpload>");
	q = add_req(o, K_COMPLETE, NULL);
	if (q == NULL) {
		free(x);
		return;
	}
	q->post = x;
	q->postlen = n;
	free(q->query);
	q->query = malloc(strlen(o->upload_id) + 16);
	if (q->query == NULL) {
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	snprintf(q->query, strlen(o->upload_id) + 16, "uploadId=%s", o->upload_id);
}

/* The ETag S3 gives a multipart object: MD5 of the parts' MD5s, "-" and their number. */
static void
multipart_etag(struct obj *o, char *out, size_t n)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t d[16];
	char hex[33];
	unsigned int dl;

	out[0] = '\0';
	if (c == NULL || EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return;
	}
	for (size_t i = 0; i < o->nparts; i++)
		EVP_DigestUpdate(c, o->parts[i].md5, 16);
	if (EVP_DigestFinal_ex(c, d, &dl) == 1) {
		cs__hex(d, 16, hex);
		snprintf(out, n, "%s-%zu", hex, o->nparts);
	}
	EVP_MD_CTX_free(c);
}

static void bucket_known(struct cs_remote *r);

/*
 * A multipart object is confirmed. Its retention is set now, with
 * PutObjectRetention: RGW 16 does not apply the retention headers of
 * CreateMultipartUpload, and a resumed upload was created by an earlier run.
 * `locked`: the server already showed a retention (the HEAD after Complete).
 */
static void
multipart_ok(struct obj *o, const char *version, const char *etag, int locked)
{
	struct req *q;
	char *ev, *qs;
	size_t n;

	snprintf(o->version, sizeof(o->version), "%s", version);
	snprintf(o->etag, sizeof(o->etag), "%s", etag);
	if (!lock_set(o) || locked) {
		o->finished = 1; /* version and etag kept above */
		return;
	}
	ev = enc(o->version, 0);
	n = ev != NULL ? strlen(ev) + 32 : 0;
	qs = ev != NULL ? malloc(n) : NULL;
	if (qs == NULL) {
		free(ev);
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	if (o->version[0] != '\0')
		snprintf(qs, n, "retention=&versionId=%s", ev);
	else
		snprintf(qs, n, "retention=");
	q = add_req(o, K_RETAIN, qs);
	free(ev);
	free(qs);
	if (q == NULL)
		return;
	q->post = malloc(256);
	if (q->post == NULL) {
		obj_fail(o, -ENOMEM, "out of memory");
		return;
	}
	q->postlen = (size_t)snprintf(q->post, 256,
	    "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s</Mode>"
	    "<RetainUntilDate>%s</RetainUntilDate></Retention>",
	    o->mode, o->until);
}

/* Versions of `key` among the <tag> entries of a ListObjectVersions answer. */
static int
count_versions(const char *xml, const char *tag, const char *key, int *latest)
{
	char open[32], close[32], k[1200], l[16];
	const char *a = xml, *b;
	int n = 0;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	while (a != NULL && (a = strstr(a, open)) != NULL && (b = strstr(a, close)) != NULL) {
		const char *from = a;
		if (xml_get(a, &from, "Key", k, sizeof(k)) == 0 && from < b &&
		    strcmp(k, key) == 0) {
			n++;
			from = a;
			if (xml_get(a, &from, "IsLatest", l, sizeof(l)) == 0 && from < b &&
			    strcmp(l, "true") == 0)
				*latest = 1;
		}
		a = b;
	}
	return n;
}

/* What a reading object does after its HEAD (or its versions): the next step, or done. */
static void
read_next(struct obj *o, enum kind after)
{
	char *ek, *qs;
	size_t n;

	if (after == K_STAT && (o->flags & CS_REMOTE_STAT_VERSIONS)) {
		ek = enc(o->key, 0);
		n = ek != NULL ? strlen(ek) + 32 : 0;
		qs = ek != NULL ? malloc(n) : NULL;
		if (qs == NULL) {
			free(ek);
			obj_fail(o, -ENOMEM, "out of memory");
			return;
		}
		snprintf(qs, n, "prefix=%s&versions=", ek);
		add_req(o, K_VERSIONS, qs);
		free(ek);
		free(qs);
		return;
	}
	if (after != K_GET && o->present && (o->flags & CS_REMOTE_STAT_READ)) {
		add_req(o, K_GET, NULL);
		return;
	}
	o->finished = 1;
	o->rc = 0;
}

/* The answer to a request of cs_remote_stat or cs_remote_list. */
static void
on_read(struct req *q)
{
	struct obj *o = q->o;
	char why[700], k[1200], sz[32], tok[1200];
	const char *from;

	if (q->kind == K_STAT && (q->status == 200 || q->status == 404)) {
		o->present = q->status == 200;
		if (o->present) {
			unquote(q->h_etag);
			o->size = q->h_len >= 0 ? (uint64_t)q->h_len : 0;
			snprintf(o->version, sizeof(o->version), "%s", q->h_version);
			snprintf(o->etag, sizeof(o->etag), "%s", q->h_etag);
			snprintf(o->meta, sizeof(o->meta), "%s", q->h_meta_sha);
			snprintf(o->cksum, sizeof(o->cksum), "%s", q->h_cksum);
			snprintf(o->mode, sizeof(o->mode), "%s", q->h_mode);
			snprintf(o->until, sizeof(o->until), "%s", q->h_until);
		}
		read_next(o, K_STAT);
	} else if (q->kind == K_VERSIONS && q->status == 200) {
		o->versions = count_versions(q->body, "Version", o->key, &o->marker);
		o->marker = 0; /* only a delete marker's IsLatest counts */
		o->versions += count_versions(q->body, "DeleteMarker", o->key, &o->marker);
		read_next(o, K_VERSIONS);
	} else if (q->kind == K_GET && q->status == 200) {
		o->read = 1;
		read_next(o, K_GET);
	} else if (q->kind == K_LIST && q->status == 200) {
		for (const char *c = strstr(q->body, "<Contents>"); c != NULL;
		    c = strstr(c + 1, "<Contents>")) {
			from = c;
			if (xml_get(c, &from, "Key", k, sizeof(k)) < 0)
				continue;
			from = c;
			if (xml_get(c, &from, "Size", sz, sizeof(sz)) < 0)
				sz[0] = '\0';
			o->each(o->ctx, k, strtoull(sz, NULL, 10), 0, NULL);
		}
		if (xml_get(q->body, NULL, "IsTruncated", sz, sizeof(sz)) == 0 &&
		    strcmp(sz, "true") == 0 &&
		    xml_get(q->body, NULL, "NextContinuationToken", tok, sizeof(tok)) == 0) {
			char *et = enc(tok, 0), *ep = enc(o->key, 0), *qs = NULL;
			size_t n = et != NULL && ep != NULL ? strlen(et) + strlen(ep) + 64 : 0;
			if (n > 0)
				qs = malloc(n);
			if (qs != NULL) {
				snprintf(qs, n, "continuation-token=%s&list-type=2&prefix=%s", et,
				    ep);
				add_req(o, K_LIST, qs);
			} else {
				obj_fail(o, -ENOMEM, "out of memory");
			}
			free(et);
			free(ep);
			free(qs);
		} else {
			o->finished = 1;
			o->rc = 0;
		}
	} else {
		describe(q, why, sizeof(why));
		obj_fail(o, CS_EREMOTE, "%s", why);
	}
}

/* One request has its answer (or failed for good at the HTTP level). */
static void
on_done(struct req *q, CURLcode cc)
{
	struct cs_remote *r = q->r;
	struct obj *o = q->o;
	char why[700], hex[33];

	curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &q->status);
	if (cc != CURLE_OK || transient_http(q)) {
		int transient = cc != CURLE_OK ? transient_curl(cc) : 1;
		if (transient && q->attempt < r->cfg->retries && (o == NULL || !o->finished)) {
			retry_later(q);
			return;
		}
		if (cc != CURLE_OK)
			snprintf(why, sizeof(why), "%s %s: %s%s", kind_names[q->kind],
			    r->cfg->endpoint, q->errbuf[0] ? q->errbuf : curl_easy_strerror(cc),
			    transient ? " (gave up after retries)" : "");
		else
			describe(q, why, sizeof(why));
		if (o == NULL) {
			r->bucket_state = -1;
			r->bucket_rc = transient ? CS_EREMOTEIO : CS_EREMOTE;
			snprintf(r->bucket_why, sizeof(r->bucket_why), "%.700s", why);
			bucket_known(r);
		} else if (q->kind != K_ABORT) {
			obj_fail(o, transient ? CS_EREMOTEIO : CS_EREMOTE, "%s", why);
		}
		goto out;
	}
	if (o != NULL && o->finished && q->kind != K_ABORT)
		goto out; /* the object already failed: this answer changes nothing */
	switch (q->kind) {
	case K_LOCK: {
		char en[32] = "", code[64] = "";
		xml_get(q->body, NULL, "Code", code, sizeof(code));
		if (q->status == 200) {
			xml_get(q->body, NULL, "ObjectLockEnabled", en, sizeof(en));
			r->lock_on = strcmp(en, "Enabled") == 0;
			r->bucket_state = 2;
		} else if (q->status == 403 || strcmp(code, "NoSuchBucket") == 0) {
			describe(q, why, sizeof(why));
			r->bucket_state = -1;
			r->bucket_rc = CS_EREMOTE;
			snprintf(r->bucket_why, sizeof(r->bucket_why), "%.700s", why);
		} else {
			r->lock_on = 0; /* no Object Lock configuration (or none supported) */
			r->bucket_state = 2;
		}
		bucket_known(r);
		break;
	}
	case K_HEAD:
		if (o->confirm[0] != '\0') {
			unquote(q->h_etag);
			if (q->status == 200 && q->h_len == (int64_t)o->size &&
			    strcmp(q->h_etag, o->confirm) == 0)
				multipart_ok(o, q->h_version[0] ? q->h_version : o->version,
				    q->h_etag, q->h_mode[0] != '\0');
			else
				obj_fail(o, CS_EREMOTE,
				    "CompleteMultipartUpload %s: the object's HEAD "
				    "does not confirm the parts (HTTP %ld, ETag %s, expected %s)",
				    o->key, q->status, q->h_etag, o->confirm);
		} else if (q->status == 200) {
			char sb[48];
			unquote(q->h_etag);
			snprintf(sb, sizeof(sb), "%s", o->shab64);
			if (q->h_len == (int64_t)o->size &&
			    (strcmp(q->h_meta_sha, o->shahex) == 0 ||
			        strcmp(q->h_cksum, sb) == 0)) {
				o->skipped = 1;
				snprintf(o->mode, sizeof(o->mode), "%s", q->h_mode);
				snprintf(o->until, sizeof(o->until), "%s", q->h_until);
				obj_ok(o, q->h_version, q->h_etag);
			} else {
				obj_fail(o, CS_EREMOTE,
				    "%s is in the bucket but not with this size and SHA-256 "
				    "(not written by custos, or other bytes): left alone",
				    o->key);
			}
		} else if (q->status == 404) {
			begin_upload(o);
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE, "%s", why);
		}
		break;
	case K_PUT:
		unquote(q->h_etag);
		cs__hex(o->md5, 16, hex);
		if (q->status == 200 && strcmp(q->h_etag, hex) == 0 &&
		    (q->h_cksum[0] == '\0' || strcmp(q->h_cksum, o->shab64) == 0)) {
			obj_ok(o, q->h_version, q->h_etag);
		} else if (q->status == 412) {
			/* If-None-Match: someone wrote it meanwhile: look again */
			add_req(o, K_HEAD, NULL);
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE,
			    q->status == 200 ? "PUT %s: the answer does not "
			                       "confirm the checksum (ETag %s, expected %s)"
			                     : "%s",
			    q->status == 200 ? o->key : why, q->h_etag, hex);
		}
		break;
	case K_LISTUP:
		if (q->status == 200) {
			on_listup(q);
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE, "%s", why);
		}
		break;
	case K_CREATE: {
		char id[1024];
		if (q->status == 200 && xml_get(q->body, NULL, "UploadId", id, sizeof(id)) == 0 &&
		    (o->upload_id = strdup(id)) != NULL) {
			more_parts(o);
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE, "%s", why);
		}
		break;
	}
	case K_LISTPARTS:
		if (q->status == 200) {
			on_listparts(q);
		} else if (q->status == 404) {
			/* the upload is gone: begin a new one */
			free(o->upload_id);
			o->upload_id = NULL;
			for (size_t i = 0; i < o->nparts; i++)
				o->parts[i].remote_etag[0] = '\0';
			add_req(o, K_CREATE, "uploads=");
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE, "%s", why);
		}
		break;
	case K_PART: {
		struct part *p = &o->parts[q->part];
		unquote(q->h_etag);
		cs__hex(p->md5, 16, hex);
		if (q->status == 200 && strcmp(q->h_etag, hex) == 0) {
			p->done = 1;
			if (++o->ndone == o->nparts)
				complete(o);
			else
				more_parts(o);
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE,
			    q->status == 200 ? "UploadPart %s part %zu: the answer "
			                       "does not confirm the checksum"
			                     : "%s",
			    q->status == 200 ? o->key : why, q->part + 1);
		}
		break;
	}
	case K_COMPLETE: {
		char etag[100] = "", want[64];
		if (q->status == 200 && q->body != NULL && strstr(q->body, "<Error>") == NULL &&
		    xml_get(q->body, NULL, "ETag", etag, sizeof(etag)) == 0) {
			unquote(etag);
			multipart_etag(o, want, sizeof(want));
			if (etag[0] == '\0') {
				/* RGW 16 answers an empty ETag: confirm with a HEAD */
				snprintf(o->confirm, sizeof(o->confirm), "%s", want);
				snprintf(o->version, sizeof(o->version), "%s", q->h_version);
				add_req(o, K_HEAD, NULL);
				break;
			}
			if (strcmp(etag, want) == 0) {
				multipart_ok(o, q->h_version, etag, 0);
				break;
			}
			obj_fail(o, CS_EREMOTE,
			    "CompleteMultipartUpload %s: the answer does not "
			    "confirm the parts (ETag %s, expected %s)",
			    o->key, etag, want);
			break;
		}
		if (q->body != NULL && strstr(q->body, "<Error>") != NULL && transient_http(q) &&
		    q->attempt < r->cfg->retries) {
			retry_later(q);
			return;
		}
		describe(q, why, sizeof(why));
		obj_fail(o, CS_EREMOTE, "%s", why);
		break;
	}
	case K_ABORT:
		break;
	case K_RETAIN:
		if (q->status == 200) {
			o->finished = 1; /* the version and ETag the multipart upload had */
		} else {
			describe(q, why, sizeof(why));
			obj_fail(o, CS_EREMOTE, "%s (the object is there without its retention)",
			    why);
		}
		break;
	case K_STAT:
	case K_VERSIONS:
	case K_GET:
	case K_LIST:
		on_read(q);
		break;
	case K_RAW:
		o->status = q->status;
		xml_get(q->body, NULL, "Code", o->code, sizeof(o->code));
		snprintf(o->version, sizeof(o->version), "%s", q->h_version);
		snprintf(o->date, sizeof(o->date), "%s", q->h_date);
		if (q->status >= 300)
			describe(q, o->why, sizeof(o->why));
		o->abody = q->body;
		q->body = NULL;
		o->finished = 1;
		o->rc = 0;
		break;
	}
out:
	if (o != NULL)
		obj_release(o);
	req_free(q);
}

/* The bucket's lock setting is known (or the bucket failed): the objects waiting go on. */
static void
bucket_known(struct cs_remote *r)
{
	struct obj *o;

	while ((o = r->waiting) != NULL) {
		r->waiting = o->next;
		if (r->bucket_state < 0) {
			obj_fail(o, r->bucket_rc, "%s", r->bucket_why);
			o->reqs++;
			obj_release(o);
			continue;
		}
		o->reqs++; /* hold it while its first request is queued */
		add_req(o, K_HEAD, NULL);
		obj_release(o);
	}
	r->waiting_tail = &r->waiting;
}

/* A part is about to be sent: hash it (in order, so the whole-object digest adds up). */
static int
prepare_part(struct req *q)
{
	struct obj *o = q->o;
	struct part *p = &o->parts[q->part];
	char hex[33];
	int rc;

	if (!p->hashed) {
		part_gate();
		rc = hash_range(o->fd, p->off, p->len, p->md5, p->sha, o->whole);
		if (rc < 0)
			return rc;
		p->hashed = 1;
		o->nhashed++;
	}
	cs__hex(p->md5, 16, hex);
	if (p->remote_etag[0] != '\0' && strcmp(p->remote_etag, hex) == 0)
		return 1; /* already there (resumed upload) */
	return 0;
}

/*
 * A single PUT's body: its MD5 for Content-MD5, and its SHA-256 checked
 * against the object's own, so that a damaged local copy is never sent
 * (the server's check of x-amz-content-sha256 is not relied on alone).
 */
static int
hash_put(struct obj *o)
{
	uint8_t sha[32];
	int rc = hash_range(o->fd, 0, o->size, o->md5, sha, NULL);

	return rc < 0 ? rc : memcmp(sha, o->sha, 32) != 0 ? CS_EDIGEST : 0;
}

/* The end of a single PUT's hashing that failed: the object fails, named. */
static void
put_hash_failed(struct req *q, int rc)
{
	struct obj *o = q->o;

	if (rc == CS_EDIGEST)
		obj_fail(o, rc, "the local copy of %s does not match its SHA-256: not sent "
		                "(run `custos verify`)",
		    o->key);
	else
		obj_fail(o, rc, "cannot read the object to send: %s", cs_strerror(rc));
	obj_release(o);
	req_free(q);
}

/* ---- a body's hashing on the caller's workers (hooks.work) ---- */

/*
 * Hands the hashing of a request's body (a multipart part, or a single
 * PUT's whole object) to the caller: 1 when it did (or the request waits
 * for a part before it), 0 when the body is hashed here and now.
 */
static int
offload_part(struct req *q)
{
	struct cs_remote *r = q->r;
	struct obj *o = q->o;
	struct cs_remote_work *w;

	if (r->work == NULL || (q->kind == K_PUT ? o->md5_done : o->parts[q->part].hashed))
		return 0;
	/* In order (the whole-object digest), one at a time per object. */
	if (q->kind == K_PART && (o->hashing || q->part != o->nhashed)) {
		q->next = r->parked;
		r->parked = q;
		return 1;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return 0;
	w->r = r;
	w->q = q;
	w->next = r->works;
	r->works = w;
	o->hashing = 1;
	if (r->work(r->hooks.ctx, w) != 0) {
		r->works = w->next;
		o->hashing = 0;
		free(w);
		return 0;
	}
	return 1;
}

void
cs_remote_set_work(struct cs_remote *r, int (*work)(void *ctx, struct cs_remote_work *w))
{
	r->work = r->hooked ? work : NULL;
}

void
cs_remote_work_run(struct cs_remote_work *w)
{
	struct obj *o = w->q->o;
	struct part *p;

	part_gate();
	if (w->q->kind == K_PUT) { /* a single PUT: the body's MD5, its SHA-256 checked */
		w->rc = hash_put(o);
		return;
	}
	p = &o->parts[w->q->part];
	w->rc = hash_range(o->fd, p->off, p->len, p->md5, p->sha, o->whole);
}

static void pump(struct cs_remote *r);

void
cs_remote_work_done(struct cs_remote_work *w)
{
	struct cs_remote *r = w->r;
	struct req *q = w->q, **pp;
	struct obj *o = q->o;

	if (r == NULL) { /* freed meanwhile: only this request held the object */
		if (--o->reqs == 0)
			obj_free(o);
		req_free(q);
		free(w);
		return;
	}
	for (struct cs_remote_work **wp = &r->works; *wp != NULL; wp = &(*wp)->next)
		if (*wp == w) {
			*wp = w->next;
			break;
		}
	o->hashing = 0;
	/* the object's parked parts are ready again, before the rest */
	for (pp = &r->parked; *pp != NULL;) {
		struct req *p = *pp;
		if (p->o == o) {
			*pp = p->next;
			p->next = r->ready;
			if (r->ready == NULL)
				r->ready_tail = &p->next;
			r->ready = p;
		} else {
			pp = &p->next;
		}
	}
	if (w->rc < 0 && q->kind == K_PUT) {
		put_hash_failed(q, w->rc);
	} else if (w->rc < 0) {
		obj_fail(o, w->rc, "cannot read part %zu of the object to send: %s", q->part + 1,
		    cs_strerror(w->rc));
		obj_release(o);
		req_free(q);
	} else {
		if (q->kind == K_PUT) {
			o->md5_done = 1;
		} else {
			o->parts[q->part].hashed = 1;
			o->nhashed++;
		}
		q->next = r->ready;
		if (r->ready == NULL)
			r->ready_tail = &q->next;
		r->ready = q;
	}
	free(w);
	pump(r);
}

static void
start(struct req *q)
{
	struct cs_remote *r = q->r;
	struct obj *o = q->o;
	int rc;

	if ((q->kind == K_PART || q->kind == K_PUT) && offload_part(q))
		return;
	if (q->kind == K_PUT && !o->md5_done) {
		part_gate();
		rc = hash_put(o);
		if (rc < 0) {
			put_hash_failed(q, rc);
			return;
		}
		o->md5_done = 1;
	}
	if (q->kind == K_PART) {
		rc = prepare_part(q);
		if (rc == 1) {
			o->parts[q->part].done = 1;
			if (++o->ndone == o->nparts)
				complete(o);
			else
				more_parts(o);
			obj_release(o);
			req_free(q);
			return;
		}
		if (rc < 0) {
			obj_fail(o, rc, "cannot read part %zu of the object to send: %s",
			    q->part + 1, cs_strerror(rc));
			obj_release(o);
			req_free(q);
			return;
		}
	}
	if (q->kind == K_GET) {
		/* a GET (again, after a retry) starts over: the digest and the file too */
		o->got = 0;
		rc = EVP_DigestInit_ex(o->whole, EVP_sha256(), NULL) == 1 ? 0 : CS_ECRYPTO;
		if (rc == 0 && o->fd >= 0 && ftruncate(o->fd, 0) < 0)
			rc = -errno;
		if (rc < 0) {
			obj_fail(o, rc, "cannot keep the object read: %s", cs_strerror(rc));
			obj_release(o);
			req_free(q);
			return;
		}
	}
	rc = req_setup(q);
	if (rc == 0 && curl_multi_add_handle(r->multi, q->easy) != CURLM_OK)
		rc = CS_EREMOTE;
	if (rc < 0) {
		if (o != NULL) {
			obj_fail(o, rc, "cannot make the request: %s", cs_strerror(rc));
			obj_release(o);
		}
		req_free(q);
		return;
	}
	r->active++;
	q->rnext = r->running;
	r->running = q;
}

static void
pump(struct cs_remote *r)
{
	struct req **pp = &r->later, *q;
	int64_t now = now_ms();

	/* retries that are due go first */
	while ((q = *pp) != NULL) {
		if (q->due_ms <= now) {
			*pp = q->next;
			q->next = r->ready;
			r->ready = q;
			if (r->ready_tail == &r->ready)
				r->ready_tail = &q->next;
		} else {
			pp = &q->next;
		}
	}
	while (r->active < r->cfg->parallel && (q = r->ready) != NULL) {
		r->ready = q->next;
		if (r->ready == NULL)
			r->ready_tail = &r->ready;
		if (q->o != NULL && q->o->finished && q->kind != K_ABORT) {
			obj_release(q->o);
			req_free(q);
			continue;
		}
		start(q);
	}
}

static void
drain(struct cs_remote *r)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(r->multi, &left)) != NULL) {
		char *priv = NULL;
		CURLcode cc;
		if (m->msg != CURLMSG_DONE)
			continue;
		cc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		curl_multi_remove_handle(r->multi, m->easy_handle);
		r->active--;
		for (struct req **pp = &r->running; *pp != NULL; pp = &(*pp)->rnext) {
			if (*pp == (struct req *)priv) {
				*pp = (*pp)->rnext;
				break;
			}
		}
		on_done((struct req *)priv, cc);
	}
	pump(r);
}

int
cs_remote_put(struct cs_remote *r, const struct cs_remote_object *obj, cs_remote_done_fn done,
    void *ctx)
{
	struct obj *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return -ENOMEM;
	o->r = r;
	o->fd = fcntl(obj->fd, F_DUPFD_CLOEXEC, 0);
	o->key = strdup(obj->key);
	o->ctype = strdup(
	    obj->content_type != NULL ? obj->content_type : "application/octet-stream");
	if (o->fd < 0 || o->key == NULL || o->ctype == NULL) {
		int rc = o->fd < 0 ? -errno : -ENOMEM;
		o->fd = o->fd < 0 ? -1 : o->fd;
		obj_free(o);
		return rc;
	}
	o->size = obj->size;
	memcpy(o->sha, obj->sha256, 32);
	cs__hex(o->sha, 32, o->shahex);
	b64(o->sha, 32, o->shab64);
	o->done = done;
	o->ctx = ctx;
	r->objects++;
	r->total += obj->size;
	if (r->bucket_state == 2) {
		o->reqs++;
		add_req(o, K_HEAD, NULL);
		obj_release(o);
	} else {
		*r->waiting_tail = o;
		r->waiting_tail = &o->next;
		if (r->bucket_state <= 0) {
			/* not asked yet, or the last asking failed: ask (again) */
			struct req *q = req_new(r, NULL, K_LOCK, "object-lock=");
			if (q == NULL)
				return -ENOMEM;
			r->bucket_state = 1;
			enqueue(r, q);
		}
	}
	pump(r);
	return 0;
}

/* A reading object for `key`: counted as pending, its first request queued. */
static int
read_obj(struct cs_remote *r, const char *key, int fd, struct obj **out)
{
	struct obj *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return -ENOMEM;
	o->r = r;
	o->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	o->key = strdup(key);
	if ((fd >= 0 && o->fd < 0) || o->key == NULL) {
		int rc = fd >= 0 && o->fd < 0 ? -errno : -ENOMEM;
		obj_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

static void
read_start(struct obj *o, enum kind kind, const char *query)
{
	o->r->objects++;
	o->reqs++;
	add_req(o, kind, query);
	obj_release(o);
	pump(o->r);
}

int
cs_remote_stat(struct cs_remote *r, const char *key, int flags, int fd, cs_remote_info_fn done,
    void *ctx)
{
	struct obj *o = NULL;
	int rc = read_obj(r, key, fd, &o);

	if (rc < 0)
		return rc;
	o->flags = flags;
	o->info = done;
	o->ctx = ctx;
	if ((flags & CS_REMOTE_STAT_READ) && (o->whole = EVP_MD_CTX_new()) == NULL) {
		obj_free(o);
		return -ENOMEM;
	}
	read_start(o, K_STAT, NULL);
	return 0;
}

int
cs_remote_list(struct cs_remote *r, const char *prefix, cs_remote_list_fn each, void *ctx)
{
	struct obj *o = NULL;
	char *ep = enc(prefix, 0);
	size_t n = ep != NULL ? strlen(ep) + 32 : 0;
	char *qs = n > 0 ? malloc(n) : NULL;
	int rc = qs != NULL ? read_obj(r, prefix, -1, &o) : -ENOMEM;

	if (rc == 0) {
		snprintf(qs, n, "list-type=2&prefix=%s", ep);
		o->each = each;
		o->ctx = ctx;
		read_start(o, K_LIST, qs);
	}
	free(ep);
	free(qs);
	return rc;
}

/* "a=1&b=2" from `params` (name, value pairs), sorted by name, values percent-encoded. */
static char *
query_of(const char *const *params)
{
	size_t n = 0, len = 1, i;
	const char **idx = NULL;
	char *out = NULL, *p;

	while (params != NULL && params[2 * n] != NULL)
		n++;
	if (n == 0)
		return NULL;
	idx = calloc(n, sizeof(*idx) * 2);
	for (i = 0; idx != NULL && i < n; i++) {
		size_t j = i;
		/* insertion by name: a handful of parameters */
		while (j > 0 && strcmp(idx[2 * (j - 1)], params[2 * i]) > 0) {
			idx[2 * j] = idx[2 * (j - 1)];
			idx[2 * j + 1] = idx[2 * (j - 1) + 1];
			j--;
		}
		idx[2 * j] = params[2 * i];
		idx[2 * j + 1] = params[2 * i + 1];
		len += strlen(params[2 * i]) + 3 * strlen(params[2 * i + 1]) + 2;
	}
	if (idx != NULL)
		out = malloc(len);
	for (i = 0, p = out; out != NULL && i < n; i++) {
		char *ev = enc(idx[2 * i + 1], 0);
		if (ev == NULL) {
			free(out);
			out = NULL;
			break;
		}
		p += snprintf(p, len - (size_t)(p - out), "%s%s=%s", i > 0 ? "&" : "", idx[2 * i],
		    ev);
		free(ev);
	}
	free(idx);
	return out;
}

int
cs_remote_request(struct cs_remote *r, const char *method, const char *key,
    const char *const *params, const char *body, cs_remote_answer_fn done, void *ctx)
{
	struct obj *o = NULL;
	struct req *q;
	char *qs = query_of(params);
	int rc = -ENOMEM;

	if (params == NULL || params[0] == NULL || qs != NULL)
		rc = read_obj(r, key != NULL ? key : "", -1, &o);
	if (rc == 0 && body != NULL && (o->rawbody = strdup(body)) == NULL)
		rc = -ENOMEM;
	if (rc == 0 && (key == NULL && qs == NULL))
		rc = -EINVAL;
	if (rc < 0) {
		if (o != NULL)
			obj_free(o);
		free(qs);
		return rc;
	}
	snprintf(o->method, sizeof(o->method), "%s", method);
	o->bucket = key == NULL;
	o->answer = done;
	o->ctx = ctx;
	o->r->objects++;
	o->reqs++;
	q = add_req(o, K_RAW, qs);
	if (q != NULL && body != NULL) {
		q->post = o->rawbody;
		q->postlen = strlen(body);
		o->rawbody = NULL;
	}
	obj_release(o);
	pump(r);
	free(qs);
	return 0;
}

int
cs_remote_bucket_error(const struct cs_remote *r, const char **why)
{
	if (r->bucket_state >= 0)
		return 0;
	if (why != NULL)
		*why = r->bucket_why;
	return r->bucket_rc;
}

int
cs_remote_action(struct cs_remote *r, int fd, int events)
{
	int running = 0,
	    flags = (events & CS_REMOTE_IN ? CURL_CSELECT_IN : 0) |
	    (events & CS_REMOTE_OUT ? CURL_CSELECT_OUT : 0);

	pump(r);
	if (fd < 0)
		r->curl_timer = -1; /* libcurl's timer is one-shot: it fired, it is gone */
	curl_multi_socket_action(r->multi, fd < 0 ? CURL_SOCKET_TIMEOUT : fd, flags, &running);
	drain(r);
	update_timer(r);
	return 0;
}

int
cs_remote_poll(struct cs_remote *r, int max_ms)
{
	long t = -1;
	int running = 0;
	int64_t now = now_ms();

	pump(r);
	curl_multi_timeout(r->multi, &t);
	if (t < 0 || t > max_ms)
		t = max_ms;
	for (struct req *q = r->later; q != NULL; q = q->next)
		if (q->due_ms - now < t)
			t = q->due_ms - now < 0 ? 0 : (long)(q->due_ms - now);
	if (curl_multi_poll(r->multi, NULL, 0, (int)t, NULL) != CURLM_OK)
		return CS_EREMOTE;
	curl_multi_perform(r->multi, &running);
	drain(r);
	return 0;
}
