#!/bin/bash
# Round trip: real files in, found again by every index, shown, verified, and
# their stored bytes identical to the originals; bad input refused with exit 2.
. "$(dirname "$0")/lib.sh"

CASE='平司罚〔2020〕1号'
CASE2='平司罚〔2020〕2号'
IN="$WORK/in"
mkdir -p "$IN"

# jq-like helper on stdin: py 'python expression over j' (prints the result).
py() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, ensure_ascii=False, sort_keys=True))' "$1"
}
blob_path() { echo "$CUSTOS_STORE/objects/sha256/${1:0:2}/${1:2:2}/$1"; }
nlines() { if [ -s "$1" ]; then wc -l <"$1"; else echo 0; fi; }

t_run "init creates a store" "$CUSTOS" init --station st-1
t_grep "init prints the verifier key" '^custos/st-1\+[0-9a-f]{8}\+' "$WORK/last.out"
VKEY=$(grep '^custos/st-1+' "$WORK/last.out")

# Real inputs: sizes at the edges of the copy buffers, a few MB, a video.
: >"$IN/empty.bin"
head -c 1 /dev/urandom >"$IN/one.bin"
head -c 65535 /dev/urandom >"$IN/b65535.bin"
head -c 65536 /dev/urandom >"$IN/b65536.bin"
head -c 65537 /dev/urandom >"$IN/b65537.bin"
head -c 3145728 /dev/urandom >"$IN/3mb.bin"
head -c 5000 /dev/urandom >"$IN/现场记录 01.dat"
FILES=(empty.bin one.bin b65535.bin b65536.bin b65537.bin 3mb.bin "现场记录 01.dat")
if command -v ffmpeg >/dev/null 2>&1 &&
	ffmpeg -loglevel error -f lavfi -i testsrc=duration=1:size=320x240:rate=10 \
		-pix_fmt yuv420p "$IN/x.mp4" </dev/null && [ -s "$IN/x.mp4" ]; then
	FILES+=(x.mp4)
else
	echo "# ffmpeg not available: no video in this run"
