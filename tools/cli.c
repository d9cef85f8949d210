/*
 * The custos command's shared helpers (tools/cli.h): messages, JSON output,
 * opening the store with an explanation when it cannot be used, and the one
 * option parser every command uses, driven by a table of its own options.
 */
#include <errno.h>
#include <locale.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <wchar.h>

#include "custos/access.h"
#include "custos/case.h"
#include "custos/error.h"
#include "custos/name.h"
#include "custos/store.h"
#include "cli.h"

const char *const prog = "custos";
int output_failed; /* a --json answer could not be made (out of memory) */

void
errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
lib_log(void *ctx, int level, const char *msg)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	(void)ctx;
	if (level <= CS_LOG_INFO)
		fprintf(stderr, "%s: %s: %s\n", prog, names[level], msg);
}

/*
 * Writes JSON through a callback that fails for good after its first failure:
 * jansson (2.14) ignores a failure to write an object key, so json_dumps()
 * can return malformed JSON after one failed allocation.
 */
struct outbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static int
out_cb(const char *buf, size_t size, void *data)
{
	struct outbuf *b = data;

	if (b->failed)
		return -1;
	if (size >= b->cap - b->len) {
		size_t nc = b->cap * 2 > b->len + size + 1 ? b->cap * 2 : b->len + size + 1;
		char *np = realloc(b->p, nc);
		if (np == NULL) {
			b->failed = 1;
			return -1;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, buf, size);
	b->len += size;
	b->p[b->len] = '\0';
	return 0;
}

void
print_json(json_t *v)
{
	struct outbuf b = {NULL, 0, 0, 0};

	if (v != NULL &&
	    json_dump_callback(v, out_cb, &b,
	        JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) == 0 &&
	    !b.failed && b.p != NULL)
		puts(b.p);
	else
		output_failed = 1;
	free(b.p);
}

const char *
store_dir(const struct opts *o)
{
	if (o->store != NULL)
		return o->store;
	return getenv("CUSTOS_STORE");
}

void
owner_who(struct cs_access_who *who, char *buf, size_t n)
{
	struct passwd pw, *pwr = NULL;
	char pwbuf[4096];

	who->uid = (long)getuid();
	who->role = "owner";
	who->name = buf;
	if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwr) == 0 && pwr != NULL)
		snprintf(buf, n, "%s", pw.pw_name);
	else
		snprintf(buf, n, "uid %ld", who->uid);
}

int
cli_connect(const char *sock, const struct opts *o, int *fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *dir = store_dir(o);
	char path[sizeof(sa.sun_path)];

	*fd = -1;
	if (sock == NULL || *sock == '\0')
		sock = getenv("CUSTOS_SOCKET");
	if (sock != NULL && *sock == '\0')
		sock = NULL;
	if (dir != NULL && *dir == '\0')
		dir = NULL;
	if (sock == NULL && dir == NULL) {
		errmsg("no store given: use --store DIR, set CUSTOS_STORE, or give --socket PATH");
		return EXIT_USAGE;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s%s", sock ? sock : dir,
	        sock ? "" : "/custosd.sock") >= sizeof(path)) {
		errmsg("the control socket path is too long");
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, path, sizeof(path));
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		errmsg("custosd is not answering at %s (%s); is it running for this store, and may "
		       "you use its socket?",
		    path, strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return EXIT_STORE;
	}
	return EXIT_OK;
}

/* Opens the store or prints why not; returns NULL on failure. */
struct cs_store *
open_store(const struct opts *o, int flags, int *exit_code)
{
	const char *dir = store_dir(o);
	struct cs_store *st = NULL;
	int rc;

	if (dir == NULL) {
		errmsg("no store given: use --store DIR or set CUSTOS_STORE");
		*exit_code = EXIT_USAGE;
		return NULL;
	}
	rc = cs_store_open(&st, dir, flags, lib_log, NULL);
	if (rc == 0 && (flags & CS_OPEN_WRITE))
		rc = cs_store_set_actor_process(st);
	if (rc == 0)
		return st;
	if (st != NULL) {
		cs_store_close(st);
		errmsg("out of memory");
		*exit_code = EXIT_STORE;
		return NULL;
	}
	*exit_code = EXIT_STORE;
	explain_open_error(dir, rc);
	return NULL;
}

/* Says why the store at `dir` could not be opened. */
void
explain_open_error(const char *dir, int rc)
{
	if (rc == CS_ENOTFOUND)
		errmsg("%s is not a custos store (no custos.json); create one with `custos init`",
		    dir);
	else if (rc == CS_EBUSY)
		errmsg("the store %s is in use by another writer (custosd or another custos "
		       "command); try again when it has finished",
		    dir);
	else if (rc == CS_ESTORE)
		errmsg("the catalog of %s is damaged or missing; run `custos rebuild` to make it "
		       "again from the ledger",
		    dir);
	else if (rc == CS_ELEDGER)
		errmsg("the ledger of %s does not match its catalog; run `custos verify` to see "
		       "what is damaged",
		    dir);
	else if (rc == -EACCES)
		errmsg("you may not read the store %s: only its own user may; others ask custosd "
		       "through its socket (custos view, get, search, register; set CUSTOS_SOCKET)",
		    dir);
	else
		errmsg("cannot open the store %s: %s", dir, cs_strerror(rc));
}

