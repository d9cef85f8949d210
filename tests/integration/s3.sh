#!/usr/bin/env bash
# custos push and custos replicas against a real S3 server: a single-node
# Ceph RGW on 127.0.0.1 started here (tests/s3/rgw.sh). Small and multipart
# uploads checked byte for byte by GET; a re-run sends nothing; the ledger's
# records and checkpoint in the bucket; Object Lock retention and a refused
# DELETE of a locked version; a multipart upload resumed (parts already there
# not sent again, another upload of the key aborted); wrong credentials, a
# missing bucket, an unreachable endpoint and a credentials file others may
# read give clear errors and leave the evidence safe. Every command that
# talks to the server runs under `timeout`.
. "$CUSTOS_SRC/tests/integration/lib.sh"

trap 'rgw_down; t_cleanup' EXIT
rgw_up
T="timeout 120"
# id_of STORE SHA256: the evidence id of those bytes
id_of() { "$CUSTOS" find --store "$1" --sha256 "$2" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }


t_status 0 "custos init" "$CUSTOS" init --station ST01
t_ok "$([ "$(s3e PUT plain | status)" = 200 ] && echo 0 || echo 1)" "bucket 'plain' created"
conf "$CUSTOS_STORE/remote.conf" plain

head -c 1000 /dev/urandom >"$WORK/small"
: >"$WORK/empty"
head -c $((12 * 1024 * 1024 + 12345)) /dev/urandom >"$WORK/large"
"$CUSTOS" ingest "$WORK/small" "$WORK/empty" "$WORK/large" >"$WORK/ids" 2>/dev/null
t_ok $? "three files ingested (1000 bytes, empty, 12 MiB: multipart with 5 MiB parts)"
"$CUSTOS" checkpoint >/dev/null 2>&1
t_status 0 "custos push sends them" $T "$CUSTOS" push
cp "$WORK/last.err" "$WORK/push1.err"
t_grep "push says 3 blobs and the ledger were sent" '3 sent|[4-9] sent|[1-9][0-9]+ sent' "$WORK/push1.err"

errs=""
while read -r id sha path; do
	got=$(s3e GET "plain/st/objects/sha256/$sha" -o "$WORK/got" | status)
	[ "$got" = 200 ] && [ "$(digest "$WORK/got")" = "$sha" ] || errs="$errs $path($got)"
	head=$(s3e HEAD "plain/st/objects/sha256/$sha" -I)
	echo "$head" | grep -qi "x-amz-meta-sha256: $sha" || errs="$errs $path(no meta sha256)"
	"$CUSTOS" replicas "$id" >"$WORK/rep" 2>&1
	grep -q "st/objects/sha256/$sha" "$WORK/rep" || errs="$errs $path(no replica)"
done <"$WORK/ids"
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" "every blob is in the bucket with its bytes, its SHA-256 and a replica event${errs:+:$errs}"

# The ledger's records up to the checkpoint, and the checkpoint, byte for byte.
cp_size=$(sed -n 2p "$CUSTOS_STORE/checkpoints/latest")
got=$(s3e GET "plain/st/stations/ST01/checkpoints/$(printf %016d "$cp_size")" -o "$WORK/cp" | status)
t_ok "$([ "$got" = 200 ] && cmp -s "$WORK/cp" "$CUSTOS_STORE/checkpoints/latest" && echo 0 || echo 1)" \
	"the signed checkpoint (size $cp_size) is in the bucket, byte for byte"
