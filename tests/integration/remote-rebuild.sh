#!/usr/bin/env bash
# custos verify --remote and custos rebuild --from-remote against a real S3
# server (Ceph RGW on 127.0.0.1, tests/s3/rgw.sh, helpers from lib.sh's
# rgw_up). A store with three cases pushed to a bucket with Object Lock
# passes verify --remote (and --deep; a multipart object has its retention).
# Rebuilt into a new directory with the verifier key: refused without a key
# or with another station's; killed at durable steps and run again, it
# completes; find by case, show and verify (local and remote) then agree
# with the station; without --blobs the items are remote-only. Then, by
# direct S3 calls: an overwritten blob, a deleted blob and an overwritten
# record are named by verify --remote with item and key; a custos.json
# swapped for another station's is refused by the checkpoint's signature;
# a record altered (valid, its own index) is refused by the signed root. On
# a bucket without versioning an object rewritten with the same size and a
# forged x-amz-meta-sha256 passes HEAD and is caught by --deep. A store
# with videos whose derivatives custos media process made: push sends each
# derivative under its SHA-256 with retention, custos replicas lists them,
# a second push sends nothing, a derivative made after its item's blob went
# up goes on the next push; verify --remote checks them, rebuild --blobs
# brings them back (verify passes), without --blobs they are remote-only;
# an overwritten and a deleted derivative object are named. Every
# command that talks to the server runs under `timeout`.
. "$CUSTOS_SRC/tests/integration/lib.sh"

need_python3
trap 'rgw_down; t_cleanup' EXIT
rgw_up
T="timeout 300"
# put_file PATH FILE [headers...]: an unconditional PUT of FILE's bytes (an overwrite).
put_file() {
	local p=$1 f=$2
	shift 2
	s3 PUT "$p" -H "x-amz-content-sha256: $(digest "$f")" "$@" -T "$f" -o /dev/null | status
}
# problems FILE: "kind object id key" per problem of a verify --remote --json answer
problems() {
	python3 -c 'import json,sys
a=json.load(open(sys.argv[1]))
for p in a["problems"]: print(p["kind"], p["object"], p.get("id","-"), p["key"])' "$1"
}

# ---- a store with three cases, pushed to a bucket with Object Lock ----
t_status 0 "custos init" "$CUSTOS" init --station ST01
got=$(s3e PUT vault -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null | status)
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "bucket 'vault' created with Object Lock"
conf "$CUSTOS_STORE/remote.conf" vault "lock_mode = governance" "retain_days = 2"
for i in 1 2 3 4 5; do head -c $((1000 * i)) /dev/urandom >"$WORK/f$i"; done
head -c $((6 * 1024 * 1024 + 7)) /dev/urandom >"$WORK/big"
for c in 1 2 3; do "$CUSTOS" case open "平司罚〔2026〕$c号" >/dev/null 2>&1; done
"$CUSTOS" ingest --case "平司罚〔2026〕1号" --stage 取证 "$WORK/f1" "$WORK/f2" >/dev/null 2>&1 &&
	"$CUSTOS" ingest --case "平司罚〔2026〕2号" --stage 调查 "$WORK/f3" "$WORK/big" >/dev/null 2>&1 &&
	"$CUSTOS" ingest --case "平司罚〔2026〕3号" --stage 决定 "$WORK/f4" "$WORK/f5" >/dev/null 2>&1
t_ok $? "six files ingested into three cases (one multipart-sized)"
"$CUSTOS" checkpoint >/dev/null 2>&1
t_status 0 "custos push" $T "$CUSTOS" push
id1=$(id_of f1)
id2=$(id_of f2)
sha1=$(digest "$WORK/f1")
sha2=$(digest "$WORK/f2")
cp_size=$(sed -n 2p "$CUSTOS_STORE/checkpoints/latest")

