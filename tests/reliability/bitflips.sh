#!/bin/bash
# Bit flips: random single-bit flips across the blobs, the ledger journal, the
# signed checkpoints and the catalog (LMDB data.mdb), each on a fresh copy of
# a prepared store, must every one be detected by `custos verify`, naming the
# damaged item (blob: the evidence id; checkpoint: its file) or position (the
# ledger entry). Flips into data.mdb bytes that LMDB never reads (free pages,
# stale page copies, the unused end of each page) change nothing observable;
# they are told apart by comparing `mdb_dump -a` before and after, counted as
# dead-space draws, and the byte is drawn again (see bitflips.py). A few
# flips in data.mdb make LMDB itself crash: verify reads the catalog in a
# child process and must report that as a problem of kind "catalog" (exit 1);
# verify dying by a signal is a miss like any other.
# CI: 200 flips; NIGHTLY=1: 1000. FLIP_SEED=N repeats a run.
#
# Then a rollback: a store replaced by an older copy of itself is internally
# consistent and passes `custos verify`; a signed checkpoint saved outside the
# store exposes it (`custos verify --checkpoint FILE`), and so it does when the
# rolled-back store has gone on to grow a different history.
. "$(dirname "$0")/../integration/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

FLIPS=200
[ "${NIGHTLY:-0}" = 1 ] && FLIPS=1000
# Stores on tmpfs when there is one (fsync is free there); BITFLIP_WORKDIR=DIR.
SW="${BITFLIP_WORKDIR:-}"
if [ -z "$SW" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	SW=$(mktemp -d /dev/shm/custos-flip.XXXXXX) || SW=
	bf_cleanup() {
		local s=$?
		[ "${KEEP:-0}" = 1 ] || rm -rf "$SW"
		(exit $s)
		t_cleanup
	}
	trap bf_cleanup EXIT
fi
[ -n "$SW" ] || SW="$WORK"
T0=$(date +%s)

IN="$WORK/in"
BASE="$SW/base"
mkdir -p "$IN"
head -c 3000 /dev/urandom >"$IN/a.bin"
head -c 70000 /dev/urandom >"$IN/b.bin"
head -c 250000 /dev/urandom >"$IN/c.bin"
head -c 1000 /dev/urandom >"$IN/d.bin"
export CUSTOS_STORE="$BASE"
"$CUSTOS" init --station flip >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" "$IN/b.bin" --case '平司罚〔2020〕1号' --stage 取证 --officer 001 \
		--device DEV-1 --recorded-at 2026-11-28T08:30:00+08:00 >/dev/null &&
	"$CUSTOS" ingest "$IN/c.bin" --case C-2 --officer 002 >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" --case C-3 >/dev/null &&
	"$CUSTOS" ingest "$IN/d.bin" --case C-3 --device DEV-2 >/dev/null
t_ok $? "a prepared store: 4 items, 5 ledger events, 5 checkpoints"
t_run "the prepared store verifies" "$CUSTOS" verify

if ! command -v mdb_dump >/dev/null 2>&1; then
	echo "# mdb_dump (lmdb-utils) is missing: flips into data.mdb cannot be told from dead space"
fi
python3 "$HERE/bitflips.py" --base "$BASE" --work "$SW" --flips "$FLIPS" \
	${FLIP_SEED:+--seed "$FLIP_SEED"} >"$WORK/flips.json" 2>"$WORK/flips.err"
rc=$?
cat "$WORK/flips.err"
t_ok $rc "the flips ran"
python3 - "$WORK/flips.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print('# seed %d: %d flips, %d counted (changed something observable), %d detected and named'
      % (r['seed'], r['flips'], r['counted'], r['detected']))
for c, v in r['per_category'].items():
    print('#   %-10s flips %4d: detected %4d (LMDB crashed in verify\'s child %2d), catalog refused (exit 3) %3d, missed %d; dead-space draws %d'
          % (c, v['flips'], v['detected'], v['lmdb_crash'], v['refused'], v['missed'], v['dead']))
