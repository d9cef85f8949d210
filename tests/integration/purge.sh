#!/bin/bash
# Purge plans through custosd's real control socket as real users (made here
# with useradd, removed at exit), on the test builds' clock
# ($CUSTOS_TEST_CLOCK, rewritten to travel):
#   1. an archivist cannot approve (purge-approver-role); one approver twice
#      is refused (purge-same-approver); with one approval nothing happens,
#      however long after (custosd's timer looked at the plan twice since).
#   2. two approvers: nothing during the grace; after it custosd executes
#      the plan: blobs gone, tombstones and register entries (--json, --csv),
#      find and show say purged with the plan, verify passes.
#   3. the same bytes in a closed and an open case: never planned; in a plan
#      and then added to an open case during the grace: skipped, bytes stay.
#   4. cancel during the grace: nothing purged, the plan says who and why.
#   5. SIGKILL custosd while it removes a plan's bytes (parked after the
#      first item), restart: the plan completes once, one register entry per
#      item, every blob of the plan gone, verify passes.
#   6. rebuild gives the same register and plans.
. "$(dirname "$0")/lib.sh"
need_python3
: "${CUSTOS_FP:?}" "${CUSTOSD_FP:?}"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
	echo "1..0 # SKIP needs root and useradd to make test users"
	exit 0
fi

P=cpg$$
USERS=()
cleanup_users() {
	local u
	for u in "${USERS[@]}"; do userdel "$u" >/dev/null 2>&1; done
}
trap 'cleanup_users; t_cleanup' EXIT
for r in head arch; do
	useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$P$r" || {
		echo "Bail out! cannot create test user $P$r"
		exit 1
	}
	USERS+=("$P$r")
done

export CUSTOS_TEST_CLOCK="$WORK/clock"
F=$CUSTOS_FP
DAEMON_BIN=$CUSTOSD_FP
chmod 0711 "$WORK"
mkdir -p "$WORK/in" "$WORK/files" "$WORK/run"
chmod 0755 "$WORK/run"
SOCK="$WORK/run/custosd.sock"
CONF=$WORK/custosd.conf
LOG=$WORK/custosd.log
at() { echo "$1" >"$CUSTOS_TEST_CLOCK"; }

