#!/bin/bash
# Power loss (DESIGN invariants 1-4). A command runs under the csfault
# interposer (fault.c), which journals every change it makes to the store:
# writes with their offsets and bytes, new files and directories, truncations,
# and every fsync that returned, with the directory's entries at that moment.
# The command is ended at a crash point: custos-failpoint's k-th durable step
# (CUSTOS_CRASH_AT=k), or just before its k-th changing system call
# (CSFAULT_CRASH_OP=k, which also lands inside LMDB's commits). Then
# durable-image.py builds the store as a power loss at that moment would leave
# it: only what fsync made durable survives (a file's data up to its last
# fsync, a directory's entries as of its last fsync; a write on an O_DSYNC
# descriptor, such as LMDB's meta page, at once), and the last write not yet
# durable is torn to a random prefix. That applies to LMDB's data.mdb too, so
# this also tests LMDB's durability under the flags custos uses. With
# --mode random (a few seeds), lost writes survive at random instead.
#
# After each simulated power loss:
#   - `custos verify` passes read-only, before any writer has recovered;
#   - a writer (`custos checkpoint`) recovers and signs a checkpoint of the
#     whole ledger; verify passes (every blob matches its digest, the Merkle
#     root recomputed from the journal equals every signed checkpoint, the
#     catalog equals a replay of the ledger);
#   - every file the command acknowledged (printed an id for) is stored under
#     that id with matching bytes; every file is stored once or absent; no
#     digest is stored as two items; the ledger holds exactly one event per
#     file for the first E files, in order; what was stored before is still
#     there; tmp/ is empty and objects/ holds exactly the catalog's blobs
#     (an unacknowledged blob is in orphans/, whole, or gone);
#   - a checkpoint the command printed before the loss is still there;
#   - every source file is untouched;
#   - re-running the ingest completes: every file stored exactly once.
# Scenarios: one small file; a batch (an empty file, a 1.5 MB file written by
# the copy thread with O_DIRECT, a file stored before, a duplicate inside the
# batch); the recovery of a crashed store (an unindexed ledger event; an
# orphan blob), itself losing power at each system call; custos rebuild (once
# it has said it is done, the new catalog must survive; before, the store has
# a usable catalog or none and rebuild runs again); custos init (a store with
# custos.json must be whole).
# CI: every failpoint and every system call for the small file, recovery,
# rebuild and init; for the batch, every failpoint and every 3rd system call,
# and two random seeds at every 12th (CUSTOS_ASAN=1: every 4th failpoint,
# every 9th call, one seed). NIGHTLY=1: every point everywhere, 8 seeds.
# The scratch directory is on a tmpfs when there is one (/dev/shm): the power
# loss is simulated, so real fsyncs only cost time.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOS_FP:?CUSTOS_FP must point at custos-failpoint}"
CASE='平司罚〔2020〕1号'
ST=fp
WORK=$(realpath "$WORK")
S="$WORK/store"
IMG="$WORK/image"
J="$WORK/journal"
MAN="$WORK/manifest"
IN="$WORK/in"
mkdir -p "$IN"
export CUSTOS_STORE="$S"
. "$(dirname "$0")/iolib.sh"
REPORT_EXTRA="$WORK/image.out"

# crash_run BASE KIND K CMD...: runs CMD on a fresh copy of BASE under the
# journal, crashing at point K of KIND (fp: failpoint; op: system call), then
# replaces the store with its power-loss image. Sets RC.
MODE=drop
SEED=0
crash_run() {
	local base=$1 kind=$2 k=$3 var
	shift 3
	rm -rf "$S" "$IMG" "$J" "$J.data"
	[ -z "$base" ] || cp -a "$base" "$S"
	if [ -d "$S" ]; then find "$S" -printf '%i\t%y\t%m\t%P\n' >"$MAN"; else : >"$MAN"; fi
	if [ "$kind" = fp ]; then var=CUSTOS_CRASH_AT; else var=CSFAULT_CRASH_OP; fi
	env "$var=$k" CSFAULT_ROOT="$S" CSFAULT_JOURNAL="$J" CSFAULT_LINEBUF=1 LD_PRELOAD="$CSFAULT" \
		"$@" >"$WORK/acked" 2>"$WORK/crash.err"
	RC=$?
	py image --manifest "$MAN" --base "${base:-/nonexistent}" --journal "$J" \
		--live "$S" --out "$IMG" --mode "$MODE" --seed "$SEED"
	printf '%s' "$PY_OUT" >"$WORK/image.out"
	if [ "$PY_RC" -ne 0 ]; then
		fail "durable-image failed: $(tail -3 "$WORK/image.out" | tr '\n' ' ')"
		return
	fi
	rm -rf "$S"
	[ ! -d "$IMG" ] || mv "$IMG" "$S"
}

