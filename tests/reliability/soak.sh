#!/bin/bash
# Soak: custosd killed with SIGKILL at random moments while 500 files arrive
# in its upload directory (DESIGN invariants 1, 2, 3; release = keep).
# The files: one empty, three of 1 B, three each of 65,535, 65,536 and
# 65,537 B (around the 64 KiB buffers), a few of some MB, one large file
# (256 MB; 16 MB with CUSTOS_ASAN=1) and the rest of
# some bytes to some hundred KB, every one with unique bytes. A writer puts
# them into the inbox over the kill phase (in place, in place in two parts,
# or renamed in; some in a subdirectory; the large one while the run after
# a tenth of the kills is starting) while custosd is killed and restarted
# 100 times (1,000 with NIGHTLY=1;
# SOAK_KILLS=n sets it). Each kill waits for a moment of one kind:
#   time    a random time after the start (start-up, recovery, settling);
#   secured a few ms after this run's Nth file was secured;
#   copy    a few ms after a blob copy began;
#   large   the large file's blob copy has reached a random fraction of it
#           (its temp blob in tmp/ is that big): right in the copy, or at
#           its fsync; or its blob is linked and the re-read or the release
#           is under way (large-reread).
# The kills after the large file arrives are all aimed at its copy until
# 20 have landed in it (100 with NIGHTLY=1), then five at its re-read
# (while it is not secured); then its ingest may complete. How many aimed
# kills land depends on the machine's speed (a run slow to start may reach
# its deadline first), so the kill phase goes on past its 100 kills until
# the 20 have landed, up to twice as many kills. Then custosd is started once more and left to finish;
# every one of the 500 files is secured exactly once: `custos find --sha256`
# gives one item of the right size for each, the ledger holds exactly 500
# events, all ingests (a sighting would be a file taken twice) with the
# files' digests; no re-read found a change in a file that arrived complete
# (renamed in); every source is still in the inbox, unchanged; SIGTERM
# exits 0 and leaves tmp/ empty; a clean restart takes nothing again;
# `custos verify` passes; every blob an interrupted ingest left (moved to
# orphans/) is whole and is one of the files; custosd's log has no
# sanitizer report.
# CRASH_SEED repeats the random choices (timing still varies).
# Prints "# soak: runs N, failures M": N kills, M failed checks.
. "$(dirname "$0")/../integration/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
asan_allow_preload
need_python3
WAIT_POLL=0.2 # (all_in reads the whole ledger)

SEED=${CRASH_SEED:-$(($(date +%s) % 32768))}
RANDOM=$SEED
NFILES=500
MB=$((1 << 20))
if [ "${NIGHTLY:-0}" = 1 ]; then
	KILLS=${SOAK_KILLS:-1000} LARGE=$((256 * MB)) LARGE_QUOTA=100
else
	KILLS=${SOAK_KILLS:-100} LARGE=$((256 * MB)) LARGE_QUOTA=20
fi
if [ "${CUSTOS_ASAN:-0}" = 1 ]; then
	LARGE=$((16 * MB)) MBFILES=3 MBSPAN=$((2 * MB)) TIME_SPAN=2400 DEADLINE=7000 SHORT_DEADLINE=3000 WAIT_S=240
else
	MBFILES=6 MBSPAN=$((4 * MB)) TIME_SPAN=2000 DEADLINE=5000 SHORT_DEADLINE=2500 WAIT_S=120
fi
[ "$LARGE_QUOTA" -gt $((KILLS / 3)) ] && LARGE_QUOTA=$((KILLS / 3))
# A temp blob bigger than any other file is the large file's.
THRESH=$((MBSPAN + 2 * MB))
echo "# seed $SEED (CRASH_SEED=$SEED repeats the random choices); $KILLS kills, large file $((LARGE / MB)) MB"

