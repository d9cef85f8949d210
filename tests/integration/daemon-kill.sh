#!/bin/bash
# custosd killed with SIGKILL at random moments while 200 files arrive
# (DESIGN invariants 1, 3 and 6, seen from the daemon). Run twice, with
# release=keep and with release=delete. In each mode:
#   - ten files that are in the upload directory before custosd first starts
#     are taken at start;
#   - a writer drops the other 190 files (0 B to a few MB, unique content;
#     written in place, in place in two parts, or under a temporary name and
#     renamed in; some in a subdirectory) over several seconds while custosd
#     is killed at random moments (during start-up and recovery, while files
#     settle, mid-copy, mid-re-read, around release) and restarted after
#     each kill (DAEMON_KILLS kills in all, default 24, half in each mode);
#   - after the writer is done custosd is started once more and left to
#     finish. Then every file is secured exactly once: `custos find --sha256`
#     gives one item of the right size for each, the ledger holds exactly 200
#     events, all of them `ingest` (a `sighting` means a released file was
#     taken a second time), and no record has bytes that were never a file;
#   - keep: every source is still there, unchanged, and a restart takes
#     nothing again; delete: every source is gone, and each one is in the
#     store (a source deleted before it was secured would be missing);
#   - a large file truncated by another process while custosd reads it does
#     not hang custosd: the final (truncated) form ends secured exactly once,
#     and no record matches neither version;
#   - SIGTERM stops custosd with exit 0, tmp/ is empty, `custos verify` passes.
# CRASH_SEED repeats the random choices (timing still varies); DAEMON_KILLS
# sets the number of kills in all. CUSTOS_ASAN=1 uses smaller files.
. "$(dirname "$0")/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"

SEED=${CRASH_SEED:-$(($(date +%s) % 32768))}
RANDOM=$SEED
KILLS_TOTAL=${DAEMON_KILLS:-24}
NFILES=200
NPRE=10
echo "# seed $SEED (CRASH_SEED=$SEED repeats the random choices), $KILLS_TOTAL kills"

if [ "${CUSTOS_ASAN:-0}" = 1 ]; then
	BIG_MIN=$((256 << 10)) BIG_SPAN=$((768 << 10)) MED_SPAN=$((256 << 10))
	TRUNC_SIZE=$((16 << 20))
	KILL_SPAN=2000 TRIGGER_MS=4000 PACE_MS=1800
	WAIT_S=180
else
	BIG_MIN=$((1 << 20)) BIG_SPAN=$((3 << 20)) MED_SPAN=$((1 << 20))
	TRUNC_SIZE=$((50 << 20))
	KILL_SPAN=1300 TRIGGER_MS=2500 PACE_MS=1300
	WAIT_S=90
fi
asan_allow_preload
WAIT_POLL=0.2 # (all_in reads the whole ledger)

# rand_size: the size of the next file (one 0 B file is made separately).
rand_size() {
	local r=$((RANDOM % 100))
	if [ $r -lt 60 ]; then
		echo $((RANDOM % 8192))
	elif [ $r -lt 90 ]; then
		echo $((65536 + (RANDOM * 32768 + RANDOM) % MED_SPAN))
	else
		echo $((BIG_MIN + (RANDOM * 32768 + RANDOM) % BIG_SPAN))
	fi
}

# make_files MODE: source files in $SRC (unique bytes: a header naming the
# mode, seed and number, then random bytes) and $MAN, one line per file:
# "index style rel size sha256 jitter_ms".
make_files() {
	local i size style rel styles=(inplace inplace2 rename-dot rename-part)
	# The writer's jitter: up to one interval between two files.
	local pace=$((KILLS * PACE_MS / (NFILES - NPRE)))
	rm -rf "$SRC"
	mkdir -p "$SRC"
	: >"$MAN.tmp"
	for i in $(seq -w 1 $NFILES); do
		if [ "$i" = 001 ]; then
			: >"$SRC/$i"
		else
			size=$(rand_size)
			{
				printf 'custos daemon-kill %s seed %s file %s\n' "$1" "$SEED" "$i"
				head -c "$size" /dev/urandom
			} >"$SRC/$i"
		fi
		style=${styles[$((RANDOM % 4))]}
		[ "$i" -le $NPRE ] && style=inplace
		rel="f$i.bin"
		[ $((RANDOM % 10)) -eq 0 ] && rel="sub/$rel"
		echo "$i $style $rel $(stat -c %s "$SRC/$i") $((RANDOM % (pace + 1)))" >>"$MAN.tmp"
	done
	# One sha256sum for all: its output is in the same order.
	(cd "$SRC" && sha256sum -- $(seq -w 1 $NFILES)) | cut -c1-64 >"$MAN.sha"
	paste -d' ' "$MAN.tmp" "$MAN.sha" | awk '{print $1, $2, $3, $4, $6, $5}' >"$MAN"
	rm -f "$MAN.tmp" "$MAN.sha"
}