# ---- verify --remote on the untouched bucket ----
t_status 0 "verify --remote passes on the bucket as pushed" $T "$CUSTOS" verify --remote
t_grep "... and says how many objects it checked" "all intact at .*/vault: $((6 + cp_size + 2)) objects" \
	"$WORK/last.out"
t_status 0 "verify --remote --deep --json passes" $T "$CUSTOS" verify --remote --deep --json
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))
sys.exit(not (a["ok"] is True and a["deep"] is True and a["problem_count"]==0 and a["checked"]>=8))' \
	"$WORK/last.out"
t_ok $? "... its JSON says ok, deep, no problems"

# ---- rebuild --from-remote: a new station from the bucket ----
"$CUSTOS" pubkey >"$WORK/vkey" 2>/dev/null
"$CUSTOS" init --store "$WORK/other-station" --station ST01 >/dev/null 2>&1
"$CUSTOS" pubkey --store "$WORK/other-station" >"$WORK/wrong-key" 2>/dev/null
CONF="$CUSTOS_STORE/remote.conf"
NEW="$WORK/new"
t_status 2 "rebuild --from-remote without --key is refused" \
	$T "$CUSTOS" rebuild --from-remote "$NEW" --config "$CONF"
t_grep "... saying the bucket alone proves nothing" "verifier key with --key" "$WORK/last.err"
t_status 1 "rebuild --from-remote with another station's key (same name) is refused" \
	$T "$CUSTOS" rebuild --from-remote "$NEW" --config "$CONF" --key "$WORK/wrong-key"
t_grep "... naming the key the bucket's station has" "station ST01 in the bucket has the verifier key" \
	"$WORK/last.err"
t_ok "$([ ! -e "$NEW/custos.json" ] && echo 0 || echo 1)" "... and leaves no store behind"
rm -rf "$NEW"

# killed at durable steps spread over the run (custos-failpoint), each on a fresh
# directory, then run again: it completes, and the store it makes passes verify
CUSTOS_CRASH_TRACE=1 $T "$CUSTOS_FP" rebuild --from-remote "$WORK/trace" --config "$CONF" \
	--key "$WORK/vkey" --blobs >/dev/null 2>"$WORK/trace.err"
K=$(grep -c '^failpoint ' "$WORK/trace.err")
errs=""
for k in 1 $((K / 4)) $((K / 2)) $((3 * K / 4)) $((K - 1)); do
	rm -rf "$NEW"
	CUSTOS_CRASH_AT=$k $T "$CUSTOS_FP" rebuild --from-remote "$NEW" --config "$CONF" \
		--key "$WORK/vkey" --blobs >/dev/null 2>&1
	[ $? = 99 ] || errs="$errs $k(no crash)"
	$T "$CUSTOS" rebuild --from-remote "$NEW" --config "$CONF" --key "$WORK/vkey" --blobs \
		>/dev/null 2>"$WORK/rerun.err" || errs="$errs $k(rerun: $(head -c 300 "$WORK/rerun.err"))"
	"$CUSTOS" verify --store "$NEW" >/dev/null 2>&1 || errs="$errs $k(verify)"
	[ -e "$NEW/tmp/from-remote" ] && errs="$errs $k(downloads left)"
done
t_ok "$([ "$K" -gt 20 ] && [ -z "$errs" ] && echo 0 || echo 1)" \
	"rebuild --from-remote killed at 5 of its $K durable steps, then run again, completes${errs:+:$errs}"
rm -rf "$NEW"
t_status 0 "rebuild --from-remote --blobs run again completes" \
	$T "$CUSTOS" rebuild --from-remote "$NEW" --config "$CONF" --key "$WORK/vkey" --blobs
