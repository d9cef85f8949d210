#!/bin/bash
# Crash safety under SIGKILL (DESIGN invariants 1, 2 and 4): `custos ingest`
# of a mixed batch (an empty file, small and medium files, one of 16 MB so that
# kills land mid-copy, and a duplicate inside the batch) is killed with
# SIGKILL at a random moment between its start and the time a whole ingest
# takes (measured first). After every kill:
#   - what the killed run acknowledged on stdout is in the catalog;
#   - `custos verify` passes, both read-only (before any writer recovers) and
#     after a writer (`custos checkpoint`) has recovered;
#   - every file of the batch is fully ingested (one item, right size) or
#     absent; the ledger holds exactly one event for each of the first E files
#     of the batch, in order (ingest, or sighting for bytes already stored),
#     and nothing else; items stored before the run are all still there;
#   - after recovery (in every other run the recovering writer is itself
#     killed first, at a random moment of its short run) no blob is left in
#     tmp/, every blob in objects/ has its record and every record its blob,
#     and orphans/ holds only whole blobs;
#   - re-running the batch completes it: every file found once, one event per
#     file, verify passes.
# Most runs continue one store so that state accumulates; every sixth run
# starts a fresh store.
# CRASH_RUNS (default 30) is the number of kills that must land mid-run;
# CRASH_SEED repeats the random choices (timing still varies).
. "$(dirname "$0")/lib.sh"

RUNS=${CRASH_RUNS:-30}
SEED=${CRASH_SEED:-$(($(date +%s) % 32768))}
RANDOM=$SEED
CASE='平司罚〔2020〕1号'
ST=kill
BIG=$((16 << 20))
echo "# seed $SEED (CRASH_SEED=$SEED repeats the random choices)"

# Line-buffered stdout for the killed ingest, so what it acknowledged is seen
# even though it never exits normally. ASan must accept the preloaded library.
STDBUF=()
if command -v stdbuf >/dev/null 2>&1; then
	STDBUF=(stdbuf -oL)
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"; }
digest() { sha256sum "$1" | cut -c1-64; }
blob_digests() { find "$CUSTOS_STORE/objects/sha256" -type f -printf '%f\n' | sort; }

new_store() {
	rm -rf "$CUSTOS_STORE"
	export CUSTOS_STORE="$WORK/store-$1"
	"$CUSTOS" init --station "$ST" >/dev/null || { echo "Bail out! init failed"; exit 1; }
	: >"$WORK/present"
}

# make_batch DIR FRESH_BIG: writes the batch files into DIR and their
# "name sha256 size" lines, in ingest order, into DIR.manifest.
make_batch() {
	local dir=$1 i f
	rm -rf "$dir"
	mkdir -p "$dir"
	: >"$dir/b01"
	for i in 02 03 04 05 06 07 08 09 14 15 16 17 18 19; do
		head -c $((RANDOM * 2 + 1)) /dev/urandom >"$dir/b$i"
	done
	for i in 11 12 13; do
		head -c $((262144 + RANDOM * 40)) /dev/urandom >"$dir/b$i"
	done
	if [ "$2" = 1 ] || [ ! -f "$WORK/big.last" ]; then
		head -c $BIG /dev/urandom >"$WORK/big.last"
	fi
	cp "$WORK/big.last" "$dir/b10" # same bytes as before unless fresh: a sighting
	cp "$dir/b05" "$dir/b20"       # a duplicate inside the batch
	FILES=()
	: >"$dir.manifest"
	for i in $(seq -w 1 20); do
		f="$dir/b$i"
		FILES+=("$f")
		echo "$f $(digest "$f") $(stat -c %s "$f")" >>"$dir.manifest"
	done
}

ERRS=()
fail() { ERRS+=("$*"); }

