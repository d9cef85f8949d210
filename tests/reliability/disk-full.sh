#!/bin/bash
# A full disk (DESIGN invariants 1 and 3; architecture.md "The failed
# state"). The store lives on a small tmpfs of its own, with a tiny LMDB map
# (CUSTOS_MAP_SIZE, so that the catalog also grows its map as it fills); the
# sources live outside it. Needs root (mount); skipped (77) otherwise.
#
# custos ingest of more than fits, for a few mixes of file sizes (so that the
# space runs out in a blob, and in the journal or the catalog): it stops at
# the file that did not fit, exits 3 and says "No space left on device"; the
# files acknowledged before it are a prefix of the command line; read-only
# verify passes on the full store. Then the tmpfs is enlarged, a normal
# restart recovers (custos checkpoint), verify passes, every acknowledged file
# is stored, every file once or absent, and the same ingest run again stores
# everything.
#
# custosd with an upload directory outside the store (release = delete), given
# files totalling more than fits: it logs an alert naming the full disk, takes
# no more files and answers "failed" on its status socket; every source is
# still in the inbox with its bytes or was secured (nothing lost). custosd
# stops taking work on ENOSPC as on any failed write (never retrying), so
# resuming needs a restart: the tmpfs is enlarged, custosd restarted, and
# then every file ends secured exactly once and verify passes.
# NIGHTLY=1: more mixes of file sizes, and a second daemon round.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at custosd}"
CASE='平司罚〔2020〕1号'
WORK=$(realpath "$WORK")
MNT="$WORK/mnt"
S="$MNT/store"
IN="$WORK/in"
mkdir -p "$MNT" "$IN"
export CUSTOS_STORE="$S"
export CUSTOS_MAP_SIZE=65536
. "$(dirname "$0")/iolib.sh"
t_start=$(now_ms)
NIGHTLY=${NIGHTLY:-0}

