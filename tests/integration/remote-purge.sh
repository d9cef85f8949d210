#!/usr/bin/env bash
# The remote side of a purge (lib/remote_purge.c) against a real S3 server
# (Ceph RGW on 127.0.0.1, tests/s3/rgw.sh), through its test driver
# rpurge-tool: an item's objects with a version whose COMPLIANCE retention
# has run out by the server's clock (deleted, with the delete marker after
# it: gone, HEAD 404, no version listed), one retained far ahead (left,
# reported with its date), one on legal hold (left, "held"), a key that
# merely begins with the blob's key (untouched), listings paged one entry at
# a time; legal hold set on every version and seen by GetObjectLegalHold,
# then cleared; a bucket without Object Lock: its versions deleted, legal
# hold "unsupported". Then `custos verify --remote` on a store whose item
# is marked purged: its absent blob is no problem, a blob put back is
# "not-purged", a blob still retained is a note "locked until", not a
# problem. Every command that talks to the server runs under `timeout`.
. "$CUSTOS_SRC/tests/integration/lib.sh"

trap 'rgw_down; t_cleanup' EXIT
need_python3
rgw_up
T="timeout 300"
TOOL="$RPURGE_TOOL"

# jq-like: py EXPR FILE (j is the JSON of FILE)
py() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(($1))" "$2"; }
# hex of a fresh random blob written to $WORK/b-NAME
blob() { head -c "$2" /dev/urandom >"$WORK/b-$1" && digest "$WORK/b-$1"; }
# put BUCKET KEY FILE [headers...]: prints the status
put() {
	local b=$1 k=$2 f=$3
	shift 3
	s3 PUT "$b/$k" -H "x-amz-content-sha256: $(digest "$f")" \
		-H "Content-MD5: $(openssl md5 -binary "$f" | base64)" --data-binary "@$f" \
		-o /dev/null "$@" | status
}
versions() { s3e GET "$1?prefix=${2//\//%2F}&versions=" | sed '$d'; }
# server_time: the server's clock (its Date header), in seconds
server_time() {
	date -u -d "$(s3e HEAD "$1" -I | tr -d '\r' | sed -n 's/^[Dd]ate: //p')" +%s
}
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# ---- a bucket with Object Lock ----
t_ok "$([ "$(s3e PUT locked -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null | status)" = 200 ] &&
	echo 0 || echo 1)" "bucket 'locked' created with Object Lock"
conf "$WORK/locked.conf" locked
h1=$(blob one 1000)
h2=$(blob two 2000)
h3=$(blob three 3000)
K1="st/objects/sha256/$h1" K2="st/objects/sha256/$h2" K3="st/objects/sha256/$h3"
now=$(server_time locked)
short=$(iso $((now + 4)))
far=$(iso $((now + 86400)))
errs=""
[ "$(put locked "$K1" "$WORK/b-one" -H 'x-amz-object-lock-mode: COMPLIANCE' \
	-H "x-amz-object-lock-retain-until-date: $short")" = 200 ] || errs="$errs K1"
# a delete marker over it (a DELETE without a version id)
[ "$(s3e DELETE "locked/$K1" -o /dev/null | status)" = 204 ] || errs="$errs marker"
[ "$(put locked "$K1.extra" "$WORK/b-one")" = 200 ] || errs="$errs K1.extra"
[ "$(put locked "$K2" "$WORK/b-two" -H 'x-amz-object-lock-mode: COMPLIANCE' \
	-H "x-amz-object-lock-retain-until-date: $far")" = 200 ] || errs="$errs K2"
[ "$(put locked "$K3" "$WORK/b-three" -H 'x-amz-object-lock-legal-hold: ON')" = 200 ] ||
	errs="$errs K3"
t_ok "$([ -z "$errs" ] && echo 0 || echo 1)" \
	"objects made: retained until $short (then a delete marker), until $far, on legal hold${errs:+:$errs}"
# the item: its blob and two derivatives (one not made: no key)
cat >"$WORK/rec.json" <<EOF
{"id": "item-1", "sha256": "$h1", "size": 1000, "derivatives": [
 {"kind": "thumb", "status": "ok", "sha256": "$h2", "size": 2000},
 {"kind": "proxy", "status": "ok", "sha256": "$h3", "size": 3000},
 {"kind": "audio", "status": "failed"}]}
EOF

# wait for the server's clock to pass the short retention (the verdict is the clock, not a sleep)
until_s=$(date -u -d "$short" +%s)
for _ in $(seq 1 120); do
	[ "$(server_time locked)" -gt "$until_s" ] && break
	sleep 1
done
t_ok "$([ "$(server_time locked)" -gt "$until_s" ] && echo 0 || echo 1)" \
	"the server's clock has passed $short"

