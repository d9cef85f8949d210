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
#   - every file the crashed run printed as secured is in the store, before
#     recovery and after (`custos ingest` commits its files in batches and
#     prints a file only once its batch is durable and its re-read matched;
#     a crash inside a batch, after some of its blobs are written or linked
#     and before its commit, must leave none of them reported);
#   - a writer (`custos checkpoint`) recovers: it indexes at most the events
#     of the one commit left unindexed (a whole batch), signs a checkpoint of the whole ledger, leaves
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
# after the next open of the half-made store, and after init run again);
# and the commands of case files and corrections, each crashed at every
# point, with checks of their own (see "case files and corrections" below).
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
	check_reported "${REPORTED:-}" "before recovery"
	E_RO=$E
	recover "$L"
	state
	run_verify "verify after recovery"
	store_consistent "after recovery" "$WORK/catalog"
	check_prefix "after recovery" "$L_T" "$TPL_PRESENT"
	check_reported "${REPORTED:-}" "after recovery"
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
	grep -E '^fail(point|note) ' "$WORK/trace.err" | awk -v types="$types" '
		# A group commit appends the events of several files at once
		# ("failnote N ledger-events" before its ledger-write): every file of
		# it is linked after the blobs are fsynced (counted: a link never
		# outnumbers the fsyncs before it), a directory is fsynced after the
		# last link and before the ledger write; the ledger fsync comes before
		# the catalog commit, which covers the N files.
		function reset() { fs = 0; links = 0; dsync = 0; lw = 0; lf = 0; nev = 1 }
		function err(m) { printf "files %d-%d (step %d): %s\n", i, i + nev - 1, $2, m; bad = 1 }
		BEGIN { n = split(types, T, " "); i = 1; reset() }
		$1 == "failnote" && $3 == "ledger-events" { nev = $2; next }
		$1 == "failnote" { next }
		$3 == "blob-fsync" { fs++ }
		$3 == "blob-link" { if (links >= fs) err("a blob linked before its fsync"); links++; dsync = 0 }
		$3 == "fsync-dir" && links { dsync = 1 }
		$3 == "ledger-write" {
			ing = 0
			for (k = i; k < i + nev; k++) if (T[k] == "ingest") ing++
			if (links < nev) err(sprintf("%d blob(s) linked for %d ledger entries", links, nev))
			if (ing > 0 && !dsync)
				err("ledger entries written before the blobs were linked and their directories fsynced")
			lw = 1
		}
		$3 == "ledger-fsync" { if (!lw) err("ledger fsync without a write"); lf = 1 }
		$3 == "lmdb-commit" { if (!lf) err("catalog commit before the ledger fsync"); i += nev; reset() }
		END {
			if (i - 1 != n) { printf "%d files committed of %d\n", i - 1, n; bad = 1 }
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
# journal synced, catalog written and committed. The fan-out directory of
# the first new file is made beforehand, as a run that crashed after making
# it leaves it: its parent must be fsynced all the same.
syscall_order() {
	local name=$1 base=$2 sha
	rm -rf "$S" "$WORK/sys.trace"
	cp -a "$base" "$S"
	sha=$(awk 'NR == FNR { have[$1]; next } !($(NF - 1) in have) { print $(NF - 1); exit }' \
		"$TPL_PRESENT" "$BATCH")
	[ -n "$sha" ] && mkdir -p "$S/objects/sha256/${sha:0:2}/${sha:2:2}"
	LD_PRELOAD="$CSFAULT" CSFAULT_ROOT="$(realpath "$S")" CSFAULT_TRACE="$WORK/sys.trace" \
		"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >/dev/null 2>"$WORK/sys.err"
	t_ok $? "$name: the ingest succeeds under the system call trace"
	python3 "$CUSTOS_SRC/tests/reliability/syscall-order.py" "$WORK/sys.trace" "$BATCH" \
		"$TPL_PRESENT" "$S/ledger/journal" "$(stat -c %s "$base/ledger/journal")" \
		>"$WORK/sysorder.out" 2>&1
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
		CUSTOS_CRASH_AT=$k "$CUSTOS_FP" ingest "${FILES[@]}" --case "$CASE" >"$WORK/crash.out" \
			2>"$WORK/crash.err"
		rc=$?
		REPORTED="$WORK/crash.out"
		[ "$k" -le "$K" ] || [ "$(grep -c . "$WORK/crash.out")" -eq "$N" ] ||
			fail "the uncrashed run reported $(grep -c . "$WORK/crash.out") of $N files secured"
		want=99
		[ "$k" -le "$K" ] || want=0
		[ $rc -eq $want ] || fail "custos-failpoint exited $rc, expected $want: $(head -2 "$WORK/crash.err" | tr '\n' ' ')"
		check_store
		REPORTED=
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

# ---- case files and corrections ----
# The evidence model's events (case-open, case-add, case-remove, amend,
# case-close, case-seal) go through the same commit as an ingest. A chain of
# small stores is prepared once from the template: each base is the one
# before with the previous command run to completion. Each command is traced
# and crashed at every one of its points (and K+1, which completes). After
# each crash: read-only verify passes; a writer (`custos checkpoint`)
# recovers and verify passes; the ledger holds the template's events and then
# the first E of the command's M events, of the right types, nothing else;
# what `case show C --json` and `show ID --json` (both items) print (times
# left out) is exactly what they print after the first E events ran
# uncrashed, and byte for byte what they print after `custos rebuild` (on a
# copy); then the same command run again on the recovered store completes it
# (exit 0 when E = 0; when E > 0 it is refused with exit 2 for the right
# reason: opened, a member, not a member, closed, sealed; a correction, which
# may be made twice, writes one more) and verify passes. The trace is also
# checked: each event's journal entry is written and fsynced before its
# catalog commit.
C2='平司罚〔2021〕7号'
I1="$ST-$(digest "$IN/prior1" | cut -c1-20)"
I2="$ST-$(digest "$IN/prior2" | cut -c1-20)"

# snap DIR: what the store shows of the case file and both items, raw, in DIR.
snap() {
	local d=$1
	rm -rf "$d"
	mkdir -p "$d"
	"$CUSTOS" case show "$C2" --json >"$d/case" 2>/dev/null
	echo "exit $?" >>"$d/case"
	"$CUSTOS" show "$I1" --json >"$d/i1" 2>/dev/null
	"$CUSTOS" show "$I2" --json >"$d/i2" 2>/dev/null
}
# proj DIR: the snapshot in DIR without the events' times (one text). The
# JSON is printed with sorted keys, one key a line.
proj() { (cd "$1" && grep -v '^ *"time": ' case i1 i2); }
# first2 FILE: its first two lines, on one line; ddiff A B: their differing lines, short.
first2() { head -2 "$1" | tr '\n' ' '; }
ddiff() { diff "$1" "$2" | grep '^[<>]' | head -4 | cut -c1-200 | tr '\n' ' '; }
# ledger_events: LOG ("type<TAB>id" of every ledger event) and L.
ledger_events() {
	mapfile -t LOG < <("$CUSTOS" log 2>/dev/null | cut -f3,4)
	L=${#LOG[@]}
}
# event_ok I WANT: ledger event I (of LOG) is the command's event WANT ("type" or "type<TAB>id").
event_ok() {
	case $2 in
	*"	"*) [ "${LOG[$1]:-}" = "$2" ] ;;
	*) [ "${LOG[$1]:-}" != "" ] && [ "${LOG[$1]%%	*}" = "$2" ] ;;
	esac
}

# case_chain NAME REFUSED EVENTS -- CMD...: the command CMD (custos arguments)
# on the base $CBASE, which writes the M events EVENTS ("type" or
# "type<TAB>id", space-separated in one word); REFUSED: what stderr says when
# it is run again after all of them ('' when a re-run simply makes them
# again). The states after the first E events, for 0 < E < M, are made by
# the commands in PARTIAL[E] (custos arguments, one string, eval'd). Leaves
# the completed store as the next $CBASE.
case_chain() {
	local name=$1 refused=$2 k rc want i e m t t0 next rerun what
	local -a evs
	IFS=' ' read -r -a evs <<<"$3"
	shift 4
	m=${#evs[@]}
	t0=$(now_ms)
	# the reference states: REF[e] after the first e events ran uncrashed
	CUSTOS_STORE="$CBASE" snap "$WORK/ref.d"
	CUSTOS_STORE="$CBASE" proj "$WORK/ref.d" >"$WORK/ref-$name-0"
	for ((e = 1; e < m; e++)); do
		rm -rf "$WORK/partial" && cp -a "$CBASE" "$WORK/partial"
		eval "CUSTOS_STORE=\"\$WORK/partial\" \"\$CUSTOS\" ${PARTIAL[$e]}" >/dev/null 2>&1 ||
			fail "$name: the reference command for $e event(s) failed"
		CUSTOS_STORE="$WORK/partial" snap "$WORK/ref.d"
		CUSTOS_STORE="$WORK/partial" proj "$WORK/ref.d" >"$WORK/ref-$name-$e"
	done
	next="$CDIR/base-$name"
	rm -rf "$next" && cp -a "$CBASE" "$next"
	CUSTOS_STORE="$next" "$CUSTOS" "$@" >/dev/null 2>"$WORK/ref.err" ||
		fail "$name: the uncrashed command failed: $(head -2 "$WORK/ref.err" | tr '\n' ' ')"
	CUSTOS_STORE="$next" snap "$WORK/ref.d"
	CUSTOS_STORE="$next" proj "$WORK/ref.d" >"$WORK/ref-$name-$m"
	L0=$(CUSTOS_STORE="$CBASE" ledger_size)
	report "$name: the reference states made (the base has $L0 events, the command writes $m)"

	trace "$name" "$CBASE" "$CUSTOS_FP" "$@"
	# each of its events: journal written, then fsynced, then the catalog committed
	grep '^failpoint ' "$WORK/trace.err" | awk -v m="$m" '
		$3 == "ledger-write" { w = 1 }
		$3 == "ledger-fsync" { if (!w) bad = bad " fsync-before-write"; f = 1 }
		$3 == "lmdb-commit" {
			if (!f) { bad = bad " commit-" ($2) "-before-its-ledger-fsync" }
			n++; w = 0; f = 0
		}
		END { if (n != m) bad = bad " " n "-catalog-commits"; print bad; exit bad != "" }' \
		>"$WORK/order.out"
	rc=$?
	what="each event's journal entry written and fsynced before its catalog commit"
	t_ok $rc "$name: trace order: $what$(cat "$WORK/order.out")"

	for ((k = 1; k <= K + 1; k++)); do
		rm -rf "$S"
		cp -a "$CBASE" "$S"
		CUSTOS_CRASH_AT=$k "$CUSTOS_FP" "$@" >/dev/null 2>"$WORK/crash.err"
		rc=$?
		want=99
		[ "$k" -le "$K" ] || want=0
		[ $rc -eq $want ] ||
			fail "custos-failpoint exited $rc, expected $want: $(first2 "$WORK/crash.err")"
		run_verify "read-only verify"
		recover "$(ledger_size)"
		run_verify "verify after recovery"
		store_consistent "after recovery"
		# wholly there or wholly absent: the first E events, nothing else
		ledger_events
		e=$((L - L0))
		if [ $e -lt 0 ] || [ $e -gt "$m" ]; then
			fail "the ledger has $L events: the base's $L0 and $e of the command's $m"
			e=0
		fi
		for ((i = 0; i < e; i++)); do
			event_ok $((L0 + i)) "${evs[$i]}" ||
				fail "ledger event $((L0 + i)) is '${LOG[$((L0 + i))]:-}', expected '${evs[$i]}'"
		done
		# the catalog shows exactly those E events' state, and rebuild agrees
		snap "$WORK/crashed.d"
		proj "$WORK/crashed.d" >"$WORK/crashed.proj"
		cmp -s "$WORK/crashed.proj" "$WORK/ref-$name-$e" ||
			fail "with $e of $m events in the ledger the catalog shows another state:" \
				"$(ddiff "$WORK/ref-$name-$e" "$WORK/crashed.proj")"
		rm -rf "$S.rebuilt" && cp -a "$S" "$S.rebuilt"
		CUSTOS_STORE="$S.rebuilt" "$CUSTOS" rebuild >/dev/null 2>"$WORK/rebuild.err" ||
			fail "custos rebuild failed: $(first2 "$WORK/rebuild.err")"
		CUSTOS_STORE="$S.rebuilt" snap "$WORK/rebuilt.d"
		for t in case i1 i2; do
			cmp -s "$WORK/crashed.d/$t" "$WORK/rebuilt.d/$t" ||
				fail "the catalog and rebuild's projection differ ($t):" \
					"$(ddiff "$WORK/crashed.d/$t" "$WORK/rebuilt.d/$t")"
		done
		# the same command again (on the store as recovered, not rebuilt)
		"$CUSTOS" "$@" >/dev/null 2>"$WORK/rerun.err"
		rc=$?
		if [ $e -eq 0 ] || [ -z "$refused" ]; then
			[ $rc -eq 0 ] || fail "re-running the command exited $rc: $(first2 "$WORK/rerun.err")"
		else
			[ $rc -eq 2 ] && grep -q -- "$refused" "$WORK/rerun.err" ||
				fail "re-running the command after $e of its events exited $rc, expected 2" \
					"and '$refused': $(first2 "$WORK/rerun.err")"
		fi
		ledger_events
		if [ -n "$refused" ] || [ $e -eq 0 ]; then
			[ "$L" -eq $((L0 + m)) ] ||
				fail "after the re-run the ledger has $L events, expected $((L0 + m))"
			snap "$WORK/rerun.d"
			proj "$WORK/rerun.d" >"$WORK/rerun.proj"
			cmp -s "$WORK/rerun.proj" "$WORK/ref-$name-$m" ||
				fail "after the re-run the catalog does not show the command's whole" \
					"state: $(ddiff "$WORK/ref-$name-$m" "$WORK/rerun.proj")"
		else
			[ "$L" -eq $((L0 + e + m)) ] ||
				fail "after the re-run the ledger has $L events, expected $((L0 + e + m))"
			for ((i = 0; i < m; i++)); do
				event_ok $((L0 + e + i)) "${evs[$i]}" ||
					fail "after the re-run ledger event $((L0 + e + i)) is" \
						"'${LOG[$((L0 + e + i))]:-}', expected '${evs[$i]}'"
			done
		fi
		run_verify "verify after the re-run"
		if [ $rc -eq 0 ]; then rerun=completes; else rerun="refused (exit $rc)"; fi
		what="$e of $m event(s) in the ledger and the catalog, as rebuild makes it"
		report "$name: crash at $k/$K (${PNAME[$k]:-none: completes}): $what; re-run $rerun"
	done
	echo "# $name: $((K + 1)) crash points tried in $(($(now_ms) - t0)) ms"
	CBASE=$next
}

# A crash here is a process's end, not a power loss: what the kernel was
# given stays, on any filesystem. So these stores are on a tmpfs when there
# is one, where the fsyncs of about 100 runs cost nothing.
t_case=$(now_ms)
CDIR="$WORK/case"
if [ -d /dev/shm ] && [ -w /dev/shm ] && CDIR=$(mktemp -d /dev/shm/custos-case.XXXXXX); then
	trap 'st=$?; rm -rf "$CDIR"; (exit $st); t_cleanup' EXIT
else
	CDIR="$WORK/case"
fi
mkdir -p "$CDIR"
S="$CDIR/store"
export CUSTOS_STORE="$S"
CBASE="$CDIR/base"
cp -a "$TPL" "$CBASE"
declare -a PARTIAL=()
case_chain case-open 'is already open' case-open -- \
	case open "$C2" --category 行政处罚 --title 'a shop fined' --party organisation
PARTIAL[1]="case add '$C2' '$I1' --stage 取证 --reason 'footage of the inspection'"
case_chain case-add 'is already in case file' "case-add	$I1 case-add	$I2" -- \
	case add "$C2" "$I1" "$I2" --stage 取证 --reason 'footage of the inspection'
PARTIAL=()
case_chain case-remove 'is not in case file' "case-remove	$I2" -- \
	case remove "$C2" "$I2" --reason 'a clip of another case'
case_chain amend-membership '' "amend	$I1" -- \
	amend "$I1" --case "$C2" --set stage=审查 --reason 'it was shown at the review'
case_chain amend-sighting '' "amend	$I1" -- \
	amend "$I1" --set officers=3301-0999 --reason 'officer id mistyped at the dock'
case_chain amend-case '' amend -- \
	amend --case "$C2" --set title='a shop fined twice' --reason 'title mistyped'
case_chain case-close 'is already closed' case-close -- case close "$C2" --reason decided
case_chain case-seal 'is sealed' case-seal -- case seal "$C2" --reason archived
echo "# case files and corrections: crash points exercised in $(($(now_ms) - t_case)) ms"
rm -rf "$CDIR"
S="$WORK/store"
export CUSTOS_STORE="$S"

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