# writer: the files arrive over KILLS * PACE_MS, the Nth at about N/190 of
# that time (plus the manifest's jitter), however long writing them takes.
writer() {
	local i style rel size sha slp j=0 start due now
	start=$(now_ms)
	while read -r i style rel size sha slp; do
		[ "$i" -le $NPRE ] && continue
		due=$((start + j * KILLS * PACE_MS / (NFILES - NPRE) + slp))
		now=$(now_ms)
		[ $due -gt "$now" ] && sleep_ms $((due - now))
		put_file "$style" "$SRC/$i" "$IN/$rel"
		j=$((j + 1))
	done <"$MAN"
}

# Each custosd run logs to $ILOG; flush_log (lib.sh, with no custosd
# running) appends it to the mode's log $DLOG.
spawn() {
	flush_log
	daemon_spawn "$CONF" "$ILOG"
	SPAWNED=$(now_ms)
}

# kill_moment: waits for a random moment to kill the custosd just spawned:
# a random time (start-up, recovery, files settling), or a few milliseconds
# after its Nth file was secured (the next ones are mid-way), or just after a
# blob copy began (mid-copy, mid-re-read). Sets KIND.
kill_moment() {
	local r=$((RANDOM % 8)) want jitter end
	end=$((SPAWNED + TRIGGER_MS))
	if [ $r -lt 2 ]; then
		KIND="time"
		sleep_ms $((50 + RANDOM % KILL_SPAN))
		return
	fi
	if [ $r -lt 5 ]; then
		KIND=secured want=$((1 + RANDOM % 12)) jitter=$((RANDOM % 40))
		while [ "$(grep -c ' secured ' "$ILOG")" -lt $want ] && [ "$(now_ms)" -lt $end ]; do
			sleep 0.01
		done
	else
		# (Once it is watching: until then tmp/ may hold a killed run's blob.)
		KIND=copy jitter=$((RANDOM % 30))
		while { ! grep -q ' watching ' "$ILOG" ||
			! compgen -G "$CUSTOS_STORE/tmp/blob-*" >/dev/null; } && [ "$(now_ms)" -lt $end ]; do
			sleep 0.005
		done
	fi
	[ "$(now_ms)" -ge $end ] && KIND="$KIND-timeout"
	sleep_ms $jitter
}

start_daemon() {
	flush_log
	daemon_start "$CONF" "$ILOG"
}

n_ingested() { [ "$(ledger_size)" -ge "$1" ]; }
inbox_files() { find "$IN" -type f | grep -c .; }
all_in() {
	n_ingested $NFILES || return 1
	if [ "$RELEASE" = delete ] && [ "$(inbox_files)" -ne 0 ]; then return 1; fi
	daemon_idle
}

# ledger_report FROM: counts the ledger events from seq FROM on, by kind,
# and the items' digests, into $WORK/ledger.{kinds,shas}.
ledger_report() {
	"$CUSTOS" log --json | python3 -c '
import json, sys
evs = [e for e in json.load(sys.stdin) if e["seq"] >= int(sys.argv[1])]
kinds = {}
with open(sys.argv[2] + ".shas", "w") as f:
    for e in evs:
        kinds[e["event"]] = kinds.get(e["event"], 0) + 1
        if e["event"] == "ingest":
            f.write("%s %d\n" % (e["item"]["sha256"], e["item"]["size"]))
with open(sys.argv[2] + ".kinds", "w") as f:
    for k in sorted(kinds):
        f.write("%s %d\n" % (k, kinds[k]))' "$1" "$WORK/ledger"
}

# secured_and_idle SHA256: an item has these bytes and custosd is idle.
secured_and_idle() {
	"$CUSTOS" find --sha256 "$1" --json 2>/dev/null | grep -q '"sha256":' && daemon_idle
}