WORK=$(realpath "$WORK")
S="$WORK/store"
export CUSTOS_STORE="$S"
IN="$WORK/inbox"
SRC="$WORK/src"
MAN="$WORK/manifest" # "index style rel size sha256 when_ms" per file
CONF="$WORK/custosd.conf"
DLOG="$WORK/daemon.log" # every run's log
ILOG="$WORK/run.log"    # the current run's log
mkdir -p "$IN/sub" "$SRC"
daemon_conf "$CONF" SOAK inbox "$IN" settle_seconds=1 rescan_seconds=1 concurrency=4 release=keep

T0=$(now_s)

# ---- the files: made once in $SRC, with their manifest ----
# They arrive over about 80% of the kill phase (a kill cycle takes some
# 1.3 s), the large one at about a tenth of it.
PHASE_MS=$((KILLS * 1300 * 8 / 10))
python3 - "$SRC" "$MAN" "$SEED" "$NFILES" "$LARGE" "$MBFILES" "$MBSPAN" "$PHASE_MS" <<'EOF'
import hashlib, os, random, sys
src, man, seed, n, large, mbfiles, mbspan, phase = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
rnd = random.Random(seed)
MB = 1 << 20
sizes = [0, 1, 1, 1] + [65535] * 3 + [65536] * 3 + [65537] * 3
sizes += [MB + rnd.randrange(mbspan - MB) for _ in range(mbfiles)]
sizes.append(large)
while len(sizes) < n:
    r = rnd.random()
    if r < 0.05:
        sizes.append(rnd.randrange(2, 64))
    elif r < 0.70:
        sizes.append(rnd.randrange(64, 16384))
    elif r < 0.92:
        sizes.append(rnd.randrange(16384, 200000))
    else:
        sizes.append(rnd.randrange(200000, MB))
