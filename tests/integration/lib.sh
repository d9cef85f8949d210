# Shared helpers for custos's integration tests (sourced, POSIX sh + bash).
# Each test script prints TAP: `ok N - ...` / `not ok N - ...`, then `1..N`.
# Environment from meson: CUSTOS (the CLI), CUSTOS_FP (the crash-point CLI),
# CUSTOS_SRC (source root). Each test gets its own scratch directory, removed
# at exit unless KEEP=1.
set -u
: "${CUSTOS:?CUSTOS must point at the custos binary}"
T_N=0
T_FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/custos-test.XXXXXX")
export CUSTOS_STORE="$WORK/store"
trap 't_cleanup' EXIT

t_cleanup() {
	status=$?
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $WORK"
	else
		rm -rf "$WORK"
	fi
	return $status
}

# ok COND-EXIT-STATUS DESCRIPTION: record a test result.
t_ok() {
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}

# t_run DESCRIPTION CMD...: passes when CMD exits 0.
t_run() {
	d=$1
	shift
	"$@" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	t_ok $rc "$d"
	if [ $rc -ne 0 ]; then
		sed 's/^/#   /' "$WORK/last.err" | head -20
	fi
	return $rc
}

# t_status WANT DESCRIPTION CMD...: passes when CMD exits with WANT.
t_status() {
	want=$1
	d=$2
	shift 2
	"$@" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	if [ $rc -eq "$want" ]; then
		t_ok 0 "$d"
	else
		t_ok 1 "$d (exit $rc, wanted $want)"
		sed 's/^/#   /' "$WORK/last.err" | head -20
	fi
}

# t_grep DESCRIPTION PATTERN FILE: passes when FILE contains PATTERN (grep -E).
t_grep() {
	if grep -Eq -- "$2" "$3"; then
		t_ok 0 "$1"
	else
		t_ok 1 "$1"
		echo "#   pattern '$2' not found in:"
		sed 's/^/#   /' "$3" | head -20
	fi
}

t_done() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
}

# need_python3: skips the whole test when there is no python3.
need_python3() {
	if ! command -v python3 >/dev/null 2>&1; then
		echo "1..0 # SKIP needs python3"
		exit 0
	fi
}

# rgw_up: a real S3 server (Ceph RGW, tests/s3/rgw.sh) in $WORK/rgw, its
# settings sourced from s3.env; RGW is its directory. Skips the test when the
# packages are missing and cannot be installed (not root); installs them when
# they can be (RGW_INSTALL). If it does not start: one failing test point with
# its log, and exit. The caller's EXIT trap calls rgw_down.
rgw_up() {
	if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null ||
		! command -v ceph-osd >/dev/null; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "1..0 # SKIP ceph-mon, ceph-osd and radosgw are not installed (scripts/setup.sh as root)"
			exit 0
		fi
		export RGW_INSTALL=1 # installable: install them rather than skip
	fi
	RGW="$WORK/rgw"
	if ! timeout 600 "$CUSTOS_SRC/tests/s3/rgw.sh" up "$RGW" >"$WORK/rgw-up.log" 2>&1; then
		t_ok 1 "the S3 server (Ceph RGW) starts"
		sed 's/^/#   /' "$WORK/rgw-up.log" | tail -20
		t_done
		exit 1
	fi
	. "$RGW/s3.env"
	s3_helpers
}

