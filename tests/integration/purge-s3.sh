#!/bin/bash
# A purge and a hold end to end, with custosd bound to a real S3 server (Ceph
# RGW on 127.0.0.1, lib.sh's rgw_up) whose bucket has Object Lock, on the
# test builds' clock ($CUSTOS_TEST_CLOCK) for custos (the server keeps its
# own, real clock):
#   1. a, b, c of a case closed in 2021 pushed: a without retention, b and
#      c retained for a day (GOVERNANCE).
#   2. a hold on c: custosd sets S3 legal hold on c's object (seen with
#      GetObjectLegalHold) and records it (hold-remote).
#   3. a plan (a, b; c is held), two approvers, the grace over: custosd
#      executes it; a's and b's local blobs are gone; a's object has no
#      version left at the server; b's, still retained, is left and the
#      purge-remote event and the register name its retain-until; verify
#      and verify --remote pass (b's a note).
#   4. the hold released: legal hold OFF on c's object.
#   5. custos retention execute, custosd stopped: refused without [remote]
#      settings (c has a copy there), with --config it purges c, its retained
#      object left and recorded.
#   6. d and e of a case held while custosd had no remote: `custos push` of
#      d and custosd's own push of e put their new objects on S3 legal hold.
#   7. rebuild --from-remote --blobs: the new station verifies, find and the
#      destruction register know the purges.
. "$(dirname "$0")/lib.sh"
need_python3
: "${CUSTOS_FP:?}" "${CUSTOSD_FP:?}"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null; then
	echo "1..0 # SKIP needs root and useradd to make test users"
	exit 0
fi
P=cps$$
USER2=${P}head
cleanup() {
	daemon_stop >/dev/null 2>&1
	rgw_down
	userdel "$USER2" >/dev/null 2>&1
	t_cleanup
}
trap cleanup EXIT
useradd -M -N -d /nonexistent -s /usr/sbin/nologin "$USER2" || {
	echo "Bail out! cannot create test user $USER2"
	exit 1
}
rgw_up
T="timeout 300"