large_i = sizes.index(large)
order = list(range(n))
rnd.shuffle(order)
# The large file arrives early in the kill phase.
order.remove(large_i)
order.insert(n // 10, large_i)
one = 1
styles = ["inplace", "inplace2", "rename-dot", "rename-part"]
with open(man, "w") as m:
    for j, i in enumerate(order):
        size = sizes[i]
        name = "f%03d-%d.bin" % (j + 1, size)
        if size == 1:
            data = bytes([one])
            one += 1
        else:
            data = os.urandom(size)
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
        rel = ("sub/" if rnd.random() < 0.1 else "") + name
        style = rnd.choice(styles)
        when = j * phase // n + rnd.randrange(0, max(1, phase // n))
        m.write("%d %s %s %d %s %d\n" % (j + 1, style, rel, size, hashlib.sha256(data).hexdigest(), when))
EOF
t_ok $? "$NFILES source files made ($(awk '{s += $4} END {printf "%.1f MB", s / 1048576}' "$MAN"))"
read -r _ _ LARGE_REL _ LARGE_SHA _ < <(awk -v L=$LARGE '$4 == L' "$MAN")
echo "# large file: $LARGE_REL, sha256 $LARGE_SHA"

# writer: each file arrives at its time from the start of the kill phase
# (the large one is put by the kill loop, to aim the kills that follow).
writer() {
	local i style rel size sha when start now
	start=$(now_ms)
	while read -r i style rel size sha when; do
		[ "$rel" = "$LARGE_REL" ] && continue # put by the kill loop
		now=$(now_ms)
		[ $((start + when)) -gt "$now" ] && sleep_ms $((start + when - now))
		put_file "$style" "$SRC/${rel#sub/}" "$IN/$rel"
	done <"$MAN"
}

# ---- the killer: waits for a moment of a kind, then SIGKILLs custosd ----
cat >"$WORK/killer.py" <<'EOF'
"""killer.py PID KIND ARG STORE RUNLOG LARGE_SHA LARGE THRESH DEADLINE_MS SEED
Waits for a moment of KIND, kills PID with SIGKILL, prints what it hit:
"<kind> <ms after start> <large state>", where the large state is
"copy:<bytes>" when the large file's temp blob was in tmp/ at the kill,
"linked" when its blob was stored but custosd had not said it secured it,
else "-"."""
import os, random, signal, sys, time

pid = int(sys.argv[1])
kind, arg, store, runlog, lsha = sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
large, thresh, deadline = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
rnd = random.Random(int(sys.argv[10]))
t0 = time.monotonic()
tmp = os.path.join(store, "tmp")
lpath = os.path.join(store, "objects", "sha256", lsha[:2], lsha[2:4], lsha)
logpos = 0
secured = 0
watching = False


def ms():
    return int((time.monotonic() - t0) * 1000)


def alive():
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def read_log():
    global logpos, secured, watching
    try:
        with open(runlog, "rb") as f:
            f.seek(logpos)
            data = f.read()
    except OSError:
        return
    cut = data.rfind(b"\n") + 1
    logpos += cut
    for line in data[:cut].split(b"\n"):
        if b": info: secured " in line:
            secured += 1
        elif b": info: watching " in line:
            watching = True


def biggest_blob():
    best = 0
    try:
        for n in os.listdir(tmp):
            if n.startswith("blob-"):
                try:
                    best = max(best, os.stat(os.path.join(tmp, n)).st_size)
                except OSError:
                    pass
    except OSError:
        pass
    return best


def large_state():
    b = biggest_blob()
    if b >= thresh:
        return "copy:%d" % b
    if os.path.exists(lpath):
        return "linked"
    return "-"


def hit():
    if kind == "time":
        return ms() >= arg
    read_log()
    if kind == "secured":
        return secured >= arg
    if kind == "copy":
        return watching and biggest_blob() > 0
    if kind == "large":
        # arg: the fraction of the large file the copy must have reached
        # (or its copy is already over: a poll missed the end)
        return biggest_blob() >= max(thresh, arg * large) or os.path.exists(lpath)
    if kind == "large-reread":
        return os.path.exists(lpath)
    return True


timeout = False
while alive():
    if hit():
        break
    if ms() >= deadline:
        timeout = True
        break
    time.sleep(0.001)
else:
    print("%s %d exited" % (kind, ms()))
    sys.exit(1)
if not timeout and kind in ("secured", "copy"):
    time.sleep(rnd.uniform(0, 0.04))
if not timeout and kind == "large-reread":
    time.sleep(rnd.uniform(0, 0.03))
state = large_state()
when = ms()
try:
    os.kill(pid, signal.SIGKILL)
except OSError:
    print("%s %d exited" % (kind, when))
    sys.exit(1)
print("%s%s %d %s" % (kind, "-timeout" if timeout else "", when, state))
EOF

# Each custosd run logs to $ILOG; flush_log (lib.sh) appends it to $DLOG.
spawn() {
	flush_log
	daemon_spawn "$CONF" "$ILOG"
}
all_in() { [ "$(ledger_size)" -ge $NFILES ] && daemon_idle; }
large_secured() { grep -q ": info: secured $IN/$LARGE_REL " "$DLOG" "$ILOG" 2>/dev/null; }

# ---- the kill phase ----
: >"$ILOG"
writer &
WPID=$!
declare -A KINDS=()
unexpected=0 large_copy=0 large_linked=0 large_reread=0
HITS="$WORK/large-hits"
: >"$HITS"
LARGE_AT=$((KILLS / 10 + 1))
LPID=
k=0
# more_kills: the planned kills, then more while the large file's copy
# still lacks its quota of kills (and is not yet secured), up to twice as many.
more_kills() {
	[ $k -lt "$KILLS" ] && return 0
	[ $k -lt $((KILLS * 2)) ] && [ $large_copy -lt "$LARGE_QUOTA" ] && ! large_secured
}
while more_kills; do
	k=$((k + 1))
	if [ $k -ge $LARGE_AT ] && [ $large_copy -lt "$LARGE_QUOTA" ] && ! large_secured; then
		kind=large arg=0.$(printf %03d $((RANDOM % 1000 + 1)))
		[ "$arg" = 0.1000 ] && arg=1
	elif [ $k -ge $LARGE_AT ] && [ $large_reread -lt 5 ] && ! large_secured; then
		kind=large-reread arg=0
		large_reread=$((large_reread + 1))
	else
		r=$((RANDOM % 100))
		if [ $r -lt 30 ]; then
			kind=time arg=$((30 + RANDOM % TIME_SPAN))
		elif [ $r -lt 60 ]; then
			kind=secured arg=$((1 + RANDOM % 6))
		elif [ $r -lt 85 ]; then
			kind=copy arg=0
		elif [ $k -gt $LARGE_AT ] && ! large_secured; then
			kind=large arg=0.$(printf %03d $((RANDOM % 1000)))
		else
			kind=time arg=$((1200 + RANDOM % 800))
		fi
	fi
	spawn
	if [ $k -eq $LARGE_AT ]; then
		# The large file arrives while this custosd runs.
		read -r _ lstyle _ < <(awk -v L=$LARGE '$4 == L' "$MAN")
		put_file "$lstyle" "$SRC/${LARGE_REL#sub/}" "$IN/$LARGE_REL" &
		LPID=$!
		echo "# the large file arrives ($lstyle) with run $k"
	fi
	lsha=$LARGE_SHA
	large_secured && lsha=none
	case $kind in
	secured | copy | time) deadline=$SHORT_DEADLINE ;;
	*) deadline=$DEADLINE ;;
	esac
	out=$(python3 -S "$WORK/killer.py" $DPID $kind $arg "$S" "$ILOG" "$lsha" $LARGE $THRESH $deadline $RANDOM)
	daemon_kill
	set -- $out
	case "${3:-}" in
	copy:*)
		large_copy=$((large_copy + 1))
		echo "$k ${1:-?} ${3#copy:}" >>"$HITS"
		;;
	linked) large_linked=$((large_linked + 1)) ;;
	esac
	if [ "${3:-}" = exited ] || [ -z "$out" ]; then
		unexpected=$((unexpected + 1))
		echo "# custosd exited on its own before kill $k ($kind); its log:"
		sed 's/^/#   /' "$ILOG" | tail -5
	fi
	KINDS[${1:-none}]=$((${KINDS[${1:-none}]:-0} + 1))
