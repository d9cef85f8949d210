#!/usr/bin/env python3
"""Random single-bit flips for bitflips.sh.

Each flip is made on a fresh copy (cp -a) of a prepared store: a category is
drawn (blob, ledger journal, checkpoint, catalog), then a file of that
category, a byte and a bit. `custos verify` must then exit 1 and name what was
damaged:

  blob        a PROBLEM line with the id of the item whose blob it is
  journal     a PROBLEM line naming the ledger entry the byte belongs to
              ("ledger entry N"; the 16-byte header: "ledger/journal")
  checkpoint  a PROBLEM line naming checkpoints/latest, or the entry of
              checkpoints/journal the byte belongs to ("checkpoints/journal
              entry N "; the 16-byte header: "checkpoints/journal does not begin")
  catalog     catalog/data.mdb: LMDB keeps stale copies of pages, free pages
              and the unused end of every 4 KiB page, so most of its bytes are
              never read; a flip there changes nothing that can be observed.
              A flip counts only if the catalog's content, as `mdb_dump -a`
              prints it, changed; it must then be found: verify exits 1 with a
              PROBLEM line, or refuses the catalog (exit 3 with a message).
              For the catalog a byte is drawn again (up to 40 times) until the
              flip is observable, three times in four among the bytes that are
              not zero (page headers, keys, values: the zero-filled middle of
              LMDB's pages is the bulk of the dead space); the dead-space draws
              are counted, and verify is run on a sample of them too.

LMDB does not check its pages: some flips in page headers make LMDB itself
crash (SIGSEGV, SIGBUS) or abort on an assertion in the process that reads
the catalog. verify reads it in a child process and reports such a crash as
"PROBLEM catalog: the catalog is damaged: ... crashed (signal N, ...)"; those
flips are detected like the others, and also counted apart ('lmdb_crash').

Never acceptable: exit 0 after a counted flip, verify itself dying by a
signal (in any category, the catalog included), a hang. Prints a
JSON summary on stdout, '#' lines about every miss on stderr.
"""
import argparse
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

# At most this much output per command: a runaway (a loop printing without
# end on a damaged file) ends by SIGXFSZ, a failure naming its flip, instead
# of filling this process's memory.
OUTPUT_MAX = 64 << 20


def limit_output():
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_MAX, OUTPUT_MAX))


def run(cmd, env=None, timeout=60):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            rc = subprocess.run(cmd, env=env, stdout=out, stderr=err, timeout=timeout,
                                preexec_fn=limit_output).returncode
        except subprocess.TimeoutExpired:
            return 'timeout', '', ''
        out.seek(0)
        err.seek(0)
        return rc, out.read().decode(errors='replace'), err.read().decode(errors='replace')


def journal_entries(path):
    """[(start, end, index)] of every entry: length, event, leaf hash."""
    d = open(path, 'rb').read()
    assert d[:16] == b'CUSTOS-LEDGER-1\n'
    out, off, i = [], 16, 0
    while off < len(d):
        n = struct.unpack('>I', d[off:off + 4])[0]
        out.append((off, off + 4 + n + 32, i))
        off += 4 + n + 32
        i += 1
    return out


def cpj_entries(path):
    """[(start, end, index)] of every checkpoint journal entry: length, note, checksum, length."""
    d = open(path, 'rb').read()
    assert d[:16] == b'CUSTOS-CHECKPTS\n'
    out, off, i = [], 16, 0
    while off < len(d):
        n = struct.unpack('>I', d[off:off + 4])[0]
        out.append((off, off + n + 40, i))
        off += n + 40
        i += 1
    return out


def strip_env(dump):
    # mapsize and maxreaders are environment settings custos sets at open
    return '\n'.join(l for l in dump.splitlines()
                     if not l.startswith(('mapsize=', 'maxreaders=')))


def mdb_dump(catdir):
    rc, out, _ = run(['mdb_dump', '-a', catdir])
    return rc, strip_env(out)


