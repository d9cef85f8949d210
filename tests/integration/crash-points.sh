#!/bin/bash
# Crash points (DESIGN invariants 1, 2 and 4): custos-failpoint ends itself
# with _exit(99) at its k-th durable step (CUSTOS_CRASH_AT=k). Each scenario
# is traced once (CUSTOS_CRASH_TRACE=1) to count its K steps, then crashed at
# every k in 1..K (and K+1, which must complete with exit 0), each time on a
# fresh copy of a prepared store. After each crash:
#   - `custos verify` passes read-only, before any writer has recovered;
#   - every file is fully present (one item, right size) or absent, and the
#     ledger holds exactly one event for each of the first E files, in order
#     (ingest, or sighting for bytes already stored), and nothing else;
#   - a writer (`custos checkpoint`) recovers: it indexes at most the one
#     event left unindexed, signs a checkpoint of the whole ledger, leaves
#     tmp/ empty and no blob in objects/ without its record (orphans/ holds
#     only whole blobs), and verify passes;
#   - re-running the same ingest completes it: every file present exactly
#     once, exactly one new event per file, `custos log --json` as long as
#     the ledger, verify passes.
# Scenarios: one small file, one 20 MB file, a batch of 50 small files (an
# empty one, a copy of an item stored before and a duplicate inside the
# batch), crashes during the recovery of a crashed store (an unindexed ledger
# event; an orphan blob), a torn last ledger entry, and `custos init` itself
# (a temp copy of the signing key that a crash leaves in keys/ must be gone
# after the next open of the half-made store, and after init run again).
# The batch has about 450 crash points: every k up to 200 is tried, then every
# 7th and the last ten, to keep the run short (under the sanitizers,
# CUSTOS_ASAN=1: every k up to 60, then every 15th); CRASH_POINTS_ALL=1 tries
# them all. The trace itself is also checked for the order of the steps, and
# so are the system calls of the same ingest (csfault's trace).
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_FP:?CUSTOS_FP must point at custos-failpoint}"
: "${CSFAULT:?CSFAULT must point at the csfault interposer}"
need_python3
asan_allow_preload

CASE='平司罚〔2020〕1号'
ST=fp
S="$CUSTOS_STORE" # the store each crash runs on (a fresh copy every time)
IN="$WORK/in"
mkdir -p "$IN"

log_json_count() { "$CUSTOS" log --json 2>/dev/null | grep -c '^    "event": "'; }

STRAY=0
# check_store: every check after a crash (or a simulated torn write) of an
# ingest of $FILES on a copy of the template: read-only, recovery, re-run.
# Sets E_RO and E_REC (events of the batch before and after recovery). For
# small batches it also asks the digest index for every file.
check_store() {
	local BYSHA=$((N <= 5))
	run_verify "read-only verify"
	state
	check_prefix "before recovery" "$L_T" "$TPL_PRESENT"
	E_RO=$E
	recover "$L"
	state
	run_verify "verify after recovery"
	store_consistent "after recovery" "$WORK/catalog"
	check_prefix "after recovery" "$L_T" "$TPL_PRESENT"
	E_REC=$E
	rerun_batch "$L_REC"
	[ "$(log_json_count)" -eq "$L" ] || fail "custos log --json does not list the ledger's $L events"
	[ -z "$(find "$S" -name '.*.tmp-*' | head -1)" ] || STRAY=$((STRAY + 1))
}