# as USER CMD...: the CLI as root (head) or test user USER, through the socket.
as() {
	local u=$1
	shift
	if [ "$u" = root ]; then
		env -u CUSTOS_STORE CUSTOS_SOCKET="$SOCK" "$F" "$@"
		return
	fi
	setpriv --reuid="$P$u" --regid="$(id -g "$P$u")" --init-groups -- \
		env -u CUSTOS_STORE CUSTOS_SOCKET="$SOCK" "$F" "$@"
}
# jq_ FILE EXPR: a Python expression over the JSON in FILE (j).
jq_() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
# refused USER RULE DESCRIPTION CMD...: exit 1 and --json names RULE.
refused() {
	local u=$1 rule=$2 d=$3 rc got
	shift 3
	as "$u" "$@" --json >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	got=$(jq_ "$WORK/last.out" 'j.get("rule")' 2>/dev/null)
	if [ $rc -eq 1 ] && [ "$got" = "$rule" ] && grep -q "rule $rule" "$WORK/last.err"; then
		t_ok 0 "$d: refused by $rule"
	else
		t_ok 1 "$d: refused by $rule (exit $rc, rule '$got')"
		sed 's/^/#   /' "$WORK/last.err" | head -5
	fi
}
state() { as root retention show "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
state_is() { [ "$(state "$1")" = "$2" ]; }
looks() { as root status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["purge"]["looks"])'; }
looks_at_least() { [ "$(looks)" -ge "$1" ]; }
# two_looks: custosd's purge timer has looked at the plans twice more from now.
two_looks() {
	local n
	n=$(looks) || return 1
	wait_until 120 looks_at_least $((n + 2))
}
blob() { echo "$CUSTOS_STORE/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
sha_of() { "$F" show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["record"]["sha256"])'; }

conf() {
	cat >"$CONF" <<EOF
[store]
root = $CUSTOS_STORE
station = PG
[inbox]
dir = $WORK/in
[control]
socket = $SOCK
socket_mode = 0666
[roles]
root = head
${P}head = head
${P}arch = archivist
[retention]
approvers = head
holders = head
approvals = 2
grace = 7d
plan_interval = 3650d
class.all = period=1y from=closure
EOF
}

# ---- the store, made in 2020 ----
at 2020-01-01T00:00:00Z
t_run "init" "$F" init --station PG
ingest() {
	local n=$1 out
	shift
	printf 'recording %s\n' "$n" >"$WORK/files/$n.mp4"
	out=$("$F" ingest "$WORK/files/$n.mp4" "$@" --json 2>"$WORK/last.err") || fail "ingest $n"
	eval "ID_$n=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])' <<<"$out")"
}
for n in a b d; do ingest $n --case 'P〔1〕'; done
ingest c --case 'P〔1〕'
"$F" case open 'OPEN〔1〕' >/dev/null && "$F" case add 'OPEN〔1〕' "$ID_c" --stage 取证 >/dev/null ||
	fail "c into an open case"
for i in 1 2 3 4 5 6; do ingest e$i --case 'K〔1〕'; done
at 2021-01-01T00:00:00Z
"$F" case close 'P〔1〕' --reason decided >/dev/null || fail "close P"
at 2023-01-01T00:00:00Z
"$F" case close 'K〔1〕' --reason decided >/dev/null || fail "close K"
at 2021-06-01T00:00:00Z
conf
daemon_start "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK" || fail "custosd did not start"
wait_until 60 test -S "$SOCK" || fail "no socket"
report "a store: a, b, c, d in P〔1〕 (closed 2021; c also in an open case), e1-e6 in K〔1〕"

# ---- 1. approvals ----
at 2022-06-01T00:00:00Z
as root retention plan --write --json >"$WORK/p1.json" 2>"$WORK/last.err"
t_ok $? "plan --write"
P1=$(jq_ "$WORK/p1.json" 'j["plan"]')
as root retention show "$P1" --json >"$WORK/show1.json"
t_ok $? "retention show"
ids=$(jq_ "$WORK/show1.json" '" ".join(sorted(i["id"] for i in j["items"]))')
t_ok $([ "$ids" = "$(echo "$ID_a $ID_b $ID_d" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')" ]; echo $?) \
	"plan $P1 lists a, b, d: not c, whose bytes an open case keeps ($ids)"
refused arch purge-approver-role "an archivist approves" retention approve "$P1"
as root retention approve "$P1" >"$WORK/last.out" 2>"$WORK/last.err"
t_ok $? "first approval (root, head)"
refused root purge-same-approver "the same user approves again" retention approve "$P1"
at 2023-06-01T00:00:00Z
two_looks
t_ok $? "custosd looked at the plans twice after a year"
t_ok $(state_is "$P1" proposed; echo $?) "one approval: still proposed"
t_ok $(test -f "$(blob "$(sha_of "$ID_a")")"; echo $?) "one approval: a's bytes are there"

# ---- 2. two approvers, the grace, the execution ----
SHA_a=$(sha_of "$ID_a")
SHA_b=$(sha_of "$ID_b")
SHA_c=$(sha_of "$ID_c")
as head retention approve "$P1" >"$WORK/last.out" 2>"$WORK/last.err"
t_ok $? "second approval (another head)"
t_grep "... saying when it executes" "it executes at 2023-06-08" "$WORK/last.out"
two_looks
t_ok $(state_is "$P1" approved && test -f "$(blob "$SHA_a")"; echo $?) \
	"during the grace nothing is purged"
at 2023-06-09T00:00:00Z
wait_until 120 state_is "$P1" done
t_ok $? "after the grace custosd executes the plan"
t_ok $(test ! -e "$(blob "$SHA_a")" && test ! -e "$(blob "$SHA_b")"; echo $?) "a's and b's blobs are gone"
t_ok $(test -f "$(blob "$SHA_c")"; echo $?) "c's bytes stay (an open case)"
as root destruction-register --json >"$WORK/reg.json"
t_ok $? "destruction-register --json"
t_ok $(jq_ "$WORK/reg.json" 'sorted(e["id"] for e in j) == sorted(sys.argv[3:])' "$ID_a" "$ID_b" "$ID_d" |
	grep -q True; echo $?) "one entry for a, b, d each"
t_ok $(jq_ "$WORK/reg.json" 'all(e["plan"] == '"$P1"' and len(e["approvers"]) == 2 and e["class"] == "all" and e["cases"] == ["P〔1〕"] for e in j)' |
	grep -q True; echo $?) "each names its plan, its two approvers, its class and case"
as root destruction-register --csv >"$WORK/reg.csv"
t_grep "--csv has its header" "^entry,time,id,sha256,size,cases,class" "$WORK/reg.csv"
t_ok $(test "$(grep -c "^[0-9]" "$WORK/reg.csv")" = 3; echo $?) "--csv: three entries"
"$F" find --case 'P〔1〕' >"$WORK/find.txt"
t_grep "find lists a as purged with its plan" "^$ID_a	.*	purged 2023-06-09T.* plan $P1\$" "$WORK/find.txt"
"$F" show "$ID_a" >"$WORK/show.txt"
t_grep "show says purged" "^purged .*\"plan\":$P1" "$WORK/show.txt"
"$F" log --json | python3 -c '
import json,sys
n=sum(1 for e in json.load(sys.stdin) if e["event"]=="purge" and e["id"]==sys.argv[1])
sys.exit(0 if n==1 else 1)' "$ID_a"
t_ok $? "a's tombstone is in the ledger, once"
"$F" verify >"$WORK/verify.out" 2>&1
t_ok $? "verify passes after the purge" || sed 's/^/#   /' "$WORK/verify.out" | head -5

# ---- 3 and 4. the open case closed, cancel, a hold during the grace ----
daemon_stop
at 2023-07-01T00:00:00Z
"$F" case close 'OPEN〔1〕' --reason decided >/dev/null || fail "close OPEN"
daemon_start "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK" || fail "custosd did not restart"
report "custosd stopped to close c's open case, started again"
at 2024-08-01T00:00:00Z
as root retention plan --write --json >"$WORK/p2.json"
P2=$(jq_ "$WORK/p2.json" 'j["plan"]')
ids=$(as root retention show "$P2" --json | python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(sys.stdin)["items"])))')
echo "$ids" | grep -q "$ID_c" && echo "$ids" | grep -q "$ID_e1"
t_ok $? "plan $P2: c (its open case closed) and the e items"
as root retention approve "$P2" >/dev/null 2>&1 && as head retention approve "$P2" >/dev/null 2>&1
t_ok $? "approved by two"
t_status 2 "a cancellation needs its reason" as root retention cancel "$P2"
as head retention cancel "$P2" --reason "a court asked to keep them" >"$WORK/last.out" 2>&1
t_ok $? "cancelled during the grace"
at 2024-09-01T00:00:00Z
two_looks
t_ok $(state_is "$P2" cancelled && test -f "$(blob "$SHA_c")" &&
	test -f "$(blob "$(sha_of "$ID_e1")")"; echo $?) "a cancelled plan purges nothing"