"$CUSTOS" log --json >"$WORK/log.json" 2>/dev/null
errs=""
for i in $(seq 0 $((cp_size - 1))); do
	got=$(s3e GET "plain/st/stations/ST01/ledger/$(printf %016d "$i").json" -o "$WORK/rec" | status)
	want=$(python3 -c 'import json,sys
evs=json.load(open(sys.argv[1]))
evs=evs if isinstance(evs,list) else evs.get("events",evs)
e=[e for e in evs if e["seq"]==int(sys.argv[2])][0]
sys.stdout.write(json.dumps(e,sort_keys=True,separators=(",",":"),ensure_ascii=False))' \
		"$WORK/log.json" "$i" 2>/dev/null)
	[ "$got" = 200 ] && [ "$(cat "$WORK/rec")" = "$want" ] || errs="$errs $i"
done
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" "ledger records 0..$((cp_size - 1)) are in the bucket as their exact event bytes${errs:+ (not:$errs)}"

got=$(s3e GET "plain/st/stations/ST01/custos.json" -o "$WORK/id.json" | status)
t_ok "$([ "$got" = 200 ] && cmp -s "$WORK/id.json" "$CUSTOS_STORE/custos.json" && echo 0 || echo 1)" \
	"custos.json (the verifier key) is in the bucket"

n_before=$(s3e GET "plain?list-type=2&prefix=st%2F" | grep -o '<Key>' | wc -l)
t_status 0 "a second push" $T "$CUSTOS" push
t_grep "the second push sends nothing" ': 0 sent, 0 already there, 0 failed' "$WORK/last.err"
n_after=$(s3e GET "plain?list-type=2&prefix=st%2F" | grep -o '<Key>' | wc -l)
t_ok "$([ "$n_before" = "$n_after" ] && echo 0 || echo 1)" "the bucket holds the same objects ($n_before, $n_after)"
t_status 0 "custos verify passes with the replica events" "$CUSTOS" verify
t_status 0 "custos rebuild reproduces the replicas" "$CUSTOS" rebuild
id1=$(head -n1 "$WORK/ids" | cut -f1)
t_run "replicas after rebuild" "$CUSTOS" replicas "$id1"
t_grep "... still lists the copy" "st/objects/sha256/" "$WORK/last.out"

# ---- virtual-host addressing (bucket.localhost: curl resolves *.localhost to loopback) ----
s3e PUT vhost -o /dev/null >/dev/null
conf "$WORK/vhost.conf" vhost "addressing = virtual"
sed -i "s|endpoint = http://127.0.0.1:|endpoint = http://localhost:|" "$WORK/vhost.conf"
t_status 0 "push with virtual-host addressing" $T "$CUSTOS" push --config "$WORK/vhost.conf"
sha=$(digest "$WORK/large")
got=$(s3e GET "vhost/st/objects/sha256/$sha" -o "$WORK/got" | status)
t_ok "$([ "$got" = 200 ] && [ "$(digest "$WORK/got")" = "$sha" ] && echo 0 || echo 1)" \
	"... the multipart object is there with its bytes"

# ---- another station sharing the bucket: the same bytes are not sent again ----
ST2="$WORK/store2"
"$CUSTOS" init --store "$ST2" --station ST02 >/dev/null 2>&1
conf "$ST2/remote.conf" plain
"$CUSTOS" ingest --store "$ST2" "$WORK/small" "$WORK/large" >/dev/null 2>&1
t_status 0 "a second station pushes the same files" $T "$CUSTOS" push --store "$ST2" --json
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); sys.exit(not (a["present"]>=2 and a["bytes"]<20000))' \
	"$WORK/last.out"
t_ok $? "... finds both blobs already there (HEAD) and sends no blob bytes"
id2=$(id_of "$ST2" "$(digest "$WORK/large")")
"$CUSTOS" show --store "$ST2" "$id2" --json >"$WORK/show2.json" 2>/dev/null
"$CUSTOS" log --store "$ST2" --json >"$WORK/log2.json" 2>/dev/null
python3 -c 'import json,sys
evs=[e for e in json.load(open(sys.argv[1])) if e["event"]=="replica" and e.get("id")==sys.argv[2]]
sys.exit(not (len(evs)==1 and evs[0]["found"] is True))' "$WORK/log2.json" "$id2"
t_ok $? "... and records the replica as found"