done
wait $WPID $LPID
flush_log
echo "# kill phase ended at +$(($(now_s) - T0)) s"
echo "# kills by moment: $(for x in "${!KINDS[@]}"; do printf '%s %s, ' "$x" "${KINDS[$x]}"; done | sed 's/, $//')"
echo "# $(grep -c ': info: secured ' "$DLOG") files secured during the kill phase, $(grep -c 'finishing an ingest whose release' "$DLOG") of them finishing an ingest whose release was not recorded; $(grep -c 'changed while' "$DLOG") changes found while reading, $(grep -c 'its re-read does not match' "$DLOG") of them by the re-read; $(grep -ci 'orphan' "$DLOG") orphan blob messages"
echo "# the large file's copy was hit at (MB): $(awk -v L=$LARGE '{printf "%s%.1f", s, $3 / 1048576; s = " "}' "$HITS") of $((LARGE / MB))"
t_ok $unexpected "custosd was killed $k times while files arrived (none exited on its own)"
[ $large_copy -ge "$LARGE_QUOTA" ]
t_ok $? "$large_copy kills landed while the large file was being copied (at least $LARGE_QUOTA), $large_linked after its blob was stored and before it was secured"

# ---- the final run ----
spawn
wait_until $WAIT_S all_in
t_ok $? "after the last restart every file is taken ($(ledger_size) ledger events)"
sleep 2.5 # a rescan and a settle time more: nothing more may be taken
daemon_idle
t_ok $? "custosd is idle afterwards"

