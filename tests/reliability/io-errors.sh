#!/bin/bash
# I/O errors (DESIGN invariants 1-3; architecture.md "The failed state").
# The csfault interposer (fault.c) fails the N-th call of one file operation
# on the store, once or persistently: EIO, ENOSPC or EDQUOT; or makes it a
# short write, or fails it with EINTR.
#
# custos ingest of a few files (a small one, a 1.5 MB one written by the copy
# thread, one stored before, another small one), for every operation it makes
# (write, pwrite, fsync, fdatasync, create, mkdir, link, chmod, unlink) and
# every N:
#   - an error that hits a write, an fsync or a directory change exits
#     non-zero and says why (the error's text); no id is printed for the file
#     being secured, nor for any after it; the files acknowledged before it
#     are a prefix of the command line;
#   - a failed fsync is never called again on the same file (the kernel may
#     have dropped the dirty pages: a second fsync could succeed on lost data);
#   - short writes and EINTR on custos's own writes are retried: the ingest
#     succeeds. (LMDB treats a short write of its own as EIO; then the ingest
#     fails like on EIO, which is counted and reported, not a failure.)
#   - after a normal restart (`custos checkpoint`, no fault): it succeeds,
#     verify passes, every acknowledged file is stored under its id, every file
#     is stored once or absent, the ledger holds one event for each of the
#     first E files in order, tmp/ is empty and objects/ == the catalog; the
#     same ingest run again completes and verify passes.
# custosd, with a persistent EIO injected after start-up (CSFAULT_ARM) on the
# blobs' fsync, on the journal's fdatasync, on the catalog's fdatasync (an
# ingest's commit, and the job record written after a file was released): it logs an error naming the
# store failure, takes no more files (the sources stay in the inbox, with
# their bytes, although release = delete), keeps running and answers
# "failed" on its status socket, and never calls fsync again on the file
# whose fsync failed. After a restart without the fault every file is secured
# exactly once and verify passes. ENOSPC on creating a checkpoint file
# neither fails the store nor pauses custosd: it is said, and signed later.
# CI: errors once at every N, persistently at every other N, the three errnos
# in turn; CUSTOS_ASAN=1: every third N. NIGHTLY=1: every errno in both modes
# at every N (EROFS and EFBIG too), a 9 MB file, and errors in the recovery
# of a crashed store (truncating a torn journal tail, moving an orphan blob:
# truncate, rename, fsync, mkdir) made by `custos checkpoint` and by
# `custos ingest`: the start fails, says why, and the next start recovers.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at custosd}"
CASE='平司罚〔2020〕1号'
WORK=$(realpath "$WORK")
S="$WORK/store"
IN="$WORK/in"
TR="$WORK/trace"
mkdir -p "$IN"
export CUSTOS_STORE="$S"
. "$(dirname "$0")/iolib.sh"
REPORT_EXTRA="$WORK/err"
t_start=$(now_ms)
NIGHTLY=${NIGHTLY:-0}

errtext() {
	case $1 in
	EIO) echo "Input/output error" ;;
	ENOSPC) echo "No space left on device" ;;
	EDQUOT) echo "Disk quota exceeded" ;;
	EROFS) echo "Read-only file system" ;;
	EFBIG) echo "File too large" ;;
	esac
}

# ---- the template: a store with two items and a checkpoint ----
make_template io

head -c 3000 /dev/urandom >"$IN/a-small"
head -c 1500000 /dev/urandom >"$IN/b-large"
cp "$IN/prior1" "$IN/c-prior"
head -c 2000 /dev/urandom >"$IN/d-small"
if [ "$NIGHTLY" = 1 ]; then
	head -c $((9 << 20)) /dev/urandom >"$IN/e-9mb"
	set_batch cli "$IN/a-small" "$IN/b-large" "$IN/c-prior" "$IN/d-small" "$IN/e-9mb"
else
	set_batch cli "$IN/a-small" "$IN/b-large" "$IN/c-prior" "$IN/d-small"
fi

# ingest_under ENV...: the ingest of the batch on a fresh copy of the template
# with csfault set by ENV; stdout in $WORK/acked, stderr in $WORK/err, exit in RC.
ingest_under() {
	rm -rf "$S" "$TR"
	cp -a "$TPL" "$S"
	env CSFAULT_ROOT="$S" CSFAULT_TRACE="$TR" LD_PRELOAD="$CSFAULT" "$@" \
		"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/acked" 2>"$WORK/err"
	RC=$?
}