# trace NAME BASE CMD...: runs CMD once on a copy of BASE with the trace on;
# sets K and PNAME[1..K].
declare -a PNAME
trace() {
	local name=$1 base=$2 n p
	shift 2
	rm -rf "$S"
	[ -z "$base" ] || cp -a "$base" "$S"
	CUSTOS_CRASH_TRACE=1 "$@" >/dev/null 2>"$WORK/trace.err"
	t_ok $? "$name: an uncrashed run under the trace succeeds"
	PNAME=()
	while read -r _ n p; do PNAME[$n]=$p; done < <(grep '^failpoint [0-9]* ' "$WORK/trace.err")
	K=${#PNAME[@]}
	[ "$K" -gt 0 ]
	t_ok $? "$name: $K crash points traced ($(grep '^failpoint' "$WORK/trace.err" | cut -d' ' -f3 | sort | uniq -c | awk '{printf "%s%s x%s", s, $2, $1; s=", "}'))"
}

# The k to try: all up to DENSE, then every STRIDE-th and the last ten.
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then DENSE=60 STRIDE=15; else DENSE=120 STRIDE=9; fi

# trace_order NAME: checks the order of the durable steps in the trace of an
# ingest of $FILES on the template (DESIGN invariant 1 and store.c's rule):
# for each file stored anew, its blob is fsynced, then linked, then its
# directory fsynced, before its ledger entry is written; for every file the
# ledger entry is fsynced before the catalog commits it.
trace_order() {
	local sha name size
	local -A have=()
	local types=""
	while read -r sha; do have[$sha]=1; done <"$TPL_PRESENT"
	while read -r name sha size; do
		if [ -n "${have[$sha]:-}" ]; then types="$types sighting"; else types="$types ingest"; fi
		have[$sha]=1
	done <"$BATCH"
	grep '^failpoint ' "$WORK/trace.err" | awk -v types="$types" '
		function reset() { fs = 0; linked = 0; dsync = 0; lw = 0; lf = 0 }
		function err(m) { printf "file %d (step %d): %s\n", i, $2, m; bad = 1 }
		BEGIN { n = split(types, T, " "); i = 1; reset() }
		$3 == "blob-fsync" { fs = 1 }
		$3 == "blob-link" { if (!fs) err("linked before its fsync"); linked = 1 }
		$3 == "fsync-dir" && linked { dsync = 1 }
		$3 == "ledger-write" {
			if (T[i] == "ingest" && !(linked && dsync))
				err("ledger entry written before the blob was linked and its directory fsynced")
			lw = 1
		}
		$3 == "ledger-fsync" { if (!lw) err("ledger fsync without a write"); lf = 1 }
		$3 == "lmdb-commit" { if (!lf) err("catalog commit before the ledger fsync"); i++; reset() }
		END {
			if (i - 1 != n) { printf "%d catalog commits for %d files\n", i - 1, n; bad = 1 }
			exit bad
		}' >"$WORK/order.out"
	t_ok $? "$1: trace order: each new blob fsynced, linked and its directory fsynced before its ledger entry; each ledger entry fsynced before its catalog commit"
	sed 's/^/#   /' "$WORK/order.out" | head -5
}

# syscall_order NAME BASE: the same order, in the system calls themselves:
# the failpoint labels sit before the calls, so a call removed under its label
# (the blob's fsync, say) passes trace_order. `custos ingest $FILES` runs on a
# copy of BASE under the csfault interposer (tests/reliability/fault.c), whose
# trace lists every write, fsync, fdatasync, link and mkdir under the store
# with its path and inode once it returned; syscall-order.py checks, per file:
# blob written, blob fsynced, linked, its directory fsynced, journal written,
# journal synced, catalog written and committed.
syscall_order() {
	local name=$1 base=$2
	rm -rf "$S" "$WORK/sys.trace"
	cp -a "$base" "$S"
	LD_PRELOAD="$CSFAULT" CSFAULT_ROOT="$(realpath "$S")" CSFAULT_TRACE="$WORK/sys.trace" \
		"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >/dev/null 2>"$WORK/sys.err"
	t_ok $? "$name: the ingest succeeds under the system call trace"
	python3 "$CUSTOS_SRC/tests/reliability/syscall-order.py" "$WORK/sys.trace" "$BATCH" \
		"$TPL_PRESENT" >"$WORK/sysorder.out" 2>&1
	t_ok $? "$name: system calls in order: each new blob written, fsynced, linked, its directory fsynced; then the journal written and synced; then the catalog committed ($(grep -c . "$WORK/sys.trace") calls traced)"
	sed 's/^/#   /' "$WORK/sysorder.out" | head -5
}

# crash_ingest NAME BASE: crashes `custos ingest $FILES` on copies of BASE at
# each point and checks the store.
crash_ingest() {
	local name=$1 base=$2 k rc want what tried=0 t0
	t0=$(now_ms)
	trace "$name" "$base" "$CUSTOS_FP" ingest "${FILES[@]}" --case "$CASE"
	trace_order "$name"
	syscall_order "$name" "$base"
	for k in $(crash_points $((K + 1)) $DENSE $STRIDE 11); do
		rm -rf "$S"
		cp -a "$base" "$S"
		CUSTOS_CRASH_AT=$k "$CUSTOS_FP" ingest "${FILES[@]}" --case "$CASE" >/dev/null 2>"$WORK/crash.err"
		rc=$?
		want=99
		[ "$k" -le "$K" ] || want=0
		[ $rc -eq $want ] || fail "custos-failpoint exited $rc, expected $want: $(head -2 "$WORK/crash.err" | tr '\n' ' ')"
		check_store
		tried=$((tried + 1))
		what="${PNAME[$k]:-none: completes}"
		report "$name: crash at $k/$K ($what): $E_RO of $N events before recovery, $E_REC after; re-run completes"
	done
	echo "# $name: $tried of $((K + 1)) crash points tried in $(($(now_ms) - t0)) ms"
}

# ---- the template: a store with two items and a checkpoint ----
make_template "$ST"
t_start=$(now_ms)

# ---- one small file ----
head -c 3000 /dev/urandom >"$IN/small"
set_batch small "$IN/small"
crash_ingest small "$TPL"

# ---- one large file (20 blob-write steps of 1 MiB) ----
head -c $((20 << 20)) /dev/urandom >"$IN/large"
set_batch large "$IN/large"
crash_ingest large "$TPL"

# ---- a batch of 50 ----
mkdir -p "$IN/batch"
: >"$IN/batch/f01"
for i in $(seq -w 2 50); do
	head -c $((RANDOM % 4000 + 1)) /dev/urandom >"$IN/batch/f$i"
done
cp "$IN/prior1" "$IN/batch/f10" # stored before: a sighting
cp "$IN/batch/f05" "$IN/batch/f30" # a duplicate inside the batch
set_batch batch "$IN"/batch/f*
crash_ingest batch "$TPL"

# ---- crashes during recovery ----
# Base states: the small file's ingest crashed just before its catalog commit
# (its ledger event is durable but unindexed), and just after its blob was
# linked (an orphan blob without a ledger event). Then the recovering writer
# (`custos checkpoint`) is itself crashed at each of its points.
set_batch small "$IN/small"
trace small-again "$TPL" "$CUSTOS_FP" ingest "$IN/small" --case "$CASE"
k_commit=0 k_linked=0
for ((k = 1; k <= K; k++)); do
	[ "${PNAME[$k]}" = lmdb-commit ] && [ $k_commit = 0 ] && k_commit=$k
	[ "${PNAME[$k]}" = blob-link ] && [ $k_linked = 0 ] && k_linked=$((k + 1))
done
for st in unindexed:$k_commit orphan:$k_linked; do
	base="$WORK/base-${st%%:*}"
	rm -rf "$base"
	cp -a "$TPL" "$base"
	CUSTOS_STORE="$base" CUSTOS_CRASH_AT=${st#*:} "$CUSTOS_FP" ingest "$IN/small" --case "$CASE" >/dev/null 2>&1
	[ $? -eq 99 ]
	t_ok $? "recovery base '${st%%:*}': the ingest of the small file crashed at point ${st#*:}"
	name="recovery of '${st%%:*}'"
	trace "$name" "$base" "$CUSTOS_FP" checkpoint
	for k in $(crash_points $((K + 1)) $DENSE $STRIDE 11); do
		rm -rf "$S"
		cp -a "$base" "$S"
		CUSTOS_CRASH_AT=$k "$CUSTOS_FP" checkpoint >/dev/null 2>"$WORK/crash.err"
		rc=$?
		want=99
		[ "$k" -le "$K" ] || want=0
		[ $rc -eq $want ] || fail "custos-failpoint checkpoint exited $rc, expected $want"
		check_store
		base_recovered "${st%%:*}"
		report "$name: crash at $k/$K (${PNAME[$k]:-none: completes}): $E_REC event(s) after recovery; re-run completes"
	done
done
h=$(digest "$IN/small")
[ -f "$WORK/base-orphan/objects/sha256/${h:0:2}/${h:2:2}/$h" ] &&
	! grep -q "$h" <(CUSTOS_STORE="$WORK/base-orphan" "$CUSTOS" find --sha256 "$h" 2>/dev/null)
t_ok $? "the orphan base really has the blob in objects/ without a record"

# ---- a torn last ledger entry (a write cut short by a power loss) ----
# From the 'unindexed' state, cut the unindexed entry short: in its 4-byte
# length prefix, and in its body. Nobody was told of it: read-only verify
# passes, the writer cuts it, the file is absent and a re-run stores it.
tpl_journal=$(stat -c %s "$TPL/ledger/journal")
for cut in 2 40; do
	rm -rf "$S"
	cp -a "$WORK/base-unindexed" "$S"
	truncate -s $((tpl_journal + cut)) "$S/ledger/journal"
	check_store
	[ "$E_RO" -eq 0 ] && [ "$E_REC" -eq 0 ] || fail "a torn entry became an event ($E_RO, $E_REC)"
	grep -q 'torn ledger tail' "$WORK/recover.err" || fail "the writer did not say it cut a torn tail"
	[ "$(stat -c %s "$S/ledger/journal")" -gt "$tpl_journal" ] || fail "the journal did not grow again on re-run"
	report "torn last ledger entry ($cut bytes of it left): verify passes, the writer cuts it, a re-run stores the file"
done

# ---- custos init ----
trace init "" "$CUSTOS_FP" init --station "$ST"
complete=0 partial=0 reinit_ok=0 reinit_refused=0 stray_keys=0
refusals=""
for ((k = 1; k <= K + 1; k++)); do
	rm -rf "$S"
	CUSTOS_CRASH_AT=$k "$CUSTOS_FP" init --station "$ST" >/dev/null 2>"$WORK/crash.err"
	rc=$?
	want=99
	[ "$k" -le "$K" ] || want=0
	[ $rc -eq $want ] || fail "custos-failpoint init exited $rc, expected $want"
	if [ -f "$S/custos.json" ]; then
		# Complete: a usable store, whose key files agree, which init will not touch.
		complete=$((complete + 1))
		outcome="store complete"
		run_verify "verify of the new store"
		grep -qF "\"verifier_key\": \"$(cat "$S/keys/ledger.pub")\"" "$S/custos.json" ||
			fail "custos.json and keys/ledger.pub name different keys"
		before=$(cat "$S/custos.json" "$S/keys/ledger.key" "$S/keys/ledger.pub" | sha256sum)
		"$CUSTOS" init --station "$ST" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 2 ] || fail "init over a complete store exited $rc, expected 2"
		[ "$before" = "$(cat "$S/custos.json" "$S/keys/ledger.key" "$S/keys/ledger.pub" | sha256sum)" ] ||
			fail "init over a complete store changed it"
		"$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null 2>"$WORK/ingest.err" ||
			fail "ingest into the new store failed: $(head -2 "$WORK/ingest.err" | tr '\n' ' ')"
		state
		[ "$L" -eq 1 ] || fail "the new store has $L events after one ingest"
		[ "$("$CUSTOS" checkpoint 2>/dev/null | sed -n 2p)" = 1 ] || fail "the checkpoint does not cover the one event"
		run_verify "verify after the first ingest"
		[ -z "$(ls -A "$S/tmp")" ] || fail "tmp/ not empty"
	else
		# Incomplete: no command may use it as a store; init must work again,
		# at least once the half-made directory is removed.
		partial=$((partial + 1))
		# A temp copy of the private key: the next open removes it, and so
		# does init run again (on a copy of the store, opened by nothing).
		if [ -n "$(find "$S" -path '*/keys/.*.tmp-*' 2>/dev/null)" ]; then
			stray_keys=$((stray_keys + 1))
			rm -rf "$WORK/half" && cp -a "$S" "$WORK/half"
			CUSTOS_STORE="$WORK/half" "$CUSTOS" init --station "$ST" >/dev/null 2>&1
			[ -z "$(find "$WORK/half" -path '*/keys/.*.tmp-*')" ] ||
				fail "a temp copy of a key in keys/ survived init run again"
		fi
		"$CUSTOS" verify >/dev/null 2>&1
		rc=$?
		[ $rc -eq 3 ] || fail "verify of a half-made store exited $rc, expected 3"
		[ -z "$(find "$S" -path '*/keys/.*.tmp-*' 2>/dev/null)" ] ||
			fail "a temp copy of a key in keys/ survived the next open (custos verify)"
		"$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 3 ] || fail "ingest into a half-made store exited $rc, expected 3"
		[ ! -e "$S/custos.json" ] || fail "a refused command made custos.json"
		if "$CUSTOS" init --station "$ST" >/dev/null 2>"$WORK/reinit.err"; then
			reinit_ok=$((reinit_ok + 1))
			outcome="incomplete; init again in place works"
			run_verify "verify after init in place"
		else
			reinit_refused=$((reinit_refused + 1))
			outcome="incomplete; init again in place refused"
			[ ! -e "$S/custos.json" ] || fail "a refused init made custos.json"
			case "$refusals" in *"$(head -1 "$WORK/reinit.err")"*) ;;
			*) refusals="$refusals${refusals:+ | }$(head -1 "$WORK/reinit.err")" ;;
			esac
			rm -rf "$S"
			"$CUSTOS" init --station "$ST" >/dev/null 2>&1 || fail "init after removing the half-made store failed"
			run_verify "verify after init in a removed directory"
		fi
		"$CUSTOS" ingest "$IN/small" --case "$CASE" >/dev/null 2>&1 || fail "ingest into the re-made store failed"
		run_verify "verify after the first ingest"
	fi
	report "init: crash at $k/$K (${PNAME[$k]:-none: completes}): $outcome"
done
echo "# init: $complete crashes left a complete store, $partial a half-made one;" \
	"init again in place worked after $reinit_ok and was refused after $reinit_refused"
[ -z "$refusals" ] || echo "# init: refused with: $(echo "$refusals" | sed "s|$S|STORE|g")"
[ "$stray_keys" -gt 0 ]
t_ok $? "init: $stray_keys crashes left a temp copy of a key (private or public) in keys/; each was removed by the next open and by init run again"
[ "$STRAY" -eq 0 ] || echo "# note: $STRAY crashed stores kept a temp file outside tmp/ (.NAME.tmp-PID)"

echo "# crash-points: $RUNS runs, $T_FAILED failures (crash points exercised, $(($(now_ms) - t_start)) ms)"
t_done