# s3_helpers (run by rgw_up) defines, for the server of rgw_up:
#   s3 METHOD PATH [curl args...]: a SigV4-signed request (under $T if set);
#     prints the body, then the HTTP status on the last line. A body sent
#     needs its x-amz-content-sha256; s3e sends the empty body's.
#   status: the last line (the status) of s3's output.
#   conf FILE BUCKET [more lines]: a [remote] config for BUCKET (prefix st,
#     5 MiB parts, 2 retries), with the credentials file $WORK/creds.
s3_helpers() {
	EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
	s3() {
		local m=$1 p=$2
		shift 2
		${T:-} curl -s -X "$m" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
			--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@" \
			-w '\n%{http_code}' "$S3_ENDPOINT/$p"
	}
	s3e() { s3 "$1" "$2" -H "x-amz-content-sha256: $EMPTY" "${@:3}"; }
	status() { tail -n1; }
	printf 'access_key = %s\nsecret_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/creds"
	chmod 600 "$WORK/creds"
	conf() {
		local f=$1 b=$2
		shift 2
		{
			echo "[remote]"
			echo "endpoint = $S3_ENDPOINT"
			echo "bucket = $b"
			echo "prefix = st"
			echo "credentials = $WORK/creds"
			echo "part_size = 5M"
			echo "retries = 2"
			for l in "$@"; do echo "$l"; done
		} >"$f"
	}
}
rgw_down() { [ -n "${RGW:-}" ] && timeout 120 "$CUSTOS_SRC/tests/s3/rgw.sh" down "$RGW" >/dev/null 2>&1; }

