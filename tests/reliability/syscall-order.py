#!/usr/bin/env python3
"""syscall-order.py TRACE BATCH PRESENT [JOURNAL BEFORE]: checks the order of
the durable steps of one `custos ingest` in the system calls it made, as the
csfault interposer traced them (fault.c, CSFAULT_TRACE: op, n, path, inode,
result, one line per call once it returned). The files are committed in
groups (custos/batch.h): one journal write holds the events of several files.
Which write holds the k-th file's event is found from JOURNAL (the ledger
journal after the run) and BEFORE (its size before): the entries are parsed
and matched to the byte counts of the journal writes in the trace. Without
them, each file is taken to be committed alone. The rules (DESIGN invariant
1, docs/architecture.md), for the k-th file, the journal write W that holds
its event and the first catalog commit after W:
  a file stored anew: its temp blob made, every write to it (none for an
  empty file), then an fsync of that blob (the same inode), then its link
  into objects/sha256/ab/cd/<sha256> (after the catalog commit before W), then
  an fsync of that directory (and of the parent of every directory made for
  it), then the ledger entry's write W, then a sync of the journal, then the
  catalog's writes and its commit;
  bytes already stored (a sighting): no new link; the journal written and
  synced before the catalog's writes and its commit; bytes stored before this
  run (no link to them in the trace): their directory fsynced before W, as
  another commit may have linked them and not yet made the link durable.
The first link into a fan-out directory in this run is followed by an fsync
of that directory's parent before W, whoever made the directory (this run,
or an earlier one that may have ended before its parent's fsync).
A catalog commit is LMDB's meta page write: the first write to
catalog/data.mdb after a sync of it. BATCH: "path sha256 size" lines in
ingest order; PRESENT: the digests stored before. Prints each broken rule
and exits 1; exits 0 when all hold."""
import sys

trace, batch, present = sys.argv[1:4]
jpath, jbefore = (sys.argv[4], int(sys.argv[5])) if len(sys.argv) > 5 else (None, 0)
have = {l.strip() for l in open(present) if l.strip()}
files = []
for line in open(batch):
    path, sha, size = line.rstrip("\n").rsplit(" ", 2)
    files.append((path.rsplit("/", 1)[-1], sha, "sighting" if sha in have else "ingest",
                  int(size)))
    have.add(sha)

ev = []  # (op, path, inode, ok, what it returned)
for line in open(trace):
    f = line.rstrip("\n").split("\t")
    if len(f) >= 5:
        ev.append((f[0], f[2], f[3], f[4] == "ok", int(f[5]) if len(f) > 5 else 0))

WRITES = ("write", "pwrite")
SYNCS = ("fsync", "fdatasync")
CAT, JOURNAL = "catalog/data.mdb", "ledger/journal"

commits, synced = [], False
for i, (op, path, ino, ok, _r) in enumerate(ev):
    if path == CAT and ok and op in SYNCS:
        synced = True
    elif path == CAT and ok and op in WRITES and synced:
        commits.append(i)
        synced = False

bad = []
jwrites = [i for i, (op, p, ino, ok, r) in enumerate(ev) if op in WRITES and p == JOURNAL and ok]
holder = []  # the index in ev of the journal write that holds each file's event
if jpath is not None:
    data = open(jpath, "rb").read()
    off, starts = jbefore, []
    while off + 4 <= len(data) and len(starts) < len(files):
        starts.append(off)
        off += 4 + int.from_bytes(data[off:off + 4], "big") + 32
    pos, w = jbefore, 0
    for st in starts:
        while w < len(jwrites) and pos + ev[jwrites[w]][4] <= st:
            pos += ev[jwrites[w]][4]
            w += 1
        holder.append(jwrites[w] if w < len(jwrites) else None)
else:
    holder = jwrites[:len(files)]
if len(holder) != len(files) or None in holder:
    bad.append("the journal writes hold %d of the %d files' events" %
               (len([h for h in holder if h is not None]), len(files)))
groups = sorted(set(h for h in holder if h is not None))
if len(commits) != len(groups):
    bad.append("%d catalog commits for %d journal writes" % (len(commits), len(groups)))


def first(lo, hi, pred):
    return next((i for i in range(lo, hi) if pred(*ev[i][:4])), None)