export CUSTOS_TEST_CLOCK="$WORK/clock"
F=$CUSTOS_FP
DAEMON_BIN=$CUSTOSD_FP
chmod 0711 "$WORK"
mkdir -p "$WORK/in" "$WORK/files" "$WORK/run"
chmod 0755 "$WORK/run"
SOCK="$WORK/run/custosd.sock"
at() { echo "$1" >"$CUSTOS_TEST_CLOCK"; }
as() {
	if [ "$1" = root ]; then
		shift
		env -u CUSTOS_STORE CUSTOS_SOCKET="$SOCK" "$F" "$@"
		return
	fi
	shift
	setpriv --reuid="$USER2" --regid="$(id -g "$USER2")" --init-groups -- \
		env -u CUSTOS_STORE CUSTOS_SOCKET="$SOCK" "$F" "$@"
}
jq_() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
key() { echo "st/objects/sha256/$1"; }
blob() { echo "$CUSTOS_STORE/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
# versions KEY: how many versions and delete markers of exactly KEY the bucket lists
versions() {
	s3e GET "vault?prefix=${1//\//%2F}&versions=" | sed '$d' | python3 -c '
import sys, re
body = sys.stdin.read()
n = 0
for tag in ("Version", "DeleteMarker"):
    for m in re.finditer(r"<%s>(.*?)</%s>" % (tag, tag), body, re.S):
        k = re.search(r"<Key>(.*?)</Key>", m.group(1))
        n += k is not None and k.group(1) == sys.argv[1]
print(n)' "$1"
}
legal_status() { s3e GET "vault/$(key "$1")?legal-hold=" | sed -n 's:.*<Status>\(.*\)</Status>.*:\1:p'; }
legal_is() { [ "$(legal_status "$1")" = "$2" ]; }
state_is() {
	[ "$(as root retention show "$1" --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = "$2" ]
}

# ---- 1. the store and the bucket ----
t_ok "$([ "$(s3e PUT vault -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null | status)" = 200 ] &&
	echo 0 || echo 1)" "bucket 'vault' created with Object Lock"
conf "$WORK/open.conf" vault "lock_mode = off"
conf "$WORK/remote.conf" vault "lock_mode = governance" "retain_days = 1"
at 2020-01-01T00:00:00Z
t_run "init" "$F" init --station PS
for n in a b c; do head -c $((3000 + ${#n})) /dev/urandom >"$WORK/files/$n.mp4"; done
"$F" ingest --case 'S3〔1〕' "$WORK/files/a.mp4" "$WORK/files/b.mp4" "$WORK/files/c.mp4" \
	>/dev/null 2>&1
t_ok $? "a, b, c ingested into case S3〔1〕"
ID_a=$(id_of a.mp4) ID_b=$(id_of b.mp4) ID_c=$(id_of c.mp4)
SHA_a=$(digest "$WORK/files/a.mp4") SHA_b=$(digest "$WORK/files/b.mp4")
SHA_c=$(digest "$WORK/files/c.mp4")
at 2021-01-01T00:00:00Z
"$F" case close 'S3〔1〕' --reason decided >/dev/null 2>&1
t_ok $? "case closed in 2021"
t_status 0 "a pushed without retention" $T "$F" push "$ID_a" --config "$WORK/open.conf"
t_status 0 "b and c pushed, retained for a day" $T "$F" push --config "$WORK/remote.conf"
t_ok $([ "$(versions "$(key "$SHA_a")")" = 1 ] && [ "$(versions "$(key "$SHA_b")")" = 1 ]; echo $?) \
	"the bucket holds a's and b's objects"

cat >"$WORK/custosd.conf" <<EOF
[store]
root = $CUSTOS_STORE
station = PS
[inbox]
dir = $WORK/in
[control]
socket = $SOCK
socket_mode = 0666
[roles]
root = head
$USER2 = head
[remote]
config = $WORK/remote.conf
[retention]
approvers = head
holders = head
approvals = 2
grace = 1d
plan_interval = 3650d
class.all = period=1y from=closure
EOF
at 2022-06-01T00:00:00Z
daemon_start "$WORK/custosd.conf" "$WORK/custosd.log" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK"
wait_until 60 test -S "$SOCK"
t_ok $? "custosd runs with the remote and [retention]"

# ---- 2. a hold: S3 legal hold ----
as root hold add --item "$ID_c" --reason "appeal pending" >"$WORK/hold.out" 2>&1
t_ok $? "hold on c"
HOLD=$(grep -o '[0-9]\+' "$WORK/hold.out" | head -1)
wait_until 120 legal_is "$SHA_c" ON
t_ok $? "custosd set S3 legal hold on c's object (GetObjectLegalHold: ON)"
wait_until 60 grep -q "hold $HOLD: S3 legal hold brought up to date on the objects of 1 items" \
	"$WORK/custosd.log"
t_ok $? "... and logged it"
"$F" log --json | python3 -c '
import json,sys
e=[e for e in json.load(sys.stdin) if e["event"]=="hold-remote" and e["id"]==sys.argv[1]]
sys.exit(0 if len(e)==1 and e[0]["legal_hold"]=="ON" and e[0]["remote"]["state"]=="done" else 1)' "$ID_c"
t_ok $? "... and recorded it (a hold-remote event: ON, done)"

# ---- 3. the plan, its approvals, the execution ----
as root retention plan --write --json >"$WORK/plan.json" 2>"$WORK/last.err"
t_ok $? "plan --write"
PLAN=$(jq_ "$WORK/plan.json" 'j["plan"]')
as root retention show "$PLAN" --json >"$WORK/show.json"
t_ok $([ "$(jq_ "$WORK/show.json" '" ".join(sorted(i["id"] for i in j["items"]))')" = \
	"$(printf '%s\n' "$ID_a" "$ID_b" | sort | tr '\n' ' ' | sed 's/ $//')" ]; echo $?) \
	"the plan lists a and b, not c (held)"
as root retention approve "$PLAN" >/dev/null 2>&1 && as head retention approve "$PLAN" >/dev/null 2>&1
t_ok $? "two approvals"
at 2022-06-03T00:00:00Z
wait_until 240 state_is "$PLAN" done
t_ok $? "after the grace custosd executes the plan"
t_ok $(test ! -e "$(blob "$SHA_a")" && test ! -e "$(blob "$SHA_b")" && test -f "$(blob "$SHA_c")"
	echo $?) "a's and b's local blobs are gone, c's stays"
t_ok $([ "$(versions "$(key "$SHA_a")")" = 0 ]; echo $?) "a's object: no version left at the server"
t_ok $([ "$(s3e HEAD "vault/$(key "$SHA_a")" -o /dev/null | status)" = 404 ]; echo $?) \
	"... HEAD answers 404"
t_ok $([ "$(versions "$(key "$SHA_b")")" = 1 ]; echo $?) \
	"b's object, retained for a day, is left (no governance bypass)"
t_ok $([ "$(versions "$(key "$SHA_c")")" = 1 ]; echo $?) "c's object is untouched"
"$F" log --json >"$WORK/log.json"
python3 - "$WORK/log.json" "$ID_a" "$ID_b" <<'EOF'
import json, sys
ev = json.load(open(sys.argv[1]))
rem = {e["id"]: e["remote"] for e in ev if e["event"] == "purge-remote"}
a, b = rem.get(sys.argv[2]), rem.get(sys.argv[3])
ok = a is not None and a["state"] == "gone" and b is not None and b["state"] == "left"
vb = [v for o in (b or {}).get("objects", []) for v in o["versions"]]
ok = ok and any(v["outcome"] == "locked" and v.get("retain_until") for v in vb)
sys.exit(0 if ok else 1)
EOF
t_ok $? "purge-remote: a's objects gone, b's left as locked with its retain-until"
as root destruction-register --json >"$WORK/reg.json"
t_ok $(jq_ "$WORK/reg.json" 'sorted(e["id"] for e in j) == sorted(sys.argv[3:]) and all("remote" in e for e in j)' \
	"$ID_a" "$ID_b" | grep -q True; echo $?) "the destruction register: a and b, each with its remote outcome"
t_status 0 "verify passes after the purge" "$F" verify
t_status 0 "verify --remote passes" $T "$F" verify --remote --config "$WORK/remote.conf"
t_grep "... noting b's object, still locked" "locked.*$ID_b|$ID_b.*locked" "$WORK/last.out"

# ---- 4. the hold released ----
as root hold release "$HOLD" --reason "appeal decided" >/dev/null 2>&1
t_ok $? "hold released"
wait_until 120 legal_is "$SHA_c" OFF
t_ok $? "custosd cleared S3 legal hold on c's object (OFF)"

# ---- 5. custos retention execute in the foreground, custosd stopped ----
as root retention plan --write --json >"$WORK/plan2.json" 2>"$WORK/last.err"
PLAN2=$(jq_ "$WORK/plan2.json" 'j["plan"]')
as root retention approve "$PLAN2" >/dev/null 2>&1 && as head retention approve "$PLAN2" >/dev/null 2>&1
t_ok $? "a plan for c (no longer held), approved by two"
daemon_stop
at 2022-06-05T00:00:00Z
mv "$WORK/remote.conf" "$WORK/remote-kept.conf"
t_status 2 "execute without [remote] settings is refused (c has a copy at the remote)" \
	"$F" retention execute "$PLAN2"
t_grep "... saying how to name them" "no \[remote\] settings.*--config FILE" "$WORK/last.err"
t_ok $(test -f "$(blob "$SHA_c")"; echo $?) "... and nothing was purged"
t_status 0 "execute --config FILE" $T "$F" retention execute "$PLAN2" --config "$WORK/remote-kept.conf"
t_ok $(test ! -e "$(blob "$SHA_c")"; echo $?) "c's local blob is gone"
"$F" log --json | python3 -c '
import json,sys
e=[e for e in json.load(sys.stdin) if e["event"]=="purge-remote" and e["id"]==sys.argv[1]]
sys.exit(0 if len(e)==1 and e[0]["remote"]["state"]=="left" else 1)' "$ID_c"
t_ok $? "c's retained object is left and recorded (purge-remote: left)"

# ---- 6. copies made while an item is held get S3 legal hold too ----
for n in d e; do head -c $((5000 + ${#n})) /dev/urandom >"$WORK/files/$n.mp4"; done
"$F" ingest --case 'S3〔2〕' "$WORK/files/d.mp4" "$WORK/files/e.mp4" >/dev/null 2>&1
t_ok $? "d and e ingested into case S3〔2〕"
ID_d=$(id_of d.mp4) ID_e=$(id_of e.mp4)
SHA_d=$(digest "$WORK/files/d.mp4") SHA_e=$(digest "$WORK/files/e.mp4")
grep -v '^\[remote\]\|^config = ' "$WORK/custosd.conf" >"$WORK/local.conf"
daemon_start "$WORK/local.conf" "$WORK/custosd2.log" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK"
wait_until 60 test -S "$SOCK"
as root hold add --case 'S3〔2〕' --reason "inquiry" >/dev/null 2>&1
t_ok $? "case S3〔2〕 held while custosd has no remote"
daemon_stop
t_status 0 "custos push of d" $T "$F" push "$ID_d" --config "$WORK/remote-kept.conf"
t_grep "... says it set legal hold on the held item's new object" \
	"S3 legal hold set on the new objects of 1 held items" "$WORK/last.err"
t_ok $(legal_is "$SHA_d" ON; echo $?) "d's new object is on S3 legal hold"
sed -i "s|^config = .*|config = $WORK/remote-kept.conf|" "$WORK/custosd.conf"
daemon_start "$WORK/custosd.conf" "$WORK/custosd3.log" CUSTOS_TEST_CLOCK="$CUSTOS_TEST_CLOCK" ||
	wait_until 30 test -S "$SOCK"
wait_until 180 legal_is "$SHA_e" ON
t_ok $? "custosd pushes e (held) and puts its new object on S3 legal hold"
"$F" log --json 2>/dev/null | python3 -c '
import json,sys
ids={e["id"] for e in json.load(sys.stdin) if e["event"]=="hold-remote" and e["legal_hold"]=="ON"}
sys.exit(0 if set(sys.argv[1:]) <= ids else 1)' "$ID_d" "$ID_e"
t_ok $? "... each recorded (hold-remote)"

# ---- 7. a station rebuilt from the bucket knows the purges ----
daemon_stop
"$F" checkpoint >/dev/null 2>&1
t_status 0 "the ledger pushed (records and checkpoint)" $T "$F" push --config "$WORK/remote-kept.conf"
"$F" pubkey >"$WORK/vkey" 2>/dev/null
t_status 0 "rebuild --from-remote --blobs into a new station" $T "$F" rebuild --from-remote \
	"$WORK/new" --config "$WORK/remote-kept.conf" --key "$WORK/vkey" --blobs
t_status 0 "... which verifies (purged bytes expected absent)" "$F" verify --store "$WORK/new"
"$F" find --store "$WORK/new" --case 'S3〔1〕' >"$WORK/find-new.txt" 2>&1
t_grep "... and lists a as purged" "^$ID_a	.*purged .* plan $PLAN\$" "$WORK/find-new.txt"
"$F" destruction-register --store "$WORK/new" --json >"$WORK/reg-new.json" 2>"$WORK/last.err"
t_ok $(jq_ "$WORK/reg-new.json" 'len(j)' | grep -qx 3; echo $?) \
	"... and has the three entries of the destruction register"
t_done