# no_fsync_retry WHEN: after the first injected fsync/fdatasync failure on a
# path, that path is never fsynced again.
no_fsync_retry() {
	local bad
	bad=$(awk -F'\t' '
		($1 == "fsync" || $1 == "fdatasync") && $5 ~ /^INJECT:E/ && !($3 in failed) { failed[$3] = NR; next }
		($1 == "fsync" || $1 == "fdatasync") && ($3 in failed) { print $1 " of " $3 " again (trace line " NR ")"; exit }
	' "$TR")
	[ -z "$bad" ] || fail "$1: a failed fsync was retried: $bad"
}

# acked_prefix: the acknowledged files are the first K of the batch, in
# order; sets K. The file named as not secured has no id.
acked_prefix() {
	local i=0 name failed
	while IFS=$'\t' read -r _ _ name _; do
		[ "$name" = "${FILES[$i]}" ] || fail "acknowledgement $((i + 1)) is for '$name', expected ${FILES[$i]}"
		i=$((i + 1))
	done <"$WORK/acked"
	K=$i
	failed=$(sed -n "s/^custos: could not secure '\(.*\)': .*/\1/p" "$WORK/err" | head -1)
	if [ -n "$failed" ] && cut -f3 "$WORK/acked" | grep -qxF "$failed"; then
		fail "an id was printed for $failed, which could not be secured"
	fi
}

LMDB_SHORT=0
# one_run OP N MODE ERRNO: inject, then check everything.
one_run() {
	local op=$1 n=$2 mode=$3 e=$4 hit path what
	ingest_under CSFAULT_OP="$op" CSFAULT_AT="$n" CSFAULT_MODE="$mode" CSFAULT_ERRNO="$e"
	hit=$(grep -m1 $'\tINJECT:' "$TR")
	path=$(printf '%s' "$hit" | cut -f3)
	what="$op #$n on ${path:-?}"
	[ -n "$hit" ] || fail "the fault did not fire"
	acked_prefix
	no_fsync_retry "$what"
	case $mode in
	short | eintr)
		if [ "$RC" -eq 0 ]; then
			[ "$K" -eq "$N" ] || fail "exit 0 but $K of $N files acknowledged"
			what="$what: retried, all secured"
		elif [ "$mode" = short ] && [ "${path#catalog/}" != "$path" ] && [ "$RC" -eq 3 ]; then
			LMDB_SHORT=$((LMDB_SHORT + 1))
			what="$what: LMDB takes its short write for EIO; stopped after $K of $N"
		else
			fail "a $mode write was not retried: exit $RC: $(head -2 "$WORK/err" | tr '\n' ' ')"
		fi
		;;
	*)
		if [ "$op" = unlink ]; then
			what="$what: exit $RC, $K of $N acknowledged"
		elif [ "$RC" -eq 0 ] && [ "$path" = . ] &&
			[ "$(grep -B1 -m1 $'\tINJECT:' "$TR" | head -1 | cut -f1,3)" = $'unlink\tWRITER' ]; then
			# The clean-stop marker's removal at close: a failure only
			# means the next start scans for orphans.
			what="$what (the clean-stop marker at close): exit 0, all acknowledged"
		elif [ "$RC" -eq 0 ]; then
			fail "exit 0 although $op failed with $e ($K of $N acknowledged)"
		else
			grep -qF "$(errtext "$e")" "$WORK/err" || fail "exit $RC without saying why: $(head -2 "$WORK/err" | tr '\n' ' ')"
			if [ "$K" -eq "$N" ] && ! grep -q 'signing a checkpoint failed' "$WORK/err"; then
				fail "exit $RC with every file acknowledged and no word of the checkpoint"
			fi
			what="$what: exit $RC, $K of $N acknowledged"
		fi
		;;
	esac
	after_restart "$L_T" "$TPL_PRESENT"
	report "ingest, $op #$n $mode${e:+ $e}: $what"
}

