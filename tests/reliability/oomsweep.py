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

Prints one JSON object of results on stdout; details of every failure go to
stderr as '#'-prefixed lines (TAP comments).
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import tempfile

OK_CODES = {0, 1, 2, 3}
# ASan's own runtime calls glibc's pthread_getattr_np() when a thread starts,
# which allocates through failmalloc; when that allocation is the failed one,
# ASan stops with a CHECK failure. That is the test harness, not custos: such
# runs are counted apart and not judged.
HARNESS_MARK = 'AddressSanitizer: CHECK failed: sanitizer_linux_libcdep.cpp'
HARNESS = 'harness'
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
               "ERROR: UndefinedBehaviorSanitizer")


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
        e = dict(self.env)
        if slow:
            # full stacks through libraries built without frame pointers, so
            # that the suppressions can name OpenSSL's functions
            e['ASAN_OPTIONS'] += ':fast_unwind_on_malloc=0'
        e['LD_PRELOAD'] = self.a.failmalloc
        e['FAILMALLOC_AT'] = str(n)
        e['FAILMALLOC_MODE'] = mode
        e['FAILMALLOC_REPORT'] = report
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
    def check_ingest(self, store, rc, out, err):
        probs = []
        r = self.chk(store, 'checkpoint')
        if r[0] != 0:
            probs.append('custos checkpoint after the run: exit %s: %s' % (r[0], r[2].strip()[:300]))
        r = self.chk(store, 'verify')
        if r[0] != 0:
            probs.append('custos verify after the run: exit %s: %s' % (r[0], (r[1] + r[2]).strip()[:400]))
        r = self.chk(store, 'log', '--json')
        evs = []
        if r[0] != 0:
            probs.append('custos log: exit %s' % r[0])
        else:
            evs = json.loads(r[1])
        meta = self.a.meta and json.loads(self.a.meta) or {}
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
            if i >= self.a.base_events:
                for k, v in meta.items():
                    if md.get(k) != v:
                        probs.append('%s (%s): %s is %r, not %r' % (where, kind, k, md.get(k), v))
            if sha:
                present[sha] = it
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

    def one(self, n, mode, slot, slow=False):
        a = self.a
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
        rc, out, err = run([self.custos] + a.cmd, self.fm_env(n, mode, report, store, slow))
        hit = os.path.exists(report)
        if os.path.exists(report):
            os.unlink(report)
        why = self.classify(rc, out, err)
        probs, strays = getattr(self, 'check_' + a.kind)(store, rc, out, err)
        return n, hit, rc, why, probs, strays, err

    def sweep(self, mode):
        a = self.a
        full = os.environ.get('NIGHTLY') == '1'
        res = {'suppressed': 0, 'runs': 0, 'failures': 0, 'hits': 0, 'exit_codes': {}, 'strays': 0, 'harness': 0,
               'last_n': 0, 'completed': False, 'fail_list': []}
        n = 1
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
    ap.add_argument('--kind', required=True, choices=['ingest', 'verify', 'find'])
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