CUSTOS_TEST_LIST_PAGE=1 $T "$TOOL" purge "$WORK/locked.conf" "$WORK/rec.json" >"$WORK/p.json" 2>"$WORK/p.err"
t_ok $? "the purge ran (listings paged one entry at a time)$(sed 's/^/: /' "$WORK/p.err")"
sed 's/^/# /' "$WORK/p.json"
o() { py "[o for o in j['objects'] if o['key']=='$1'][0]$2" "$WORK/p.json" 2>/dev/null; }
t_ok "$([ "$(o "$K1" "['state']")" = gone ] && [ "$(py "len(j['objects'])" "$WORK/p.json")" = 3 ] &&
	[ "$(o "$K1" "['versions']" | grep -o "'outcome': '[a-z]*'" | sort | uniq -c |
		tr -s ' ')" = " 2 'outcome': 'deleted'" ] && [ "$(o "$K1" "['versions']" |
		grep -c "'marker': True")" = 1 ] && echo 0 || echo 1)" \
	"the blob: its expired version and its delete marker deleted, state gone"
t_ok "$([ "$(s3e HEAD "locked/$K1" -I -o /dev/null | status)" = 404 ] &&
	! versions locked "$K1" | grep -q "<Key>$K1</Key>" && echo 0 || echo 1)" \
	"... and the server has none of it: HEAD 404, no version or marker listed"
t_ok "$([ "$(s3e HEAD "locked/$K1.extra" -I -o /dev/null | status)" = 200 ] && echo 0 || echo 1)" \
	"a key that only begins with the blob's key is left alone"
t_ok "$([ "$(o "$K2" "['state']")" = left ] &&
	[ "$(o "$K2" "['versions'][0]['outcome']")" = locked ] &&
	[ "$(o "$K2" "['versions'][0]['retain_until'][:19]")" = "${far%Z}" ] &&
	[ "$(s3e HEAD "locked/$K2" -I -o /dev/null | status)" = 200 ] && echo 0 || echo 1)" \
	"the version retained until $far: left and reported locked with its date"
t_ok "$([ "$(o "$K3" "['versions'][0]['outcome']")" = held ] &&
	[ "$(o "$K3" "['state']")" = left ] && [ "$(py "j['state']" "$WORK/p.json")" = left ] &&
	[ "$(s3e HEAD "locked/$K3" -I -o /dev/null | status)" = 200 ] && echo 0 || echo 1)" \
	"the version on legal hold: left and reported held; the item's state is left"

# ---- legal hold on every version, then off ----
h4=$(blob four 500)
K4="st/objects/sha256/$h4"
put locked "$K4" "$WORK/b-four" >/dev/null
head -c 500 /dev/urandom >"$WORK/b-four2"
put locked "$K4" "$WORK/b-four2" >/dev/null # a second version of the key
echo "{\"id\": \"item-4\", \"sha256\": \"$h4\"}" >"$WORK/rec4.json"
holds() {
	for v in $(versions locked "$K4" | grep -o '<VersionId>[^<]*' | cut -d'>' -f2); do
		s3e GET "locked/$K4?legal-hold=&versionId=$v" | sed '$d' |
			grep -o '<Status>[A-Z]*' | cut -d'>' -f2
	done | sort | uniq -c | tr -s ' ' | sed 's/^ //'
}
$T "$TOOL" hold "$WORK/locked.conf" "$WORK/rec4.json" on >"$WORK/h.json" 2>"$WORK/h.err"
t_ok $? "legal hold set$(sed 's/^/: /' "$WORK/h.err")"
t_ok "$([ "$(py "j['state'],j['status'],[v['outcome'] for v in j['objects'][0]['versions']]" \
	"$WORK/h.json")" = "('done', 'ON', ['set', 'set'])" ] && [ "$(holds)" = "2 ON" ] &&
	echo 0 || echo 1)" "... on both versions, as GetObjectLegalHold shows ($(holds))"
$T "$TOOL" hold "$WORK/locked.conf" "$WORK/rec4.json" off >"$WORK/h.json" 2>"$WORK/h.err"
t_ok "$([ $? = 0 ] && [ "$(py "j['state'],j['status']" "$WORK/h.json")" = "('done', 'OFF')" ] &&
	[ "$(holds)" = "2 OFF" ] && echo 0 || echo 1)" "legal hold cleared again ($(holds))"

# ---- a bucket without Object Lock (versioned) ----
s3e PUT nolock -o /dev/null >/dev/null
printf '<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>' >"$WORK/ver.xml"
s3 PUT "nolock?versioning=" -H "x-amz-content-sha256: $(digest "$WORK/ver.xml")" \
	--data-binary "@$WORK/ver.xml" -o /dev/null >/dev/null
conf "$WORK/nolock.conf" nolock
put nolock "$K4" "$WORK/b-four" >/dev/null
put nolock "$K4" "$WORK/b-four2" >/dev/null
$T "$TOOL" hold "$WORK/nolock.conf" "$WORK/rec4.json" on >"$WORK/h.json" 2>"$WORK/h.err"
t_ok "$([ $? = 0 ] && [ "$(py "j['state']" "$WORK/h.json")" = unsupported ] && echo 0 || echo 1)" \
	"legal hold on a bucket without Object Lock: unsupported, not an error$(sed 's/^/: /' "$WORK/h.err")"