as root retention show "$P2" >"$WORK/show2.txt"
t_grep "the plan says who cancelled it and why" "cancelled .* by ${P}head: a court asked" "$WORK/show2.txt"
refused root purge-plan-state "approving a cancelled plan" retention approve "$P2"

as root retention plan --write --json >"$WORK/p3.json"
P3=$(jq_ "$WORK/p3.json" 'j["plan"]')
as root retention approve "$P3" >/dev/null 2>&1 && as head retention approve "$P3" >/dev/null 2>&1
t_ok $? "plan $P3 (c and the e items again) approved by two"
as root hold add --item "$ID_c" --reason "appeal lodged" >/dev/null 2>"$WORK/last.err"
t_ok $? "during the grace c is put on hold"

# ---- 5. SIGKILL while the bytes go ----
daemon_stop
daemon_spawn "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" \
	CUSTOS_PARK_AT=purge-unlink CUSTOS_PARK_FILE="$WORK/park"
wait_until 60 test -S "$SOCK" || fail "custosd did not restart"
at 2024-09-10T00:00:00Z
wait_until 120 test -e "$WORK/park.parked"
t_ok $? "custosd parked after the first item's bytes went"
daemon_kill
t_ok $(test "$(state "$P3" 2>/dev/null)" != done; echo $?) "SIGKILL while the plan runs"
daemon_spawn "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK"
wait_until 60 test -S "$SOCK" || fail "custosd did not start after the kill"
wait_until 120 state_is "$P3" done
t_ok $? "after the restart the plan completes"
as root destruction-register --json >"$WORK/reg3.json"
jq_ "$WORK/reg3.json" 'sorted(e["id"] for e in j) == sorted(sys.argv[3:])' "$ID_a" "$ID_b" \
	"$ID_d" "$ID_e1" "$ID_e2" "$ID_e3" "$ID_e4" "$ID_e5" "$ID_e6" | grep -q True
t_ok $? "one register entry per item (a, b, d, e1-e6), none twice"
left=0
for n in e1 e2 e3 e4 e5 e6; do
	eval "id=\$ID_$n"
	[ -e "$(blob "$(sha_of "$id")")" ] && left=$((left + 1))
done
t_ok $left "every e blob is gone ($left left)"
as root retention show "$P3" >"$WORK/show3.txt"
t_grep "c is skipped, named with its hold" "skipped $ID_c: held by a hold on item $ID_c" \
	"$WORK/show3.txt"
t_ok $(test -f "$(blob "$SHA_c")"; echo $?) "c's bytes stay"
"$F" verify >"$WORK/verify.out" 2>&1
t_ok $? "verify passes after the resumed purge"

# ---- 6. rebuild ----
as root retention plans --json >"$WORK/plans.before"
daemon_stop
"$F" rebuild >/dev/null 2>&1
t_ok $? "rebuild"
daemon_start "$CONF" "$LOG" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK"
wait_until 60 test -S "$SOCK" || fail "no socket after rebuild"
as root destruction-register --json >"$WORK/reg4.json"
cmp -s "$WORK/reg3.json" "$WORK/reg4.json"
t_ok $? "the rebuilt register is the same"
as root retention plans --json >"$WORK/plans.after"
cmp -s "$WORK/plans.before" "$WORK/plans.after"
t_ok $? "and so are the plans"
daemon_stop
t_ok "$DRC" "custosd stops cleanly"
t_no_sanitizer "no sanitizer report" "$LOG"
t_done