MOUNTED=0
umount_store() {
	if [ "$MOUNTED" = 1 ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		MOUNTED=0
	fi
}
on_exit() {
	local st=$?
	[ -n "${DPID:-}" ] && kill -KILL "$DPID" 2>/dev/null
	umount_store
	(exit $st)
	t_cleanup
}
trap on_exit EXIT

# mount_store SIZE: a fresh tmpfs of SIZE for the store.
mount_store() {
	umount_store
	if ! mount -t tmpfs -o "size=$1,mode=0755" custos-disk-full "$MNT" 2>"$WORK/mount.err"; then
		echo "1..0 # SKIP cannot mount a tmpfs: $(head -1 "$WORK/mount.err")"
		exit 77
	fi
	MOUNTED=1
}
grow_store() { mount -o "remount,size=$1" "$MNT"; }

# ---- custos ingest onto a full disk ----
# cli_round NAME TMPFS-SIZE COUNT MIN MAX: COUNT files of MIN..MAX bytes.
cli_round() {
	local name=$1 size=$2 count=$3 min=$4 max=$5 i f rc k failed l_rec where
	mount_store "$size"
	"$CUSTOS" init --station full >/dev/null || fail "init on the tmpfs failed"
	rm -rf "$IN/$name"
	mkdir -p "$IN/$name"
	for ((i = 1; i <= count; i++)); do
		head -c $((min + (RANDOM * 32768 + RANDOM) % (max - min + 1))) /dev/urandom \
			>"$IN/$name/$(printf 'f%03d' "$i")"
	done
	set_batch "$name" "$IN/$name"/f*
	"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/acked" 2>"$WORK/err"
	rc=$?
	[ $rc -eq 3 ] || fail "ingest onto a full disk exited $rc, expected 3"
	# LMDB reports a write that the full disk cut short as EIO, not ENOSPC.
	grep -q 'No space left on device' "$WORK/err" || grep -q 'the catalog could not record .*(Input/output error)' "$WORK/err" ||
		fail "the error does not say the disk is full: $(head -2 "$WORK/err" | tr '\n' ' ')"
	k=$(grep -c . "$WORK/acked")
	failed=$(sed -n "s/^custos: could not secure '\(.*\)': .*/\1/p" "$WORK/err" | head -1)
	[ -z "$failed" ] || [ "$failed" = "${FILES[$k]}" ] || fail "the file not secured is $failed, expected ${FILES[$k]} after $k acknowledged"
	[ "$(cut -f3 "$WORK/acked")" = "$(printf '%s\n' "${FILES[@]:0:$k}")" ] ||
		fail "the acknowledged files are not the first $k of the command line"
	run_verify "read-only verify on the full disk"
	grow_store 256m
	if ! "$CUSTOS" checkpoint >/dev/null 2>"$WORK/recover.err"; then
		fail "the restart after freeing space failed: $(head -2 "$WORK/recover.err" | tr '\n' ' ')"
	fi
	run_verify "verify after the restart"
	store_check "after the restart" 0 /dev/null "$WORK/acked"
	store_consistent "after the restart"
	sources_intact "after the restart"
	l_rec=$(ledger_size)
	"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >/dev/null 2>"$WORK/rerun.err" ||
		fail "the ingest run again failed: $(head -2 "$WORK/rerun.err" | tr '\n' ' ')"
	catalog_digests >"$WORK/rerun.present"
	[ -z "$(uniq -d "$WORK/rerun.present")" ] || fail "after the re-run a digest is stored as two items"
	[ -z "$(cut -d' ' -f2 "$BATCH" | sort -u | comm -23 - "$WORK/rerun.present")" ] ||
		fail "after the re-run a file is not stored"
	[ "$(ledger_size)" -eq $((l_rec + N)) ] || fail "the re-run left $(($(ledger_size) - l_rec)) events for $N files"
	run_verify "verify after the re-run"
	where=$(grep -o 'writing a blob failed\|writing the ledger journal failed\|the catalog could not record\|signing a checkpoint failed\|cannot open[^:]*' "$WORK/err" | head -1)
	report "custos ingest, $name ($count files of $min-$max bytes on a $size tmpfs): stopped after $k with ENOSPC (${where:-?}), exit $rc; all stored once space was freed"
}

cli_round large 4m 12 300000 900000
cli_round small 1m 60 15000 40000
cli_round mixed 2m 40 1000 200000
cli_round tiny 512k 200 500 3000
cli_round one 1m 2 700000 1200000
if [ "$NIGHTLY" = 1 ]; then
	for r in 1 2 3 4 5 6 7 8 9 10; do
		cli_round "random$r" "$((RANDOM % 1024 + 256))k" 150 100 $((RANDOM % 60000 + 1000))
	done
fi

# ---- custosd onto a full disk ----
DIN="$WORK/inbox"
DLOG="$WORK/custosd.log"
DCONF="$WORK/custosd.conf"
mkdir -p "$DIN"
cat >"$DCONF" <<EOC
[store]
root = $S
station = FULL
[inbox]
dir = $DIN
[ingest]
settle_seconds = 0
rescan_seconds = 1
concurrency = 2
release = delete
EOC

start_daemon() {
	"$CUSTOSD" --config "$DCONF" >>"$DLOG" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		[ -S "$S/custosd.sock" ] && return 0
		sleep 0.1
	done
	return 1
}
stop_daemon() {
	kill -TERM "$DPID" 2>/dev/null
	for _ in $(seq 150); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DPID" 2>/dev/null; then
		fail "custosd did not stop on SIGTERM"
		kill -KILL "$DPID"
	fi
	wait "$DPID" 2>/dev/null
	DRC=$?
	DPID=
}
wait_until() {
	local t=$(($1 * 10))
	shift
	while [ $t -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}
inbox_empty() { [ -z "$(ls -A "$DIN")" ]; }

# daemon_round NAME TMPFS-SIZE COUNT SIZE
daemon_round() {
	local name=$1 size=$2 count=$3 fsize=$4 i f sha secured kept state
	ERRS=()
	: >"$DLOG"
	mount_store "$size"
	find "$DIN" -mindepth 1 -delete
	start_daemon || fail "custosd did not start"
	for ((i = 1; i <= count; i++)); do
		f=$(printf 'd%03d' "$i")
		head -c $((fsize + RANDOM)) /dev/urandom >"$WORK/$f"
		echo "$(digest "$WORK/$f") $f" >>"$WORK/$name.sums"
		mv "$WORK/$f" "$DIN/$f"
	done
	wait_until 60 grep -q 'the store failed' "$DLOG" || fail "custosd did not report a store failure"
	sleep 2 # ticks and rescans: nothing more may be taken
	# (LMDB reports a write that the full disk cut short as EIO, not ENOSPC.)
	grep -Eq 'custosd: error: .*No space left on device.*(takes no more files|stops taking work)' "$DLOG" ||
		grep -Eq 'custosd: error: the catalog could not record .*\(Input/output error\)' "$DLOG" ||
		fail "no alert naming the full disk: $(grep -m2 -E 'error|warning' "$DLOG" | tr '\n' ' ')"
	kill -0 "$DPID" 2>/dev/null || fail "custosd is not running any more"
	"$CUSTOS" status --json >"$WORK/status.json" 2>&1 || fail "custos status failed: $(head -2 "$WORK/status.json")"
	grep -q '"state": "failed"' "$WORK/status.json" || fail "status does not say failed"
	grep -q '"taking_files": false' "$WORK/status.json" || fail "status does not say it takes no files"
	catalog_digests >"$WORK/present"
	secured=0 kept=0
	while read -r sha f; do
		if [ -e "$DIN/$f" ]; then
			kept=$((kept + 1))
			[ "$(digest "$DIN/$f")" = "$sha" ] || fail "the source $f changed"
		elif grep -qx "$sha" "$WORK/present"; then
			secured=$((secured + 1))
		else
			fail "$f left the inbox but is not secured"
		fi
	done <"$WORK/$name.sums"
	[ "$kept" -gt 0 ] || fail "every file fitted: the disk did not fill"
	run_verify "verify on the full disk"
	# Free space and restart: everything secured exactly once.
	stop_daemon
	[ "$DRC" -ne 0 ] || fail "custosd exited 0 after a store failure"
	grow_store 256m
	start_daemon || fail "custosd did not start again"
	wait_until 60 inbox_empty || fail "after the restart the inbox was not emptied: $(ls "$DIN" | head -5 | tr '\n' ' ')"
	stop_daemon
	[ "$DRC" -eq 0 ] || fail "custosd exited $DRC after the restart"
	run_verify "verify after the restart"
	catalog_digests >"$WORK/present"
	[ -z "$(uniq -d "$WORK/present")" ] || fail "a digest is stored as two items"
	while read -r sha f; do
		grep -qx "$sha" "$WORK/present" || fail "$f was not secured"
	done <"$WORK/$name.sums"
	[ "$(grep -c . "$WORK/present")" -eq "$count" ] || fail "$(grep -c . "$WORK/present") items for $count files"
	store_consistent "after the restart"
	report "custosd, $count files of ~$fsize bytes on a $size tmpfs: paused with an alert after $secured secured, $kept kept in the inbox; all secured exactly once after space was freed and custosd restarted"
	rm -f "$WORK/$name.sums"
}

daemon_round d1 8m 16 700000
[ "$NIGHTLY" = 1 ] && daemon_round d2 2m 80 30000

umount_store
echo "# disk-full: runs $RUNS, failures $FAILURES ($(($(now_ms) - t_start)) ms)"
t_done