# ---- a multipart upload begun elsewhere is resumed, another one aborted ----
head -c $((11 * 1024 * 1024)) /dev/urandom >"$WORK/big2"
sha2=$(digest "$WORK/big2")
key2="plain/st/objects/sha256/$sha2"
mk_upload() { s3e POST "$key2?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p'; }
old_up=$(mk_upload)
sleep 1.1 # Initiated has a resolution of a second: the next upload is the newer one
up=$(mk_upload)
head -c $((5 * 1024 * 1024)) "$WORK/big2" >"$WORK/part1"
got=$(s3 PUT "$key2?partNumber=1&uploadId=$up" -H "x-amz-content-sha256: $(digest "$WORK/part1")" \
	-T "$WORK/part1" -o /dev/null | status)
t_ok "$([ -n "$old_up" ] && [ -n "$up" ] && [ "$got" = 200 ] && echo 0 || echo 1)" \
	"two uploads of one key begun by hand, part 1 of the newer one sent"
big2_id=$("$CUSTOS" ingest "$WORK/big2" 2>/dev/null | cut -f1)
t_status 0 "push resumes the upload" $T "$CUSTOS" push "$big2_id" --json
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$WORK/last.out")
t_ok "$([ "$sent" -eq $((6 * 1024 * 1024)) ] && echo 0 || echo 1)" \
	"only parts 2 and 3 were sent ($sent bytes, part 1 was there)"
got=$(s3e GET "$key2" -o "$WORK/got" | status)
t_ok "$([ "$got" = 200 ] && [ "$(digest "$WORK/got")" = "$sha2" ] && echo 0 || echo 1)" \
	"the resumed object has the right bytes"
left=$(s3e GET "plain?uploads=" | grep -c "<UploadId>")
t_ok "$([ "$left" = 0 ] && echo 0 || echo 1)" "no multipart upload is left (the older one aborted)"

# ---- a damaged local blob is never sent as the evidence ----
ST3="$WORK/store3"
"$CUSTOS" init --store "$ST3" --station ST03 >/dev/null 2>&1
conf "$ST3/remote.conf" plain
head -c 2000 /dev/urandom >"$WORK/d-small"
head -c $((11 * 1024 * 1024)) /dev/urandom >"$WORK/d-large"
"$CUSTOS" ingest --store "$ST3" "$WORK/d-small" "$WORK/d-large" >/dev/null 2>&1
for f in d-small d-large; do
	b=$(find "$ST3/objects" -type f -name "$(digest "$WORK/$f")")
	chmod u+w "$b"
	flip_byte "$b" 1000
done
t_status 1 "push of two damaged blobs (one PUT, one multipart) fails" $T "$CUSTOS" push \
	--store "$ST3" "$(id_of "$ST3" "$(digest "$WORK/d-small")")" \
	"$(id_of "$ST3" "$(digest "$WORK/d-large")")"
t_grep "... the single PUT is not sent: custos checks the local copy's SHA-256 first" \
	"local copy of st/objects/sha256/$(digest "$WORK/d-small") does not match its SHA-256" \
	"$WORK/last.err"
t_grep "... the multipart upload was stopped before Complete" \
	"local copy of st/objects/sha256/$(digest "$WORK/d-large") does not match its SHA-256" \
	"$WORK/last.err"
a=$(s3e HEAD "plain/st/objects/sha256/$(digest "$WORK/d-small")" -I -o /dev/null | status)
b=$(s3e HEAD "plain/st/objects/sha256/$(digest "$WORK/d-large")" -I -o /dev/null | status)
t_ok "$([ "$a" = 404 ] && [ "$b" = 404 ] && echo 0 || echo 1)" "... and neither is in the bucket ($a, $b)"

# ---- Object Lock ----
got=$(s3e PUT locked -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null | status)
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "bucket 'locked' created with Object Lock"
conf "$WORK/locked.conf" locked "lock_mode = compliance" "retain_days = 2"
t_status 0 "push to the locked bucket" $T "$CUSTOS" push --config "$WORK/locked.conf"
small_sha=$(digest "$WORK/small")
small_id=$(grep "$WORK/small\$" "$WORK/ids" | cut -f1)
"$CUSTOS" replicas "$small_id" --json >"$WORK/rep.json"
ver=$(python3 -c 'import json,sys
r=[r for r in json.load(open(sys.argv[1])) if r["remote"].endswith("/locked")][0]
assert r["lock_mode"]=="COMPLIANCE" and r["retain_until"] > "2026"
print(r["version_id"])' "$WORK/rep.json")
t_ok $? "the replica event records COMPLIANCE, a retain-until date and version $ver"
head=$(s3e HEAD "locked/st/objects/sha256/$small_sha" -I)
echo "$head" | grep -qi 'x-amz-object-lock-mode: COMPLIANCE' &&
	echo "$head" | grep -qi 'x-amz-object-lock-retain-until-date: '
t_ok $? "the server holds the object under COMPLIANCE retention"
got=$(s3e DELETE "locked/st/objects/sha256/$small_sha?versionId=$ver" -o "$WORK/del" | status)
t_ok "$([ "$got" = 403 ] && echo 0 || echo 1)" "a DELETE of the locked version is refused ($got)"
got=$(s3e GET "locked/st/objects/sha256/$small_sha?versionId=$ver" -o "$WORK/got" | status)
t_ok "$([ "$got" = 200 ] && [ "$(digest "$WORK/got")" = "$small_sha" ] && echo 0 || echo 1)" \
	"the locked version is still there"

# ---- failures: clear errors, the evidence safe, then it goes up ----
head -c 3000 /dev/urandom >"$WORK/later"
"$CUSTOS" ingest "$WORK/later" >"$WORK/later.id" 2>/dev/null
later_id=$(cut -f1 "$WORK/later.id")
s3e PUT other -o /dev/null >/dev/null
printf 'access_key = %s\nsecret_key = wrong%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$WORK/badcreds"
chmod 600 "$WORK/badcreds"
conf "$WORK/bad.conf" other
sed -i "s|credentials = .*|credentials = $WORK/badcreds|" "$WORK/bad.conf"
t_status 1 "wrong credentials: push fails" $T "$CUSTOS" push --config "$WORK/bad.conf"
t_grep "... saying the credentials were refused" 'credentials were refused' "$WORK/last.err"
if grep -q "wrong$S3_SECRET_KEY" "$WORK/last.err" "$WORK/last.out"; then r=1; else r=0; fi
t_ok $r "... without showing the secret key"
conf "$WORK/nobucket.conf" no-such-bucket
t_status 1 "a missing bucket: push fails" $T "$CUSTOS" push --config "$WORK/nobucket.conf"
t_grep "... saying the bucket does not exist" 'bucket does not exist' "$WORK/last.err"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf "$WORK/down.conf" other "retries = 1" "connect_timeout = 5"
sed -i "s|endpoint = .*|endpoint = http://127.0.0.1:$port|" "$WORK/down.conf"
t_status 1 "an unreachable endpoint: push fails" $T "$CUSTOS" push --config "$WORK/down.conf"
t_grep "... saying it could not connect" "127.0.0.1:$port.*(connect|Connection refused)" "$WORK/last.err"
chmod 644 "$WORK/creds"
sed -i "s|credentials = .*|credentials = $WORK/creds|" "$WORK/bad.conf"
t_status 2 "a credentials file others may read is refused" $T "$CUSTOS" push --config "$WORK/bad.conf"
t_grep "... naming the file and the fix" "creds.*0600" "$WORK/last.err"
chmod 600 "$WORK/creds"
t_status 0 "the evidence is intact after the failures (verify)" "$CUSTOS" verify
"$CUSTOS" replicas "$later_id" >"$WORK/rep" 2>&1
if grep -q other "$WORK/rep"; then r=1; else r=0; fi
t_ok $r "no replica was recorded for a failed push"
t_status 0 "once fixed, push sends it" $T "$CUSTOS" push --config "$WORK/bad.conf"
got=$(s3e GET "other/st/objects/sha256/$(digest "$WORK/later")" -o "$WORK/got" | status)
t_ok "$([ "$got" = 200 ] && cmp -s "$WORK/got" "$WORK/later" && echo 0 || echo 1)" \
	"... and the bucket holds it"

t_done