# The tables verify compares (all but the daemon's `jobs`, operational state
# kept outside the ledger and deliberately not verified).
TABLES = ['by_case', 'by_device', 'by_officer', 'by_sha', 'by_time', 'item_events', 'items',
          'leaves', 'meta', 'nodes']


def tables_dump(catdir):
    # Only the keys and values (mdb_dump's data lines begin with a space):
    # the header lines describe LMDB's own bookkeeping, which custos does not
    # read as evidence.
    out = []
    for t in TABLES:
        rc, o, _ = run(['mdb_dump', '-s', t, catdir])
        data = '\n'.join(l for l in o.splitlines() if l.startswith(' '))
        out.append('%s %s\n%s' % (t, rc, data))
    return out


def observable(catdir, dump0, tables0):
    """Did the flip change anything custos reads? mdb_dump -a first; when it
    differs, table by table (mdb_dump -a also stops at LMDB metadata custos
    never reads, such as a sub-database record's length)."""
    rc, dump = mdb_dump(catdir)
    if rc == 0 and dump == dump0:
        return False
    return tables_dump(catdir) != tables0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--base', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--flips', type=int, default=200)
    ap.add_argument('--seed', type=int, default=None)
    a = ap.parse_args()
    custos = os.environ['CUSTOS']
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    sys.stderr.write('# bitflips.py --seed %d\n' % seed)  # known even if the run is cut short
    sys.stderr.flush()
    rnd = random.Random(seed)
    base = a.base
    env = dict(os.environ)
    env.pop('CUSTOS_STORE', None)

    # What the prepared store holds.
    rc, out, err = run([custos, 'log', '--json', '--store', base], env)
    evs = json.loads(out)
    id_of_sha = {}
    for ev in evs:
        if ev.get('event') == 'ingest':
            id_of_sha[ev['item']['sha256']] = ev['item']['id']
    blobs = []
    for d, _, fs in os.walk(os.path.join(base, 'objects/sha256')):
        for f in fs:
            blobs.append(os.path.relpath(os.path.join(d, f), base))
    cps = ['checkpoints/journal', 'checkpoints/latest']
    cpj = cpj_entries(os.path.join(base, 'checkpoints/journal'))
    entries = journal_entries(os.path.join(base, 'ledger/journal'))
    have_mdb_dump = shutil.which('mdb_dump') is not None
    dump0 = mdb_dump(os.path.join(base, 'catalog'))[1] if have_mdb_dump else None
    tables0 = tables_dump(os.path.join(base, 'catalog')) if have_mdb_dump else None
    mdb = open(os.path.join(base, 'catalog/data.mdb'), 'rb').read()
    nonzero = [i for i, c in enumerate(mdb) if c != 0]
    cats = ['blob', 'journal', 'checkpoint', 'catalog']
    files = {'blob': blobs, 'journal': ['ledger/journal'], 'checkpoint': cps,
             'catalog': ['catalog/data.mdb']}

    res = {'seed': seed, 'flips': 0, 'counted': 0, 'detected': 0, 'misses': 0,
           'per_category': {c: {'flips': 0, 'detected': 0, 'refused': 0, 'dead': 0,
                                'missed': 0, 'lmdb_crash': 0} for c in cats},
           'problem_kinds': {}}
    store = os.path.join(a.work, 'flip')
    for k in range(a.flips):
        cat = rnd.choice(cats)
        rel = rnd.choice(files[cat])
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run(['cp', '-a', base, store], check=True)
        path = os.path.join(store, rel)
        size = os.path.getsize(path)

        def draw():
            if cat == 'catalog' and nonzero and rnd.random() < 0.75:
                return rnd.choice(nonzero), rnd.randrange(8)
            return rnd.randrange(size), rnd.randrange(8)
        off, bit = draw()
        mode = os.stat(path).st_mode
        os.chmod(path, 0o600)
        with open(path, 'r+b') as f:
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ (1 << bit)]))
        os.chmod(path, mode & 0o7777)
        pc = res['per_category'][cat]
        dead = False
        if cat == 'catalog' and have_mdb_dump:
            for attempt in range(40):
                dead = not observable(os.path.join(store, 'catalog'), dump0, tables0)
                if not dead:
                    break
                pc['dead'] += 1
                if attempt % 10 == 0:
                    # dead space: verify must still run cleanly
                    rc, out, err = run([custos, 'verify', '--store', store], env)
                    if rc == 'timeout' or rc < 0 or rc >= 128 or rc == 2:
                        res['misses'] += 1
                        pc['missed'] += 1
                        sys.stderr.write('# flip %d: %s byte %d bit %d (dead space): verify exit %s\n'
                                         % (k, rel, off, bit, rc))
                # undo, draw again
                with open(path, 'r+b') as f:
                    f.seek(off)
                    b = f.read(1)[0]
                    f.seek(off)
                    f.write(bytes([b ^ (1 << bit)]))
                    off, bit = draw()
                    f.seek(off)
                    b = f.read(1)[0]
                    f.seek(off)
                    f.write(bytes([b ^ (1 << bit)]))
        pc['flips'] += 1
        res['flips'] += 1
        what = '%s byte %d bit %d' % (rel, off, bit)

        # What verify must name.
        if cat == 'blob':
            want = [id_of_sha[os.path.basename(rel)]]
        elif cat == 'journal':
            if off < 16:
                want = ['ledger/journal']
            else:
                idx = [i for (s, e, i) in entries if s <= off < e][0]
                want = ['ledger entry %d ' % idx]
                what += ' (entry %d)' % idx
        elif cat == 'checkpoint' and rel == 'checkpoints/journal':
            if off < 16:
                want = ['checkpoints/journal does not begin']
            else:
                idx = [i for (s, e, i) in cpj if s <= off < e][0]
                want = ['checkpoints/journal entry %d ' % idx]
                what += ' (entry %d)' % idx
        elif cat == 'checkpoint':
            want = [rel]
        else:
            want = None

        rc, out, err = run([custos, 'verify', '--store', store], env)
        lines = [l for l in out.splitlines() if l.startswith('PROBLEM ')]
        for l in lines:
            kind = l.split(':', 1)[0][8:]
            res['problem_kinds'][kind] = res['problem_kinds'].get(kind, 0) + 1
        bad = None
        if rc == 1 and any(l.startswith('PROBLEM catalog: ') and ' crashed (signal ' in l
                           for l in lines):
            # LMDB crashed in verify's catalog child: see above
            pc['lmdb_crash'] += 1
            res['lmdb_crash'] = res.get('lmdb_crash', 0) + 1
        if rc == 'timeout' or (isinstance(rc, int) and (rc < 0 or rc >= 128)):
            bad = 'verify crashed or hung (%s)' % rc
        elif dead:  # 40 dead draws in a row
            if rc not in (0, 1, 3):
                bad = 'unexpected exit %s' % rc
        elif rc == 1 and lines and (want is None or any(w in l for l in lines for w in want)):
            pc['detected'] += 1
        elif rc == 3 and cat == 'catalog' and err.strip():
            pc['refused'] += 1
        elif rc == 1 and lines:
            bad = 'verify found a problem but did not name %s: %s' % (want, ' | '.join(lines)[:300])
        else:
            bad = 'not detected: exit %s: %s' % (rc, (out + err).strip()[:300])
        if not dead:
            res['counted'] += 1
            if bad is None:
                res['detected'] += 1
        if bad is not None:
            pc['missed'] += 1
            res['misses'] += 1
            sys.stderr.write('# flip %d: %s: %s\n' % (k, what, bad))
    shutil.rmtree(store, ignore_errors=True)
    json.dump(res, sys.stdout)
    print()


if __name__ == '__main__':
    main()
