/*
 * custos ingest: securing files given on the command line, with their
 * acquisition facts and (optionally) a case file to join.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "custos/batch.h"
#include "custos/error.h"
#include "custos/name.h"
#include "custos/store.h"
#include "cli.h"

/* ---- ingest ---- */

static const char usage_ingest[] =
    "usage: custos ingest FILE... [--case CASE] [--category C] [--stage S]\n"
    "                     [--officer ID]... [--device ID] [--recorded-at TIME]\n"
    "                     [--recorded-end TIME] [--store DIR] [--json]\n"
    "\n"
    "Secures each FILE in the store: its bytes are hashed while they are copied,\n"
    "written durably under their SHA-256, recorded in the signed ledger and the\n"
    "catalog, then read again from FILE: only when that second read gives the same\n"
    "digest is the file called secured. Prints each file's evidence id. The same\n"
    "bytes ingested again are stored once and recorded as another sighting.\n"
    "\n"
    "  --case CASE        case number, e.g. 平司罚〔2020〕1号: the items join that case\n"
    "                     file (opened if new) at --stage; without it they are in no\n"
    "                     case until `custos case add` puts them in one\n"
    "  --category C       enforcement category, e.g. 行政处罚 or 行政检查\n"
    "  --stage S          立案 调查 取证 审查 决定 送达 执行 (or filing, investigation,\n"
    "                     collection, review, decision, service, enforcement)\n"
    "  --officer ID       enforcing officer's id; repeat for several\n"
    "  --device ID        recorder id\n"
    "  --recorded-at T    recording start, RFC 3339 (2026-11-28T08:30:00+08:00)\n"
    "  --recorded-end T   recording end, RFC 3339\n"
    "\n"
    "Directories, symbolic links, FIFOs and device nodes are refused.\n"
    "Exit status: 0 all secured, 2 a file or option was refused, 3 store failure.\n";

static const char *
refusal(int rc)
{
	switch (rc) {
	case -ELOOP:
		return "it is a symbolic link; give the path of the file itself";
	case -EISDIR:
		return "it is a directory; give the files inside it";
	case CS_ENOTREG:
		return "it is not a regular file (a FIFO, socket or device node)";
	case -ENOENT:
		return "no such file";
	case -EACCES:
	case -EPERM:
		return "permission denied; this user cannot read it";
	case CS_ECHANGED:
		return "it changed while it was being read; secure it again once it is complete";
	case -EXDEV:
		return "it is a mount point of its own; give a file inside the mount";
	default:
		return cs_strerror(rc);
	}
}

#define CLI_BATCH_MS 250
#define CLI_BATCH_FILES 512
#define NCOMMIT 2 /* batches committed at once */
#define NBUFS (NCOMMIT + 2) /* batches open at once: filling, committing, re-reading */

/*
 * Files in a batch: each holds three descriptors until its batch is
 * committed and re-read (the source, its directory, the temp copy), and
 * NBUFS batches are open at once, so the soft limit on open files is raised to
 * the hard one where it is lower.
 */
static size_t
batch_files(void)
{
	struct rlimit rl;
	size_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 64;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 4096) {
		rlim_t cur = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = cur;
	}
	n = rl.rlim_cur > 256 ? (size_t)(rl.rlim_cur - 64) / (3 * NBUFS) : 16;
	return n < CLI_BATCH_FILES ? n : CLI_BATCH_FILES;
}

/* The files of one batch, added and waiting for its commit. */
struct pending {
	int arg; /* index in argv */
	struct cs_secured sd;
};

/* A batch and its files, handed from one stage to the next. */
struct slot {
	struct cs_batch *b; /* NULL: empty */
	struct pending *p;
	size_t np;
	uint64_t seq; /* batches counted from 0 in the order they were filled */
};

/*
 * One run of `custos ingest`, in three stages on 2 + NCOMMIT threads, so
 * that copying, the waits of the commits and the re-reads overlap: the main
 * thread copies files into a batch; NCOMMIT committers each make one of the
 * batches before it durable (the fsyncs, links and directory fsyncs of one
 * overlap those of the other), then record its events, one batch after the
 * other in the order they were filled, so that the ledger keeps the order
 * of the command line; the verifier re-reads the files of the committed
 * batches, in that order too, and reports them. At most NBUFS batches are
 * open.
 */
struct ingest_run {
	struct opts *o;
	char **argv;
	struct cs_store *st;
	const struct cs_secure_req *rq;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	struct slot to_commit;
	struct slot done[NBUFS]; /* committed, waiting for the verifier */
	int ndone, committing, verify_busy, quit;
	uint64_t next_fill, next_record, next_verify;
	struct pending *free_bufs[NBUFS];
	int nfree;
	json_t *out;
	int code, secured, stop;
};