def last(lo, hi, pred):
    return next((i for i in range(hi - 1, lo - 1, -1) if pred(*ev[i][:4])), None)

for k, ((name, sha, kind, size), h) in enumerate(zip(files, holder)):
    if h is None:
        continue
    c = next((i for i in commits if i > h), None)
    if c is None:
        bad.append("file %d (%s): no catalog commit after its journal write" % (k + 1, name))
        continue
    lo = max([i for i in commits if i < h], default=-1) + 1
    err = lambda m: bad.append("file %d (%s, %s): %s" % (k + 1, name, kind, m))
    rel = "objects/sha256/%s/%s/%s" % (sha[:2], sha[2:4], sha)
    jw = h
    link = first(lo, jw, lambda op, p, ino, ok: op == "link" and p == rel and ok)
    js = first(jw + 1, c, lambda op, p, ino, ok: op in SYNCS and p == JOURNAL and ok)
    if js is None:
        err("the journal was not synced after its ledger entry's write, before the catalog commit")
    cw = first(lo, c + 1, lambda op, p, ino, ok: op in WRITES and p == CAT)
    if js is not None and cw is not None and cw < js:
        err("the catalog was written (call %d) before the journal's sync (call %d)" % (cw + 1, js + 1))
    d = rel.rsplit("/", 1)[0]
    parent = d.rsplit("/", 1)[0]
    first_into = first(0, len(ev), lambda op, p, i, ok: op == "link" and ok and
                       p.rsplit("/", 1)[0] == d)
    if kind == "sighting" and first(0, jw, lambda op, p, i, ok: op == "link" and p == rel and
                                    ok) is None:
        if first(lo, jw, lambda op, p, i, ok: op == "fsync" and p == d and ok) is None:
            err("bytes stored before this run: their directory %s was not fsynced before "
                "the journal write" % d)
        if first_into is None and first(lo, jw, lambda op, p, i, ok: op == "fsync" and
                                        p == parent and ok) is None:
            err("bytes stored before this run: the parent %s of their directory was not "
                "fsynced before the journal write" % parent)
    if kind == "sighting":
        # linked once in this group if a file before it in the group stored them anew
        links = sum(1 for i in range(lo, jw) if ev[i][0] == "link" and ev[i][1] == rel and ev[i][3])
        anew = sum(1 for j in range(k) if holder[j] == h and files[j][1] == sha and
                   files[j][2] == "ingest")
        if links > anew:
            err("bytes already stored were linked into objects/ again")
        continue
    if link is None:
        err("its blob was never linked to %s" % rel)
        continue
    ino = ev[link][2]
    # The temp blob: made (create) before the link; an inode number can be reused.
    cr = last(0, link, lambda op, p, i, ok: op == "create" and i == ino and ok)
    if cr is None:
        err("no temp blob (inode %s) was made before its link" % ino)
        continue
    lw = last(cr, link, lambda op, p, i, ok: op in WRITES and i == ino and ok)
    fs = first(lw if lw is not None else cr, link,
               lambda op, p, i, ok: op in SYNCS and i == ino and ok)
    if lw is None and size > 0:
        err("no write to the blob (inode %s) before its link" % ino)
    if fs is None:
        err("the blob (inode %s) was not fsynced after its last write, before its link" % ino)
    ds = first(link + 1, jw, lambda op, p, i, ok: op == "fsync" and p == d and ok)
    if ds is None:
        err("its directory %s was not fsynced after the link, before the journal write" % d)
    if first_into == link and first(link + 1, jw, lambda op, p, i, ok: op == "fsync" and
                                    p == parent and ok) is None:
        err("the first link into %s in this run was not followed by an fsync of its parent "
            "%s before the journal write" % (d, parent))
    for m in range(lo, link):
        op, p, _i, ok = ev[m][:4]
        if op == "mkdir" and ok:
            parent = p.rsplit("/", 1)[0]
            if first(m + 1, jw, lambda o, q, i, okk: o == "fsync" and q == parent and okk) is None:
                err("the parent %s of the new directory %s was not fsynced before the "
                    "journal write" % (parent, p))

for b in bad[:10]:
    print(b)
sys.exit(1 if bad else 0)