t_grep "... and says what it rebuilt" "rebuilt station ST01 .*: $cp_size ledger events" "$WORK/last.out"
t_ok "$([ ! -e "$NEW/tmp/from-remote" ] && echo 0 || echo 1)" "... leaving no download behind"
errs=""
for c in 1 2 3; do
	a=$("$CUSTOS" find --case "平司罚〔2026〕${c}号" 2>/dev/null | sort)
	b=$("$CUSTOS" find --store "$NEW" --case "平司罚〔2026〕${c}号" 2>/dev/null | sort)
	[ -n "$a" ] && [ "$a" = "$b" ] || errs="$errs $c"
done
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" "find by case gives the same items in the new store${errs:+ (not:$errs)}"
errs=""
for f in f1 f3 big f5; do
	id=$(id_of "$f")
	"$CUSTOS" show "$id" --json >"$WORK/a.json" 2>/dev/null
	"$CUSTOS" show --store "$NEW" "$id" --json >"$WORK/b.json" 2>/dev/null
	cmp -s "$WORK/a.json" "$WORK/b.json" || errs="$errs $f"
done
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" "show gives the same records${errs:+ (not:$errs)}"
t_status 0 "custos verify passes on the new store (blobs, ledger, checkpoint, catalog)" \
	"$CUSTOS" verify --store "$NEW"
t_status 0 "verify --remote passes from the new store" \
	$T "$CUSTOS" verify --remote --store "$NEW" --config "$CONF"
t_status 2 "a second rebuild into the same directory is refused" \
	$T "$CUSTOS" rebuild --from-remote "$NEW" --config "$CONF" --key "$WORK/vkey"
t_grep "... it already holds a store" "already holds a store" "$WORK/last.err"

# without --blobs: the items are remote-only
t_status 0 "rebuild --from-remote without --blobs" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/thin" --config "$CONF" --key "$WORK/vkey"
t_grep "... says the items are remote-only" "remote-only" "$WORK/last.out"
t_status 0 "custos verify passes on it (remote-only items are not missing)" \
	"$CUSTOS" verify --store "$WORK/thin"
t_run "show of a remote-only item" "$CUSTOS" show --store "$WORK/thin" "$id1"
t_grep "... says where its bytes are" "remote-only" "$WORK/last.out"

# ---- changed behind custos's back, by direct S3 calls ----
head -c 1500 /dev/urandom >"$WORK/other"
got=$(put_file "vault/st/objects/sha256/$sha1" "$WORK/other")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "blob of f1 overwritten by a direct PUT (a new version)"
got=$(s3e DELETE "vault/st/objects/sha256/$sha2" -o /dev/null | status)
t_ok "$([ "$got" = 204 ] && echo 0 || echo 1)" "blob of f2 deleted by a direct DELETE (a delete marker)"
rec0="st/stations/ST01/ledger/$(printf %016d 0).json"
echo '{"event":"forged"}' >"$WORK/forged"
got=$(put_file "vault/$rec0" "$WORK/forged")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "ledger record 0 overwritten by a direct PUT"

t_status 1 "verify --remote finds the problems (exit 1)" $T "$CUSTOS" verify --remote --json
problems "$WORK/last.out" >"$WORK/probs"
sed 's/^/#   /' "$WORK/probs"
t_grep "the overwritten blob is named by item and key: checksum" \
	"^checksum blob $id1 st/objects/sha256/$sha1\$" "$WORK/probs"
t_grep "... and as an extra version" "^versions blob $id1 st/objects/sha256/$sha1\$" "$WORK/probs"
t_grep "... and its size" "^size blob $id1 " "$WORK/probs"
t_grep "the deleted blob is named: missing" "^missing blob $id2 st/objects/sha256/$sha2\$" "$WORK/probs"
t_grep "the overwritten record is named" "^(checksum|versions) record - $rec0\$" "$WORK/probs"
t_ok "$([ "$(wc -l <"$WORK/probs")" -eq 9 ] && echo 0 || echo 1)" \
	"... and nothing else: size, checksum, retention, versions of each overwrite ($(wc -l <"$WORK/probs") problems)"
