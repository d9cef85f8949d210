#!/usr/bin/env bash
# custosd's upload stage against a real S3 server (Ceph RGW on 127.0.0.1,
# tests/s3/rgw.sh), through a fault proxy (tests/s3/faultproxy.py):
#   (a) files dropped in the upload directory go up (one small, one
#       multipart-sized), byte for byte, each with a replica event; the
#       status says nothing is pending; the ledger's checkpoint follows;
#   (b) SIGKILL while a multipart upload is half sent (the proxy slows it),
#       then a restart: the object is there once with the right bytes, no
#       multipart upload is left, nothing pending;
#   (c) 503 replies, connections dropped mid-body and a stalled server:
#       every file is uploaded in the end, and verify --remote --deep passes
#       (each object present once, with its checksum and retention);
#   (d) wrong credentials: a clear error in the status and the log, the
#       evidence safe in the store; fixed credentials file + SIGHUP: the
#       uploads resume;
#   (e) release_policy = remote with release = delete: a secured file stays
#       in the inbox (held) until its remote copy is confirmed, then goes;
#   (f) a long outage (the endpoint unreachable) with more files than the
#       cap on files in flight (the test build's CUSTOSD_TEST_PIPE_FILES=8):
#       every file is secured and held (held files are not in flight), a
#       SIGKILL and restart keep them held without securing any again, and
#       once the endpoint is back all are uploaded and released;
#   (g) a multipart part's reading and hashing, and a single PUT's MD5, run
#       off custosd's loop: while held at a gate (the test build's
#       CUSTOS_TEST_PART_GATE), the control socket still answers; once let go
#       the object goes up;
#   (h) with the media stage on, a video's derivatives go up too, each with
#       a replica event, and the file is released once its original is up;
#   (i) a recorder docked with release_policy = remote while the endpoint is
#       unreachable: its files are secured and held and no receipt is
#       written; with the endpoint back (SIGHUP) the receipt is written, each
#       file's remote copy confirmed.
# Every wait is bounded; no verdict depends on the machine's speed.
. "$CUSTOS_SRC/tests/integration/lib.sh"
: "${CUSTOSD:?CUSTOSD must point at the custosd binary}"
asan_allow_preload

PPID_PROXY=
cleanup() {
	daemon_running && kill -KILL "$DPID" 2>/dev/null
	[ -n "$PPID_PROXY" ] && kill "$PPID_PROXY" 2>/dev/null
	rgw_down
	t_cleanup
}
trap cleanup EXIT
rgw_up
T="timeout 120"
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3e() {
	local m=$1 p=$2
	shift 2
	$T curl -s -X "$m" --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
		-H "x-amz-content-sha256: $EMPTY" "$@" -w '\n%{http_code}' "$S3_ENDPOINT/$p"
}
status() { tail -n1; }

# The fault proxy, on a free port, in front of RGW.
UPORT=${S3_ENDPOINT##*:}
PPORT=
for _ in $(seq 1 100); do
	p=$((20000 + RANDOM % 30000))
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { PPORT=$p; break; }
done
CTL="$WORK/proxy.ctl"
PSTATS="$WORK/proxy.stats"
echo ok >"$CTL"
: >"$PSTATS"
python3 "$CUSTOS_SRC/tests/s3/faultproxy.py" "$PPORT" "$UPORT" "$CTL" "$PSTATS" \
	>"$WORK/proxy.log" 2>&1 &
PPID_PROXY=$!
wait_until 30 bash -c "(exec 3<>/dev/tcp/127.0.0.1/$PPORT) 2>/dev/null"
t_ok $? "the fault proxy listens on 127.0.0.1:$PPORT"
fault() { echo "$1 $2" >"$CTL"; }

t_ok "$([ "$(s3e PUT dremote -o /dev/null | status)" = 200 ] && echo 0 || echo 1)" "bucket 'dremote' created"
printf 'access_key = %s\nsecret_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/creds"
chmod 600 "$WORK/creds"
cat >"$WORK/remote.conf" <<EOF
[remote]
endpoint = http://127.0.0.1:$PPORT
bucket = dremote
prefix = st
credentials = $WORK/creds
part_size = 5M
parallel = 2
retries = 8
stall_timeout = 3
connect_timeout = 5
EOF

"$CUSTOS" init --station DR01 >/dev/null 2>&1
t_ok $? "custos init"
IN="$WORK/inbox"
mkdir -p "$IN"
CONF="$WORK/custosd.conf"
daemon_conf "$CONF" DR01 inbox "$IN" settle_seconds=1
printf '[media]\nenabled = no\n[remote]\nconfig = %s\n' "$WORK/remote.conf" >>"$CONF"
DLOG="$WORK/custosd.log"

# remote FIELD: the field of the status's "remote" member
remote() {
	daemon_status | python3 -c 'import json,sys; v=json.load(sys.stdin)["remote"].get(sys.argv[1]); print("" if v is None else v)' "$1"
}
# settled: everything secured and nothing left to upload
settled() {
	daemon_idle && daemon_status | python3 -c 'import json,sys
r=json.load(sys.stdin)["remote"]
sys.exit(not (r["queue"]==0 and r["in_flight"]==0 and r["held"]==0))'
}
# in_bucket FILE: the blob of FILE is in the bucket with its bytes
in_bucket() {
	local sha
	sha=$(digest "$1")
	[ "$(s3e GET "dremote/st/objects/sha256/$sha" -o "$WORK/got" | status)" = 200 ] &&
		[ "$(digest "$WORK/got")" = "$sha" ]
}
# replicated FILE: the store has a replica event for the item of FILE
replicated() {
	local id
	id=$("$CUSTOS" find --sha256 "$(digest "$1")" --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])' 2>/dev/null) &&
		"$CUSTOS" replicas "$id" 2>/dev/null | grep -q "st/objects/sha256/$(digest "$1")"
}
all_up() {
	local f
	for f in "$@"; do in_bucket "$f" && replicated "$f" || return 1; done
}