# ---- the sweep ----
ingest_under CSFAULT_OP=none
t_ok $RC "an ingest under the interposer without a fault succeeds"
declare -A COUNT=()
while IFS=$'\t' read -r op _; do COUNT[$op]=$((${COUNT[$op]:-0} + 1)); done <"$TR"
echo "# operations of the ingest: $(for op in "${!COUNT[@]}"; do printf '%s %s, ' "$op" "${COUNT[$op]}"; done)"
ERRNOS=(EIO ENOSPC EDQUOT)
[ "$NIGHTLY" = 1 ] && ERRNOS=(EIO ENOSPC EDQUOT EROFS EFBIG)
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then STEP=3; else STEP=1; fi
OPS=(write pwrite fsync fdatasync create mkdir link chmod unlink sync_file_range rename truncate)
sweep_t0=$(now_ms)
i=0
for op in "${OPS[@]}"; do
	total=${COUNT[$op]:-0}
	for ((n = 1; n <= total; n += STEP)); do
		i=$((i + 1))
		if [ "$NIGHTLY" = 1 ]; then
			for e in "${ERRNOS[@]}"; do
				one_run "$op" "$n" once "$e"
				one_run "$op" "$n" persist "$e"
			done
		else
			e=${ERRNOS[$((i % ${#ERRNOS[@]}))]}
			one_run "$op" "$n" once "$e"
			[ $((n % 2)) -eq 1 ] && one_run "$op" "$n" persist "$e"
		fi
		if [ "$op" = write ] || [ "$op" = pwrite ]; then
			one_run "$op" "$n" short ""
			one_run "$op" "$n" eintr ""
		fi
	done
done
echo "# ingest sweep: $RUNS runs in $(($(now_ms) - sweep_t0)) ms; LMDB took $LMDB_SHORT short write(s) for EIO"

# ---- faults during a restart (recovery truncates the journal, moves orphans) ----
if [ "$NIGHTLY" = 1 ]; then
	# A store whose last ingest tore its journal entry and left an orphan blob.
	CR="$WORK/crashed"
	rm -rf "$CR"
	cp -a "$TPL" "$CR"
	n_fp=$(CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" ingest --store "$CR" "$IN/a-small" --case "$CASE" 2>&1 >/dev/null |
		awk '$3 == "ledger-fsync" {print $2; exit}')
	rm -rf "$CR"
	cp -a "$TPL" "$CR"
	CUSTOS_CRASH_AT=$n_fp "$CUSTOS_FP" ingest --store "$CR" "$IN/a-small" --case "$CASE" >/dev/null 2>&1
	truncate -s -10 "$CR/ledger/journal"
	for op in truncate rename fsync mkdir; do
		for mode in once persist; do
			for cmd in checkpoint ingest; do
				rm -rf "$S" "$TR"
				cp -a "$CR" "$S"
				if [ $cmd = checkpoint ]; then set -- checkpoint; else set -- ingest "$IN/d-small" --case "$CASE"; fi
				env CSFAULT_ROOT="$S" CSFAULT_TRACE="$TR" LD_PRELOAD="$CSFAULT" CSFAULT_OP=$op CSFAULT_AT=1 \
					CSFAULT_MODE=$mode "$CUSTOS" "$@" >/dev/null 2>"$WORK/err"
				rc=$?
				grep -q $'\tINJECT:' "$TR" || fail "the fault did not fire"
				[ $rc -ne 0 ] || fail "the restart exited 0 although its $op failed"
				no_fsync_retry "restart"
				: >"$WORK/acked"
				set_batch cli "$IN/a-small"
				after_restart "$L_T" "$TPL_PRESENT"
				report "restart of a crashed store by custos $cmd, $op #1 $mode EIO: exit $rc"
			done
		done
	done
	set_batch cli "$IN/a-small" "$IN/b-large" "$IN/c-prior" "$IN/d-small" "$IN/e-9mb"
fi

# ---- custosd ----
DIN="$WORK/inbox"
DLOG="$WORK/custosd.log"
DCONF="$WORK/custosd.conf"
mkdir -p "$DIN"
daemon_conf "$DCONF" DIO inbox "$DIN" settle_seconds=0 rescan_seconds=1 concurrency=2 release=delete

# drop NAME SIZE: a new file in the inbox, complete when it appears; its
# digest is noted in $WORK/dropped.sums.
drop() { drop_file "$DIN" "$1" "$2" "$WORK/dropped.sums"; }

# daemon_case NAME OP PATH AT CONCURRENCY [ERRNO]: custosd with a persistent
# ERRNO (default EIO) on the AT-th OP on PATH (a substring; "" for any) once
# the fault is armed.
daemon_case() {
	local name=$1 op=$2 path=$3 at=$4 errno=${6:-EIO} f l_before nsync msg
	sed -i "s/^concurrency = .*/concurrency = $5/" "$DCONF"
	rm -rf "$S" "$TR" "$WORK/arm" "$DLOG"
	cp -a "$TPL" "$S"
	find "$DIN" -mindepth 1 -delete
	daemon_start "$DCONF" "$DLOG" CSFAULT_ROOT="$S" CSFAULT_TRACE="$TR" LD_PRELOAD="$CSFAULT" CSFAULT_OP="$op" \
		CSFAULT_AT="$at" CSFAULT_MODE=persist CSFAULT_ERRNO="$errno" CSFAULT_ARM="$WORK/arm" ${path:+CSFAULT_PATH="$path"} ||
		fail "custosd did not start"
	drop warm 4000
	wait_until 20 inbox_empty "$DIN" || fail "the first file (before the fault) was not secured"
	touch "$WORK/arm"
	: >"$WORK/dropped.sums"
	for f in f1 f2 f3; do drop "$f" $((RANDOM + 1000)); done
	wait_until 20 grep -q 'the store failed' "$DLOG" || fail "custosd did not report a store failure"
	l_before=$(ledger_size)
	sleep 2 # ticks and rescans: nothing more may be taken
	msg='Input/output error'
	[ "$errno" = ENOSPC ] && msg='No space left on device'
	grep -Eq "custosd: error: .*\\($msg\\).*(stops taking work|takes no more files)" "$DLOG" ||
		fail "the log does not name the store failure: $(grep -m2 error "$DLOG" | tr '\n' ' ')"
	daemon_running || fail "custosd is not running any more"
	"$CUSTOS" status --json >"$WORK/status.json" 2>&1 || fail "custos status failed: $(head -2 "$WORK/status.json")"
	grep -q '"state": "failed"' "$WORK/status.json" || fail "status does not say failed: $(tr -d '\n ' <"$WORK/status.json" | head -c 200)"
	grep -q '"taking_files": false' "$WORK/status.json" || fail "status does not say it takes no files"
	[ "$(ledger_size)" -eq "$l_before" ] || fail "the ledger grew after the failure ($l_before -> $(ledger_size))"
	# Every source is still in the inbox with its bytes, unless it was
	# secured before the failure (release = delete then removes it).
	sources_kept "$WORK/dropped.sums" "$DIN"
	for f in "${RELEASED[@]}"; do
		! grep -q "refused $DIN/$f: .*stays in the inbox" "$DLOG" ||
			fail "custosd logged $f as refused and left in the inbox, but it was secured and released: $(grep "refused $DIN/$f" "$DLOG")"
	done
	no_fsync_retry "custosd"
	nsync=$(awk -F'\t' '$5 ~ /^INJECT:/ && !f { f = 1; next } f && ($1 == "fsync" || $1 == "fdatasync") { n++ } END { print n + 0 }' "$TR")
	daemon_stop 15 || fail "custosd did not stop on SIGTERM"
	# Restart without the fault: every file secured exactly once.
	daemon_start "$DCONF" "$DLOG" || fail "custosd did not start again"
	wait_until 20 inbox_empty "$DIN" || fail "after the restart the inbox was not emptied: $(ls "$DIN" | tr '\n' ' ')"
	stopped_all_secured "after the restart" "$WORK/dropped.sums"
	report "custosd ($name), persistent $errno on $op${path:+ of $path} #$at after start-up: stops, says why, keeps running as 'failed', sources kept; $nsync fsync call(s) after the failure, none on the failed file; restart secures all"
}

d_t0=$(now_ms)
daemon_case blob-fsync fsync tmp/ 1 2
daemon_case journal-fdatasync fdatasync ledger/journal 1 2
daemon_case catalog-fdatasync fdatasync catalog/data.mdb 1 2
# One file at a time: the second catalog commit after the fault is armed is
# the job record of the first file, made after its source was released.
daemon_case job-fdatasync fdatasync catalog/data.mdb 2 1
# ENOSPC from an fsync is still a failed fsync: never retried, even though
# the disk has room (no pause-and-resume, unlike ENOSPC from a write).
daemon_case journal-fdatasync-enospc fdatasync ledger/journal 1 2 ENOSPC
daemon_case blob-fsync-enospc fsync tmp/ 1 2 ENOSPC

# daemon_space NAME OP PATH AT: ENOSPC once on the AT-th OP (a write: the
# bytes never reached the file) once armed. The disk has room: custosd
# pauses with the full-disk alert, the store recovers in place, and custosd
# resumes by itself, without a restart; every file secured exactly once.
daemon_space() {
	local name=$1 op=$2 path=$3 at=$4 f
	rm -rf "$S" "$TR" "$WORK/arm" "$DLOG"
	cp -a "$TPL" "$S"
	find "$DIN" -mindepth 1 -delete
	daemon_start "$DCONF" "$DLOG" CSFAULT_ROOT="$S" LD_PRELOAD="$CSFAULT" CSFAULT_OP="$op" CSFAULT_AT="$at" \
		CSFAULT_MODE=once CSFAULT_ERRNO=ENOSPC CSFAULT_ARM="$WORK/arm" ${path:+CSFAULT_PATH="$path"} ||
		fail "custosd did not start"
	drop warm 4000
	wait_until 20 inbox_empty "$DIN" || fail "the first file (before the fault) was not secured"
	touch "$WORK/arm"
	: >"$WORK/dropped.sums"
	for f in f1 f2 f3; do drop "$f" $((RANDOM * 40 + 1000)); done
	wait_until 20 grep -q "the store's disk is full" "$DLOG" || fail "custosd did not pause on ENOSPC: $(grep -m2 error "$DLOG" | tr '\n' ' ')"
	wait_until 30 grep -q 'ingest resumes' "$DLOG" || fail "custosd did not resume: $(tail -3 "$DLOG" | tr '\n' ' ')"
	grep -q 'the store recovered from its failure' "$DLOG" || fail "the store did not recover in place"
	wait_until 30 inbox_empty "$DIN" || fail "after resuming the inbox was not emptied: $(ls "$DIN" | tr '\n' ' ')"
	daemon_running || fail "custosd is not running any more"
	stopped_all_secured "after resuming" "$WORK/dropped.sums"
	report "custosd ($name), ENOSPC once on $op${path:+ of $path} #$at: paused with the full-disk alert, recovered in place, resumed without a restart; all secured exactly once"
}
daemon_space blob-write write tmp/ 2
daemon_space journal-write pwrite ledger/journal 1

# A checkpoint that finds no room (ENOSPC once on creating its file, once
# armed): the store does not fail and custosd does not pause; the log says
# the checkpoint could not be signed, and it is signed at a later timer.
daemon_checkpoint_space() {
	local f
	rm -rf "$S" "$WORK/arm" "$DLOG"
	cp -a "$TPL" "$S"
	find "$DIN" -mindepth 1 -delete
	daemon_start "$DCONF" "$DLOG" CSFAULT_ROOT="$S" LD_PRELOAD="$CSFAULT" CSFAULT_OP=create CSFAULT_AT=1 \
		CSFAULT_MODE=once CSFAULT_ERRNO=ENOSPC CSFAULT_ARM="$WORK/arm" CSFAULT_PATH=checkpoints/ ||
		fail "custosd did not start"
	drop warm 4000
	wait_until 20 inbox_empty "$DIN" || fail "the first file (before the fault) was not secured"
	touch "$WORK/arm"
	: >"$WORK/dropped.sums"
	for f in f1 f2 f3; do drop "$f" $((RANDOM + 1000)); done
	wait_until 30 grep -q 'signing a checkpoint of the ledger failed: No space left on device' "$DLOG" ||
		fail "the log does not say that signing a checkpoint found no room: $(tail -3 "$DLOG" | tr '\n' ' ')"
	wait_until 30 inbox_empty "$DIN" || fail "the inbox was not emptied: $(ls "$DIN" | tr '\n' ' ')"
	wait_until 30 grep -q 'is signed again' "$DLOG" || fail "the checkpoint was not signed again"
	wait_until 30 eval '[ "$(sed -n 2p "$S/checkpoints/latest")" -eq "$(ledger_size)" ]' ||
		fail "no checkpoint covers the ledger after the retry"
	! grep -Eq "the store's disk is full|the store failed" "$DLOG" ||
		fail "a checkpoint without room failed the store or paused ingest: $(grep -m1 -E 'disk is full|store failed' "$DLOG")"
	stopped_all_secured "after the checkpoint without room" "$WORK/dropped.sums"
	report "custosd, ENOSPC once on creating a checkpoint: said so, the store did not fail, signed at a later timer; all secured exactly once"
}
daemon_checkpoint_space
echo "# custosd: 9 cases in $(($(now_ms) - d_t0)) ms"

echo "# io-errors: runs $RUNS, failures $FAILURES ($(($(now_ms) - t_start)) ms)"
t_done