"$CUSTOS" log --json >"$WORK/log.json" 2>/dev/null
python3 - "$MAN" "$WORK/log.json" "$CUSTOS" >"$WORK/check.out" 2>&1 <<'EOF'
import json, subprocess, sys
man = [l.split() for l in open(sys.argv[1])]
log = json.load(open(sys.argv[2]))
kinds = {}
for e in log:
    kinds[e["event"]] = kinds.get(e["event"], 0) + 1
ingested = sorted((e["item"]["sha256"], e["item"]["size"]) for e in log if e["event"] == "ingest")
want = sorted((m[4], int(m[3])) for m in man)
ok1 = len(log) == len(man) and kinds == {"ingest": len(man)} and ingested == want
print("ledger %d %s" % (int(ok1), " ".join("%s:%d" % kv for kv in sorted(kinds.items()))))
if not ok1:
    extra = sorted(set(ingested) - set(want))[:5]
    missing = sorted(set(want) - set(ingested))[:5]
    print("#   ledger: %d events; bytes never a file: %s; files without an ingest: %s" % (len(log), extra, missing))
bad = 0
for m in man:
    r = subprocess.run([sys.argv[3], "find", "--sha256", m[4], "--json"], capture_output=True, text=True)
    try:
        items = json.loads(r.stdout)
    except ValueError:
        items = None
    if items is None or len(items) != 1 or items[0]["size"] != int(m[3]):
        bad += 1
        if bad <= 5:
            print("#   %s (%s B): %s" % (m[2], m[3], r.stdout.replace("\n", " ")[:200] if r.stdout else r.stderr.strip()))
print("find %d" % bad)
EOF
read -r _ ok kinds < <(grep '^ledger ' "$WORK/check.out")
[ "${ok:-0}" = 1 ]
t_ok $? "the ledger holds exactly $NFILES events, all ingests of the files' bytes ($kinds)"
read -r _ bad < <(grep '^find ' "$WORK/check.out")
[ "${bad:-1}" = 0 ]
t_ok $? "custos find --sha256 gives one item of the right size for each of the $NFILES files (${bad:-?} not)"
grep '^#' "$WORK/check.out"

bad=$(sources_changed "$MAN" "$IN")
t_ok $bad "every source is still in the inbox, unchanged ($bad not)"

t_clean_stop "" "$CONF" "$ILOG" # and a clean restart takes nothing
flush_log

# The re-read before release: a file that arrived complete (renamed in)
# never changes, so no re-read may find it changed, however custosd was
# killed. (A file written in place may be taken before its last part when
# the writer stalls for the settle time on a loaded machine: its change is
# real, and only counted.)
reread_changed=0 reread_false=0
while IFS= read -r path; do
	reread_changed=$((reread_changed + 1))
	style=$(awk -v r="${path#"$IN"/}" '$3 == r { print $2 }' "$MAN")
	case $style in
	inplace*) ;;
	*)
		reread_false=$((reread_false + 1))
		echo "#   the re-read found $path changed, but it arrived complete (${style:-not a file of the soak})"
		;;
	esac
done < <(sed -n 's/.*: warning: \(.*\) changed while it was being read: its re-read does not match .*/\1/p' "$DLOG")
t_ok $reread_false "no re-read found a change in a file that arrived complete ($reread_changed re-read(s) found a change, $reread_false in such files)"
t_run "custos verify passes" "$CUSTOS" verify
bad=0 norph=0
for f in "$S"/orphans/*; do
	[ -e "$f" ] || continue
	norph=$((norph + 1))
	h=$(sha256sum <"$f" | cut -c1-64)
	{ [ "$h" = "${f##*/}" ] && grep -q " $h " "$MAN"; } || bad=$((bad + 1))
done
t_ok $bad "the $norph blobs in orphans/ are whole and each is one of the files ($bad not)"
t_no_sanitizer "no sanitizer report in custosd's log" "$DLOG"
echo "# soak took $(($(now_s) - T0)) s"
echo "# soak: runs $k, failures $T_FAILED"
t_done
