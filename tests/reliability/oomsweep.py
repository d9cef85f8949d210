#!/usr/bin/env python3
"""Out-of-memory sweep driver for oom.sh.

Runs one custos command again and again with failmalloc preloaded, making the
Nth allocation fail (FAILMALLOC_MODE=once: only that one; persist: that one
and all later ones), for N = 1, 2, ... until a run completes without reaching
the Nth allocation. Each run must end cleanly: exit 0, or a non-zero status
from the documented set with a message on stderr; never a signal, a hang, a
sanitizer report (leak, memory error, undefined behaviour) or a silent
failure. After each run a check chosen by --kind looks at the store with the
normal binary (no preload):

  ingest  the run worked on a fresh copy of the base store; afterwards
          `custos checkpoint` and `custos verify` exit 0, every ledger event is
          complete (seq, time, v, the event's fields and all the metadata given),
          times never go backwards, and each input file is either fully present
          (record with all its metadata, intact blob, ledger event) or absent;
          a file the run acknowledged (exit 0) must be present
  verify  `custos verify` on an intact store must not exit 0 unless it ran
          to the end ("all intact" printed); on a damaged store it must never
          exit 0 (an allocation failure must not hide damage)
  find    exit 0 only with the complete, correct listing
  daemon  custosd on a fresh copy of the store, an upload directory (files
          with sidecars, release = delete) and a docked recorder, asked
          once for its status (an answer, or a hang-up, within 10 s): the run
          ends when custosd exits by itself, or when the inbox is empty and
          the receipt written (then SIGTERM), or after --bound seconds (a
          hang). Exit 0 only after SIGTERM; 3 (could not start) and 4
          (stopped for lack of memory) with a message; 1 (store failure)
          is a failure: memory is not storage. Then each source is in its
          place untouched or secured; a receipt lists exactly the
          recorder's files, all secured, and checks with the store's key; a
          custosd without faults on the same store takes what is left; and
          in the end every file is secured exactly once (one ingest, or one
          sighting for the file already stored) with its metadata, verify
          passes, tmp/ is empty and a stray blob is left only with the
          WRITER marker that has it moved to orphans/ at the next start.

--inject chooses what fails: failmalloc (the Nth allocation of the process)
or, in the test builds, uv or crypto (the Nth allocation made through
libuv's or OpenSSL's allocator hook, custos/failpoint.h). libuv calls abort()
on some failed allocations of its own: such runs are counted apart
(uv_aborts) and their store is still checked. --one N runs a single N per
mode, keeps its files under --work and shows its log.

Prints one JSON object of results on stdout; details of every failure go to
stderr as '#'-prefixed lines (TAP comments).
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

OK_CODES = {0, 1, 2, 3}
# ASan's own runtime calls glibc's pthread_getattr_np() when a thread starts,
# which allocates through failmalloc; when that allocation is the failed one,
# ASan stops with a CHECK failure. That is the test harness, not custos: such
# runs are counted apart and not judged.
HARNESS_MARK = 'AddressSanitizer: CHECK failed: sanitizer_linux_libcdep.cpp'
HARNESS = 'harness'
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "ERROR: UndefinedBehaviorSanitizer")
# libuv calls abort() when some of its own allocations fail (growing its
# watcher array in uv__io_start(), starting its thread pool): a documented
# limit of the library, counted apart. Told by the backtrace printed at the
# abort (failmalloc's FAILMALLOC_SIGTRACE; ASan's handle_abort in the
# sanitizer build): the frame that called abort() is in libuv.
UV_ABORT = 'uv-abort'
# glibc's NSS (getpwuid_r, which names the user of every event the CLI writes)
# asserts when an allocation of its own fails while it loads nsswitch.conf
# (nss_database.c: nss_database_reload_1: Assertion `ret > 0' failed): a
# limit of glibc 2.36, counted apart like libuv's aborts. When every later
# allocation fails too, glibc cannot even format the assertion and writes
# "Unexpected error." alone (custos calls no assert()).
NSS_ABORT = 'nss-abort'
# Or it dereferences the NULL its failed allocation left (SIGSEGV in
# nss_database_check_reload_and_get): told by a frame of getpwuid_r or of
# NSS in the backtrace at the signal (FAILMALLOC_SIGTRACE, or ASan's report).
NSS_MARK = re.compile(r'nss_database\.c:\d+: nss_database_reload_1: Assertion|'
                      r'\AUnexpected error\.\Z')
NSS_FRAME = re.compile(r'\b(getpwuid_r|__nss_passwd_lookup2|nss_database_\w+)\b')
ABORT_FRAME = re.compile(r'\(abort\+|\bin (__GI_)?abort\b')


def abort_caller(err):
    """The shared object (file name) that called abort(), from a backtrace on
    stderr, or None."""
    lines = err.splitlines()
    for i, line in enumerate(lines):
        if ABORT_FRAME.search(line) and i + 1 < len(lines):
            m = re.search(r'([\w.+-]+\.so(?:\.\d+)*)', lines[i + 1])
            return m.group(1) if m else None
    return None


def uv_abort_where(err):
    """The first libuv function named in the backtrace after abort()."""
    m = ABORT_FRAME.search(err)
    tail = err[m.start():] if m else err
    m = re.search(r'\b(uv_\w+)[+ ]', tail)
    return m.group(1) if m else 'libuv'


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, env, timeout=60):
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return p.returncode, p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')
    except subprocess.TimeoutExpired as e:
        return 'timeout', (e.stdout or b'').decode(errors='replace'), (e.stderr or b'').decode(errors='replace')


class Sweep:
    def __init__(self, a):
        self.a = a
        self.custos = os.environ['CUSTOS']
        # the binary under test: the test build for the allocator hooks
        fp = a.inject != 'failmalloc'
        if a.kind == 'daemon':
            self.custosd = os.environ['CUSTOSD']
            self.binary = os.environ['CUSTOSD_FP'] if fp else self.custosd
        else:
            self.binary = os.environ['CUSTOS_FP'] if fp else self.custos
        self.asan = a.asan
        base_env = dict(os.environ)
        base_env.pop('LD_PRELOAD', None)
        # Sanitizer settings for the checks and the runs: a sanitizer report is
        # always a failure, told apart from custos's own exit codes.
        base_env['ASAN_OPTIONS'] = 'detect_leaks=1:exitcode=86:abort_on_error=0:' \
            'verify_asan_link_order=0:malloc_context_size=40'
        base_env['UBSAN_OPTIONS'] = 'print_stacktrace=1:halt_on_error=1:exitcode=87'
        if a.lsan_supp:
            base_env['LSAN_OPTIONS'] = 'suppressions=' + a.lsan_supp + ':print_suppressions=0'
        self.env = base_env
        self.files = json.loads(a.files) if a.files else []

    def fm_env(self, n, mode, report, store, slow=False):
        """The environment of a run that fails the Nth allocation: of the
        whole process (--inject failmalloc), or of one library through its
        allocator hook in the test build (--inject uv|crypto; failmalloc is
        still preloaded, counting only, for its backtrace on abort)."""
        e = dict(self.env)
        if slow:
            # full stacks through libraries built without frame pointers, so
            # that the suppressions can name OpenSSL's functions
            e['ASAN_OPTIONS'] += ':fast_unwind_on_malloc=0'
        e['LD_PRELOAD'] = self.a.failmalloc
        # a backtrace at an abort() or a crash, to tell libuv's aborts and
        # glibc NSS's (see UV_ABORT, NSS_ABORT); under ASan its own
        # (failmalloc's would load libgcc_s through dlopen, whose loader
        # bookkeeping LeakSanitizer takes for a leak)
        if self.asan:
            if self.a.kind == 'daemon':
                e['ASAN_OPTIONS'] += ':handle_abort=1'
        else:
            e['FAILMALLOC_SIGTRACE'] = '1'
        if self.a.inject == 'failmalloc':
            e['FAILMALLOC_AT'] = str(n)
            e['FAILMALLOC_MODE'] = mode
            e['FAILMALLOC_REPORT'] = report
        else:
            e['CUSTOS_OOM_LIB'] = self.a.inject
            e['CUSTOS_OOM_AT'] = str(n)
            e['CUSTOS_OOM_MODE'] = mode
            e['CUSTOS_OOM_REPORT'] = report
        if self.asan:
            e['FAILMALLOC_NEXT'] = '1'
        e['CUSTOS_STORE'] = store
        return e

    def chk(self, store, *args):
        e = dict(self.env)
        e['CUSTOS_STORE'] = store
        return run([self.custos] + list(args), e)

    def classify(self, rc, out, err):
        """Returns None for a clean end, else a short reason."""
        if rc == 'timeout':
            return 'hang (no exit within 60 s)'
        if HARNESS_MARK in err:
            return HARNESS
        if (rc == -signal.SIGABRT or rc == 86) and NSS_MARK.search(err.strip()):
            return NSS_ABORT
        if (rc in (-signal.SIGABRT, -signal.SIGSEGV) and 'failmalloc: signal' in err or
                rc == 86 and 'AddressSanitizer: SEGV' in err) and NSS_FRAME.search(err):
            return NSS_ABORT
        if any(m in err for m in SAN_MARKERS) or rc in (86, 87):
            kind = 'leak' if 'LeakSanitizer' in err else 'sanitizer'
            return '%s report (exit %s)' % (kind, rc)
        if rc < 0:
            return 'killed by signal %d' % -rc
        if rc >= 128:
            return 'exit %d (a signal?)' % rc
        if rc not in OK_CODES:
            return 'unexpected exit %d' % rc
        if rc != 0 and not err.strip() and not (rc == 1 and 'PROBLEM' in out):
            return 'exit %d without a message' % rc
        return None

    # ---- checks after a run ----
    def check_ledger(self, store, probs, want_meta):
        """Every ledger event complete: seq, time (never going backwards), v, the
        event's own fields, and the metadata want_meta(index, kind, md) expects
        (each key equal). Returns the events and {sha256: item} of the ingests."""
        r = self.chk(store, 'log', '--json')
        evs = []
        if r[0] != 0:
            probs.append('custos log: exit %s' % r[0])
        else:
            evs = json.loads(r[1])
        last = ''
        present = {}
        for i, ev in enumerate(evs):
            where = 'ledger event %d' % i
            if ev.get('seq') != i:
                probs.append('%s: seq is %r' % (where, ev.get('seq')))
            t = ev.get('time')
            if not isinstance(t, str):
                probs.append('%s: no time' % where)
            elif t < last:
                probs.append('%s: time %s before the previous %s' % (where, t, last))
            else:
                last = t
            if ev.get('v') != 1:
                probs.append('%s: v is %r' % (where, ev.get('v')))
            kind = ev.get('event')
            if kind == 'ingest':
                it = ev.get('item') or {}
                for k in ('id', 'sha256', 'size', 'name', 'station', 'ingested_at'):
                    if k not in it:
                        probs.append('%s (ingest): item has no %s' % (where, k))
                md, sha = it, it.get('sha256')
            elif kind == 'sighting':
                md = ev.get('sighting') or {}
                if 'id' not in ev:
                    probs.append('%s (sighting): no id' % where)
                if 'name' not in md:
                    probs.append('%s (sighting): no name' % where)
                sha = None
            else:
                probs.append('%s: event %r' % (where, kind))
                continue
            for k, v in (want_meta(i, kind, md) or {}).items():
                if k == 'keys':
                    miss = [x for x in v if x not in md]
                    if miss:
                        probs.append('%s (%s %s): no %s' % (where, kind, md.get('name'), ', '.join(miss)))
                elif k == 'extra_keys':
                    miss = [x for x in v if x not in (md.get('extra') or {})]
                    if miss:
                        probs.append('%s (%s %s): extra has no %s' % (where, kind, md.get('name'), ', '.join(miss)))
                elif md.get(k) != v:
                    probs.append('%s (%s %s): %s is %r, not %r' % (where, kind, md.get('name'), k, md.get(k), v))
            if sha:
                present[sha] = it
        return evs, present

    def check_ingest(self, store, rc, out, err):
        probs = []
        r = self.chk(store, 'checkpoint')
        if r[0] != 0:
            probs.append('custos checkpoint after the run: exit %s: %s' % (r[0], r[2].strip()[:300]))
        r = self.chk(store, 'verify')
        if r[0] != 0:
            probs.append('custos verify after the run: exit %s: %s' % (r[0], (r[1] + r[2]).strip()[:400]))
        meta = self.a.meta and json.loads(self.a.meta) or {}
        evs, present = self.check_ledger(store, probs, lambda i, kind, md: meta if i >= self.a.base_events else {})
        # Each input file is present (record, blob checked by verify) or absent.
        r = self.chk(store, 'find', '--case', meta.get('case', 'C-1'), '--json')
        found = {}
        if r[0] == 0:
            for rec in json.loads(r[1]):
                found[rec.get('sha256')] = rec
        elif r[0] != 0 and 'no evidence matches' not in r[2]:
            probs.append('custos find after the run: exit %s' % r[0])
        acked = rc == 0
        for f in self.files:
            sha, name, size, base = f['sha256'], f['name'], f['size'], f.get('base', False)
            if base:
                continue
            rec = found.get(sha)
            if rec is None:
                if sha in present:
                    probs.append('%s: in the ledger but not found by case' % name)
                elif acked:
                    probs.append('%s: the run exited 0 but the file is not in the store' % name)
                continue
            if rec.get('size') != size or rec.get('name') != name:
                probs.append('%s: record says size %r name %r' % (name, rec.get('size'), rec.get('name')))
            for k, v in meta.items():
                if rec.get(k) != v:
                    probs.append('%s: record %s is %r, not %r' % (name, k, rec.get(k), v))
            blob = os.path.join(store, 'objects/sha256', sha[:2], sha[2:4], sha)
            if not os.path.isfile(blob):
                probs.append('%s: recorded but its blob is missing' % name)
        # Stray blobs: bytes in objects/ that no record refers to.
        strays = []
        known = set(present)
        for d, _, fs in os.walk(os.path.join(store, 'objects/sha256')):
            for fn in fs:
                if fn not in known:
                    strays.append(fn)
        for fn in os.listdir(os.path.join(store, 'tmp')):
            probs.append('tmp/%s left behind' % fn)
        return probs, strays

    def check_verify(self, store, rc, out, err):
        probs = []
        if self.a.damaged:
            if rc == 0:
                probs.append('verify exited 0 on a damaged store: %s' % out.strip()[:300])
            elif rc == 1 and self.a.expect and self.a.expect not in out:
                probs.append('verify exited 1 without naming %s: %s' % (self.a.expect, out.strip()[:300]))
        else:
            if rc == 0 and 'all intact' not in out:
                probs.append('verify exited 0 without its verdict: %r' % out[:200])
            if rc == 1:
                probs.append('false alarm on an intact store: %s' %
                             ' | '.join(l for l in out.splitlines() if l.startswith('PROBLEM'))[:400])
        tmpd = os.path.join(store, 'tmp')
        for fn in os.listdir(tmpd):
            # a scratch catalog of a verify that stopped: must not stay
            probs.append('tmp/%s left behind' % fn)
            shutil.rmtree(os.path.join(tmpd, fn), ignore_errors=True)
        return probs, []

    def check_find(self, store, rc, out, err):
        probs = []
        if rc == 0:
            try:
                got = sorted(r['sha256'] for r in json.loads(out))
            except Exception as e:  # noqa
                got = 'unparsable output: %r' % out[:200]
            if got != sorted(self.a.expect.split(',')):
                probs.append('find exited 0 with a wrong listing: %s' % (got,))
        return probs, []

    # ---- custosd ----
    def run_daemon(self, binary, conf, env, inbox, receipt, logpath, store=None):
        """Runs custosd until it exits by itself, or until the inbox is empty
        and the receipt written (then SIGTERM), or until --bound seconds have
        passed (then SIGKILL: a hang). With `store`, asks it for its status
        once it is up (custos status), which must end with an answer or a
        message within 10 s. Returns (exit status or 'timeout', its log,
        whether it was sent SIGTERM, a problem with the status or None)."""
        t0 = time.monotonic()
        asked, status_problem = store is None, None
        with open(logpath, 'wb') as lf:
            p = subprocess.Popen([binary, '--config', conf], env=env, stdout=lf,
                                 stderr=subprocess.STDOUT)
        termed = up = False
        while True:
            rc = p.poll()
            if rc is not None:
                break
            if not up:
                # its signal handlers are set once it says it is watching
                with open(logpath, errors='replace') as f:
                    up = 'custosd: info: watching ' in f.read()
            if up and not asked:
                asked = True
                e = dict(self.env)
                e['CUSTOS_STORE'] = store
                r = run([self.custos, 'status', '--json'], e, timeout=10)
                if r[0] == 'timeout':
                    status_problem = 'custos status got no answer and no hang-up within 10 s'
                elif r[0] == 0 and '"state"' not in r[1]:
                    status_problem = 'custos status exited 0 without the state: %r' % r[1][:200]
                elif r[0] != 0 and not r[2].strip():
                    status_problem = 'custos status exited %s without a message' % r[0]
            if up and not termed and not os.listdir(inbox) and os.path.exists(receipt):
                p.send_signal(signal.SIGTERM)
                termed = True
            if time.monotonic() - t0 > self.a.bound:
                p.kill()
                p.wait()
                rc = 'timeout'
                break
            time.sleep(0.05)
        with open(logpath, errors='replace') as f:
            return rc, f.read(), termed, status_problem

    def classify_daemon(self, rc, log, termed):
        """None for a clean end (or a libuv abort, UV_ABORT), else a reason."""
        if rc == 'timeout':
            return 'hang: still running after %g s (%s)' % (
                self.a.bound, 'after SIGTERM' if termed else 'files still waiting')
        if HARNESS_MARK in log:
            return HARNESS
        if (rc == -signal.SIGABRT or (rc == 86 and 'AddressSanitizer: ABRT' in log)) and \
                (abort_caller(log) or '').startswith('libuv.so'):
            return UV_ABORT
        if any(m in log for m in SAN_MARKERS) or rc in (86, 87):
            kind = 'leak' if 'LeakSanitizer' in log else 'sanitizer'
            return '%s report (exit %s)' % (kind, rc)
        if rc < 0:
            return 'killed by signal %d' % -rc
        if rc == 0:
            return None if termed else 'exit 0 without SIGTERM'
        if rc == 1:
            return 'exit 1: the allocation failure was taken for a store failure'
        if rc not in (2, 3, 4):
            return 'unexpected exit %d' % rc
        if not re.search(r'^custosd: (error: )?', log, re.M):
            return 'exit %d without a message' % rc
        return None

    def ledger_files(self, store, probs, when):
        """{sha256: [event kinds]} of the events that secured each file, from
        the ledger (a sighting names its item's id)."""
        r = self.chk(store, 'log', '--json')
        if r[0] != 0:
            probs.append('%s: custos log: exit %s' % (when, r[0]))
            return {}
        sha_of, got = {}, {}
        for i, ev in enumerate(json.loads(r[1])):
            if ev.get('event') == 'ingest':
                sha = (ev.get('item') or {}).get('sha256')
                sha_of[(ev.get('item') or {}).get('id')] = sha
            else:
                sha = sha_of.get(ev.get('id'))
            if i >= self.a.base_events:
                got.setdefault(sha, []).append(ev.get('event'))
        return got

    def check_receipt(self, store, receipt, secured, when):
        probs = []
        dock = {f['name']: f['sha256'] for f in self.files if f['where'] == 'dock'}
        try:
            body = json.loads(open(receipt, encoding='utf-8').read().partition('\n\n')[0])
            listed = {f['name']: f['sha256'] for f in body['files']}
        except Exception as e:  # noqa
            return ['%s: the receipt is unreadable: %s' % (when, e)]
        if listed != dock:
            probs.append('%s: the receipt lists %s, not the recorder\'s %s' % (when, sorted(listed), sorted(dock)))
        for name, sha in dock.items():
            if sha not in secured:
                probs.append('%s: the receipt exists but %s is not secured' % (when, name))
        key = self.chk(store, 'pubkey')[1].strip()
        r = self.chk(store, 'check-receipt', receipt, '--key', key)
        if r[0] != 0:
            probs.append('%s: custos check-receipt: exit %s: %s' % (when, r[0], (r[1] + r[2]).strip()[:200]))
        return probs

    def check_daemon(self, d, store, inbox, dockdir, receipt, conf, rc):
        probs = []
        # Right after the run: every source in its place untouched, or secured.
        secured = self.ledger_files(store, probs, 'after the run')
        for f in self.files:
            path = os.path.join(inbox if f['where'] == 'inbox' else dockdir, f['name'])
            if os.path.exists(path):
                if sha256_file(path) != f['sha256']:
                    probs.append('after the run: %s changed in its place' % f['name'])
            elif f['where'] == 'dock':
                probs.append('after the run: %s is gone from the recorder' % f['name'])
            elif f['sha256'] not in secured:
                probs.append('after the run: %s left the inbox but is not secured' % f['name'])
        if os.path.exists(receipt):
            probs += self.check_receipt(store, receipt, secured, 'after the run')
        # Then a custosd without faults on the same store, until all is taken.
        if rc != 0 or os.listdir(inbox) or not os.path.exists(receipt):
            rc2, log2, termed, _ = self.run_daemon(self.custosd, conf, self.env, inbox, receipt,
                                                   os.path.join(d, 'restart.log'))
            if rc2 == 'timeout' or rc2 != 0 or any(m in log2 for m in SAN_MARKERS):
                probs.append('the restart without faults: %s; inbox holds %s, receipt %s; its log: %s' % (
                    'not done within %g s' % self.a.bound if rc2 == 'timeout' else 'exit %s' % rc2,
                    sorted(os.listdir(inbox)), 'written' if os.path.exists(receipt) else 'missing',
                    ' | '.join(l for l in log2.splitlines() if 'error' in l or 'warning' in l
                               or 'Sanitizer' in l)[:600]))
                return probs, []
            secured = self.ledger_files(store, probs, 'after the restart')
        # Every file secured exactly once, with its metadata; verify passes.
        r = self.chk(store, 'verify')
        if r[0] != 0:
            probs.append('custos verify: exit %s: %s' % (r[0], (r[1] + r[2]).strip()[:400]))
        by_sha = {f['sha256']: f for f in self.files}
        by_name = {f['name']: f for f in self.files}

        def want(i, kind, md):
            if i < self.a.base_events:
                return {}
            f = by_sha.get(md.get('sha256')) if kind == 'ingest' else by_name.get(md.get('name'))
            if f is None:
                probs.append('ledger event %d (%s %s) is for none of the files' % (i, kind, md.get('name')))
                return {}
            return f.get('meta') or {}
        self.check_ledger(store, probs, want)
        for f in self.files:
            kinds = secured.get(f['sha256'], [])
            if kinds != ['sighting' if f.get('base') else 'ingest']:
                probs.append('%s secured %d time(s): %s' % (f['name'], len(kinds), kinds))
        if os.path.exists(receipt):
            probs += self.check_receipt(store, receipt, secured, 'at the end')
        else:
            probs.append('at the end: no receipt')
        if os.listdir(os.path.join(store, 'tmp')):
            probs.append('tmp/ not empty after a clean stop: %s' % os.listdir(os.path.join(store, 'tmp')))
        known = {sha for sha in secured} | {f['sha256'] for f in self.files if f.get('base')}
        strays = [fn for _, _, fs in os.walk(os.path.join(store, 'objects/sha256')) for fn in fs
                  if fn not in known]
        if strays and not os.path.exists(os.path.join(store, 'WRITER')):
            probs.append('%d unreferenced blob(s) in objects/ and no WRITER marker to have them '
                         'moved to orphans/ at the next start' % len(strays))
        return probs, strays

    def one_daemon(self, n, mode, slot, slow):
        a = self.a
        d = os.path.join(a.work, 'run-%s-%s' % (mode, slot))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        store, inbox, docks = (os.path.join(d, x) for x in ('store', 'in', 'docks'))
        dockdir = os.path.join(docks, 'rec1')
        receipt = os.path.join(dockdir, 'CUSTOS-RECEIPT.json')
        subprocess.run(['cp', '-a', a.store, store], check=True)
        subprocess.run(['cp', '-a', a.inbox_src, inbox], check=True)
        os.makedirs(docks)
        subprocess.run(['cp', '-a', a.dock_src, dockdir], check=True)
        conf = os.path.join(d, 'custosd.conf')
        with open(conf, 'w') as f:
            f.write('[store]\nroot = %s\n[inbox]\ndir = %s\n[docks]\nroot = %s\n[ingest]\n'
                    'settle_seconds = 0\nrescan_seconds = 1\nconcurrency = 2\nrelease = delete\n'
                    % (store, inbox, docks))
        report = os.path.join(d, 'hit')
        rc, log, termed, status_problem = self.run_daemon(
            self.binary, conf, self.fm_env(n, mode, report, store, slow), inbox, receipt,
            os.path.join(d, 'run.log'), store)
        hit = os.path.exists(report)
        why = self.classify_daemon(rc, log, termed)
        probs, strays = self.check_daemon(d, store, inbox, dockdir, receipt, conf, rc)
        if status_problem:
            probs.insert(0, status_problem)
        return n, hit, rc, why, probs, strays, log

    def one(self, n, mode, slot, slow=False):
        a = self.a
        if a.kind == 'daemon':
            return self.one_daemon(n, mode, slot, slow)
        d = os.path.join(a.work, 'run-%s-%s' % (mode, slot))
        report = os.path.join(d, 'hit')
        if a.kind == 'ingest':
            store = os.path.join(d, 'store')
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            subprocess.run(['cp', '-a', a.store, store], check=True)
        else:
            # read-only commands: one copy of the store per worker slot, kept
            store = os.path.join(d, 'store')
            if not os.path.isdir(store):
                os.makedirs(d, exist_ok=True)
                subprocess.run(['cp', '-a', a.store, store], check=True)
            if os.path.exists(report):
                os.unlink(report)
        rc, out, err = run([self.binary] + a.cmd, self.fm_env(n, mode, report, store, slow))
        hit = os.path.exists(report)
        if os.path.exists(report):
            os.unlink(report)
        why = self.classify(rc, out, err)
        probs, strays = getattr(self, 'check_' + a.kind)(store, rc, out, err)
        return n, hit, rc, why, probs, strays, err

    def sweep(self, mode):
        a = self.a
        full = os.environ.get('NIGHTLY') == '1'
        res = {'suppressed': 0, 'uv_aborts': 0, 'uv_abort_at': [], 'runs': 0, 'failures': 0, 'hits': 0, 'exit_codes': {}, 'strays': 0, 'harness': 0,
               'last_n': 0, 'completed': False, 'fail_list': []}
        n = a.start
        workers = max(2, min(8, 2 * (os.cpu_count() or 1)))
        with cf.ThreadPoolExecutor(workers) as ex:
            while True:
                batch = []
                while len(batch) < workers * 4:
                    batch.append(n)
                    n += 1 if (full or n < a.dense) else a.step
                results = list(ex.map(lambda p: self.one(p[1], mode, p[0]), enumerate(batch)))
                done = False
                for (k, hit, rc, why, probs, strays, err) in results:
                    res['runs'] += 1
                    res['last_n'] = k
                    res['exit_codes'][str(rc)] = res['exit_codes'].get(str(rc), 0) + 1
                    if hit:
                        res['hits'] += 1
                    if strays:
                        res['strays'] += 1
                    if why == HARNESS:
                        res['harness'] += 1
                        continue
                    if why in (UV_ABORT, NSS_ABORT):
                        res['uv_aborts'] += 1
                        res['uv_abort_at'].append({'n': k, 'where': uv_abort_where(err)
                                                   if why == UV_ABORT else 'glibc NSS'})
                        why = None  # the store must still be consistent
                    if why and why.startswith('leak') and self.a.lsan_supp:
                        # again with full stacks: is it one of OpenSSL's own?
                        r2 = self.one(k, mode, 'slow', slow=True)
                        if r2[3] is None and not r2[4]:
                            res['suppressed'] += 1
                            continue
                    bad = ([why] if why else []) + probs
                    if bad:
                        res['failures'] += 1
                        if len(res['fail_list']) < 400:
                            res['fail_list'].append({'n': k, 'rc': rc, 'why': bad,
                                                     'stderr': err.strip()[-1500:]})
                    if not hit:
                        done = True
                if done or res['runs'] >= a.max_runs:
                    res['completed'] = done
                    break
        return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kind', required=True, choices=['ingest', 'verify', 'find', 'daemon'])
    ap.add_argument('--inject', default='failmalloc', choices=['failmalloc', 'uv', 'crypto'])
    ap.add_argument('--inbox-src', default='')
    ap.add_argument('--dock-src', default='')
    ap.add_argument('--bound', type=float, default=30.0)
    ap.add_argument('--one', type=int, default=0, help='run only this N (per mode) and keep its files')
    ap.add_argument('--start', type=int, default=1, help='the first N (to look at one stretch)')
    ap.add_argument('--store', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--failmalloc', required=True)
    ap.add_argument('--asan', action='store_true')
    ap.add_argument('--lsan-supp', default='')
    ap.add_argument('--modes', default='once,persist')
    ap.add_argument('--dense', type=int, default=300)
    ap.add_argument('--step', type=int, default=10)
    ap.add_argument('--max-runs', type=int, default=100000)
    ap.add_argument('--files', default='')
    ap.add_argument('--meta', default='')
    ap.add_argument('--base-events', type=int, default=0)
    ap.add_argument('--damaged', action='store_true')
    ap.add_argument('--expect', default='')
    ap.add_argument('--show-stderr', type=int, default=int(os.environ.get('OOM_SHOW_STDERR', '5')))
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.cmd and a.cmd[0] == '--':
        a.cmd = a.cmd[1:]
    s = Sweep(a)
    if a.one:
        # One run per mode, kept in --work, its log shown: for a failure found by a sweep.
        for mode in a.modes.split(','):
            k, hit, rc, why, probs, strays, err = s.one(a.one, mode, 'one')
            sys.stderr.write('# %s N=%d: exit %s, N %s; %s\n' % (mode, k, rc, 'reached' if hit else 'not reached',
                                                             '; '.join(([why] if why else []) + probs) or 'clean'))
            for line in err.strip().splitlines()[-60:]:
                sys.stderr.write('#     %s\n' % line)
        return
    out = {}
    for mode in a.modes.split(','):
        out[mode] = s.sweep(mode)
        shown = 0
        for f in out[mode]['fail_list']:
            sys.stderr.write('# %s %s N=%d exit %s: %s\n' % (a.kind, mode, f['n'], f['rc'], '; '.join(f['why'])))
            if shown < a.show_stderr:
                shown += 1
                for line in f['stderr'].splitlines()[-25:]:
                    sys.stderr.write('#     %s\n' % line)
    json.dump(out, sys.stdout)
    print()


if __name__ == '__main__':
    main()