/*
 * Reports one file's outcome: its line (or JSON entry) once secured, else
 * why not. A failure of the store (or memory) stops the run: it is said
 * once, for the first file it met. r->lock held.
 */
static void
report(struct ingest_run *r, int arg, int rc, const struct cs_secured *sd)
{
	const struct cs_ingest_result *res = &sd->res;
	char *shown = shown_name(r->argv[arg]);
	const char *name = shown != NULL ? shown : "?";
	enum cs_fault f = cs_fault(r->st, rc, sd->stage);
	int cause = 0;

	/* Failed by the fault of another file's write: say what that fault was. */
	if (rc == CS_EFAILED && cs_store_failed(r->st, &cause) > 0 && cause < 0)
		rc = cause;
	if (f == CS_FAULT_STORE || f == CS_FAULT_MEMORY) {
		if (!r->stop)
			errmsg("could not secure '%s': %s; %snothing more is ingested", name,
			    cs_strerror(rc),
			    f == CS_FAULT_MEMORY ? "" : "the store stopped taking work and ");
		r->code = EXIT_STORE;
		r->stop = 1;
	} else if (f != CS_FAULT_NONE) {
		if (rc == CS_ECHANGED && sd->stage == CS_STAGE_REREAD)
			errmsg("refused '%s': it changed after it was copied (the copy, stored as "
			       "%s, does not match the file now); secure it again once it is "
			       "complete",
			    name, res->id);
		else
			errmsg("refused '%s': %s", name, refusal(rc));
		r->code = EXIT_USAGE;
	} else {
		r->secured++;
		if (r->o->json) {
			json_t *one = json_pack("{s:s, s:s, s:I, s:I, s:b}", "id", res->id,
			    "sha256", res->sha256, "size", (json_int_t)res->size, "seq",
			    (json_int_t)res->seq, "duplicate", res->duplicate);
			if (one != NULL && cs_name_json_set(one, "file", r->argv[arg],
			                       strlen(r->argv[arg])) < 0) {
				json_decref(one);
				one = NULL;
			}
			/* out of memory: no list rather than a short one */
			if (json_array_append_new(r->out, one) < 0)
				output_failed = 1;
		} else if (!r->o->quiet) {
			printf("%s\t%s\t%s%s\n", res->id, res->sha256, name,
			    res->duplicate ? "\t(already stored; recorded as another sighting)"
			                   : "");
		}
	}
	free(shown);
}

/*
 * The files of a committed batch: each re-read and reported. A file is
 * printed only once its batch is durable and its own re-read matched. The
 * lines are flushed at once, so that what was printed is secured even if
 * the process dies right after.
 */