# check_image: every check after a power loss during an ingest of $FILES on
# a copy of the template. Sets E_RO, E_REC.
check_image() {
	local note size
	run_verify "read-only verify before recovery"
	store_check "before recovery" "$L_T" "$TPL_PRESENT" "$WORK/acked"
	E_RO=$E
	recover "$(ledger_size)"
	run_verify "verify after recovery"
	store_consistent "after recovery"
	store_check "after recovery" "$L_T" "$TPL_PRESENT" "$WORK/acked"
	E_REC=$E
	# A checkpoint the crashed command printed must have survived.
	if grep -q '^— ' "$WORK/acked"; then
		size=$(sed -n 2p "$WORK/acked")
		if ! python3 "$CUSTOS_SRC/tests/cpj.py" has "$S/checkpoints/journal" "$size" "$WORK/acked"; then
			fail "the checkpoint of size $size the command printed did not survive"
		fi
	fi
	sources_intact "after recovery"
	rerun_stores_all "$L_REC"
	store_consistent "after the re-run"
}

# count_points BASE CMD...: FP = failpoints, OPS = changing system calls of one uncrashed run.
count_points() {
	local base=$1
	shift
	rm -rf "$S" "$J" "$J.data"
	[ -z "$base" ] || cp -a "$base" "$S"
	env CUSTOS_CRASH_TRACE=1 CSFAULT_ROOT="$S" CSFAULT_JOURNAL="$J" LD_PRELOAD="$CSFAULT" \
		"$@" >/dev/null 2>"$WORK/trace.err"
	FP=$(grep -c '^failpoint ' "$WORK/trace.err")
	OPS=$(grep -c '^# ' "$J")
	rm -f "$J" "$J.data"
}

NIGHTLY=${NIGHTLY:-0}
if [ "$NIGHTLY" = 1 ]; then
	FP_STRIDE=1 OP_STRIDE=1 SEEDS=8
elif [ "${CUSTOS_ASAN:-0}" = 1 ]; then
	FP_STRIDE=4 OP_STRIDE=9 SEEDS=1
else
	FP_STRIDE=1 OP_STRIDE=3 SEEDS=2
fi
# points N STRIDE: 1..N+1 by STRIDE, always with the last three and N+1 (no
# crash); CRASH_POINTS_ALL=1: every one.
points() { crash_points $(($1 + 1)) 1 "$2" 4; }

# crash_ingest NAME BASE KIND STRIDE: power loss at every STRIDE-th point of KIND.
crash_ingest() {
	local name=$1 base=$2 kind=$3 stride=$4 k want total t0
	t0=$(now_ms)
	count_points "$base" "$CUSTOS_FP" ingest "${FILES[@]}" --case "$CASE"
	if [ "$kind" = fp ]; then total=$FP; else total=$OPS; fi
	for k in $(points "$total" "$stride"); do
		crash_run "$base" "$kind" "$k" "$CUSTOS_FP" ingest "${FILES[@]}" --case "$CASE"
		want=99
		[ "$k" -le "$total" ] || want=0
		[ "$RC" -eq "$want" ] || fail "the command exited $RC, expected $want: $(head -2 "$WORK/crash.err" | tr '\n' ' ')"
		check_image
		report "$name ($MODE$([ "$MODE" = random ] && echo " seed $SEED")): power loss at $kind $k/$total: $(grep -c . "$WORK/acked") acknowledged; $E_RO of $N events before recovery, $E_REC after"
	done
	echo "# $name: $kind crash points of $total, every ${stride}th, in $(($(now_ms) - t0)) ms"
}

t_start=$(now_ms)

# ---- the template: a store with two items and a checkpoint ----
make_template "$ST"

# ---- one small file ----
head -c 3000 /dev/urandom >"$IN/small"
set_batch small "$IN/small"
crash_ingest small "$TPL" fp 1
crash_ingest small "$TPL" op 1

# ---- a batch ----
mkdir -p "$IN/batch"
: >"$IN/batch/f01"
head -c 1500000 /dev/urandom >"$IN/batch/f02"
for i in 03 04 05 06 07; do head -c $((RANDOM % 4000 + 1)) /dev/urandom >"$IN/batch/f$i"; done
cp "$IN/prior1" "$IN/batch/f08"    # stored before: a sighting
cp "$IN/batch/f04" "$IN/batch/f09" # a duplicate inside the batch
set_batch batch "$IN"/batch/f*
crash_ingest batch "$TPL" fp "$FP_STRIDE"
crash_ingest batch "$TPL" op "$OP_STRIDE"

# ---- lost writes surviving at random ----
MODE=random
for ((SEED = 1; SEED <= SEEDS; SEED++)); do
	crash_ingest batch "$TPL" op $((OP_STRIDE * 4))
done
MODE=drop
SEED=0