print('#   problem kinds reported: ' + ', '.join('%s %d' % kv for kv in sorted(r['problem_kinds'].items())))
PY
read -r flips counted misses lmdb < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["flips"], r["counted"], r["misses"], r.get("lmdb_crash", 0))' "$WORK/flips.json")
[ "${misses:-1}" = 0 ]
t_ok $? "every counted flip was detected by custos verify and named, verify never died by a signal ($misses missed)"
echo "# LMDB crashed on $lmdb flip(s) in verify's catalog child; each was reported as PROBLEM catalog"
echo "# bitflips: runs $flips, failures $misses"

# ---- the journal's 16-byte header (few random flips land there) ----
H="$SW/hdr"
cp -a "$BASE" "$H"
python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[3]^=0x10; open(p,"wb").write(d)' \
	"$H/ledger/journal"
t_status 1 "journal header: one bit flipped: verify exits 1" "$CUSTOS" verify --store "$H"
t_grep "journal header: ... naming ledger/journal" '^PROBLEM ledger-damaged: ledger/journal does not begin' \
	"$WORK/last.out"

# ---- rollback to an older copy, caught by a checkpoint held elsewhere ----
R="$SW/rb"
OLD="$SW/rb-old"
export CUSTOS_STORE="$R"
"$CUSTOS" init --station rb >/dev/null &&
	"$CUSTOS" ingest "$IN/a.bin" "$IN/b.bin" --case C-1 >/dev/null
t_ok $? "rollback: a store with 2 events"
cp -a "$R" "$OLD"
"$CUSTOS" ingest "$IN/c.bin" "$IN/d.bin" --case C-1 >/dev/null
cp "$R/checkpoints/latest" "$WORK/outside-checkpoint"
[ "$(sed -n 2p "$WORK/outside-checkpoint")" = 4 ]
t_ok $? "rollback: 2 more events; the latest checkpoint (size 4) saved outside the store"
t_run "rollback: the store verifies against the outside checkpoint" \
	"$CUSTOS" verify --checkpoint "$WORK/outside-checkpoint"
rm -rf "$R" && cp -a "$OLD" "$R"
t_run "rollback: the store replaced by its older copy still passes verify on its own" "$CUSTOS" verify
t_status 1 "rollback: verify --checkpoint exits 1" "$CUSTOS" verify --checkpoint "$WORK/outside-checkpoint"
t_grep "rollback: ... saying the store holds 2 of the 4 signed entries" \
	'^PROBLEM ledger-rolled-back: .*outside-checkpoint covers 4 ledger entries but the store holds only 2' \
	"$WORK/last.out"
t_status 1 "rollback: verify --checkpoint --json exits 1" "$CUSTOS" verify --checkpoint "$WORK/outside-checkpoint" --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not any(p["kind"]=="ledger-rolled-back" and p.get("position")==2 for p in j["problems"]))' \
	"$WORK/last.out"
t_ok $? "rollback: verify --json gives ledger-rolled-back at position 2"
# The rolled-back store takes new work (its own checkpoints are consistent)
# and grows a different history of the same length: still caught.
head -c 500 /dev/urandom >"$IN/e.bin"
head -c 600 /dev/urandom >"$IN/f.bin"
"$CUSTOS" ingest "$IN/e.bin" "$IN/f.bin" --case C-9 >/dev/null
t_ok $? "rollback: the rolled-back store accepts 2 new events (4 in all, a forked history)"
t_run "rollback: the forked store passes verify on its own" "$CUSTOS" verify
t_status 1 "rollback: verify --checkpoint on the forked store exits 1" \
	"$CUSTOS" verify --checkpoint "$WORK/outside-checkpoint"
t_grep "rollback: ... the first 4 entries do not hash to the signed root" \
	'^PROBLEM checkpoint-mismatch: the store.s first 4 ledger entries do not hash to the root signed in' \
	"$WORK/last.out"
# A checkpoint from another store is not evidence about this one.
export CUSTOS_STORE="$BASE"
t_status 1 "a checkpoint of another store: verify --checkpoint exits 1" \
	"$CUSTOS" verify --checkpoint "$WORK/outside-checkpoint"
t_grep "... naming it as foreign" '^PROBLEM checkpoint-foreign: .*outside-checkpoint is not a checkpoint signed by this store' \
	"$WORK/last.out"
t_status 2 "a missing --checkpoint file: exit 2" "$CUSTOS" verify --checkpoint "$WORK/no-such-file"

echo "# bitflips: $(($(date +%s) - T0)) s"
t_done