static void
verify_batch(struct ingest_run *r, struct slot *s)
{
	for (size_t i = 0; i < s->np; i++) {
		struct pending *p = &s->p[i];
		int rc = cs_secure_path_finish(r->st, r->argv[p->arg], r->rq, &p->sd);
		pthread_mutex_lock(&r->lock);
		report(r, p->arg, rc, &p->sd);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_lock(&r->lock);
	fflush(stdout);
	pthread_mutex_unlock(&r->lock);
	cs_batch_free(s->b);
}

static void *
committer_main(void *arg)
{
	struct ingest_run *r = arg;
	struct slot s;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (r->to_commit.b == NULL && !r->quit)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->to_commit.b == NULL)
			break;
		s = r->to_commit;
		r->to_commit.b = NULL;
		r->committing++;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		/* Each file's finish gives its result; the events in the order filled. */
		(void)cs_batch_sync(s.b);
		pthread_mutex_lock(&r->lock);
		while (r->next_record != s.seq)
			pthread_cond_wait(&r->cond, &r->lock);
		pthread_mutex_unlock(&r->lock);
		(void)cs_batch_record(s.b);
		pthread_mutex_lock(&r->lock);
		r->next_record++;
		r->done[r->ndone++] = s;
		r->committing--;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The committed batch to re-read next (in the order filled), or -1. r->lock held. */
static int
next_done(struct ingest_run *r)
{
	for (int i = 0; i < r->ndone; i++)
		if (r->done[i].seq == r->next_verify)
			return i;
	return -1;
}

static void *
verifier_main(void *arg)
{
	struct ingest_run *r = arg;
	struct slot s;
	int i;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while ((i = next_done(r)) < 0 && !r->quit)
			pthread_cond_wait(&r->cond, &r->lock);
		if (i < 0)
			break;
		s = r->done[i];
		r->done[i] = r->done[--r->ndone];
		r->next_verify++;
		r->verify_busy = 1;
		pthread_mutex_unlock(&r->lock);
		verify_batch(r, &s);
		pthread_mutex_lock(&r->lock);
		r->free_bufs[r->nfree++] = s.p;
		r->verify_busy = 0;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* A free array for the next batch's files (one comes back when a batch is reported). */
static struct pending *
take_buf(struct ingest_run *r)
{
	struct pending *p;

	pthread_mutex_lock(&r->lock);
	while (r->nfree == 0)
		pthread_cond_wait(&r->cond, &r->lock);
	p = r->free_bufs[--r->nfree];
	pthread_mutex_unlock(&r->lock);
	return p;
}

/* Hands a filled batch to a committer once one is free (or does both stages here). */
static void
hand_over(struct ingest_run *r, int threaded, struct slot s)
{
	s.seq = r->next_fill++;
	if (!threaded) {
		r->next_record++;
		r->next_verify++;
		(void)cs_batch_commit(s.b);
		verify_batch(r, &s);
		pthread_mutex_lock(&r->lock);
		r->free_bufs[r->nfree++] = s.p;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	pthread_mutex_lock(&r->lock);
	while (r->committing == NCOMMIT || r->to_commit.b != NULL)
		pthread_cond_wait(&r->cond, &r->lock);
	r->to_commit = s;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int
stopped(struct ingest_run *r)
{
	int stop;

	pthread_mutex_lock(&r->lock);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

/* Waits until both stages have finished what they hold. r->lock held. */
static void
wait_stages(struct ingest_run *r)
{
	while (r->to_commit.b != NULL || r->committing > 0 || r->ndone > 0 || r->verify_busy)
		pthread_cond_wait(&r->cond, &r->lock);
}

/* Lets both stages finish what they hold, then ends their threads. */
static void
stop_stages(struct ingest_run *r, pthread_t *t, int nt)
{
	pthread_mutex_lock(&r->lock);
	wait_stages(r);
	r->quit = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
}

/*
 * Secures argv[first..argc) in batches (custos/batch.h): each file copied
 * as it comes, then a batch made durable and recorded at once, then each of
 * its files re-read and reported.
 */
static void
ingest_all(struct ingest_run *r, int first, int argc, struct cs_batch_limits *lim)
{
	struct slot cur = {NULL, NULL, 0, 0};
	pthread_t t[NCOMMIT + 1];
	int threaded, nt = 0, rc;

	lim->max_files = batch_files();
	for (int i = 0; i < NBUFS; i++) {
		r->free_bufs[i] = calloc(lim->max_files, sizeof(struct pending));
		if (r->free_bufs[i] == NULL) {
			struct cs_secured none = {.stage = CS_STAGE_INGEST};
			report(r, first, -ENOMEM, &none);
			r->nfree = i;
			goto out;
		}
	}
	r->nfree = NBUFS;
	/* Without the threads the same work is done in turn. */
	while (nt < NCOMMIT + 1 &&
	       pthread_create(&t[nt], NULL, nt == 0 ? verifier_main : committer_main, r) == 0)
		nt++;
	threaded = nt == NCOMMIT + 1;
	if (!threaded)
		stop_stages(r, t, nt);
	for (int i = first; i < argc && !stopped(r); i++) {
		struct pending *p;
		struct stat sb;
		uint64_t size = lstat(r->argv[i], &sb) == 0 && S_ISREG(sb.st_mode)
		                    ? (uint64_t)sb.st_size
		                    : 0;
		if (cur.b != NULL && (cur.np == lim->max_files || cs_batch_due(cur.b, size))) {
			hand_over(r, threaded, cur);
			cur.b = NULL;
			if (stopped(r))
				break;
		}
		if (cur.b == NULL) {
			rc = cs_batch_new(r->st, lim, &cur.b);
			if (rc < 0) {
				struct cs_secured none = {.stage = CS_STAGE_INGEST};
				pthread_mutex_lock(&r->lock);
				report(r, i, rc, &none);
				pthread_mutex_unlock(&r->lock);
				cur.b = NULL;
				break;
			}
			cur.p = take_buf(r);
			cur.np = 0;
		}
		p = &cur.p[cur.np];
		rc = cs_secure_path_copy(r->st, cur.b, r->argv[i], r->rq, &p->sd);
		if (rc < 0) {
			enum cs_fault f = cs_fault(r->st, rc, p->sd.stage);
			/*
			 * The store failed (or memory ran out): the files of the batch
			 * before this one are reported first, in order, so that the
			 * first file named is the first one not secured.
			 */
			if ((f == CS_FAULT_STORE || f == CS_FAULT_MEMORY) && cur.np > 0) {
				struct cs_secured failed = p->sd;
				hand_over(r, threaded, cur);
				cur.b = NULL;
				pthread_mutex_lock(&r->lock);
				wait_stages(r);
				report(r, i, rc, &failed);
				pthread_mutex_unlock(&r->lock);
				break;
			}
			pthread_mutex_lock(&r->lock);
			report(r, i, rc, &p->sd);
			pthread_mutex_unlock(&r->lock);
			continue;
		}
		p->arg = i;
		cur.np++;
	}
	/* Files added before a stop are committed and reported (or refused) too. */
	if (cur.b != NULL)
		hand_over(r, threaded, cur);
	if (threaded)
		stop_stages(r, t, nt);
out:
	for (int i = 0; i < r->nfree; i++)
		free(r->free_bufs[i]);
}

int
cmd_ingest(int argc, char **argv, struct opts *o)
{
	const char *officers[64];
	struct cs_meta m = {0};
	const struct cli_opt own[] = {CLI_OPT("case", 0, CLI_STRING, &m.case_no),
		CLI_OPT("category", 0, CLI_STRING, &m.category),
		CLI_OPT("stage", 0, CLI_STRING, &m.stage),
		CLI_LIST_OPT("officer", officers, 64, &m.n_officers),
		CLI_OPT("device", 0, CLI_STRING, &m.device),
		CLI_OPT("recorded-at", 0, CLI_STRING, &m.recorded_start),
		CLI_OPT("recorded-end", 0, CLI_STRING, &m.recorded_end), CLI_END};
	struct cs_secure_req rq = {.flags = CS_SECURE_LINKED_OK, .dirfd = -1};
	/*
	 * Nobody waits on one file of a command line, only on the whole: a
	 * batch may wait longer for more files than custosd's do.
	 */
	struct cs_batch_limits lim = {0, CS_BATCH_BYTES, CLI_BATCH_MS};
	struct ingest_run r;
	struct cs_store *st;
	const char *field;
	json_t *out = NULL;
	int rc, code = EXIT_OK, secured = 0;

	m.officers = officers;
	m.source = "cli";
	rc = cli_parse(argc, argv, own, usage_ingest, o);
	if (rc >= 0)
		return rc;
	if (optind == argc) {
		errmsg("no file given");
		fputs(usage_ingest, stderr);
		return EXIT_USAGE;
	}
	rc = cs_meta_check(&m, &field);
	if (rc == -ENOMEM) {
		errmsg("out of memory");
		return EXIT_STORE;
	}
	if (rc < 0) {
		if (strcmp(field, "stage") == 0)
			errmsg("unknown --stage '%s': use 立案, 调查, 取证, 审查, 决定, 送达 or "
			       "执行", m.stage);
		else if (strncmp(field, "recorded", 8) == 0)
			errmsg("invalid --%s: give an RFC 3339 time such as "
			       "2026-11-28T08:30:00+08:00%s",
			    strcmp(field, "recorded_start") == 0 ? "recorded-at" : "recorded-end",
			    strcmp(field, "recorded_end") == 0 ? ", not before the start" : "");
		else
			errmsg("invalid --%s: it must be 1 to 256 bytes of UTF-8 text without "
			       "control characters",
			    field);
		return EXIT_USAGE;
	}
	rq.meta = m;
	st = open_store(o, CS_OPEN_WRITE, &code);
	if (st == NULL)
		return code;
	r = (struct ingest_run){.o = o, .argv = argv, .st = st, .rq = &rq, .code = code};
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	r.out = json_array();
	ingest_all(&r, optind, argc, &lim);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
	out = r.out;
	code = r.code;
	secured = r.secured;
	if (secured > 0 && m.case_no == NULL && !o->quiet)
		fprintf(stderr, "%s: secured without a case number: `custos case add C ID... "
		                "--stage S` puts the items in a case file\n",
		    prog);
	if (secured > 0 && code != EXIT_STORE) {
		rc = cs_store_checkpoint(st, NULL);
		if (rc < 0) {
			errmsg("the files are secured but signing a checkpoint failed: %s",
			    cs_strerror(rc));
			code = EXIT_STORE;
		}
	}
	if (o->json)
		print_json(out);
	json_decref(out);
	cs_store_close(st);
	return code;
}

