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
#define CLI_BATCH_FILES 128
#define NCOPY 2 /* threads copying files at once (the main thread among them) */
#define NCOMMIT 2 /* batches made durable at once */
#define NJOBS (NCOMMIT + 4) /* batches open at once: filling, committing, re-reading */

/*
 * Files in a batch: each holds three descriptors until its batch is
 * committed and re-read (the source, its directory, the temp copy), and
 * NJOBS batches are open at once, so the soft limit on open files is raised to
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
	n = rl.rlim_cur > 256 ? (size_t)(rl.rlim_cur - 64) / (3 * NJOBS) : 16;
	return n < CLI_BATCH_FILES ? n : CLI_BATCH_FILES;
}

/* A file of the command line in a batch: its copy's result, then its own. */
struct pending {
	int arg; /* index in argv */
	int rc;  /* the copy's result */
	struct cs_secured sd;
};

/* A batch and its files, handed from one stage to the next. */
struct job {
	struct cs_batch *b;
	struct pending *p; /* in the order of the command line */
	size_t np;
	uint64_t seq;   /* batches counted from 0 in the order they were opened */
	size_t copying; /* files still being copied into it */
	int closed;     /* takes no more files; handed over once `copying` is 0 */
};

/*
 * One run of `custos ingest`, in three stages, so that copying, the waits
 * of the commits and the re-reads overlap. NCOPY copiers (the main thread
 * and NCOPY - 1 more) take the files of the command line in turn into the
 * open batch, each file's slot reserved in that order, so that the events
 * keep the order of the command line whichever copy ends first; a batch is
 * handed over once it is closed and its last copy ended. NCOMMIT committers
 * each make a batch durable (the fsyncs, links and directory fsyncs of one
 * overlap those of the other), and whichever holds the next batch in order
 * records its events, one batch after the other. The verifier re-reads the
 * files of the committed batches, in that order too, and reports them. At
 * most NJOBS batches are open.
 */