# truncate_test: a large file is truncated by another process while custosd
# copies it (the truncation is triggered by custosd's temp blob appearing).
truncate_test() {
	local base orig final keep r how gone=0 n bad
	base=$(ledger_size)
	head -c $TRUNC_SIZE /dev/urandom >"$WORK/trunc.src"
	keep=$((1048576 + RANDOM * 8))
	orig=$(sha256sum <"$WORK/trunc.src" | cut -c1-64)
	final=$(head -c $keep "$WORK/trunc.src" | sha256sum | cut -c1-64)
	python3 - "$IN/trunc.bin" "$CUSTOS_STORE/tmp" "$keep" "$RANDOM" >"$WORK/trunc.out" <<'PY' &
import os, random, sys, time
path, tmpdir, keep, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
random.seed(seed)
seen = False
end = time.time() + 30
while time.time() < end and not seen:
    try:
        seen = any(n.startswith("blob-") for n in os.listdir(tmpdir))
    except FileNotFoundError:
        pass
    if not seen:
        time.sleep(0.001)
time.sleep(random.uniform(0, 0.02))
try:
    fd = os.open(path, os.O_WRONLY)
except FileNotFoundError:
    print("gone", "during-copy" if seen else "copy-not-seen")
else:
    os.ftruncate(fd, keep)
    os.close(fd)
    print("truncated", "during-copy" if seen else "copy-not-seen")
PY
	TRUNCPID=$!
	cp "$WORK/trunc.src" "$IN/.trunc.bin"
	mv "$IN/.trunc.bin" "$IN/trunc.bin"
	wait $TRUNCPID
	read -r r how <"$WORK/trunc.out"
	echo "# truncation: $r ($how)"
	if [ "$r" != truncated ]; then
		final=$orig # released and deleted before the truncation: the original is final
		gone=1
	fi
	wait_until $WAIT_S secured_and_idle "$final"
	t_ok $? "$MODE: a file truncated while custosd reads it ends secured in its final form"
	daemon_running && daemon_status | grep -q '"ok": true'
	t_ok $? "$MODE: custosd still runs and answers after the truncation"
	n=$("$CUSTOS" find --sha256 "$final" --json | grep -c '"sha256":')
	t_ok $([ "$n" -eq 1 ] && echo 0 || echo 1) "$MODE: the final form is one item ($n)"
	ledger_report $base
	bad=$(cut -d' ' -f1 "$WORK/ledger.shas" | grep -v -e "$orig" -e "$final" | grep -c .)
	t_ok $([ "$bad" -eq 0 ] && ! grep -qv '^ingest ' "$WORK/ledger.kinds" && echo 0 || echo 1) \
		"$MODE: no record matches neither version of the truncated file"
	if [ "$bad" -ne 0 ] || grep -qv '^ingest ' "$WORK/ledger.kinds"; then
		sed 's/^/#   /' "$WORK/ledger.kinds" "$WORK/ledger.shas"
		echo "#   original $orig, truncated $final"
	fi
	echo "# truncation records: $(cut -d' ' -f1 "$WORK/ledger.shas" |
		sed "s/$orig/original/; s/$final/final/" | tr '\n' ' ')"
	if [ "$RELEASE" = delete ]; then
		[ ! -e "$IN/trunc.bin" ]
		t_ok $? "$MODE: the truncated file is deleted once its final form is secured"
	elif [ $gone = 0 ]; then
		[ "$(sha256sum <"$IN/trunc.bin" | cut -c1-64)" = "$final" ]
		t_ok $? "$MODE: the truncated file stays in the inbox"
	fi
}

