#!/bin/sh
# Sets everything up (missing Debian packages, build) and runs custos on its
# embedded default: a store under ./var/store. Until the daemon lands this is
# a short demonstration of the CLI: a store is created, two recordings made
# with ffmpeg are secured under a case number, found, verified and proven.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh build

VAR="${CUSTOS_VAR:-$PWD/var}"
export CUSTOS_STORE="$VAR/store"
CUSTOS="$PWD/build/tools/custos"
mkdir -p "$VAR/inbox"
if [ ! -f "$CUSTOS_STORE/custos.json" ]; then
	"$CUSTOS" init --station DEMO
fi
for n in 1 2; do
	f="$VAR/inbox/DEV01_OF007_2026112808300${n}_000${n}.mp4"
	[ -f "$f" ] || ffmpeg -loglevel error -f lavfi -i "testsrc=duration=2:size=320x240:rate=15" \
		-f lavfi -i "sine=frequency=$((440 * n)):duration=2" -shortest \
		-c:v libx264 -pix_fmt yuv420p -c:a aac "$f"
done
echo "== ingest =="
"$CUSTOS" ingest "$VAR"/inbox/*.mp4 --case '平司罚〔2020〕1号' --category 行政处罚 \
	--stage 取证 --officer OF007 --device DEV01 --recorded-at 2026-11-28T08:30:00+08:00
echo "== find --case 平司罚〔2020〕1号 =="
"$CUSTOS" find --case '平司罚〔2020〕1号'
echo "== verify =="
"$CUSTOS" verify
id=$("$CUSTOS" find --case '平司罚〔2020〕1号' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
echo "== prove $id, then check the proof with the verifier key alone =="
"$CUSTOS" prove "$id" > "$VAR/proof.txt"
"$CUSTOS" check-proof "$VAR/proof.txt" --key "$("$CUSTOS" pubkey)"
echo
echo "The store is $CUSTOS_STORE; try: CUSTOS_STORE=$CUSTOS_STORE $CUSTOS --help"