struct ingest_run {
	struct opts *o;
	char **argv;
	int argc;
	struct cs_store *st;
	const struct cs_secure_req *rq;
	const struct cs_batch_limits *lim;
	int threaded; /* the stages have their threads (else a copier commits and re-reads) */
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	int next_arg;
	struct job *cur;              /* the batch being filled, or NULL */
	struct job *queue[NJOBS];     /* closed and copied, waiting for a committer */
	struct job *synced[NJOBS];    /* durable, waiting for their turn to be recorded */
	struct job *done[NJOBS];      /* recorded, waiting for the verifier */
	struct job *free_jobs[NJOBS]; /* unused */
	int nqueue, nsynced, ndone, nfree, recording, quit, halt;
	uint64_t next_fill, next_record, next_verify;
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
			errmsg("could not secure '%s': %s; %sno file not begun yet is ingested "
			       "(those printed as secured are)",
			    name, cs_strerror(rc),
			    f == CS_FAULT_MEMORY ? "" : "the store stopped taking work and ");
		r->code = EXIT_STORE;
		r->stop = 1;
		r->halt = 1; /* the copiers take no file more */
		pthread_cond_broadcast(&r->cond);
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
 * The files of a committed batch: each re-read and reported (or its
 * refusal reported), in the order of the command line. A file is printed
 * only once its batch is durable and its own re-read matched. The lines are
 * flushed at once, so that what was printed is secured even if the process
 * dies right after.
 */
static void
verify_batch(struct ingest_run *r, struct job *j)
{
	for (size_t i = 0; i < j->np; i++) {
		struct pending *p = &j->p[i];
		int rc = p->rc < 0 ? p->rc
		                   : cs_secure_path_finish(r->st, r->argv[p->arg], r->rq, &p->sd);
		pthread_mutex_lock(&r->lock);
		report(r, p->arg, rc, &p->sd);
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_lock(&r->lock);
	fflush(stdout);
	pthread_mutex_unlock(&r->lock);
	cs_batch_free(j->b);
	j->b = NULL;
}

/* The job numbered `seq` in list[0..*n), taken out of it, or NULL. */
static struct job *
take_seq(struct job **list, int *n, uint64_t seq)
{
	for (int i = 0; i < *n; i++) {
		if (list[i]->seq == seq) {
			struct job *j = list[i];
			list[i] = list[--*n];
			return j;
		}
	}
	return NULL;
}

static void *
committer_main(void *arg)
{
	struct ingest_run *r = arg;
	struct job *j;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		if (r->nqueue > 0) {
			j = r->queue[0];
			memmove(r->queue, r->queue + 1, (size_t)--r->nqueue * sizeof(r->queue[0]));
			pthread_mutex_unlock(&r->lock);
			/* Each file's finish gives its result; a failure fails the record too. */
			(void)cs_batch_sync(j->b);
			pthread_mutex_lock(&r->lock);
			r->synced[r->nsynced++] = j;
			pthread_cond_broadcast(&r->cond);
			continue;
		}
		j = r->recording ? NULL : take_seq(r->synced, &r->nsynced, r->next_record);
		if (j != NULL) {
			r->recording = 1;
			pthread_mutex_unlock(&r->lock);
			(void)cs_batch_record(j->b);
			pthread_mutex_lock(&r->lock);
			r->recording = 0;
			r->next_record++;
			r->done[r->ndone++] = j;
			pthread_cond_broadcast(&r->cond);
			continue;
		}
		if (r->quit)
			break;
		pthread_cond_wait(&r->cond, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *
verifier_main(void *arg)
{
	struct ingest_run *r = arg;
	struct job *j;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while ((j = take_seq(r->done, &r->ndone, r->next_verify)) == NULL && !r->quit)
			pthread_cond_wait(&r->cond, &r->lock);
		if (j == NULL)
			break;
		r->next_verify++;
		pthread_mutex_unlock(&r->lock);
		verify_batch(r, j);
		pthread_mutex_lock(&r->lock);
		r->free_jobs[r->nfree++] = j;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * Hands a closed batch whose copies all ended to the committers (or, without
 * their threads, commits and re-reads it here, in order: there is then one
 * copier). r->lock held.
 */
static void
hand_over(struct ingest_run *r, struct job *j)
{
	if (r->threaded) {
		r->queue[r->nqueue++] = j;
		pthread_cond_broadcast(&r->cond);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	(void)cs_batch_commit(j->b);
	verify_batch(r, j);
	pthread_mutex_lock(&r->lock);
	r->free_jobs[r->nfree++] = j;
	pthread_cond_broadcast(&r->cond);
}

/* The open batch takes no more files. r->lock held. */
static void
close_cur(struct ingest_run *r)
{
	struct job *j = r->cur;

	if (j == NULL)
		return;
	r->cur = NULL;
	j->closed = 1;
	if (j->copying == 0)
		hand_over(r, j);
}

/*
 * A copier: takes the next file of the command line, reserves its place in
 * the open batch (opening one, or closing it on its bounds first), copies it
 * and, when it was the last copy of a closed batch, hands that over. Stops
 * at the end of the command line or after a failure of the store.
 */
static void
copier(struct ingest_run *r)
{
	pthread_mutex_lock(&r->lock);
	while (!r->halt && r->next_arg < r->argc) {
		int i = r->next_arg, slot, rc;
		struct pending *p;
		struct job *j;
		struct stat sb;
		uint64_t size;

		/* The size decides the batch: stat'ed unlocked, then taken if still next. */
		pthread_mutex_unlock(&r->lock);
		size = lstat(r->argv[i], &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size
		                                                          : 0;
		pthread_mutex_lock(&r->lock);
		if (r->halt || r->next_arg != i)
			continue;
		if (r->cur != NULL &&
		    (r->cur->np == r->lim->max_files || cs_batch_due(r->cur->b, size)))
			close_cur(r);
		if (r->cur == NULL) {
			if (r->nfree == 0) {
				pthread_cond_wait(&r->cond, &r->lock);
				continue;
			}
			j = r->free_jobs[--r->nfree];
			rc = cs_batch_new(r->st, r->lim, &j->b);
			if (rc < 0) {
				struct cs_secured none = {.stage = CS_STAGE_INGEST};
				r->free_jobs[r->nfree++] = j;
				report(r, i, rc, &none);
				r->halt = 1;
				break;
			}
			*j = (struct job){.b = j->b, .p = j->p, .seq = r->next_fill++};
			r->cur = j;
		}
		j = r->cur;
		slot = cs_batch_reserve(j->b);
		p = &j->p[j->np++];
		p->arg = i;
		r->next_arg++;
		j->copying++;
		pthread_mutex_unlock(&r->lock);

		if (slot >= 0) {
			p->rc = cs_secure_path_copy(r->st, j->b, slot, r->argv[i], r->rq, &p->sd);
		} else {
			p->sd = (struct cs_secured){.stage = CS_STAGE_INGEST, .fd = -1, .slot = -1,
			    .dirfd = -1};
			p->rc = slot;
		}

		pthread_mutex_lock(&r->lock);
		if (p->rc < 0) {
			enum cs_fault f = cs_fault(r->st, p->rc, p->sd.stage);
			/* The store failed (or memory ran out): no file more is taken. */
			if (f == CS_FAULT_STORE || f == CS_FAULT_MEMORY)
				r->halt = 1;
		}
		if (--j->copying == 0 && j->closed)
			hand_over(r, j);
	}
	/* Files added before a stop are committed and reported (or refused) too. */
	close_cur(r);
	pthread_mutex_unlock(&r->lock);
}

static void *
copier_main(void *arg)
{
	copier(arg);
	return NULL;
}

/*
 * Secures argv[first..argc) in batches (custos/batch.h): each file copied
 * as it comes, then a batch made durable and recorded at once, then each of
 * its files re-read and reported.
 */
static void
ingest_all(struct ingest_run *r, int first, struct cs_batch_limits *lim)
{
	struct job jobs[NJOBS] = {0};
	pthread_t t[NCOMMIT + 1], c[NCOPY];
	int nt = 0, nc = 0;

	lim->max_files = batch_files();
	r->lim = lim;
	r->next_arg = first;
	for (int i = 0; i < NJOBS; i++) {
		jobs[i].p = calloc(lim->max_files, sizeof(struct pending));
		if (jobs[i].p == NULL) {
			struct cs_secured none = {.stage = CS_STAGE_INGEST};
			report(r, first, -ENOMEM, &none);
			goto out;
		}
		r->free_jobs[r->nfree++] = &jobs[i];
	}
	/* Without the threads the same work is done in turn. */
	while (nt < NCOMMIT + 1 &&
	       pthread_create(&t[nt], NULL, nt == 0 ? verifier_main : committer_main, r) == 0)
		nt++;
	r->threaded = nt == NCOMMIT + 1;
	if (!r->threaded) {
		pthread_mutex_lock(&r->lock);
		r->quit = 1;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		for (int i = 0; i < nt; i++)
			pthread_join(t[i], NULL);
		nt = 0;
	}
	while (r->threaded && nc < NCOPY - 1 && pthread_create(&c[nc], NULL, copier_main, r) == 0)
		nc++;
	copier(r);
	for (int i = 0; i < nc; i++)
		pthread_join(c[i], NULL);
	/* Every batch back once it was reported; then the stages end. */
	pthread_mutex_lock(&r->lock);
	while (r->nfree < NJOBS)
		pthread_cond_wait(&r->cond, &r->lock);
	r->quit = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
out:
	for (int i = 0; i < NJOBS; i++)
		free(jobs[i].p);
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
	r = (struct ingest_run){.o = o, .argv = argv, .argc = argc, .st = st, .rq = &rq,
	    .code = code};
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	r.out = json_array();
	ingest_all(&r, optind, &lim);
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

