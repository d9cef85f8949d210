#!/bin/sh
# Installs the Debian packages custos needs (idempotent) and builds it.
# Usage: scripts/setup.sh [BUILDDIR]   (default: build)
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config
      libssl-dev liblmdb-dev lmdb-utils libjansson-dev libutf8proc-dev libuv1-dev libinih-dev
      libcurl4-openssl-dev libsystemd-dev libavformat-dev libavcodec-dev libavfilter-dev
      libswscale-dev libswresample-dev libavutil-dev libmagic-dev libseccomp-dev ffmpeg
      libchromaprint-dev
      clang-14 libclang-rt-14-dev xxd faketime python3 openssl util-linux sqlite3
      libsqlite3-dev ceph-mon ceph-osd radosgw"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	echo "custos setup: installing:$missing" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "custos setup: these packages are missing; run as root or install them:$missing" >&2
		exit 2
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

BUILD="${1:-build}"
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" --buildtype=debugoptimized -Dwerror=true >/dev/null
fi
ninja -C "$BUILD" >/dev/null
