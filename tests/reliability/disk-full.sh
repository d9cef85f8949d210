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
# custosd with an upload directory outside the store (release = delete):
#   grow: given files totalling more than fit, it pauses before the file that
#     does not fit, with an alert naming the full disk, the space needed and
#     the space free; takes no more files; answers "disk_full" on its status
#     socket; every source is still in the inbox with its bytes or was
#     secured; while it is paused a signed checkpoint covers every event in
#     the ledger (the files secured just before the pause too). The tmpfs is
#     enlarged: custosd resumes by itself (no restart) and every file ends
#     secured exactly once; verify passes.
#   filler: another process fills the disk while custosd is busy, so a write
#     of custosd's fails with ENOSPC mid-file (blob, journal or catalog): the
#     store fails, custosd pauses; the filler is deleted: the store recovers
#     in place (as at a restart: torn tail cut, catalog caught up, orphans)
#     and custosd resumes by itself; everything secured exactly once.
#   reserve: with reserve = 8M it pauses before a file would eat into the
#     reserve (the free space stays at or above 8 MiB), signs a checkpoint
#     of every event while paused, and resumes when a reload (SIGHUP) lowers
#     the reserve.
# NIGHTLY=1: more mixes of file sizes, more daemon rounds (nine more fillers).
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
	daemon_running && kill -KILL "$DPID"
	[ -n "${FILLER:-}" ] && kill -KILL "$FILLER" 2>/dev/null
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
	local name=$1 size=$2 count=$3 min=$4 max=$5 i rc k failed where
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
	after_restart 0 /dev/null # (with the space freed)
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
		# Enough files to fill the tmpfs twice over: each takes at least a
		# 4 KiB page there, besides its ledger entry and catalog records.
		k=$((RANDOM % 1024 + 256)) max=$((RANDOM % 60000 + 1000))
		cli_round "random$r" "${k}k" $((2 * k * 1024 / (4096 + max / 2) + 20)) 100 "$max"
	done
fi

# ---- custosd onto a full disk ----
DIN="$WORK/inbox"
DLOG="$WORK/custosd.log"
DCONF="$WORK/custosd.conf"
mkdir -p "$DIN"
daemon_conf "$DCONF" FULL inbox "$DIN" settle_seconds=0 rescan_seconds=1 concurrency=2 release=delete