# state: reads the ledger once (LOG: "event<TAB>id" per event; L: their
# number) and every item of the case once (CNT[sha256]: items with those
# bytes; SIZE[sha256]; the digests, sorted, in $WORK/catalog).
declare -A CNT SIZE
declare -a LOG
state() {
	local sha size
	mapfile -t LOG < <("$CUSTOS" log | cut -f3,4)
	L=${#LOG[@]}
	CNT=() SIZE=()
	while read -r sha size; do
		CNT[$sha]=$((${CNT[$sha]:-0} + 1))
		SIZE[$sha]=$size
	done < <("$CUSTOS" find --case "$CASE" --json |
		sed -n 's/^ *"sha256": "\([0-9a-f]*\)".*/\1/p; s/^ *"size": \([0-9]*\).*/\1/p' | paste - -)
	printf '%s\n' "${!CNT[@]}" | sed '/^$/d' | sort >"$WORK/catalog"
}
# file_state SHA SIZE (after state): sets FS to "ok" (one item of that
# size), "absent", or a complaint. (No subshell: it runs for every file.)
file_state() {
	local n=${CNT[$1]:-0}
	if [ "$n" -eq 0 ]; then
		FS=absent
	elif [ "$n" -ne 1 ]; then
		FS="$n items"
	elif [ "${SIZE[$1]}" != "$2" ]; then
		FS="one item of size ${SIZE[$1]}, file has $2"
	else
		FS=ok
	fi
}
# by_sha SHA SIZE: the digest index agrees: `find --sha256` gives one item of that size.
by_sha() {
	local out
	out=$("$CUSTOS" find --sha256 "$1" 2>/dev/null)
	[ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] && [ "$(printf '%s\n' "$out" | cut -f5)" = "$2" ]
}

# check_prefix WHEN FROM PRESENT_FILE: the ledger events from seq FROM on must
# be exactly one per batch file for the first E files, in order (ingest, or
# sighting for bytes already stored), and each batch file must be stored iff
# its bytes were stored before (PRESENT_FILE) or are among those first E
# files. Sets E. With BYSHA=1 also asks the digest index for every file.
check_prefix() {
	local when=$1 from=$2 present=$3 i=0 name sha size ev want
	local -A have=()
	local -a evs=()
	while read -r sha; do have[$sha]=1; done <"$present"
	evs=("${LOG[@]:$from}")
	E=${#evs[@]}
	if [ "$E" -gt 20 ]; then
		fail "$when: $E new ledger events for a batch of 20 files"
	fi
	while read -r name sha size; do
		if [ $i -lt "$E" ]; then
			if [ -n "${have[$sha]:-}" ]; then want="sighting"; else want="ingest"; fi
			want="$want	$ST-${sha:0:20}"
			ev=${evs[$i]}
			[ "$ev" = "$want" ] || fail "$when: ledger event $((from + i)) is '$ev', expected '$want' for ${name##*/}"
			have[$sha]=1
		fi
		i=$((i + 1))
	done <"$BATCH.manifest"
	while read -r name sha size; do
		file_state "$sha" "$size"
		if [ -n "${have[$sha]:-}" ]; then
			[ "$FS" = ok ] || fail "$when: ${name##*/} should be stored ($E events): $FS"
			if [ "${BYSHA:-0}" = 1 ] && ! by_sha "$sha" "$size"; then
				fail "$when: find --sha256 does not give one item of $size bytes for ${name##*/}"
			fi
		else
			[ "$FS" = absent ] || fail "$when: ${name##*/} should be absent ($E events): $FS"
		fi
	done <"$BATCH.manifest"
}

# store_consistent WHEN (after state): after a writer ran: tmp/ empty, objects/ == catalog,
# orphans/ holds only whole blobs named by their digest.
store_consistent() {
	local when=$1 left f diff
	left=$(ls -A "$CUSTOS_STORE/tmp")
	[ -z "$left" ] || fail "$when: tmp/ not empty: $(echo $left)"
	diff=$(diff "$WORK/catalog" <(blob_digests) | grep '^[<>]')
	[ -z "$diff" ] || fail "$when: catalog and objects/ differ (< record without blob, > blob without record): $(echo $diff | head -c 300)"
	if [ -d "$CUSTOS_STORE/orphans" ]; then
		for f in "$CUSTOS_STORE"/orphans/*; do
			[ -e "$f" ] || continue
			[ "$(digest "$f")" = "${f##*/}" ] || fail "$when: orphans/${f##*/} does not hold the bytes its name says"
		done
	fi
}

run_verify() {
	"$CUSTOS" verify >"$WORK/verify.out" 2>&1 ||
		fail "$1: custos verify failed: $(head -3 "$WORK/verify.out" | tr '\n' ' ')"
}

# ---- calibration: how long does an uncrashed ingest of a batch take? ----
new_store calib
T=0
for i in 1 2; do
	BATCH="$WORK/batch"
	make_batch "$BATCH" 1
	t0=$(now_ms)
	"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >/dev/null 2>"$WORK/calib.err"
	rc=$?
	t=$(($(now_ms) - t0))
	[ $t -gt $T ] && T=$t
	t_ok $rc "calibration ingest $i of a 20-file batch ($(du -sh "$BATCH" | cut -f1)) took ${t} ms"
done
[ $T -lt 20 ] && T=20
echo "# kills land between 0 and $T ms after the start"

# ---- the kills ----
kills=0 attempts=0 finished=0 fresh=0 failures=0 rec_kills=0
stats_orphans=0 stats_recovered=0 stats_torn=0 stats_tmp=0
t_start=$(now_ms)
while [ $kills -lt "$RUNS" ] && [ $attempts -lt $((RUNS * 3)) ]; do
	attempts=$((attempts + 1))
	ERRS=()
	if [ $((attempts % 6)) -eq 1 ]; then
		fresh=$((fresh + 1))
		new_store "$attempts"
		kind="fresh store"
		fresh_big=1
	else
		kind="continuing store"
		fresh_big=$((RANDOM % 3 == 0))
	fi
	BATCH="$WORK/batch"
	make_batch "$BATCH" $fresh_big
	n=${#FILES[@]}
	state
	L0=$L
	cp "$WORK/catalog" "$WORK/present"

	delay=$((RANDOM % (T + 1)))
	"${STDBUF[@]}" "$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/ack" 2>"$WORK/kill.err" &
	pid=$!
	sleep_ms $delay
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null # (no "Killed" job notice)
	rc=$?
	if [ $rc -eq 137 ]; then
		kills=$((kills + 1))
		what="killed after ${delay} ms"
	elif [ $rc -eq 0 ]; then
		finished=$((finished + 1))
		what="finished before the kill at ${delay} ms"
	else
		what="exited $rc before the kill at ${delay} ms"
		fail "ingest exited $rc: $(head -3 "$WORK/kill.err" | tr '\n' ' ')"
	fi

	# 1. What was acknowledged is durable, even before any recovery.
	state
	L_ro=$L
	while IFS=$'\t' read -r id sha file rest; do
		[ -n "$sha" ] || continue
		file_state "$sha" "$(stat -c %s "$file")"
		[ "$FS" = ok ] || fail "acknowledged ${file##*/} ($id) is not in the catalog: $FS"
	done <"$WORK/ack"
	acked=$(grep -c . "$WORK/ack")

	# 2. Read-only checks, before any writer has recovered the store.
	run_verify "read-only verify after the kill"
	check_prefix "before recovery" "$L0" "$WORK/present"

	# 3. The first writer recovers (every other run, one is killed while it
	# recovers, first); then everything must be tidy.
	if [ $((attempts % 2)) -eq 0 ]; then
		"$CUSTOS" checkpoint >/dev/null 2>&1 &
		pid=$!
		sleep_ms $((RANDOM % 8))
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		[ $? -eq 137 ] && rec_kills=$((rec_kills + 1))
	fi
	if ! "$CUSTOS" checkpoint >"$WORK/cp.out" 2>"$WORK/recover.err"; then
		fail "custos checkpoint (recovery) failed: $(head -3 "$WORK/recover.err" | tr '\n' ' ')"
	fi
	stats_orphans=$((stats_orphans + $(grep -c 'moved to orphans' "$WORK/recover.err")))
	stats_recovered=$((stats_recovered + $(grep -c 'recovered .* ledger event' "$WORK/recover.err")))
	stats_torn=$((stats_torn + $(grep -c 'torn ledger tail' "$WORK/recover.err")))
	stats_tmp=$((stats_tmp + $(grep -c 'stale temp file' "$WORK/recover.err")))
	state
	L_rec=$L
	[ $((L_rec - L_ro)) -ge 0 ] && [ $((L_rec - L_ro)) -le 1 ] ||
		fail "recovery changed the ledger from $L_ro to $L_rec events (at most one unindexed event can exist)"
	[ "$(sed -n 2p "$WORK/cp.out")" = "$L_rec" ] ||
		fail "the checkpoint covers $(sed -n 2p "$WORK/cp.out") events, the ledger has $L_rec"
	run_verify "verify after recovery"
	store_consistent "after recovery"
	BYSHA=1 check_prefix "after recovery" "$L0" "$WORK/present"
	lost=$(comm -23 "$WORK/present" "$WORK/catalog")
	[ -z "$lost" ] || fail "items stored before the run are gone: $(echo $lost)"

	# 4. Re-running the batch completes it: one event per file.
	cp "$WORK/catalog" "$WORK/present.rec"
	if ! "$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/rerun.out" 2>"$WORK/rerun.err"; then
		fail "re-running the batch failed: $(head -3 "$WORK/rerun.err" | tr '\n' ' ')"
	fi
	[ "$(grep -c . "$WORK/rerun.out")" -eq "$n" ] || fail "the re-run acknowledged $(grep -c . "$WORK/rerun.out") of $n files"
	state
	[ "$L" -eq $((L_rec + n)) ] || fail "after the re-run the ledger has $L events, expected $L_rec + $n"
	check_prefix "after the re-run" "$L_rec" "$WORK/present.rec"
	[ "$E" -eq "$n" ] || fail "the re-run left $E events for $n files"
	run_verify "verify after the re-run"
	store_consistent "after the re-run"

	if [ ${#ERRS[@]} -eq 0 ]; then
		t_ok 0 "run $attempts ($kind): $what; $acked acknowledged, $((L_rec - L0)) of $n events survived, store consistent, re-run completed"
	else
		failures=$((failures + 1))
		t_ok 1 "run $attempts ($kind): $what"
		for e in "${ERRS[@]}"; do echo "#   $e"; done
		if [ "${KEEP:-0}" = 1 ]; then
			cp -a "$CUSTOS_STORE" "$WORK/failed-store-$attempts"
		fi
	fi
done
elapsed=$(($(now_ms) - t_start))

t_ok $((kills < RUNS)) "at least $RUNS kills landed mid-run ($kills in $attempts runs; $finished finished first)"
# Leftover temp files outside tmp/ (from cs__write_file_new interrupted before
# its unlink) are harmless, but are listed so they are not forgotten.
stray=$(find "$CUSTOS_STORE" -name '.*.tmp-*' | sed "s|$CUSTOS_STORE/||")
[ -z "$stray" ] || echo "# note: stray temp files outside tmp/: $(echo $stray)"
echo "# recovery: $rec_kills recovering writers killed; $stats_recovered ledger events indexed, $stats_torn torn tails cut, $stats_orphans orphan blobs moved, $stats_tmp stale temp files removed"
echo "# crash-kill: $attempts runs, $failures failures ($kills killed mid-run, $finished finished before the kill; $fresh on fresh stores; ${elapsed} ms)"
t_done