fi
NF=${#FILES[@]}

# Expected "id<TAB>sha256<TAB>file" for each file, from sha256sum.
: >"$WORK/expect"
for f in "${FILES[@]}"; do
	h=$(sha256sum "$IN/$f" | cut -d' ' -f1)
	printf 'st-1-%s\t%s\t%s\n' "${h:0:20}" "$h" "$IN/$f" >>"$WORK/expect"
done
cut -f1 "$WORK/expect" | sort >"$WORK/ids"

args=()
for f in "${FILES[@]}"; do args+=("$IN/$f"); done
t_run "ingest $NF files under $CASE" "$CUSTOS" ingest "${args[@]}" --case "$CASE" \
	--category 行政处罚 --stage 取证 --officer 警001 --officer 002 --device DEV-7 \
	--recorded-at 2026-11-28T08:30:00+08:00
cp "$WORK/last.out" "$WORK/ingest.out"
cmp -s "$WORK/expect" "$WORK/ingest.out"
rc=$?
t_ok $rc "ingest prints id<TAB>sha256<TAB>file per file, sha256 as sha256sum, id = station-20 hex"
[ $rc -eq 0 ] || diff "$WORK/expect" "$WORK/ingest.out" | sed 's/^/#   /' | head -10

# Another case with other people, device and time, to see the indexes select.
head -c 777 /dev/urandom >"$IN/other.bin"
OTHER_SHA=$(sha256sum "$IN/other.bin" | cut -d' ' -f1)
OTHER_ID="st-1-${OTHER_SHA:0:20}"
t_run "ingest a file of another case (--json)" "$CUSTOS" ingest "$IN/other.bin" --case "$CASE2" \
	--stage decision --officer 003 --device DEV-8 --recorded-at 2026-12-01T10:00:00Z --json
[ "$(py 'j[0]["id"]+" "+j[0]["sha256"]+" "+str(j[0]["size"])+" "+str(j[0]["duplicate"])' <"$WORK/last.out")" = \
	"$OTHER_ID $OTHER_SHA 777 False" ]
t_ok $? "ingest --json gives id, sha256, size and duplicate=false"

# find by case, text
t_run "find --case (text)" "$CUSTOS" find --case "$CASE"
cut -f1 "$WORK/last.out" | sort | cmp -s - "$WORK/ids"
t_ok $? "find --case lists exactly the ids of the case"
[ "$(cut -f2 "$WORK/last.out" | sort -u)" = "$CASE" ]
t_ok $? "find --case text shows the UTF-8 case number on every line"
[ "$(cut -f3,4 "$WORK/last.out" | sort -u)" = "$(printf '取证\t2026-11-28T00:30:00.000Z')" ]
t_ok $? "find shows the stage and the recording time normalised to UTC"

# find by case, JSON: every field against the inputs
t_run "find --case --json" "$CUSTOS" find --case "$CASE" --json
cp "$WORK/last.out" "$WORK/find-case.json"
py '"\n".join(sorted("%s\t%s\t%s" % (r["id"], r["sha256"], r["name"]) for r in j))' \
	<"$WORK/find-case.json" >"$WORK/got"
for f in "${FILES[@]}"; do
	h=$(sha256sum "$IN/$f" | cut -d' ' -f1)
	printf 'st-1-%s\t%s\t%s\n' "${h:0:20}" "$h" "$f"
done | sort >"$WORK/want"
cmp -s "$WORK/want" "$WORK/got"
t_ok $? "find --json: ids, sha256 (= sha256sum) and original names match"
py '"\n".join(sorted("%s %d" % (r["name"], r["size"]) for r in j))' <"$WORK/find-case.json" >"$WORK/got"
for f in "${FILES[@]}"; do echo "$f $(stat -c %s "$IN/$f")"; done | sort >"$WORK/want"
cmp -s "$WORK/want" "$WORK/got"
t_ok $? "find --json: sizes match the files"
[ "$(py 'sorted(set(json.dumps([r["case"], r["category"], r["stage"], r["officers"], r["device"], r["recorded_start"], r["sightings"]], ensure_ascii=False) for r in j))' <"$WORK/find-case.json")" = \
	'["[\"平司罚〔2020〕1号\", \"行政处罚\", \"取证\", [\"警001\", \"002\"], \"DEV-7\", \"2026-11-28T00:30:00.000Z\", 1]"]' ]
t_ok $? "find --json: case, category, stage, officers, device, recorded_start, sightings kept"

# other indexes
t_run "find --officer 002" "$CUSTOS" find --officer 002
cut -f1 "$WORK/last.out" | sort | cmp -s - "$WORK/ids"
t_ok $? "find --officer lists the officer's items and nothing else"
t_run "find --officer 警001 (UTF-8 officer id)" "$CUSTOS" find --officer 警001 --json
[ "$(py 'len(j)' <"$WORK/last.out")" = "$NF" ]
t_ok $? "find --officer with a UTF-8 id finds all $NF"
t_run "find --officer 003" "$CUSTOS" find --officer 003
[ "$(cut -f1 "$WORK/last.out")" = "$OTHER_ID" ]
t_ok $? "find --officer 003 gives only the other case's item"
t_run "find --device DEV-7" "$CUSTOS" find --device DEV-7
cut -f1 "$WORK/last.out" | sort | cmp -s - "$WORK/ids"
t_ok $? "find --device lists the device's items"
BIG_SHA=$(sha256sum "$IN/3mb.bin" | cut -d' ' -f1)
t_run "find --sha256" "$CUSTOS" find --sha256 "$BIG_SHA"
[ "$(nlines "$WORK/last.out")" = 1 ] && [ "$(cut -f1 "$WORK/last.out")" = "st-1-${BIG_SHA:0:20}" ] &&
	[ "$(cut -f6 "$WORK/last.out")" = 3mb.bin ]
t_ok $? "find --sha256 gives exactly that file"
t_run "find --sha256 of unknown bytes" "$CUSTOS" find --sha256 "$(printf 'nothing' | sha256sum | cut -d' ' -f1)"
[ ! -s "$WORK/last.out" ]
t_ok $? "find --sha256 of bytes never ingested is empty"
t_run "find --from/--to around the recording" "$CUSTOS" find --from 2026-11-28T08:00:00+08:00 \
	--to 2026-11-28T01:00:00Z
cut -f1 "$WORK/last.out" | sort | cmp -s - "$WORK/ids"
t_ok $? "find by time range (mixed offsets) lists the items recorded in it"
t_run "find --from after everything" "$CUSTOS" find --from 2027-01-01T00:00:00Z
[ ! -s "$WORK/last.out" ]
t_ok $? "find --from later than every recording is empty"
t_run "find --to before everything" "$CUSTOS" find --to 2026-11-27T00:00:00Z
[ ! -s "$WORK/last.out" ]
t_ok $? "find --to earlier than every recording is empty"
t_run "find --from between the two recordings" "$CUSTOS" find --from 2026-11-29T00:00:00Z --to 2026-12-31T00:00:00Z
[ "$(cut -f1 "$WORK/last.out")" = "$OTHER_ID" ]
t_ok $? "a range holding only the second recording finds only it"
t_run "find --case and --officer together" "$CUSTOS" find --case "$CASE2" --officer 002
[ ! -s "$WORK/last.out" ]
t_ok $? "find with two criteria returns items matching both (none here)"

# show
ID=$(grep -F "$IN/3mb.bin" "$WORK/ingest.out" | cut -f1)
t_run "show ID" "$CUSTOS" show "$ID"
t_grep "show prints the case number" "^case +$CASE\$" "$WORK/last.out"
t_grep "show prints the sha256" "^sha256 +$BIG_SHA\$" "$WORK/last.out"
t_grep "show lists the ingest event" '^  #[0-9]+  [0-9T:.Z-]+  ingest$' "$WORK/last.out"
t_run "show ID --json" "$CUSTOS" show "$ID" --json
[ "$(py '[j["record"]["id"], j["record"]["sha256"], j["record"]["size"], j["record"]["name"], [e["event"]["event"] for e in j["events"]], j["events"][0]["event"]["item"]["sha256"], j["events"][0]["seq"] == j["events"][0]["event"]["seq"]]' <"$WORK/last.out")" = \
	"[\"$ID\", \"$BIG_SHA\", 3145728, \"3mb.bin\", [\"ingest\"], \"$BIG_SHA\", true]" ]
t_ok $? "show --json: record and its one ingest event agree"

# verify, log, checkpoint, pubkey
t_run "verify passes" "$CUSTOS" verify
t_grep "verify says all intact" '^all intact' "$WORK/last.out"
t_run "verify --json" "$CUSTOS" verify --json
[ "$(py '[j["ok"], j["problem_count"], j["ledger_size"]]' <"$WORK/last.out")" = "[true, 0, $((NF + 1))]" ]
t_ok $? "verify --json: ok, no problems, ledger of $((NF + 1)) events"
t_run "verify ID" "$CUSTOS" verify "$ID" "$OTHER_ID"
t_status 1 "verify of an unknown id is a problem" "$CUSTOS" verify st-1-00000000000000000000
t_grep "verify names the unknown id" 'st-1-00000000000000000000' "$WORK/last.out"
t_run "log" "$CUSTOS" log
cp "$WORK/last.out" "$WORK/log.out"
[ "$(nlines "$WORK/log.out")" = $((NF + 1)) ]
t_ok $? "log lists $((NF + 1)) events"
cut -f3,4 "$WORK/log.out" | grep '^ingest' | cut -f2 | sort | cmp -s - <(sort "$WORK/ids" <(echo "$OTHER_ID"))
t_ok $? "log has one ingest event per item, with its id"
[ "$(cut -f1 "$WORK/log.out" | tr '\n' ' ')" = "$(seq 0 "$NF" | tr '\n' ' ')" ]
t_ok $? "log positions run 0..$NF in order"
t_run "log --json" "$CUSTOS" log --json
[ "$(py '[len(j), sorted(set(e["event"] for e in j))]' <"$WORK/last.out")" = "[$((NF + 1)), [\"ingest\"]]" ]
t_ok $? "log --json gives the same events"
t_run "pubkey" "$CUSTOS" pubkey
[ "$(cat "$WORK/last.out")" = "$VKEY" ]
t_ok $? "pubkey prints the key init printed"
t_run "checkpoint" "$CUSTOS" checkpoint
[ "$(sed -n 1,2p "$WORK/last.out" | tr '\n' ' ')" = "custos/st-1 $((NF + 1)) " ]
t_ok $? "checkpoint covers all $((NF + 1)) events"

# --help of every command
for c in init ingest find show verify rebuild prove check-proof checkpoint pubkey log; do
	t_run "$c --help exits 0" "$CUSTOS" "$c" --help
	[ -s "$WORK/last.out" ] && grep -q "^usage: custos $c" "$WORK/last.out"
	t_ok $? "$c --help prints its usage on stdout"
done
t_run "custos --help exits 0" "$CUSTOS" --help

# stored bytes
n=0
for f in "${FILES[@]}" other.bin; do
	h=$(sha256sum "$IN/$f" | cut -d' ' -f1)
	p=$(blob_path "$h")
	if cmp -s "$p" "$IN/$f" && [ "$(stat -c %a "$p")" = 444 ] && [ -f "$p" ] && [ ! -L "$p" ]; then
		n=$((n + 1))
	else
		echo "# blob of $f: $(stat -c '%a %s' "$p" 2>&1)"
	fi
done
[ "$n" = $((NF + 1)) ]
t_ok $? "every stored blob equals its original byte for byte and is mode 0444"
[ "$(find "$CUSTOS_STORE/objects" -type f | wc -l)" = $((NF + 1)) ]
t_ok $? "objects/ holds one file per distinct content"
# bad input: exit 2, a message naming the problem, nothing recorded
EVENTS=$(nlines "$WORK/log.out")
t_status 2 "unknown --stage is refused" "$CUSTOS" ingest "$IN/one.bin" --case "$CASE" --stage 喝茶
t_grep "the message names the stage" "unknown --stage '喝茶'" "$WORK/last.err"
t_status 2 "bad --recorded-at is refused" "$CUSTOS" ingest "$IN/one.bin" --case "$CASE" \
	--recorded-at 2026-13-45T99:00:00Z
t_grep "the message names --recorded-at" 'invalid --recorded-at' "$WORK/last.err"
t_status 2 "--recorded-at without offset is refused" "$CUSTOS" ingest "$IN/one.bin" --case "$CASE" \
	--recorded-at 2026-11-28T08:30:00
t_status 2 "--recorded-end before --recorded-at is refused" "$CUSTOS" ingest "$IN/one.bin" --case "$CASE" \
	--recorded-at 2026-11-28T08:30:00Z --recorded-end 2026-11-28T08:00:00Z
t_grep "the message names --recorded-end" 'invalid --recorded-end' "$WORK/last.err"
t_status 2 "an empty --case is refused" "$CUSTOS" ingest "$IN/one.bin" --case ''
t_grep "the message names --case" 'invalid --case' "$WORK/last.err"
t_status 2 "a case number with a control character is refused" "$CUSTOS" ingest "$IN/one.bin" \
	--case $'A\nB'
t_grep "the message names the field" 'invalid --case' "$WORK/last.err"
t_status 2 "ingest without a file is refused" "$CUSTOS" ingest --case "$CASE"
t_status 2 "show of an unknown id" "$CUSTOS" show st-1-ffffffffffffffffffff
t_grep "the message names the id" "st-1-ffffffffffffffffffff" "$WORK/last.err"
t_status 2 "find --sha256 that is not a digest" "$CUSTOS" find --sha256 xyz
t_grep "the message names the bad digest" 'sha256' "$WORK/last.err"
t_status 2 "find --from that is not a time" "$CUSTOS" find --from yesterday
t_status 2 "find without a criterion" "$CUSTOS" find
t_status 2 "unknown command" "$CUSTOS" frobnicate
t_status 2 "unknown option" "$CUSTOS" ingest "$IN/one.bin" --case "$CASE" --colour blue
t_status 3 "a directory that is not a store" "$CUSTOS" find --case "$CASE" --store "$IN"
t_grep "the message says it is not a store" 'not a custos store' "$WORK/last.err"
# --store before the command, as git -C: the same answer as with $CUSTOS_STORE;
# given before and after, the one after the command wins.
env -u CUSTOS_STORE "$CUSTOS" --store "$CUSTOS_STORE" find --case "$CASE" --json \
	>"$WORK/global.json" 2>"$WORK/last.err" && cmp -s "$WORK/global.json" "$WORK/find-case.json"
t_ok $? "custos --store DIR find gives what find with \$CUSTOS_STORE gives"
env -u CUSTOS_STORE "$CUSTOS" --store="$CUSTOS_STORE" find --case "$CASE" --json \
	>"$WORK/global.json" 2>"$WORK/last.err" && cmp -s "$WORK/global.json" "$WORK/find-case.json"
t_ok $? "custos --store=DIR find too"
t_status 3 "a --store after the command wins over one before it" \
	env -u CUSTOS_STORE "$CUSTOS" --store "$CUSTOS_STORE" find --case "$CASE" --store "$IN"
t_grep "... and names the later directory" "$IN is not a custos store" "$WORK/last.err"
env -u CUSTOS_STORE "$CUSTOS" --store "$IN" find --case "$CASE" --store "$CUSTOS_STORE" --json \
	>"$WORK/global.json" 2>"$WORK/last.err" && cmp -s "$WORK/global.json" "$WORK/find-case.json"
t_ok $? "... the other way round too"
t_status 2 "--store without a directory before the command" "$CUSTOS" --store
t_run "custos --store DIR COMMAND --help" "$CUSTOS" --store "$IN" verify --help
t_grep "... prints the command's usage" "^usage: custos verify" "$WORK/last.out"
t_status 2 "init on an existing store is refused" "$CUSTOS" init --station st-1
"$CUSTOS" log >"$WORK/log2.out"
[ "$(nlines "$WORK/log2.out")" = "$EVENTS" ] && cmp -s "$WORK/log.out" "$WORK/log2.out"
t_ok $? "refused commands recorded nothing in the ledger"
t_run "verify still passes" "$CUSTOS" verify

t_done