t_status 1 "the text output names them too" $T "$CUSTOS" verify --remote
t_grep "... a sentence naming the item and what is wrong" \
	"PROBLEM missing: $id2: st/objects/sha256/$sha2 is deleted in the bucket" "$WORK/last.out"

# ---- retention shortened (GOVERNANCE lets a privileged user do it) ----
id3=$(id_of f3)
sha3=$(digest "$WORK/f3")
printf '<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>GOVERNANCE</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>' \
	"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/short.xml"
got=$(s3 PUT "vault/st/objects/sha256/$sha3?retention=" -H "x-amz-content-sha256: $(digest "$WORK/short.xml")" \
	-H "x-amz-bypass-governance-retention: true" -H "Content-Type: application/xml" \
	--data-binary @"$WORK/short.xml" -o /dev/null | status)
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "the retention of f3's blob shortened to one day (bypassing governance)"
t_status 1 "verify --remote finds it" $T "$CUSTOS" verify --remote --json
problems "$WORK/last.out" >"$WORK/probs"
t_grep "... named by item and key: retention" "^retention blob $id3 st/objects/sha256/$sha3\$" "$WORK/probs"

# record 0 put back (its exact event bytes), so that each tamper below is the only one
"$CUSTOS" log --json 2>/dev/null | python3 -c 'import json,sys
e=json.load(sys.stdin)[0]
sys.stdout.write(json.dumps(e,sort_keys=True,separators=(",",":"),ensure_ascii=False))' >"$WORK/rec0"
got=$(put_file "vault/$rec0" "$WORK/rec0")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "ledger record 0 put back"

# ---- custos.json replaced in the bucket by another station's of the same name ----
got=$(put_file "vault/st/stations/ST01/custos.json" "$WORK/other-station/custos.json")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "the station's custos.json replaced by another's (another key)"
t_status 1 "rebuild --from-remote with that other key: the checkpoint's signature refuses it" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/swapped" --config "$CONF" --key "$WORK/wrong-key"
t_grep "... naming the checkpoint" "checkpoints/[0-9]+ is not signed by the key given" "$WORK/last.err"
t_ok "$([ ! -e "$WORK/swapped/custos.json" ] && echo 0 || echo 1)" "... leaving no store"
got=$(put_file "vault/st/stations/ST01/custos.json" "$CUSTOS_STORE/custos.json")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "the station's own custos.json put back"

# ---- a record altered in the bucket (valid JSON, its own index): the rebuild refuses ----
rec1="st/stations/ST01/ledger/$(printf %016d 1).json"
s3e GET "vault/$rec1" -o "$WORK/rec1" >/dev/null
python3 -c 'import json,sys
e=json.load(open(sys.argv[1])); e["actor"]["name"]="mallory"
sys.stdout.write(json.dumps(e,sort_keys=True,separators=(",",":"),ensure_ascii=False))' \
	"$WORK/rec1" >"$WORK/rec1.bad"
got=$(put_file "vault/$rec1" "$WORK/rec1.bad")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "ledger record 1 altered in the bucket (its actor)"
t_status 1 "rebuild --from-remote finds the bucket's records do not match the signed root" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/tampered" --config "$CONF" --key "$WORK/vkey"
t_grep "... and says so" "do not hash to the root signed" "$WORK/last.err"
t_ok "$([ ! -e "$WORK/tampered/custos.json" ] && echo 0 || echo 1)" "... leaving no store"