run_mode() {
	MODE=$1 RELEASE=$1
	export CUSTOS_STORE="$WORK/store-$MODE"
	IN="$WORK/inbox-$MODE"
	SRC="$WORK/src-$MODE"
	MAN="$WORK/manifest-$MODE"
	CONF="$WORK/custosd-$MODE.conf"
	DLOG="$WORK/daemon-$MODE.log"
	ILOG="$WORK/daemon-run.log"
	local t0 i style rel size sha slp k unexpected=0 missing=0 wrong=0 bad n out
	t0=$(now_s)
	mkdir -p "$IN/sub"
	daemon_conf "$CONF" DKILL inbox "$IN" settle_seconds=1 rescan_seconds=1 concurrency=4 release="$RELEASE"
	make_files "$MODE"
	echo "# $MODE: $NFILES files, $(awk '{s += $4} END {print s}' "$MAN") bytes"

	# Files present before the first start are taken at start.
	while read -r i style rel size sha slp; do
		[ "$i" -le $NPRE ] && put_file "$style" "$SRC/$i" "$IN/$rel"
	done <"$MAN"
	start_daemon
	t_ok $? "$MODE: custosd creates the store and starts"
	wait_until $WAIT_S n_ingested $NPRE
	t_ok $? "$MODE: the $NPRE files present before custosd started are taken at start"
	daemon_kill

	# The writer runs while custosd is killed and restarted.
	writer &
	WPID=$!
	kinds=
	for k in $(seq $KILLS); do
		spawn
		kill_moment
		if daemon_running; then
			daemon_kill
			kinds="$kinds $KIND:$(($(now_ms) - SPAWNED))ms/$(grep -c ' secured ' "$ILOG")"
		else
			wait $DPID
			echo "# custosd exited on its own (status $?) before kill $k; its log:"
			sed 's/^/#   /' "$ILOG" | tail -5
			unexpected=$((unexpected + 1))
		fi
	done
	wait $WPID
	flush_log
	echo "# $MODE: kill phase ended at +$(($(now_s) - t0)) s"
	echo "# kills (moment:ms after spawn/files secured by that run):$kinds"
	t_ok $unexpected "$MODE: custosd was killed $KILLS times while files arrived (none exited on its own)"
	echo "# $MODE: $(ledger_size) ledger events after the kills; $(grep -c 'changed while' "$DLOG") re-reads found a change, $(grep -c 'orphans/' "$DLOG") orphan blobs"

	start_daemon
	t_ok $? "$MODE: custosd restarts after the last kill"
	wait_until $WAIT_S all_in
	t_ok $? "$MODE: after the restart every file is taken ($(ledger_size) ledger events)"
	# A rescan and a settle time more: nothing more may be taken.
	sleep 2.5
	daemon_idle
	t_ok $? "$MODE: custosd is idle afterwards"

	ledger_report 0
	n=$(grep -c . "$WORK/ledger.shas")
	sort -u "$WORK/ledger.shas" >"$WORK/ledger.shas.u"
	t_ok $([ "$n" -eq $NFILES ] && [ "$(grep -c . "$WORK/ledger.kinds")" -eq 1 ] && echo 0 || echo 1) \
		"$MODE: the ledger holds exactly $NFILES events, all ingest (nothing taken twice)"
	if [ "$n" -ne $NFILES ] || [ "$(grep -c . "$WORK/ledger.kinds")" -ne 1 ]; then
		sed 's/^/#   events: /' "$WORK/ledger.kinds"
	fi
	while read -r i style rel size sha slp; do
		out=$("$CUSTOS" find --sha256 "$sha" --json 2>/dev/null)
		if [ "$(printf '%s\n' "$out" | grep -c '"sha256":')" -ne 1 ] ||
			! printf '%s\n' "$out" | grep -q "\"size\": $size,\$"; then
			[ $missing -lt 5 ] && echo "#   $rel ($style, $size bytes, $sha): $(printf '%s' "$out" | tr -d '\n ')"
			missing=$((missing + 1))
		fi
	done <"$MAN"
	t_ok $missing "$MODE: custos find --sha256 gives one item of the right size for each of the $NFILES files ($missing not)"
	cut -d' ' -f5,4 "$MAN" | awk '{print $2, $1}' | sort >"$WORK/want.shas"
	wrong=$(comm -13 "$WORK/want.shas" "$WORK/ledger.shas.u" | grep -c .)
	t_ok $wrong "$MODE: no record has bytes that were never a whole file ($wrong do)"
	[ "$wrong" -ne 0 ] && comm -13 "$WORK/want.shas" "$WORK/ledger.shas.u" | head -5 | sed 's/^/#   /'

	if [ "$RELEASE" = keep ]; then
		bad=$(sources_changed "$MAN" "$IN")
		t_ok $bad "$MODE: every source is still in the inbox, unchanged ($bad not)"
	else
		n=$(inbox_files)
		t_ok $n "$MODE: every source is gone from the inbox ($n left), each secured first"
		[ "$n" -ne 0 ] && find "$IN" -type f | head -5 | sed 's/^/#   /'
	fi

	echo "# $MODE: checks of the $NFILES files ended at +$(($(now_s) - t0)) s"
	truncate_test
	echo "# $MODE: truncation test ended at +$(($(now_s) - t0)) s"

	if [ "$RELEASE" = keep ]; then
		t_clean_stop "$MODE" "$CONF" "$ILOG" # and a clean restart takes nothing
	else
		t_clean_stop "$MODE"
	fi
	t_run "$MODE: custos verify passes" "$CUSTOS" verify
	flush_log
	t_no_sanitizer "$MODE: no sanitizer report in custosd's log" "$DLOG"
	echo "# $MODE took $(($(now_s) - t0)) s"
}

KILLS=$(((KILLS_TOTAL + 1) / 2))
run_mode keep
KILLS=$((KILLS_TOTAL / 2))
run_mode delete
# (its row of the reliability table: kills, failed checks)
echo "# daemon-kill: $KILLS_TOTAL runs, $T_FAILED failures (kills over 2 modes of 200 files)"
t_done
