#!/usr/bin/env python3
"""Builds the store as a power loss would leave it, for power-loss.sh.

Input: the store before the run (a manifest of its inodes, `find S -printf
'%i\\t%y\\t%m\\t%P\\n'`, and a pristine copy BASE with the same paths), the
journal that tests/reliability/fault.c (CSFAULT_JOURNAL) wrote while a
process changed the store, and the store as the process left it (LIVE).

Model (what survives a power loss on a POSIX file system, taken strictly):
  - a file's data survives up to its last fsync/fdatasync; a write through an
    O_SYNC/O_DSYNC descriptor survives at once; every other write and
    truncation is lost, except that the last lost write may be torn: a random
    prefix of it survives;
  - a directory's entries are those it had at its last fsync; a directory
    never fsynced during the run keeps the entries it had before it (none,
    if it was made during the run). So a new name survives only when its
    directory was fsynced after it was made, and a removed name comes back
    unless its directory was fsynced after the removal.
With --mode random, each lost write or truncation survives with probability
1/2 instead (still in order per file, the last one possibly torn), and each
directory is left either as at its last fsync or as the process left it.

Output: the image in OUT (a new directory), and a one-line summary.
"""
import argparse
import os
import random
import stat
import sys


class Inc:
    """One incarnation of an inode (inode numbers are reused)."""

    def __init__(self, ino, typ, mode, base=None):
        self.ino = ino
        self.typ = typ  # 'f' or 'd'
        self.mode = mode
        self.base = base  # path in BASE of its content before the run
        self.ops = []  # [kind, a, b, c, sync]
        self.synced = 0  # ops[:synced] are durable
        self.listing = None  # dir: [(name, Inc)] at the last fsync, or before the run


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--live", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["drop", "random"], default="drop")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rnd = random.Random(a.seed)

    cur = {}
    # The store before the run.
    by_path = {}
    if os.path.exists(a.manifest):
        with open(a.manifest) as f:
            for line in f:
                ino, typ, mode, rel = line.rstrip("\n").split("\t", 3)
                ino = int(ino)
                if typ not in ("f", "d"):
                    continue
                if ino not in cur:
                    inc = Inc(ino, typ, int(mode, 8), os.path.join(a.base, rel) if typ == "f" else None)
                    if typ == "d":
                        inc.listing = []
                    cur[ino] = inc
                by_path[rel] = cur[ino]
    for rel, inc in by_path.items():
        if rel == "":
            continue
        parent = by_path.get(os.path.dirname(rel))
        if parent is not None:
            parent.listing.append((os.path.basename(rel), inc))

    # The journal.
    writes = []  # every write, in order: (inc, index in inc.ops)
    unknown = 0
    with open(a.journal, "rb") as f:
        lines = f.read().decode("utf-8", "surrogateescape").split("\n")
    # A line is whole when a newline ends it: every one but the last element.
    # The command may be ended (its crash point, in one thread) while another
    # thread is writing a record to the journal, which leaves that record torn
    # at the journal's end. Its system call had not returned, so nothing the
    # command did can depend on it: a torn tail is left out.
    whole = len(lines) - 1
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if i > whole:
            break
        if not line or line[0] == "#":
            continue
        p = line.split("\t")
        k = p[0]
        if k == "C":
            inc = Inc(int(p[1]), p[2], int(p[3], 8))
            if inc.typ == "d":
                inc.listing = []
            cur[inc.ino] = inc
        elif k in ("W", "T", "F", "M"):
            ino = int(p[1])
            inc = cur.get(ino)
            if inc is None:
                unknown += 1
                inc = cur[ino] = Inc(ino, "f", 0o600)
            if k == "W":
                inc.ops.append(["W", int(p[2]), int(p[3]), int(p[4]), p[5] == "1"])
                writes.append((inc, len(inc.ops) - 1))
            elif k == "T":
                inc.ops.append(["T", int(p[2]), 0, 0, False])
            elif k == "F":
                inc.synced = len(inc.ops)
            else:
                inc.mode = int(p[2], 8)
        elif k == "D":
            inc = cur.get(int(p[1]))
            n = int(p[2])
            if i + n > whole:
                break  # its entries torn at the journal's end
            entries = []
            for e in lines[i:i + n]:
                _, eino, etyp, name = e.split("\t", 3)
                einc = cur.get(int(eino))
                if einc is None:
                    if etyp in ("f", "d"):
                        unknown += 1
                    continue
                entries.append((name, einc))
            i += n
            if inc is not None:
                inc.listing = entries
        else:
            raise SystemExit(f"durable-image: bad journal line {line!r}")

    def durable(inc, j):
        op = inc.ops[j]
        return j < inc.synced or (op[0] == "W" and op[4])

    # What survives of the writes that were not made durable.
    keep = {}  # (id(inc), j) -> None (whole) or a byte count (torn)
    lost = [(inc, j) for inc, j in writes if not durable(inc, j)]
    if a.mode == "random":
        for inc in {id(x): x for x in cur.values()}.values():
            for j, op in enumerate(inc.ops):
                if not durable(inc, j) and rnd.random() < 0.5:
                    keep[(id(inc), j)] = None
    torn = None
    if lost:
        inc, j = lost[-1]
        n = inc.ops[j][2]
        cut = rnd.randrange(n) if n > 0 else 0
        keep[(id(inc), j)] = cut
        torn = (inc, j, cut, n)

    data = open(a.journal + ".data", "rb") if os.path.exists(a.journal + ".data") else None

    def content(inc):
        buf = bytearray()
        if inc.base is not None and os.path.exists(inc.base):
            with open(inc.base, "rb") as f:
                buf = bytearray(f.read())
        for j, op in enumerate(inc.ops):
            kept = (id(inc), j) in keep
            if not durable(inc, j) and not kept:
                continue
            if op[0] == "T":
                size = op[1]
                if size < len(buf):
                    del buf[size:]
                else:
                    buf.extend(b"\0" * (size - len(buf)))
                continue
            _, off, n, doff, _ = op
            if kept and keep[(id(inc), j)] is not None:
                n = keep[(id(inc), j)]
            data.seek(doff)
            chunk = data.read(n)
            if off > len(buf):
                buf.extend(b"\0" * (off - len(buf)))
            buf[off:off + len(chunk)] = chunk
        return bytes(buf)

    # Directories as the process left them (for --mode random).
    live_listing = {}
    if a.mode == "random":
        for dirpath, dirnames, filenames in os.walk(a.live):
            try:
                dino = os.lstat(dirpath).st_ino
            except OSError:
                continue
            ents = []
            for name in dirnames + filenames:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                inc = cur.get(st.st_ino)
                if inc is not None and (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                    ents.append((name, inc))
            live_listing[dino] = ents

    try:
        root_ino = os.lstat(a.live).st_ino
    except OSError:
        print("durable-image: the store does not exist; empty image")
        return 0
    root = cur.get(root_ino)
    if root is None:
        raise SystemExit("durable-image: the store's root is not in the manifest or journal")

    written = {}
    counts = {"files": 0, "dirs": 0, "links": 0}

    def build(inc, path, depth):
        os.mkdir(path)
        counts["dirs"] += 1
        listing = inc.listing or []
        if a.mode == "random" and inc.ino in live_listing and cur.get(inc.ino) is inc and rnd.random() < 0.5:
            listing = live_listing[inc.ino]
        for name, child in listing:
            p = os.path.join(path, name)
            if child.typ == "d":
                if depth < 16:
                    build(child, p, depth + 1)
            elif id(child) in written:
                os.link(written[id(child)], p)
                counts["links"] += 1
            else:
                with open(p, "wb") as f:
                    f.write(content(child))
                os.chmod(p, child.mode & 0o7777)
                written[id(child)] = p
                counts["files"] += 1
        os.chmod(path, inc.mode & 0o7777)

    build(root, a.out, 0)
    desc = "none"
    if torn is not None:
        tinc, _, cut, n = torn
        where = [k for k, v in by_path.items() if v is tinc]
        desc = f"{cut} of {n} bytes of a write to inode {tinc.ino}{' (' + where[0] + ')' if where else ''}"
    durable_w = sum(1 for inc, j in writes if durable(inc, j))
    print(f"durable-image: {counts['files']} files, {counts['dirs']} dirs, {counts['links']} extra links; "
          f"{durable_w} of {len(writes)} writes durable; torn: {desc}"
          + (f"; {unknown} unknown inodes" if unknown else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
