#!/bin/sh
# Sets everything up (missing Debian packages, build) and runs custosd, the
# evidence ingestion daemon, in the foreground on its embedded default under
# ./var (or $CUSTOS_VAR): store var/store (created on the first start, station
# DEMO), upload directory var/inbox, recorder dock root var/docks, files taken
# once unchanged for 2 s. It prints where to put files and how to look, then
# logs every file it secures. Ctrl-C or SIGTERM stops it cleanly.
set -eu
cd "$(dirname "$0")/.."
if ! scripts/setup.sh build; then
	echo "run.sh: setting up failed; see: meson setup build && ninja -C build" >&2
	exit 1
fi

VAR="${CUSTOS_VAR:-$PWD/var}"
mkdir -p "$VAR/inbox" "$VAR/docks"
VAR="$(cd "$VAR" && pwd)"
STORE="$VAR/store"
CONF="$VAR/custosd.conf"

# Paths as shown to the user: relative to here when they are below it.
case "$VAR" in
"$PWD"/*) V="./${VAR#"$PWD"/}" ;;
*) V="$VAR" ;;
esac
C="CUSTOS_STORE=$V/store build/tools/custos"

# Written on every start; edit a copy and run custosd --config on it to keep changes.
cat >"$CONF" <<EOF
; Written by scripts/run.sh on every start. See custosd(8): man -l docs/man/custosd.8
[store]
root = $STORE
station = DEMO

[inbox]
dir = $VAR/inbox

[docks]
root = $VAR/docks

[ingest]
settle_seconds = 2
release = keep

[media]
; the media worker of this build (an installed custosd finds its own)
probe = $PWD/build/tools/custos-probe

[log]
level = info
EOF

cat <<EOF
custosd is starting: store $V/store (station DEMO), configuration $V/custosd.conf.

Put a file in the upload directory (write it under a .part name, then rename):
  cp recording.mp4 $V/inbox/x.part && mv $V/inbox/x.part $V/inbox/recording.mp4
Its metadata, if any, goes in a sidecar put in place right after the file:
  printf '%s\n' '{"case": "平司罚〔2020〕1号", "category": "行政处罚", "stage": "取证",
    "officers": ["OF007"], "device": "DEV01", "recorded_start": "2026-11-28T08:30:00+08:00"}' \\
    > $V/inbox/r.tmp && mv $V/inbox/r.tmp $V/inbox/recording.mp4.json
Dock a recorder: a folder with DEVICE.json, prepared elsewhere and moved in:
  mkdir -p /tmp/rec1 && cp recording.mp4 /tmp/rec1/DEV01_OF007_20261128083001_0001.mp4
  echo '{"device_id": "DEV01", "officer_id": "OF007", "clock": "'\$(date -Is)'"}' > /tmp/rec1/DEVICE.json
  mv /tmp/rec1 $V/docks/
No recording at hand? ffmpeg -f lavfi -i testsrc=duration=2 -pix_fmt yuv420p recording.mp4

Look, from another terminal in $PWD:
  $C status
  $C find --case '平司罚〔2020〕1号'
  $C find --device DEV01
  $C docks
  $C verify
  build/tools/custos check-receipt $V/docks/rec1/CUSTOS-RECEIPT.json --key "\$($C pubkey)"

Stop with Ctrl-C (or SIGTERM): files in progress finish first.
EOF
exec build/daemon/custosd --config "$CONF" --foreground