$T "$TOOL" purge "$WORK/nolock.conf" "$WORK/rec4.json" >"$WORK/p.json" 2>"$WORK/p.err"
t_ok "$([ $? = 0 ] && [ "$(py "j['state'],[v['outcome'] for v in j['objects'][0]['versions']]" \
	"$WORK/p.json")" = "('gone', ['deleted', 'deleted'])" ] &&
	! versions nolock "$K4" | grep -q "<Key>$K4</Key>" && echo 0 || echo 1)" \
	"a purge there deletes both versions: none listed$(sed 's/^/: /' "$WORK/p.err")"

# a blob another item shares: the caller passes the record without its sha256; it stays
h5=$(blob five 700)
h6=$(blob six 800)
put nolock "st/objects/sha256/$h5" "$WORK/b-five" >/dev/null
put nolock "st/objects/sha256/$h6" "$WORK/b-six" >/dev/null
cat >"$WORK/rec5.json" <<EOF
{"id": "item-5", "replicas": [{"remote": "$S3_ENDPOINT/nolock", "key": "st/objects/sha256/$h5"}],
 "derivatives": [{"kind": "thumb", "status": "ok", "sha256": "$h6"}]}
EOF
$T "$TOOL" purge "$WORK/nolock.conf" "$WORK/rec5.json" >"$WORK/p.json" 2>"$WORK/p.err"
t_ok "$([ $? = 0 ] && [ "$(py "[o['key'] for o in j['objects']]" "$WORK/p.json")" = \
	"['st/objects/sha256/$h6']" ] &&
	[ "$(s3e HEAD "nolock/st/objects/sha256/$h5" -I -o /dev/null | status)" = 200 ] &&
	[ "$(s3e HEAD "nolock/st/objects/sha256/$h6" -I -o /dev/null | status)" = 404 ] &&
	echo 0 || echo 1)" "a record without its blob's sha256: the derivative purged, the blob left"

# ---- custos verify --remote on a purged item ----
# store NAME CONF: a store of two items pushed to CONF's bucket, the first marked purged
head -c 1500 /dev/urandom >"$WORK/gone"
head -c 1600 /dev/urandom >"$WORK/kept"
gone_sha=$(digest "$WORK/gone")
store() {
	export CUSTOS_STORE="$WORK/$1"
	"$CUSTOS" init --station ST01 >/dev/null 2>&1 &&
		"$CUSTOS" ingest "$WORK/gone" "$WORK/kept" >"$WORK/ids" 2>/dev/null &&
		gone_id=$(grep "$WORK/gone\$" "$WORK/ids" | cut -f1) &&
		"$CUSTOS" checkpoint >/dev/null 2>&1 &&
		$T "$CUSTOS" push --config "$2" >/dev/null 2>&1 &&
		"$TOOL" mark "$CUSTOS_STORE" "$gone_id"
}
s3e PUT plain -o /dev/null >/dev/null
conf "$WORK/plain.conf" plain
store s1 "$WORK/plain.conf"
t_ok $? "a store pushed to a plain bucket, item $gone_id marked purged in its catalog"
s3e DELETE "plain/st/objects/sha256/$gone_sha" -o /dev/null >/dev/null
t_status 0 "verify --remote: the purged item's absent blob is no problem" \
	$T "$CUSTOS" verify --remote --config "$WORK/plain.conf"
put plain "st/objects/sha256/$gone_sha" "$WORK/gone" >/dev/null
t_status 1 "a purged item's blob back in the bucket: verify --remote fails" \
	$T "$CUSTOS" verify --remote --config "$WORK/plain.conf"
t_grep "... naming it not-purged" "PROBLEM not-purged: $gone_id" "$WORK/last.out"
s3e PUT vlocked -H 'x-amz-bucket-object-lock-enabled: true' -o /dev/null >/dev/null
conf "$WORK/vlocked.conf" vlocked "lock_mode = governance" "retain_days = 2"
store s2 "$WORK/vlocked.conf"
t_ok $? "a store pushed to a bucket with Object Lock (2 days), item $gone_id marked purged"
t_status 0 "a purged item's blob still retained: verify --remote passes" \
	$T "$CUSTOS" verify --remote --config "$WORK/vlocked.conf"
t_grep "... saying it is locked until its date" \
	"NOTE locked: $gone_id: .*sha256/$gone_sha.*locked until 20" "$WORK/last.out"
$T "$CUSTOS" verify --remote --config "$WORK/vlocked.conf" --json >"$WORK/v.json" 2>/dev/null
t_ok "$([ "$(py "j['ok'],j['problem_count'],len(j['notes'])" "$WORK/v.json")" = "(True, 0, 1)" ] &&
	echo 0 || echo 1)" "... and --json lists it under notes, not problems"
t_done
