#!/usr/bin/env python3
"""Checks a store after an injected failure, for the reliability tests.

  store-check.py --custos BIN --store DIR --case CASE --batch MANIFEST
                 [--prior FILE] [--acked FILE] [--from N] [--station ST]

MANIFEST lists the files of the interrupted command, in order, one
"path sha256 size" per line; --prior lists the digests stored before it
(each must still be stored); --acked is what the command printed (custos
ingest's "id<TAB>sha256<TAB>name" lines: each is an acknowledgement, so the
file must be stored, under that id, with those bytes). Checked:
  - no digest is stored as two items (nothing secured twice);
  - every file of the batch is either stored once with its size or absent;
  - every acknowledged file is stored, under the id it was given;
  - with --from N: the ledger events from seq N on are exactly one per file
    for the first E files of the batch, in order (ingest for bytes new to
    the store, sighting for bytes stored before), naming the right item.
Prints "E <n>" (the events of the batch) and one "problem: ..." line per
problem; exits 1 if there was any.
"""
import argparse
import json
import subprocess
import sys


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--custos", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--prior")
    ap.add_argument("--acked")
    ap.add_argument("--from", dest="start", type=int)
    ap.add_argument("--station", default=None)
    a = ap.parse_args(argv)
    problems = []

    batch = []
    with open(a.batch) as f:
        for line in f:
            if line.strip():
                path, sha, size = line.split()
                batch.append((path, sha, int(size)))
    prior = set()
    if a.prior:
        with open(a.prior) as f:
            prior = {line.strip() for line in f if line.strip()}

    rc, out, err = run([a.custos, "find", "--store", a.store, "--case", a.case, "--json"])
    if rc != 0:
        print(f"problem: custos find failed ({rc}): {err.strip()[:200]}")
        return 1
    items = json.loads(out)
    by_sha = {}
    for it in items:
        by_sha.setdefault(it["sha256"], []).append(it)
    for sha, its in by_sha.items():
        if len(its) > 1:
            problems.append(f"digest {sha[:16]} is stored as {len(its)} items: {[i['id'] for i in its]}")
    for sha in prior:
        if sha not in by_sha:
            problems.append(f"an item stored before the run ({sha[:16]}) is gone")
    for path, sha, size in batch:
        its = by_sha.get(sha, [])
        if len(its) == 1 and its[0]["size"] != size:
            problems.append(f"{path}: stored with size {its[0]['size']}, the file has {size}")

    if a.acked:
        with open(a.acked, errors="replace") as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) < 3 or len(p[1]) != 64:
                    continue
                its = by_sha.get(p[1], [])
                if not its:
                    problems.append(f"acknowledged {p[2]} ({p[0]}) is not in the store")
                elif its[0]["id"] != p[0]:
                    problems.append(f"acknowledged {p[2]} as {p[0]} but it is stored as {its[0]['id']}")

    e = 0
    if a.start is not None:
        rc, out, err = run([a.custos, "log", "--store", a.store])
        if rc != 0:
            problems.append(f"custos log failed ({rc}): {err.strip()[:200]}")
        else:
            evs = [l.split("\t") for l in out.splitlines()[a.start:]]
            e = len(evs)
            if e > len(batch):
                problems.append(f"{e} new ledger events for {len(batch)} files")
            have = set(prior)
            for i, (path, sha, size) in enumerate(batch[:e]):
                want = "sighting" if sha in have else "ingest"
                have.add(sha)
                ev = evs[i]
                its = by_sha.get(sha, [])
                if ev[2] != want or not its or ev[3] != its[0]["id"]:
                    problems.append(f"ledger event {a.start + i} is '{ev[2]} {ev[3]}', expected {want} of "
                                    f"{its[0]['id'] if its else sha[:16]} for {path}")
            stored = set(have)
            for path, sha, size in batch:
                n = len(by_sha.get(sha, []))
                if sha in stored and n != 1:
                    problems.append(f"{path} should be stored ({e} events) but has {n} items")
                if sha not in stored and n != 0:
                    problems.append(f"{path} should be absent ({e} events) but has {n} items")
    print(f"E {e}")
    for p in problems:
        print(f"problem: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