store_state() {
	"$CUSTOS" status --json >"$WORK/status.json" 2>&1 || return 1
	grep -q "\"state\": \"$1\"" "$WORK/status.json"
}
# (nor a media record: one being made when ingest paused is still written)
in_progress_none() {
	store_state disk_full && grep -q '"in_progress": 0' "$WORK/status.json" &&
		! grep -q '"busy": true' "$WORK/status.json"
}
paused() { grep -q "the store's disk is full" "$DLOG" && store_state disk_full; }
resumed() { grep -q 'ingest resumes' "$DLOG"; }
# drop_files NAME COUNT SIZE: COUNT files of about SIZE bytes into the inbox
# (each complete when it appears), digests in $WORK/NAME.sums.
drop_files() {
	local name=$1 count=$2 fsize=$3 i
	: >"$WORK/$name.sums"
	for ((i = 1; i <= count; i++)); do
		drop_file "$DIN" "$(printf 'd%03d' "$i")" $((fsize + RANDOM)) "$WORK/$name.sums"
	done
}
# check_paused NAME [any]: custosd says why it paused, takes nothing, loses nothing.
check_paused() {
	local name=$1 l_before
	grep -Eq "custosd: error: the store's disk is full: .* needs .* free and .* has .*; custosd pauses ingest" "$DLOG" ||
		fail "no alert naming the full disk: $(grep -m2 -E 'error|warning' "$DLOG" | tr '\n' ' ')"
	grep -q '"taking_files": false' "$WORK/status.json" || fail "status does not say it takes no files"
	grep -q '"needed_bytes": [1-9]' "$WORK/status.json" || fail "status does not say how much space it needs"
	# Files in progress when it paused may still finish; none may start.
	wait_until 60 in_progress_none || fail "files (or a media record) stayed in progress while paused"
	sleep 1
	l_before=$(ledger_size)
	sleep 2 # ticks and rescans: nothing more may be taken
	# (It may resume by itself when the space it waits for is there after
	# all: a write that failed mid-file gave its space back.)
	[ "$(ledger_size)" -eq "$l_before" ] || grep -q 'ingest resumes' "$DLOG" ||
		fail "the ledger grew while paused ($l_before -> $(ledger_size))"
	daemon_running || fail "custosd is not running any more"
	sources_kept "$WORK/$name.sums" "$DIN"
	[ "$KEPT" -gt 0 ] || [ "${2:-}" = any ] || fail "every file fitted: the disk did not fill"
	run_verify "verify on the full disk"
}
# signed_while_paused: while custosd is paused, a signed checkpoint covers
# every event in the ledger (those secured just before the pause too).
latest_checkpoint() { sed -n 2p "$S/checkpoints/latest" 2>/dev/null; }
checkpoint_covers_ledger() {
	local cp
	cp=$(latest_checkpoint)
	[ -n "$cp" ] && [ "$cp" -eq "$(ledger_size)" ]
}
signed_while_paused() {
	wait_until 60 checkpoint_covers_ledger ||
		fail "while paused no checkpoint covers the last secured event (latest $(latest_checkpoint), ledger $(ledger_size) events)"
	store_state disk_full || fail "custosd was not paused any more when the checkpoint was checked"
}
# check_resumed NAME COUNT: custosd resumed by itself and secured every file
# exactly once; then it stops cleanly and the store is whole.
check_resumed() {
	local name=$1 count=$2
	wait_until 60 resumed || fail "custosd did not resume after space was freed: $(tail -3 "$DLOG" | tr '\n' ' ')"
	wait_until 90 inbox_empty "$DIN" || fail "after resuming the inbox was not emptied: $(ls "$DIN" | head -5 | tr '\n' ' ')"
	store_state running || fail "status does not say running after resuming: $(tr -d '\n' <"$WORK/status.json" | head -c 200)"
	stopped_all_secured "after resuming" "$WORK/$name.sums"
	[ "$(grep -c . "$WORK/present")" -eq "$count" ] || fail "$(grep -c . "$WORK/present") items for $count files"
	rm -f "$WORK/$name.sums"
}
# daemon_start_round TMPFS-SIZE RESERVE: a fresh tmpfs, an empty inbox, custosd.
daemon_start_round() {
	ERRS=()
	: >"$DLOG"
	mount_store "$1"
	find "$DIN" -mindepth 1 -delete
	sed -i "s/^reserve = .*/reserve = $2/" "$DCONF"
	daemon_start "$DCONF" "$DLOG" || fail "custosd did not start"
}

# grow NAME TMPFS-SIZE COUNT SIZE: more files than fit; custosd pauses before
# the file that does not fit; the tmpfs is enlarged; custosd resumes by
# itself (no restart) and secures everything.
daemon_grow() {
	local name=$1 size=$2 count=$3 fsize=$4
	daemon_start_round "$size" 0
	drop_files "$name" "$count" "$fsize"
	wait_until 60 paused || fail "custosd did not pause on the full disk: $(tail -3 "$DLOG" | tr '\n' ' ')"
	check_paused "$name"
	signed_while_paused
	grow_store 256m
	check_resumed "$name" "$count"
	report "custosd, $count files of ~$fsize bytes on a $size tmpfs: paused with an alert after $SECURED secured, $KEPT kept in the inbox; resumed by itself when the tmpfs was enlarged, all secured exactly once"
}

# mnt_full: less than 1 MiB is free on the store's filesystem.
mnt_full() { [ "$(df --output=avail -B1 "$MNT" | tail -1)" -lt 1048576 ]; }