/*
 * A file name as it is printed (one output line, JSON text): its readable
 * form (custos/name.h), control characters and bytes that are not UTF-8
 * written as \xHH. Returns malloc'd text.
 */
char *
shown_name(const char *name)
{
	size_t n = cs_name_readable(name, strlen(name), NULL, 0);
	char *s = malloc(n + 1);

	if (s != NULL)
		cs_name_readable(name, strlen(name), s, n + 1);
	return s;
}

/* The terminal columns that UTF-8 text `s` takes (wide CJK characters two, combining ones none). */
static int
text_columns(const char *s)
{
	static locale_t utf8;
	locale_t old;
	mbstate_t st = {0};
	size_t len = strlen(s), n;
	int cols = 0;
	wchar_t wc;

	if (utf8 == (locale_t)0)
		utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8 == (locale_t)0) { /* no UTF-8 locale: a column per character */
		for (; *s != '\0'; s++)
			cols += ((unsigned char)*s & 0xc0) != 0x80;
		return cols;
	}
	old = uselocale(utf8);
	for (; len > 0 && (n = mbrtowc(&wc, s, len, &st)) != 0; s += n, len -= n) {
		if (n == (size_t)-1 || n == (size_t)-2) { /* not UTF-8: a column per byte left */
			cols += (int)len;
			break;
		}
		cols += wcwidth(wc) > 0 ? wcwidth(wc) : 0;
	}
	uselocale(old);
	return cols;
}

int
cell_width(const char *s)
{
	char *t = shown_name(s != NULL ? s : "");
	int cols = text_columns(t != NULL ? t : "?");

	free(t);
	return cols;
}

void
print_cell(FILE *f, const char *s, int width)
{
	char *t = shown_name(s != NULL ? s : "");
	const char *p = t != NULL ? t : "?";

	fputs(p, f);
	for (int cols = text_columns(p); cols < width; cols++)
		fputc(' ', f);
	free(t);
}

/* Applies the common option `c`; 0, or the exit code after --help or a bad option. */
static int
common_opt(int c, struct opts *o, const char *usage)
{
	switch (c) {
	case 'S':
		o->store = optarg;
		return 0;
	case 'J':
		o->json = 1;
		return 0;
	case 'q':
		o->quiet = 1;
		return 0;
	case 'h':
		fputs(usage, stdout);
		return EXIT_OK;
	default:
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
}

/* Applies the argument of the command's own option `op`; 0 or an exit code. */
static int
own_opt(const struct cli_opt *op, const char *arg)
{
	char *end;

	switch (op->kind) {
	case CLI_STRING:
		*(const char **)op->target = arg;
		return 0;
	case CLI_FLAG:
		*(int *)op->target = 1;
		return 0;
	case CLI_LIST:
		if (*op->count == op->max) {
			errmsg("too many --%s options (at most %zu)", op->name, op->max);
			return EXIT_USAGE;
		}
		((const char **)op->target)[(*op->count)++] = arg;
		return 0;
	case CLI_NUMBER:
		errno = 0;
		*(uint64_t *)op->target = strtoull(arg, &end, 10);
		if (errno || *end || arg[0] == '-' || arg[0] == '\0') {
			errmsg("--%s takes a non-negative number, not '%s'", op->name, arg);
			return EXIT_USAGE;
		}
		return 0;
	case CLI_CALL:
		return op->call(op->target, arg);
	}
	return EXIT_USAGE;
}

int
cli_parse(int argc, char **argv, const struct cli_opt *own, const char *usage,
    struct opts *o)
{
	enum { MAX_OWN = 24, OWN_BASE = 256 };
	static const struct option common[] = {{"store", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'},
		{"quiet", no_argument, NULL, 'q'}};
	struct option longopts[MAX_OWN + 5];
	char shorts[2 * MAX_OWN + 2] = "h";
	size_t n = 0, ns = 1;
	int c, rc;

	for (; own != NULL && own[n].name != NULL && n < MAX_OWN; n++) {
		longopts[n] = (struct option){own[n].name,
			own[n].kind == CLI_FLAG ? no_argument : required_argument, NULL,
			OWN_BASE + (int)n};
		if (own[n].short_name != 0) {
			shorts[ns++] = (char)own[n].short_name;
			if (own[n].kind != CLI_FLAG)
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	memcpy(longopts + n, common, sizeof(common));
	longopts[n + 4] = (struct option){NULL, 0, NULL, 0};
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		const struct cli_opt *op = NULL;
		if (c >= OWN_BASE && c < OWN_BASE + (int)n)
			op = &own[c - OWN_BASE];
		for (size_t i = 0; op == NULL && i < n; i++)
			if (own[i].short_name != 0 && c == own[i].short_name)
				op = &own[i];
		rc = op != NULL ? own_opt(op, optarg) : common_opt(c, o, usage);
		if (rc != 0 || (op == NULL && c == 'h'))
			return rc;
	}
	return -1;
}
