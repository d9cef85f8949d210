#!/bin/bash
# orphans/ kept within its limits (docs/operations.md, "Orphan blobs"). Real
# orphans are made by crashing ingests (custos-failpoint, just after the blob
# is linked, before its ledger event) and letting the next writer recover;
# they are aged with `touch -d`, and a blob the catalog holds (a stored item's
# bytes, copied into orphans/ and aged beyond every limit) stands beside them.
#   - any writer (here `custos checkpoint`) removes those older than the
#     default 30 days;
#   - custosd removes, at start, those older than its orphans_max_age, and
#     on reload (SIGHUP) with orphans_max_size the oldest until the rest fit;
#   - the referenced blob is never removed, and is reported;
#   - custosd's status (JSON and `custos status`) gives count, bytes, the
#     oldest's age and the limits; a bad value of either key is refused by
#     name.
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_FP:?CUSTOS_FP must point at custos-failpoint}"
: "${CUSTOSD:?CUSTOSD must point at custosd}"
need_python3

S="$CUSTOS_STORE"
IN="$WORK/in"
INBOX="$WORK/inbox"
mkdir -p "$IN" "$INBOX"
"$CUSTOS" init --station orph >/dev/null || { echo "Bail out! init failed"; exit 1; }

# The crash point just after an ingest's blob is linked, traced on a first
# ingest (which stores "probe" for good: its bytes become the referenced blob).
head -c 1000 /dev/urandom >"$IN/probe"
CUSTOS_CRASH_TRACE=1 "$CUSTOS_FP" ingest "$IN/probe" >/dev/null 2>"$WORK/trace.err"
k=$(awk '$1 == "failpoint" && $3 == "blob-link" { print $2; exit }' "$WORK/trace.err")
[ -n "$k" ]
t_ok $? "the crash point after an ingest's blob is linked is traced (${k:-none})"

for f in a b c d e; do
	head -c 1000 /dev/urandom >"$IN/$f"
	CUSTOS_CRASH_AT=$((k + 1)) "$CUSTOS_FP" ingest "$IN/$f" >/dev/null 2>&1
	rc=$?
	"$CUSTOS" checkpoint >/dev/null 2>>"$WORK/recover.err"
	eval "h_$f=$(digest "$IN/$f")"
	eval "[ $rc = 99 ] && [ -f \"$S/orphans/\$h_$f\" ]" || fail "$f: ingest exit $rc, no orphans/ file"
done
report "five ingests crashed after their blobs were linked; recovery moved each to orphans/"
grep -c 'moved to orphans/' "$WORK/recover.err" | grep -qx 5
t_ok $? "recovery logged each move to orphans/"

h_r=$(digest "$IN/probe")
cp "$S/objects/sha256/${h_r:0:2}/${h_r:2:2}/$h_r" "$S/orphans/$h_r"
touch -d '100 days ago' "$S/orphans/$h_r"
touch -d '50 days ago' "$S/orphans/$h_a"
touch -d '20 days ago' "$S/orphans/$h_b"
touch -d '5 days ago' "$S/orphans/$h_c"
touch -d '2 days ago' "$S/orphans/$h_d"

# present NAME...: each named orphan is (still) in orphans/; absent NAME...: none is.
present() { local n; for n; do eval "[ -f \"$S/orphans/\$h_$n\" ]" || return 1; done; }
absent() { local n; for n; do eval "[ ! -e \"$S/orphans/\$h_$n\" ]" || return 1; done; }

# ---- any writer: the default limits (30 days, 10 GiB) ----
"$CUSTOS" checkpoint >/dev/null 2>"$WORK/cli.err"
absent a && present b c d e r
t_ok $? "a writer's open removes the orphan older than 30 days, keeps the rest and the referenced blob"
grep -q "orphans/$h_r holds the bytes of an item" "$WORK/cli.err"
t_ok $? "the referenced blob in orphans/ is reported"

# ---- custosd: its configured limits ----
CONF="$WORK/custosd.conf"
DLOG="$WORK/custosd.log"
conf() {
	daemon_conf "$CONF" orph inbox "$INBOX" settle_seconds=1
	printf '[store]\norphans_max_age = 10d\n%s\n' "${1:-}" >>"$CONF"
}
conf
daemon_start "$CONF" "$DLOG"
t_ok $? "custosd starts with orphans_max_age = 10d"
absent a b && present c d e r
t_ok $? "at start custosd removes the orphan older than 10 days, keeps the referenced blob"
daemon_status >"$WORK/st.json"
python3 - "$WORK/st.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["orphans"]
want = {"count": 4, "bytes": 4000, "referenced": 1, "max_age_s": 864000, "max_bytes": 10 << 30}
bad = {k: o.get(k) for k in want if o.get(k) != want[k]}
age = o.get("oldest_age_s")
if not isinstance(age, int) or not 99 * 86400 < age < 101 * 86400:
    bad["oldest_age_s"] = age
if bad:
    print("# unexpected:", bad)
sys.exit(1 if bad else 0)
PY
t_ok $? "custosd's status: orphans count 4, 4000 bytes, 1 referenced, the oldest 100 days, the limits"
"$CUSTOS" status >"$WORK/status.txt" 2>&1
grep -q '^  orphans/: 4 blob(s), 0.0 MiB, the oldest 100.0 days old (kept within 10.0 days, 10240.0 MiB)' "$WORK/status.txt" &&
	grep -q '^  ORPHANS: 1 file(s) in orphans/ hold the bytes of stored items' "$WORK/status.txt"
t_ok $? "custos status shows orphans/ and the referenced file"

conf 'orphans_max_size = 1500'
kill -HUP "$DPID"
wait_until 60 absent c d
t_ok $? "on reload with orphans_max_size = 1500 the two oldest orphans are removed"
present e r
t_ok $? "... the newest orphan, within the limit, and the referenced blob are kept"
wait_until 30 eval 'daemon_status | grep -q "\"count\": 2"'
t_ok $? "custosd's status counts the 2 left"

daemon_stop
t_ok "$DRC" "custosd stops cleanly"
"$CUSTOS" verify >/dev/null 2>&1
t_ok $? "the store verifies"
[ "$(digest "$S/orphans/$h_r")" = "$h_r" ] && [ "$(digest "$S/orphans/$h_e")" = "$h_e" ]
t_ok $? "the blobs kept in orphans/ are whole"

# ---- bad values ----
for kv in 'orphans_max_age = 10x' 'orphans_max_age = -1d' 'orphans_max_size = lots'; do
	conf "$kv"
	sed -i '/^orphans_max_age = 10d$/d' "$CONF"
	"$CUSTOSD" --config "$CONF" --check-config >/dev/null 2>"$WORK/bad.err"
	rc=$?
	[ $rc = 2 ] && grep -q "${kv%% *} must be a" "$WORK/bad.err" || fail "'$kv': exit $rc: $(cat "$WORK/bad.err")"
done
report "a bad orphans_max_age or orphans_max_size is refused by name"
t_done