# ---- power loss while recovering a crashed store ----
# Bases: an ingest of the small file lost power after its ledger entry was
# durable but before the catalog's commit (an unindexed event), and after its
# blob was linked and its directory fsynced, before its ledger entry (an
# orphan blob). The writer that recovers such a store
# (custos checkpoint) then loses power at each of its system calls.
set_batch small "$IN/small"
count_points "$TPL" "$CUSTOS_FP" ingest "$IN/small" --case "$CASE"
k_commit=$(grep '^failpoint ' "$WORK/trace.err" | awk '$3 == "lmdb-commit" {print $2; exit}')
k_linked=$(grep '^failpoint ' "$WORK/trace.err" | awk '$3 == "ledger-write" {print $2; exit}')
for st in unindexed:$k_commit orphan:$k_linked; do
	base="$WORK/base-${st%%:*}"
	crash_run "$TPL" fp "${st#*:}" "$CUSTOS_FP" ingest "$IN/small" --case "$CASE"
	rm -rf "$base"
	cp -a "$S" "$base"
	h=$(digest "$IN/small")
	if [ "${st%%:*}" = unindexed ]; then
		[ "$(stat -c %s "$base/ledger/journal")" -gt "$(stat -c %s "$TPL/ledger/journal")" ]
	else
		[ -f "$base/objects/sha256/${h:0:2}/${h:2:2}/$h" ]
	fi
	[ $? -eq 0 ] || fail "the base does not hold what it should"
	report "recovery base '${st%%:*}': power lost at failpoint ${st#*:} of the small file's ingest leaves $([ "${st%%:*}" = unindexed ] && echo "a durable, unindexed ledger entry" || echo "a linked blob without an event")"
	count_points "$base" "$CUSTOS_FP" checkpoint
	for k in $(points "$OPS" 1); do
		crash_run "$base" op "$k" "$CUSTOS_FP" checkpoint
		check_image
		base_recovered "${st%%:*}"
		report "recovery of '${st%%:*}': power loss at op $k/$OPS: $E_REC event(s) after recovery; re-run completes"
	done
done

# ---- custos rebuild ----
# The catalog is made again from the ledger: a power loss at any moment
# leaves either a usable catalog or none (then rebuild runs again); once
# rebuild has said it is done, the catalog must survive.
set_batch small "$IN/small"
RB="$WORK/base-rebuild"
rm -rf "$RB"
cp -a "$TPL" "$RB"
CUSTOS_STORE="$RB" "$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null
L_RB=$(CUSTOS_STORE="$RB" ledger_size)
CUSTOS_STORE="$RB" catalog_digests >"$WORK/rebuild.present"
count_points "$RB" "$CUSTOS_FP" rebuild
for k in $(points "$OPS" 1); do
	crash_run "$RB" op "$k" "$CUSTOS_FP" rebuild
	if "$CUSTOS" verify >"$WORK/verify.out" 2>&1; then
		outcome="the catalog is usable"
	elif [ "$RC" -eq 0 ]; then
		fail "rebuild said it was done, but after the power loss: $(head -2 "$WORK/verify.out" | tr '\n' ' ')"
		outcome="the finished rebuild was lost"
	elif grep -q 'custos rebuild' "$WORK/verify.out"; then
		outcome="no catalog; rebuild again"
		"$CUSTOS" rebuild >/dev/null 2>"$WORK/rebuild.err" ||
			fail "rebuild again failed: $(head -2 "$WORK/rebuild.err" | tr '\n' ' ')"
		run_verify "verify after rebuilding again"
	else
		fail "after the power loss: $(head -2 "$WORK/verify.out" | tr '\n' ' ')"
		outcome="broken"
	fi
	[ "$(ledger_size)" -eq "$L_RB" ] || fail "the ledger has $(ledger_size) events, it had $L_RB"
	diff -q <(catalog_digests) "$WORK/rebuild.present" >/dev/null || fail "the catalog does not list the stored items"
	"$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null 2>"$WORK/ingest.err" ||
		fail "ingest after the rebuild failed: $(head -2 "$WORK/ingest.err" | tr '\n' ' ')"
	run_verify "verify after an ingest"
	report "rebuild: power loss at op $k/$OPS (exit $RC): $outcome"
done

# ---- custos init ----
count_points "" "$CUSTOS_FP" init --station "$ST"
complete=0 partial=0
for k in $(points "$OPS" 1); do
	crash_run "" op "$k" "$CUSTOS_FP" init --station "$ST"
	if [ -f "$S/custos.json" ]; then
		complete=$((complete + 1))
		outcome="store complete"
		run_verify "verify of the new store"
		"$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null 2>"$WORK/ingest.err" ||
			fail "ingest into the new store failed: $(head -2 "$WORK/ingest.err" | tr '\n' ' ')"
		run_verify "verify after the first ingest"
	else
		partial=$((partial + 1))
		outcome="incomplete"
		"$CUSTOS" verify >/dev/null 2>&1
		rc=$?
		[ $rc -eq 3 ] || fail "verify of a half-made store exited $rc, expected 3"
		rm -rf "$S"
		"$CUSTOS" init --station "$ST" >/dev/null 2>&1 || fail "init after removing the half-made store failed"
	fi
	report "init: power loss at op $k/$OPS: $outcome"
done
echo "# init: $complete power losses left a complete store, $partial a half-made one"

echo "# power-loss: runs $RUNS, failures $FAILURES ($(($(now_ms) - t_start)) ms)"
t_done