# ---- a bucket without versioning: same size, forged checksum header; only --deep sees it ----
S2="$WORK/store2"
s3e PUT plain -o /dev/null >/dev/null
"$CUSTOS" init --store "$S2" --station ST02 >/dev/null 2>&1
conf "$S2/remote.conf" plain
"$CUSTOS" ingest --store "$S2" "$WORK/f3" "$WORK/f4" >/dev/null 2>&1
"$CUSTOS" checkpoint --store "$S2" >/dev/null 2>&1
t_status 0 "a second store pushes to a bucket without versioning" $T "$CUSTOS" push --store "$S2"
sha3=$(digest "$WORK/f3")
id3=$("$CUSTOS" find --store "$S2" --sha256 "$sha3" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
head -c 3000 /dev/urandom >"$WORK/same-size"
got=$(put_file "plain/st/objects/sha256/$sha3" "$WORK/same-size" -H "x-amz-meta-sha256: $sha3")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "blob of f3 replaced: same size, x-amz-meta-sha256 forged"
t_status 0 "verify --remote (HEAD only) cannot tell" $T "$CUSTOS" verify --remote --store "$S2"
t_status 1 "verify --remote --deep reads it back and finds it" \
	$T "$CUSTOS" verify --remote --deep --json --store "$S2"
problems "$WORK/last.out" >"$WORK/probs"
t_grep "... named by item and key" "^checksum blob $id3 st/objects/sha256/$sha3\$" "$WORK/probs"

"$CUSTOS" pubkey --store "$S2" >"$WORK/vkey2" 2>/dev/null
t_status 1 "rebuild --from-remote --blobs of that station refuses the replaced blob" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/s2new" --config "$S2/remote.conf" \
	--key "$WORK/vkey2" --blobs
t_grep "... naming the item and the key" "st/objects/sha256/$sha3 in the bucket .* not to item $id3's SHA-256" \
	"$WORK/last.err"
t_ok "$([ ! -e "$WORK/s2new/custos.json" ] && echo 0 || echo 1)" "... leaving no store"

# ---- derivatives go to the bucket too (a store with videos, custos media process) ----
export CUSTOS_PROBE=${CUSTOS_PROBE_BIN:?CUSTOS_PROBE_BIN must point at custos-probe}
asan_allow_preload
S3="$WORK/store3"
CONF3="$S3/remote.conf"
mkdir -p "$WORK/dv"
ffq() { ffmpeg -nostdin -loglevel error -y "$@"; }
ffq -f lavfi -i testsrc=size=160x120:rate=10:duration=1 -c:v libx264 -pix_fmt yuv420p \
	"$WORK/dv/a.mp4" &&
	ffq -f lavfi -i testsrc2=size=160x120:rate=10:duration=1 -c:v libx264 -pix_fmt yuv420p \
		"$WORK/dv/b.mp4"
t_ok $? "two video clips made with ffmpeg (lavfi)"
got=$(s3e PUT dvault -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null | status)
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "bucket 'dvault' created with Object Lock"
"$CUSTOS" init --store "$S3" --station ST03 >/dev/null 2>&1
conf "$CONF3" dvault "lock_mode = governance" "retain_days = 2"
"$CUSTOS" ingest --store "$S3" "$WORK/dv/a.mp4" >/dev/null 2>&1 &&
	"$CUSTOS" media process --store "$S3" >/dev/null 2>&1
t_ok $? "a video secured and its derivatives made (custos media process)"
ida=$("$CUSTOS" find --store "$S3" --sha256 "$(digest "$WORK/dv/a.mp4")" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
# derivs ID: "kind sha256" of each derivative made (status ok) of item ID in store S3
derivs() {
	"$CUSTOS" show --store "${2:-$S3}" "$1" --json 2>/dev/null | python3 -c 'import json,sys
for d in json.load(sys.stdin)["record"].get("derivatives", []):
	if d["status"] == "ok": print(d["kind"], d["sha256"])'
}
derivs "$ida" >"$WORK/da"
t_ok "$([ "$(wc -l <"$WORK/da")" -ge 2 ] && echo 0 || echo 1)" \
	"... an access copy and a poster: $(cut -d' ' -f1 "$WORK/da" | tr '\n' ' ')"
t_status 0 "custos push of the store with derivatives" $T "$CUSTOS" push --store "$S3"
errs=""
while read -r kind h; do
	grep -q "^sent	st/objects/sha256/$h	" "$WORK/last.out" || errs="$errs $kind(not sent)"
	head=$(s3e HEAD "dvault/st/objects/sha256/$h" -I)
	echo "$head" | grep -qi 'x-amz-object-lock-mode: GOVERNANCE' &&
		echo "$head" | grep -qi 'x-amz-object-lock-retain-until-date: ' ||
		errs="$errs $kind(no retention)"
	s3e GET "dvault/st/objects/sha256/$h" -o "$WORK/dget" >/dev/null
	[ "$(digest "$WORK/dget")" = "$h" ] || errs="$errs $kind(bytes)"
done <"$WORK/da"
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" \
	"the bucket holds each derivative under its SHA-256, with retention${errs:+:$errs}"
# reps ID: "kind key" of each confirmed copy of a derivative of item ID
reps() {
	"$CUSTOS" replicas --store "$S3" "$1" --json 2>/dev/null | python3 -c 'import json,sys
for r in json.load(sys.stdin):
	if "derivative" in r: print(r["derivative"], r["key"], r["lock_mode"])'
}
reps "$ida" >"$WORK/ra"
awk '{print $1, "st/objects/sha256/" $2, "GOVERNANCE"}' "$WORK/da" | sort >"$WORK/ra.want"
sort "$WORK/ra" | cmp -s - "$WORK/ra.want"
t_ok $? "custos replicas lists each derivative's copy with its kind, key and lock"
t_run "custos replicas (text)" "$CUSTOS" replicas --store "$S3" "$ida"
t_grep "... names the derivative's kind" "	derivative access$" "$WORK/last.out"
t_run "custos show" "$CUSTOS" show --store "$S3" "$ida"
read -r _ hpo < <(grep '^poster ' "$WORK/da")
t_grep "... lists each derivative's copy in the bucket" "replica: .*/dvault st/objects/sha256/$hpo," \
	"$WORK/last.out"
t_status 0 "a second push" $T "$CUSTOS" push --store "$S3"
t_grep "... sends nothing" ': 0 sent, 0 already there, 0 failed' "$WORK/last.err"

# a derivative made after its item's blob went up goes up on the next push
"$CUSTOS" ingest --store "$S3" "$WORK/dv/b.mp4" >/dev/null 2>&1
t_status 0 "a second video pushed before its derivatives are made" $T "$CUSTOS" push --store "$S3"
idb=$("$CUSTOS" find --store "$S3" --sha256 "$(digest "$WORK/dv/b.mp4")" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$CUSTOS" media process --store "$S3" >/dev/null 2>&1
derivs "$idb" >"$WORK/db"
t_ok "$([ "$(wc -l <"$WORK/db")" -ge 2 ] && echo 0 || echo 1)" "... then its derivatives made"
t_status 0 "the next push" $T "$CUSTOS" push --store "$S3"
errs=""
while read -r kind h; do
	grep -q "^sent	st/objects/sha256/$h	" "$WORK/last.out" || errs="$errs $kind"
done <"$WORK/db"
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" "... sends the derivatives made after the blob${errs:+ (not:$errs)}"
reps "$idb" | wc -l >"$WORK/nb"
t_ok "$([ "$(cat "$WORK/nb")" = "$(wc -l <"$WORK/db")" ] && echo 0 || echo 1)" \
	"... and custos replicas lists them"
t_status 0 "a push after that sends nothing" $T "$CUSTOS" push --store "$S3"
t_grep "... nothing" ': 0 sent, 0 already there, 0 failed' "$WORK/last.err"
t_status 0 "verify --remote passes with the derivatives" $T "$CUSTOS" verify --remote --store "$S3"
nobj=$(sed -n 's/.*all intact at .*: \([0-9]*\) objects.*/\1/p' "$WORK/last.out")
nd=$(cat "$WORK/da" "$WORK/db" | wc -l)
cp3=$(sed -n 2p "$S3/checkpoints/latest")
t_ok "$([ "$nobj" = $((2 + nd + cp3 + 2)) ] && echo 0 || echo 1)" \
	"... having checked the $nd derivative objects too ($nobj objects)"

# rebuilt from the bucket: with --blobs the derivatives come back; without, remote-only
pk3="$WORK/vkey3"
"$CUSTOS" pubkey --store "$S3" >"$pk3" 2>/dev/null
t_status 0 "rebuild --from-remote --blobs of the station with derivatives" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/dnew" --config "$CONF3" --key "$pk3" --blobs
errs=""
while read -r kind h; do
	f="$WORK/dnew/derivatives/sha256/${h:0:2}/${h:2:2}/$h"
	[ -f "$f" ] && [ "$(digest "$f")" = "$h" ] || errs="$errs $kind"
done < <(cat "$WORK/da" "$WORK/db")
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" \
	"... every derivative is in derivatives/ with its recorded SHA-256${errs:+ (not:$errs)}"
t_status 0 "custos verify passes on the rebuilt store (derivatives re-hashed)" \
	"$CUSTOS" verify --store "$WORK/dnew"
t_status 0 "rebuild --from-remote without --blobs" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/dthin" --config "$CONF3" --key "$pk3"
t_status 0 "custos verify passes on it (remote-only derivatives are not missing)" \
	"$CUSTOS" verify --store "$WORK/dthin"

# changed behind custos's back: an overwritten and a deleted derivative object
read -r ka ha < <(grep '^access ' "$WORK/da")
read -r kb hb < <(grep '^poster ' "$WORK/db")
head -c 700 /dev/urandom >"$WORK/dother"
got=$(put_file "dvault/st/objects/sha256/$ha" "$WORK/dother")
t_ok "$([ "$got" = 200 ] && echo 0 || echo 1)" "the first video's $ka copy overwritten by a direct PUT"
t_status 1 "rebuild --from-remote --blobs refuses the altered derivative" \
	$T "$CUSTOS" rebuild --from-remote "$WORK/dbad" --config "$CONF3" --key "$pk3" --blobs
t_grep "... naming the item, the copy and the key" \
	"st/objects/sha256/$ha in the bucket .* not to item $ida's $ka SHA-256 $ha" "$WORK/last.err"
t_ok "$([ ! -e "$WORK/dbad/custos.json" ] && echo 0 || echo 1)" "... leaving no store"
got=$(s3e DELETE "dvault/st/objects/sha256/$hb" -o /dev/null | status)
t_ok "$([ "$got" = 204 ] && echo 0 || echo 1)" "the second video's $kb deleted by a direct DELETE"
t_status 1 "verify --remote finds both" $T "$CUSTOS" verify --remote --json --store "$S3"
problems "$WORK/last.out" >"$WORK/dprobs"
sed 's/^/#   /' "$WORK/dprobs"
t_grep "the overwritten derivative is named by item and key" \
	"^checksum derivative $ida st/objects/sha256/$ha\$" "$WORK/dprobs"
t_grep "the deleted derivative is named by item and key" \
	"^missing derivative $idb st/objects/sha256/$hb\$" "$WORK/dprobs"
t_ok "$([ "$(wc -l <"$WORK/dprobs")" -eq 5 ] && echo 0 || echo 1)" \
	"... and nothing else: size, checksum, retention, versions of the overwrite ($(wc -l <"$WORK/dprobs"))"
t_status 1 "the text output" $T "$CUSTOS" verify --remote --store "$S3"
t_grep "... names the copy's kind and item" \
	"the $kb copy of item $idb: st/objects/sha256/$hb is deleted in the bucket" "$WORK/last.out"

# ---- usage ----
t_status 2 "--deep without --remote is refused" "$CUSTOS" verify --deep
t_grep "... saying what goes with what" "go with --remote" "$WORK/last.err"

t_done