# ---- (a) small and multipart uploads ----
head -c 1000 /dev/urandom >"$WORK/a-small"
head -c $((12 * 1024 * 1024 + 77)) /dev/urandom >"$WORK/a-large"
daemon_start "$CONF" "$DLOG"
t_ok $? "custosd starts with a [remote] section"
cp "$WORK/a-small" "$IN/small.bin"
cp "$WORK/a-large" "$IN/large.bin"
wait_until 300 all_up "$WORK/a-small" "$WORK/a-large"
t_ok $? "(a) a small and a 12 MiB file (multipart, 5 MiB parts) are in the bucket with their bytes and replica events"
wait_until 120 settled
t_ok $? "(a) the status says nothing is pending (queue 0, in flight 0)"
cp_key() { s3e GET "dremote?list-type=2&prefix=st%2Fstations%2FDR01%2Fcheckpoints%2F" | grep -o '<Key>[^<]*</Key>' | grep -q .; }
wait_until 120 cp_key
t_ok $? "(a) a signed checkpoint and its records went up too"
t_ok "$([ "$(remote enabled)" = True ] && echo 0 || echo 1)" "(a) custos status has the \"remote\" member"

# ---- (b) SIGKILL mid-multipart, restart ----
head -c $((16 * 1024 * 1024 + 5)) /dev/urandom >"$WORK/b-big"
BSHA=$(digest "$WORK/b-big")
fault slow 2000000 # 2 MB/s: the 16 MiB upload takes seconds
cp "$WORK/b-big" "$IN/big.bin"
part_there() {
	local up
	up=$(s3e GET "dremote?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' | head -n1)
	[ -n "$up" ] && s3e GET "dremote/st/objects/sha256/$BSHA?uploadId=$up" | grep -q '<PartNumber>'
}
wait_until 300 part_there
t_ok $? "(b) the multipart upload has begun and a part is in the bucket"
daemon_kill
fault ok 0
daemon_start "$CONF" "$DLOG"
t_ok $? "(b) custosd restarts after SIGKILL"
wait_until 300 all_up "$WORK/b-big"
t_ok $? "(b) after the restart the object is in the bucket with its bytes and a replica event"
wait_until 120 settled
t_ok $? "(b) nothing pending"
left=$(s3e GET "dremote?uploads=" | grep -c "<UploadId>")
# (query parameters in sorted order: curl 7.88 signs them as written)
n=$(s3e GET "dremote?prefix=st%2Fobjects%2F&versions=" | grep -o "<Key>st/objects/sha256/$BSHA</Key>" |
	grep -c .)
t_ok "$([ "$left" = 0 ] && [ "$n" = 1 ] && echo 0 || echo 1)" \
	"(b) the object is there once ($n version(s)), no multipart upload left ($left)"

# ---- (c) faults ----
head -c 3000 /dev/urandom >"$WORK/c-1"
head -c 7000 /dev/urandom >"$WORK/c-2"
head -c $((6 * 1024 * 1024)) /dev/urandom >"$WORK/c-3"
head -c $((11 * 1024 * 1024)) /dev/urandom >"$WORK/c-4"
fault 503 4
cp "$WORK/c-1" "$IN/c1.bin"
wait_until 300 all_up "$WORK/c-1"
t_ok $? "(c) 503 replies: the file is uploaded in the end"
fault drop 2
cp "$WORK/c-3" "$IN/c3.bin"
wait_until 300 all_up "$WORK/c-3"
t_ok $? "(c) connections dropped mid-body: the 6 MiB file is uploaded in the end"
fault stall 2
cp "$WORK/c-2" "$IN/c2.bin"
cp "$WORK/c-4" "$IN/c4.bin"
wait_until 300 all_up "$WORK/c-2" "$WORK/c-4"
t_ok $? "(c) a stalled server: both files are uploaded in the end"
n503=$(grep -c '^503$' "$PSTATS")
ndrop=$(grep -c '^drop$' "$PSTATS")
nstall=$(grep -c '^stall$' "$PSTATS")
t_ok "$([ "$n503" -ge 1 ] && [ "$ndrop" -ge 1 ] && [ "$nstall" -ge 1 ] && echo 0 || echo 1)" \
	"(c) the proxy made the faults (503: $n503, drops: $ndrop, stalls: $nstall)"
fault ok 0
wait_until 120 settled
t_ok $? "(c) nothing pending afterwards"
daemon_stop
t_ok "$DRC" "custosd stops cleanly (exit 0)"
t_status 0 "(c) verify --remote --deep passes: every object there once, with its checksum" \
	$T "$CUSTOS" verify --remote --deep --config "$WORK/remote.conf"

# ---- (d) wrong credentials, fixed, SIGHUP; (e) release_policy = remote ----
printf 'access_key = %s\nsecret_key = wrong%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/creds"
CONF2="$WORK/custosd2.conf"
daemon_conf "$CONF2" DR01 inbox "$IN" settle_seconds=1 release=delete release_policy=remote
printf '[media]\nenabled = no\n[remote]\nconfig = %s\n' "$WORK/remote.conf" >>"$CONF2"
rm -f "$IN"/*
daemon_start "$CONF2" "$DLOG"
t_ok $? "custosd starts with release_policy = remote and wrong credentials"
head -c 5000 /dev/urandom >"$WORK/d-1"
cp "$WORK/d-1" "$IN/d1.bin"
secured() { "$CUSTOS" find --sha256 "$(digest "$1")" --json 2>/dev/null | grep -q '"id"'; }
cred_error() { remote last_error | grep -qi "credentials"; }
wait_until 120 secured "$WORK/d-1"
t_ok $? "(d) the file is secured in the store"
wait_until 300 cred_error
t_ok $? "(d) custos status names the refused credentials: $(remote last_error)"
t_grep "(d) ... and so does the log" "remote .*credentials" "$DLOG"
t_ok "$([ -e "$IN/d1.bin" ] && echo 0 || echo 1)" "(e) the file is still in the inbox (held for its remote copy)"
t_ok "$([ "$(remote held)" = 1 ] && echo 0 || echo 1)" "(e) the status counts it as held ($(remote held))"
replicated "$WORK/d-1"
t_ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "(d) no replica is recorded while the credentials are refused"
t_status 0 "(d) custos verify: the evidence is safe locally" "$CUSTOS" verify
printf 'access_key = %s\nsecret_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/creds"
kill -HUP "$DPID"
gone() { [ ! -e "$1" ]; }
wait_until 300 gone "$IN/d1.bin"
t_ok $? "(d, e) after the fix and SIGHUP the upload is confirmed and the file released (deleted)"
all_up "$WORK/d-1"
t_ok $? "(d, e) ... its copy is in the bucket with its replica event"
wait_until 120 settled
t_ok $? "(d) nothing pending, nothing held"
no_error() { [ -z "$(remote last_error)" ]; }
wait_until 60 no_error
t_ok $? "(d) the status's last error is cleared once uploads work"
daemon_stop
t_ok "$DRC" "custosd stops cleanly (exit 0)"

# ---- (f) held files during a long outage do not stop intake; SIGKILL keeps them held ----
DPORT=
for _ in $(seq 1 100); do
	p=$((20000 + RANDOM % 30000))
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { DPORT=$p; break; }
done
sed "s|^endpoint = .*|endpoint = http://127.0.0.1:$DPORT|" "$WORK/remote.conf" >"$WORK/remote-f.conf"
CONF3="$WORK/custosd3.conf"
daemon_conf "$CONF3" DR01 inbox "$IN" settle_seconds=1 release=delete release_policy=remote
printf '[media]\nenabled = no\n[remote]\nconfig = %s\n' "$WORK/remote-f.conf" >>"$CONF3"
NF=40
for i in $(seq 1 $NF); do head -c 3000 /dev/urandom >"$WORK/f-$i"; done
DAEMON_BIN=$CUSTOSD_FP daemon_start "$CONF3" "$DLOG" CUSTOSD_TEST_PIPE_FILES=8
t_ok $? "(f) custosd (test build, at most 8 files in flight) starts with the endpoint unreachable"
for i in $(seq 1 $NF); do cp "$WORK/f-$i" "$IN/f$i.bin"; done
held_is() { [ "$(remote held)" = "$1" ]; }
wait_until 300 held_is $NF
t_ok $? "(f) all $NF files are secured and held though only 8 may be in flight (held: $(remote held))"
n=$(ls "$IN" | grep -c '^f.*\.bin$')
t_ok "$([ "$n" = $NF ] && echo 0 || echo 1)" "(f) ... and all are still in the inbox ($n)"
wait_until 60 daemon_idle
t_ok $? "(f) ... and none is in flight or queued: intake goes on"
before=$(ledger_size)
daemon_kill
DAEMON_BIN=$CUSTOSD_FP daemon_start "$CONF3" "$DLOG" CUSTOSD_TEST_PIPE_FILES=8
t_ok $? "(f) custosd restarts after SIGKILL"
wait_until 60 held_is $NF
t_ok $? "(f) after the restart all $NF are still held ($(remote held))"
sleep 2.5 # the settle time, so that a file taken again would show in the ledger
wait_until 60 daemon_idle
n=$(($(ledger_size) - before))
t_ok "$n" "(f) ... and none was secured again ($n new ledger events)"
cp "$WORK/remote.conf" "$WORK/remote-f.conf"
kill -HUP "$DPID"
all_gone() { [ -z "$(ls "$IN")" ]; }
wait_until 300 all_gone
t_ok $? "(f) once the endpoint is back every held file is released (deleted)"
wait_until 120 settled
t_ok $? "(f) nothing pending, nothing held ($(remote held))"
ok=0
for i in 1 17 $NF; do all_up "$WORK/f-$i" || ok=1; done
t_ok $ok "(f) ... their copies are in the bucket with their replica events"
daemon_stop
t_ok "$DRC" "custosd stops cleanly (exit 0)"

# ---- (g) part hashing off the loop ----
GATE="$WORK/gate"
mkdir -p "$GATE"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$WORK/g-1"
DAEMON_BIN=$CUSTOSD_FP daemon_start "$CONF" "$DLOG" CUSTOS_TEST_PART_GATE="$GATE"
t_ok $? "(g) custosd (test build, part hashing held at a gate) starts"
cp "$WORK/g-1" "$IN/g1.bin"
wait_until 300 test -e "$GATE/waiting"
t_ok $? "(g) a part of the 12 MiB file is being hashed (held at the gate)"
daemon_status >"$WORK/g.status"
t_ok $? "(g) ... and custosd's control socket answers meanwhile: the loop is not held up"
touch "$GATE/go"
wait_until 300 all_up "$WORK/g-1"
t_ok $? "(g) let go, the multipart object is in the bucket with its replica event"
rm -f "$GATE/go" "$GATE/waiting" # the gate closed again
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/g-2"
cp "$WORK/g-2" "$IN/g2.bin"
wait_until 300 test -e "$GATE/waiting"
t_ok $? "(g) a 3 MiB file's MD5 for its single PUT is being computed (held at the gate)"
daemon_status >"$WORK/g.status"
t_ok $? "(g) ... and the control socket answers meanwhile: that hashing is off the loop too"
touch "$GATE/go"
wait_until 300 all_up "$WORK/g-2"
t_ok $? "(g) let go, the object is in the bucket with its replica event"
daemon_stop
t_ok "$DRC" "custosd stops cleanly (exit 0)"
# ---- (h) the media stage's derivatives go up too, and the original alone releases ----
if command -v ffmpeg >/dev/null; then
	ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10:duration=1 \
		-c:v libx264 -pix_fmt yuv420p "$WORK/h-1.mp4"
	t_ok $? "(h) a video clip made with ffmpeg (lavfi)"
	CONF4="$WORK/custosd4.conf"
	daemon_conf "$CONF4" DR01 inbox "$IN" settle_seconds=1 release=delete release_policy=remote
	printf '[media]\ntimeout = 60s\n[remote]\nconfig = %s\n' "$WORK/remote.conf" >>"$CONF4"
	daemon_start "$CONF4" "$DLOG" CUSTOS_PROBE="$CUSTOS_PROBE_BIN"
	t_ok $? "(h) custosd starts with the media stage and release_policy = remote"
	cp "$WORK/h-1.mp4" "$IN/h1.mp4"
	wait_until 300 gone "$IN/h1.mp4"
	t_ok $? "(h) the video is secured, its copy confirmed and the file released"
	# derivs_up: the item has its derivatives made, each in the bucket with a replica
	derivs_up() {
		local id
		id=$("$CUSTOS" find --sha256 "$(digest "$WORK/h-1.mp4")" --json 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])' 2>/dev/null) ||
			return 1
		"$CUSTOS" show "$id" --json 2>/dev/null | python3 -c 'import json,sys
d=[x for x in json.load(sys.stdin)["record"].get("derivatives", []) if x["status"] == "ok"]
sys.exit(not (len(d) >= 2 and all(x.get("replicas") for x in d)))' &&
			"$CUSTOS" show "$id" --json 2>/dev/null | python3 -c 'import json,sys
for x in json.load(sys.stdin)["record"]["derivatives"]: print(x["sha256"])' >"$WORK/h.sha" &&
			while read -r h; do
				[ "$(s3e GET "dremote/st/objects/sha256/$h" -o "$WORK/got" | status)" = 200 ] &&
					[ "$(digest "$WORK/got")" = "$h" ] || return 1
			done <"$WORK/h.sha"
	}
	wait_until 300 derivs_up
	t_ok $? "(h) its access copy and poster, made by the media stage, are in the bucket with replica events"
	t_grep "(h) ... and the log says so" "remote: item .*'s access copy (sent to|already at)" "$DLOG"
	wait_until 120 settled
	t_ok $? "(h) nothing pending, nothing held"
	daemon_stop
	t_ok "$DRC" "custosd stops cleanly (exit 0)"
else
	t_ok 1 "(h) ffmpeg is installed (scripts/setup.sh)"
fi
# ---- (i) a docked recorder with release_policy = remote: no receipt before the remote copies ----
DOCKS="$WORK/docks"
mkdir -p "$DOCKS" "$WORK/stage/BWC7"
sed "s|^endpoint = .*|endpoint = http://127.0.0.1:$DPORT|" "$WORK/remote.conf" >"$WORK/remote-i.conf"
CONF5="$WORK/custosd5.conf"
daemon_conf "$CONF5" DR01 docks "$DOCKS" settle_seconds=0 rescan_seconds=1 \
	release_policy=remote
printf '[media]\nenabled = no\n[remote]\nconfig = %s\n' "$WORK/remote-i.conf" >>"$CONF5"
printf '{"device_id": "BWC7", "model": "BWC-X2", "officer_id": "OF7"}\n' \
	>"$WORK/stage/BWC7/DEVICE.json"
for i in 1 2 3; do head -c $((4000 * i)) /dev/urandom >"$WORK/stage/BWC7/BWC7_OF7_${i}.mp4"; done
daemon_start "$CONF5" "$DLOG"
t_ok $? "(i) custosd starts on a dock root, release_policy = remote, the endpoint unreachable"
mv "$WORK/stage/BWC7" "$DOCKS/BWC7"
dock_items() {
	"$CUSTOS" find --device BWC7 --json 2>/dev/null |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null
}
three_held() { [ "$(dock_items)" = 3 ] && [ "$(remote held)" = 3 ]; }
wait_until 300 three_held
t_ok $? "(i) the recorder's 3 files are secured and held ($(dock_items) items, held $(remote held))"
sleep 2 # a rescan (1 s) passes: a receipt written now would be seen
t_ok "$([ ! -e "$DOCKS/BWC7/CUSTOS-RECEIPT.json" ] && echo 0 || echo 1)" \
	"(i) no receipt while the remote copies are not confirmed: the recorder may not be wiped"
cp "$WORK/remote.conf" "$WORK/remote-i.conf"
kill -HUP "$DPID"
wait_until 300 test -e "$DOCKS/BWC7/CUSTOS-RECEIPT.json"
t_ok $? "(i) with the endpoint back (SIGHUP) the receipt is written"
ok=0
for id in $("$CUSTOS" find --device BWC7 --json | python3 -c 'import json,sys
for r in json.load(sys.stdin): print(r["id"])'); do
	"$CUSTOS" replicas "$id" 2>/dev/null | grep -q "st/objects/sha256/" || ok=1
done
t_ok $ok "(i) ... and each of its files had its remote copy confirmed"
daemon_stop
t_ok "$DRC" "custosd stops cleanly (exit 0)"
n=$(grep -c -F -e "$S3_SECRET_KEY" "$DLOG")
t_ok "$n" "the secret key is never in custosd's log ($n lines)"
t_no_sanitizer "no sanitizer report in custosd's log" "$DLOG"
t_done