# asan_allow_preload: an LD_PRELOAD library (an interposer, libfaketime) may
# go ahead of libasan in the sanitizer build.
asan_allow_preload() { export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }
now_s() { date +%s; }
sleep_ms() { sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"; }
digest() { sha256sum "$1" | cut -c1-64; }
# flip_byte FILE OFFSET: inverts every bit of the byte at OFFSET (always a change; writing a
# fixed byte is no change when the byte was that already, 1 in 256 for random data).
flip_byte() {
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}
# id_of NAME: the id of the item first ingested as NAME (a path ending in /NAME).
id_of() {
	"$CUSTOS" log --json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    n = e["item"]["name"] if e["event"] == "ingest" else ""
    if n == sys.argv[1] or n.endswith("/" + sys.argv[1]):
        print(e["item"]["id"]); break' "$1"
}

# wait_until SECONDS CMD...: runs CMD every $WAIT_POLL s (default 0.1) until
# it succeeds; fails once SECONDS (at least) have passed without.
wait_until() {
	local end=$((SECONDS + $1 + 1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep "${WAIT_POLL:-0.1}"
	done
}

# ---- one TAP line per run, with every problem found in it ----
# The checks of a run call `fail MESSAGE`; `report DESCRIPTION` then prints
# one TAP line for the run with the messages, and starts a new list.
ERRS=()
RUNS=0
FAILURES=0
fail() { ERRS+=("$*"); }
# report DESCRIPTION: counts RUNS and FAILURES. On a failure it also shows
# the file REPORT_EXTRA (if set), and with KEEP=1 keeps copies of KEEP_PATHS
# (default: the store) in $WORK/failed-N.
report() {
	local e
	RUNS=$((RUNS + 1))
	if [ ${#ERRS[@]} -eq 0 ]; then
		t_ok 0 "$1"
	else
		FAILURES=$((FAILURES + 1))
		t_ok 1 "$1"
		for e in "${ERRS[@]}"; do echo "#   $e"; done
		[ -n "${REPORT_EXTRA:-}" ] && [ -f "$REPORT_EXTRA" ] && sed 's/^/#   | /' "$REPORT_EXTRA" | head -20
		if [ "${KEEP:-0}" = 1 ]; then
			mkdir -p "$WORK/failed-$T_N"
			cp -a "${KEEP_PATHS[@]:-$CUSTOS_STORE}" "$WORK/failed-$T_N/" 2>/dev/null
		fi
	fi
	ERRS=()
}

# ---- the store under test ($CUSTOS_STORE): batches and checks ----

# set_batch NAME FILE...: the files of a scenario in ingest order (FILES, N)
# and their "path sha256 size" lines in the file $BATCH.
set_batch() {
	local f
	BATCH="$WORK/$1.batch"
	shift
	FILES=("$@")
	N=${#FILES[@]}
	: >"$BATCH"
	for f in "${FILES[@]}"; do
		echo "$f $(digest "$f") $(stat -c %s "$f")" >>"$BATCH"
	done
}

ledger_size() { "$CUSTOS" log --store "$CUSTOS_STORE" 2>/dev/null | grep -c .; }

# n_events: the number of ledger events, as custos log --json lists them
# (0 when it fails); events_at_least N: there are N or more.
n_events() {
	"$CUSTOS" log --store "$CUSTOS_STORE" --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0
}
events_at_least() { [ "$(n_events)" -ge "$1" ]; }

# catalog_digests: the digest of every item (from its ingest event), sorted.
catalog_digests() {
	"$CUSTOS" log --store "$CUSTOS_STORE" --json | sed -n 's/^ *"sha256": "\([0-9a-f]*\)".*/\1/p' | sort
}

# run_verify WHEN: custos verify passes.
run_verify() {
	"$CUSTOS" verify --store "$CUSTOS_STORE" >"$WORK/verify.out" 2>&1 ||
		fail "$1: custos verify failed: $(head -3 "$WORK/verify.out" | tr '\n' ' ')"
}

# store_consistent WHEN [DIGESTS]: after a writer ran: tmp/ empty, objects/
# holds exactly the blobs of the catalog (the sorted digests in the file
# DIGESTS; default: catalog_digests), orphans/ only whole blobs named by
# their digest.
store_consistent() {
	local when=$1 left f d s=$CUSTOS_STORE
	left=$(ls -A "$s/tmp" 2>/dev/null)
	[ -z "$left" ] || fail "$when: tmp/ not empty: $(echo $left)"
	d=$(diff <(if [ -n "${2:-}" ]; then cat "$2"; else catalog_digests; fi) \
		<(find "$s/objects/sha256" -type f -printf '%f\n' | sort) | grep '^[<>]')
	[ -z "$d" ] || fail "$when: catalog and objects/ differ (< record without blob, > blob without record): $(echo $d | head -c 300)"
	if [ -d "$s/orphans" ]; then
		for f in "$s"/orphans/*; do
			[ -e "$f" ] || continue
			[ "$(digest "$f")" = "${f##*/}" ] || fail "$when: orphans/${f##*/} does not hold the bytes its name says"
		done
	fi
}

# recover L_RO: the first writer after a crash (custos checkpoint) recovers
# the store: it succeeds (its stderr in $WORK/recover.err), indexes at most
# the events of the one commit the catalog can lack (L_RO: the ledger's
# events before it; a group commit holds at most the $N files of the
# scenario), and signs a checkpoint of the whole ledger. Sets L_REC.
recover() {
	local cp_size
	"$CUSTOS" checkpoint >"$WORK/cp.out" 2>"$WORK/recover.err" ||
		fail "custos checkpoint (recovery) failed: $(head -3 "$WORK/recover.err" | tr '\n' ' ')"
	L_REC=$(ledger_size)
	[ $((L_REC - $1)) -ge 0 ] && [ $((L_REC - $1)) -le "${N:-1}" ] ||
		fail "recovery changed the ledger from $1 to $L_REC events (at most one commit's ${N:-1} unindexed events can exist)"
	cp_size=$(sed -n 2p "$WORK/cp.out")
	[ "$cp_size" = "$L_REC" ] || fail "the checkpoint covers '$cp_size' events, the ledger has $L_REC"
}

# make_template STATION: the store $TPL ($WORK/template) with two items
# ($IN/prior1, $IN/prior2, case $CASE) and a checkpoint; L_T is the number of
# its ledger events, the file TPL_PRESENT its digests.
make_template() {
	TPL="$WORK/template"
	"$CUSTOS" init --store "$TPL" --station "$1" >/dev/null || { echo "Bail out! init failed"; exit 1; }
	head -c 5000 /dev/urandom >"$IN/prior1"
	head -c 70000 /dev/urandom >"$IN/prior2"
	t_run "template: two items stored" "$CUSTOS" ingest --store "$TPL" "$IN/prior1" "$IN/prior2" --case "$CASE"
	L_T=$(CUSTOS_STORE="$TPL" ledger_size)
	TPL_PRESENT="$WORK/template.present"
	CUSTOS_STORE="$TPL" catalog_digests >"$TPL_PRESENT"
}

# base_recovered KIND: after the recovery of a crashed base store of KIND,
# E_REC (the events of its crashed ingest) is right: unindexed (the event was
# durable in the ledger, not in the catalog): it is kept; orphan (the blob
# was linked, no event written): it made no item.
base_recovered() {
	if [ "$1" = unindexed ] && [ "$E_REC" -ne 1 ]; then
		fail "the durable ledger event of the crashed ingest was lost"
	fi
	if [ "$1" = orphan ] && [ "$E_REC" -ne 0 ]; then
		fail "an orphan blob became an item without its ingest"
	fi
}

# crash_points LAST DENSE STRIDE TAIL: the crash points of 1..LAST to try:
# all up to DENSE, then every STRIDE-th and the last TAIL; every one with
# CRASH_POINTS_ALL=1.
crash_points() {
	local k
	for ((k = 1; k <= $1; k++)); do
		if [ "${CRASH_POINTS_ALL:-0}" = 1 ] || [ $k -le "$2" ] || [ $(((k - $2) % $3)) -eq 0 ] ||
			[ $k -gt $(($1 - $4)) ]; then
			echo $k
		fi
	done
}

# ---- an interrupted ingest of $BATCH: what it left (crash-kill, crash-points) ----

# state: reads the ledger once (LOG: "event<TAB>id" per event; L: their
# number) and every item of the case $CASE once (CNT[sha256]: items with
# those bytes; SIZE[sha256]; the digests, sorted, in $WORK/catalog).
state() {
	local sha size
	declare -gA CNT=() SIZE=()
	mapfile -t LOG < <("$CUSTOS" log | cut -f3,4)
	L=${#LOG[@]}
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

# check_reported OUT WHEN (after state): every file that `custos ingest`
# printed as secured (OUT: its stdout, "id<TAB>sha256<TAB>name" lines) is in
# the store: an item of the case with those bytes, and an event of the
# ledger names that id. Nothing is reported before its batch is durable, so
# a crash anywhere must pass this, before recovery and after.
check_reported() {
	local id sha rest
	local -A ids=()
	for rest in "${LOG[@]}"; do ids[${rest#*	}]=1; done
	[ -f "$1" ] || return 0
	while IFS=$'\t' read -r id sha rest; do
		[ -n "$sha" ] || continue
		[ "${CNT[$sha]:-0}" -ge 1 ] && [ -n "${ids[$id]:-}" ] ||
			fail "$2: ${rest%%	*} was reported secured as $id but is not in the store"
	done <"$1"
}

# by_sha SHA SIZE: the digest index agrees: `find --sha256` gives one item of that size.
by_sha() {
	local out
	out=$("$CUSTOS" find --sha256 "$1" 2>/dev/null)
	[ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] && [ "$(printf '%s\n' "$out" | cut -f5)" = "$2" ]
}

# check_prefix WHEN FROM PRESENT_FILE (after state): the ledger events from
# seq FROM on must be exactly one per file of $BATCH for the first E files,
# in order (ingest, or sighting for bytes already stored; ids of station
# $ST), and each file must be stored iff its bytes were stored before
# (PRESENT_FILE) or are among those first E files. Sets E. With BYSHA=1 it
# also asks the digest index for every stored file.
check_prefix() {
	local when=$1 from=$2 present=$3 i=0 name sha size ev want
	local -A have=()
	local -a evs=()
	while read -r sha; do have[$sha]=1; done <"$present"
	evs=("${LOG[@]:$from}")
	E=${#evs[@]}
	[ "$E" -le "$N" ] || fail "$when: $E new ledger events for $N files"
	while read -r name sha size; do
		if [ $i -lt "$E" ]; then
			if [ -n "${have[$sha]:-}" ]; then want="sighting"; else want="ingest"; fi
			want="$want	$ST-${sha:0:20}"
			ev=${evs[$i]}
			[ "$ev" = "$want" ] || fail "$when: ledger event $((from + i)) is '$ev', expected '$want' for ${name##*/}"
			have[$sha]=1
		fi
		i=$((i + 1))
	done <"$BATCH"
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
	done <"$BATCH"
}

# rerun_batch L_REC (after recover and state): the same ingest of $FILES run
# again completes the batch: exactly one new event per file, in order; verify
# passes and the store is consistent. Its stdout is in $WORK/rerun.out.
rerun_batch() {
	cp "$WORK/catalog" "$WORK/present.rec"
	"$CUSTOS" ingest "${FILES[@]}" --case "$CASE" >"$WORK/rerun.out" 2>"$WORK/rerun.err" ||
		fail "re-running the ingest failed: $(head -3 "$WORK/rerun.err" | tr '\n' ' ')"
	state
	[ "$L" -eq $(($1 + N)) ] || fail "after the re-run the ledger has $L events, expected $1 + $N"
	check_prefix "after the re-run" "$1" "$WORK/present.rec"
	[ "$E" -eq "$N" ] || fail "the re-run left $E events for $N files"
	run_verify "verify after the re-run"
	store_consistent "after the re-run" "$WORK/catalog"
}

# ---- custosd ----
# A test runs one custosd at a time: DPID is its pid, DRC its exit status
# once stopped; its control socket is $CUSTOS_STORE/custosd.sock.

# daemon_conf FILE STATION inbox|docks DIR [KEY=VALUE...]: writes a custosd
# configuration to FILE: the store $CUSTOS_STORE with STATION, watching DIR as
# an upload directory (inbox) or a dock root (docks), with the [ingest]
# settings KEY = VALUE.
daemon_conf() {
	local f=$1 station=$2 kind=$3 dir=$4 kv
	shift 4
	{
		printf '[store]\nroot = %s\nstation = %s\n' "$CUSTOS_STORE" "$station"
		if [ "$kind" = docks ]; then printf '[docks]\nroot = %s\n' "$dir"; else printf '[inbox]\ndir = %s\n' "$dir"; fi
		echo '[ingest]'
		for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
	} >"$f"
}

# daemon_spawn CONF LOG [NAME=VALUE...]: starts custosd ($DAEMON_BIN, default
# $CUSTOSD) with the configuration CONF and NAME=VALUE in its environment,
# its output appended to LOG. A socket left by a killed run is removed first.
daemon_spawn() {
	local conf=$1 log=$2
	shift 2
	[ -S "$CUSTOS_STORE/custosd.sock" ] && rm -f "$CUSTOS_STORE/custosd.sock"
	env "$@" "${DAEMON_BIN:-$CUSTOSD}" --config "$conf" >>"$log" 2>&1 &
	DPID=$!
}

# daemon_start CONF LOG [NAME=VALUE...]: daemon_spawn, then waits up to 10 s
# for the control socket; fails if it does not appear or custosd exits first.
daemon_start() {
	local i
	daemon_spawn "$@"
	for ((i = 0; i < 500; i++)); do
		[ -S "$CUSTOS_STORE/custosd.sock" ] && return 0
		daemon_running || return 1
		sleep 0.02
	done
	return 1
}

# daemon_running: custosd (DPID, a child of this shell) has not exited.
daemon_running() {
	local st
	[ -n "${DPID:-}" ] || return 1
	{ read -r st <"/proc/$DPID/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	set -- $st
	[ "$1" != Z ] && [ "$2" = "$$" ]
}

# daemon_stop [SECONDS]: SIGTERM to custosd (if it still runs), and its exit
# status in DRC. One that has not exited after SECONDS (default 60) is
# killed (DRC 137) and daemon_stop fails.
daemon_stop() {
	local i s=${1:-60}
	daemon_running && kill -TERM "$DPID"
	for ((i = 0; i < s * 10; i++)); do
		daemon_running || break
		sleep 0.1
	done
	if daemon_running; then
		echo "# custosd did not stop within $s s of SIGTERM: killed"
		kill -KILL "$DPID"
		wait "$DPID" 2>/dev/null
		DRC=$?
		return 1
	fi
	wait "$DPID" 2>/dev/null
	DRC=$?
}

# daemon_kill: SIGKILL to custosd (if it still runs); returns its exit status.
daemon_kill() {
	daemon_running && kill -KILL "$DPID"
	wait "$DPID" 2>/dev/null
}

# daemon_status [idle]: custosd's answer to "status" on its control socket
# (JSON, sorted keys); with "idle", succeeds only when nothing is queued, in
# progress or settling.
daemon_status() {
	python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b"{\"cmd\":\"status\"}\n")
st = json.loads(s.makefile().readline())
print(json.dumps(st, sort_keys=True))
if len(sys.argv) > 2:
    sys.exit(0 if [st.get(k) for k in ("queued", "in_progress", "waiting_to_settle")] == [0, 0, 0] else 1)' \
		"$CUSTOS_STORE/custosd.sock" "$@" 2>/dev/null
}
daemon_idle() { daemon_status idle >/dev/null; }

# t_clean_stop PREFIX [CONF LOG]: SIGTERM stops custosd with exit 0, and
# tmp/ is empty after. With CONF and LOG, custosd is started again with them:
# after a rescan and a settle time it has taken no file again (no new ledger
# event since before the stop), and SIGTERM stops it cleanly again.
t_clean_stop() {
	local p=${1:+$1: } before n
	before=$(ledger_size)
	daemon_stop
	t_ok "$DRC" "${p}SIGTERM stops custosd cleanly (exit 0)"
	n=$(find "$CUSTOS_STORE/tmp" -mindepth 1 | grep -c .)
	t_ok "$n" "${p}tmp/ is empty after the clean stop ($n left)"
	[ $# -ge 3 ] || return 0
	daemon_start "$2" "$3"
	sleep 2.5
	wait_until 30 daemon_idle
	n=$(($(ledger_size) - before))
	t_ok "$n" "${p}a clean restart takes no released file again ($n new events)"
	daemon_stop
	t_ok "$DRC" "${p}SIGTERM stops custosd cleanly again (exit 0)"
}

SANITIZER_RE='AddressSanitizer|LeakSanitizer|runtime error:'
# t_no_sanitizer DESCRIPTION LOG: LOG holds no sanitizer report (else it is shown).
t_no_sanitizer() {
	if grep -Eq "$SANITIZER_RE" "$2"; then
		t_ok 1 "$1"
		grep -E -A12 "$SANITIZER_RE" "$2" | head -40 | sed 's/^/#   /'
	else
		t_ok 0 "$1"
	fi
}

# flush_log (while no custosd runs): the current run's log $ILOG is appended
# to the log of all runs $DLOG, and emptied.
flush_log() {
	cat "$ILOG" >>"$DLOG" 2>/dev/null
	: >"$ILOG"
}

inbox_empty() { [ -z "$(ls -A "$1")" ]; }

# drop_file DIR NAME SIZE SUMS: NAME, SIZE random bytes, appears in DIR at
# once, complete (written aside, then renamed in); "sha256 NAME" is appended
# to the file SUMS.
drop_file() {
	head -c "$3" /dev/urandom >"$WORK/.drop"
	echo "$(digest "$WORK/.drop") $2" >>"$4"
	mv "$WORK/.drop" "$1/$2"
}

# put_file STYLE SRC DEST: one file arrives in an upload directory: written
# in place (inplace), in place in two parts 0.2 s apart (inplace2), or under
# a temporary name, renamed in (rename-dot, rename-part).
put_file() {
	local half
	case $1 in
	inplace) cat "$2" >"$3" ;;
	inplace2)
		# Two parts 0.2 s apart, less than the settle time: taken complete.
		half=$(($(stat -c %s "$2") / 2))
		head -c "$half" "$2" >"$3"
		sleep 0.2
		tail -c +$((half + 1)) "$2" >>"$3"
		;;
	rename-dot)
		cp "$2" "$(dirname "$3")/.$(basename "$3")"
		mv "$(dirname "$3")/.$(basename "$3")" "$3"
		;;
	rename-part)
		cp "$2" "$3.part"
		mv "$3.part" "$3"
		;;
	esac
}

# sources_changed MANIFEST DIR: how many files of MANIFEST ("index style
# rel size sha256 ..." lines) are not in DIR/rel with their bytes.
sources_changed() {
	local i style rel size sha rest bad=0
	while read -r i style rel size sha rest; do
		[ "$(sha256sum <"$2/$rel" 2>/dev/null | cut -c1-64)" = "$sha" ] || bad=$((bad + 1))
	done <"$1"
	echo $bad
}