# filler NAME: the disk is filled behind custosd's back while it is busy, so
# that its writes fail with ENOSPC in the middle of a file (a blob, the
# journal or the catalog): the store fails, custosd pauses; the filler is
# deleted; the store recovers in place and custosd resumes by itself.
daemon_filler() {
	local name=$1 count=6 fsize=$((RANDOM % 150 + 200))000000 recovered
	daemon_start_round 512m 0
	# A large file first, then smaller ones; the disk is filled while the
	# large one is being copied (its temp file is in tmp/).
	: >"$WORK/$name.sums"
	drop_file "$DIN" big "$fsize" "$WORK/$name.sums"
	# (a tight loop without forks: the copy takes a fraction of a second)
	local t0=$SECONDS started=()
	shopt -s nullglob
	while [ ${#started[@]} -eq 0 ] && [ $((SECONDS - t0)) -lt 60 ]; do started=("$S"/tmp/*); done
	shopt -u nullglob
	[ ${#started[@]} -gt 0 ] || fail "custosd did not start the large file"
	# Fill the disk, and keep it full (custosd frees temp files as it fails).
	(
		while :; do
			dd if=/dev/zero bs=1M count=64 >>"$MNT/filler" 2>/dev/null || sleep 0.05
			[ -e "$WORK/stop-filler" ] && exit 0
		done
	) &
	FILLER=$!
	# The other files come once the disk is full: custosd must then pause
	# before taking them, however fast the large one went (on a busy machine
	# it can be secured before the filler gets there).
	wait_until 60 mnt_full || fail "the filler did not fill $MNT"
	for ((i = 1; i < count; i++)); do
		drop_file "$DIN" "f$i" $((RANDOM * 8)) "$WORK/$name.sums"
	done
	wait_until 60 paused || fail "custosd did not pause on the full disk: $(tail -3 "$DLOG" | tr '\n' ' ')"
	touch "$WORK/stop-filler"
	wait "$FILLER"
	FILLER=
	rm -f "$WORK/stop-filler"
	check_paused "$name" any # (the filler may win only after the last file)
	rm -f "$MNT/filler"
	check_resumed "$name" "$count"
	recovered=no
	grep -q 'the store recovered from its failure' "$DLOG" && recovered=yes
	[ $recovered = yes ] && FILLER_RECOVERED=$((FILLER_RECOVERED + 1))
	report "custosd, disk filled by another process while securing a file of $fsize bytes: paused with an alert ($(grep -o 'writing a blob failed\|writing the ledger journal failed\|the catalog could not record\|writing a job to the catalog failed\|signing a checkpoint' "$DLOG" | head -1 || echo 'before a file')); store recovered in place: $recovered; resumed by itself when the filler was deleted, all $count secured exactly once"
}

# reserve: custosd keeps `reserve` free: it pauses before a file would eat
# into it, and resumes when the reserve is lowered by a reload (SIGHUP).
daemon_reserve() {
	local name=$1 count=12 fsize=1000000 avail
	daemon_start_round 20m 8M
	drop_files "$name" "$count" "$fsize"
	wait_until 60 paused || fail "custosd did not pause at its reserve: $(tail -3 "$DLOG" | tr '\n' ' ')"
	avail=$(stat -f -c '%a %S' "$MNT" | awk '{ print $1 * $2 }')
	[ "$avail" -ge $((8 << 20)) ] || fail "custosd ate into its reserve: $avail bytes free, 8 MiB reserved"
	check_paused "$name"
	signed_while_paused
	sed -i "s/^reserve = .*/reserve = 0/" "$DCONF"
	kill -HUP "$DPID"
	check_resumed "$name" "$count"
	report "custosd with reserve = 8M on a 20m tmpfs: paused with $((avail >> 10)) KiB free after $SECURED of $count files; resumed when the reserve was lowered by SIGHUP, all secured exactly once"
}

sed -i '/^\[store\]/a reserve = 0' "$DCONF"
FILLER_RECOVERED=0
daemon_grow d1 8m 16 700000
daemon_filler d2
daemon_reserve d3
if [ "$NIGHTLY" = 1 ]; then
	daemon_grow d4 2m 80 30000
	for r in 1 2 3 4 5 6 7 8 9; do daemon_filler "f$r"; done
	echo "# the store failed and recovered in place in $FILLER_RECOVERED of 10 filler rounds"
fi

umount_store
echo "# disk-full: runs $RUNS, failures $FAILURES ($(($(now_ms) - t_start)) ms)"
t_done
