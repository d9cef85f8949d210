#!/bin/sh
# Sets everything up (missing Debian packages, builds) and runs the whole test
# suite twice: a release build (build-release/: -O3, NDEBUG; warnings are
# errors, so it must build cleanly) and an AddressSanitizer +
# UndefinedBehaviorSanitizer build. It also builds (without running) what
# debian/rules builds, with Debian's compiler flags (build-deb/). setup.sh also builds
# build/ (debugoptimized), which scripts/run.sh uses. Ends with the line
# "N passed, N failed[, N skipped]" and exits non-zero if anything failed.
set -eu
cd "$(dirname "$0")/.."

scripts/setup.sh build
if [ ! -f build-release/build.ninja ]; then
	meson setup build-release --buildtype=release -Dwerror=true >/dev/null
fi
ninja -C build-release >/dev/null
if [ ! -f build-asan/build.ninja ]; then
	meson setup build-asan --buildtype=debug -Dwerror=true \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-asan >/dev/null
# The build a Debian packager makes (debian/rules: buildtype plain with
# dpkg-buildflags' -O2, -D_FORTIFY_SOURCE=2, -fstack-protector-strong and
# hardening=+all): built, not run; its warnings are errors too.
# Made again whenever those flags change (meson keeps the ones it was set up with).
debflag() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get "$1"; }
deb_cflags=$(debflag CFLAGS)
deb_cppflags=$(debflag CPPFLAGS)
deb_ldflags=$(debflag LDFLAGS)
deb_flags="$deb_cflags | $deb_cppflags | $deb_ldflags"
if [ ! -f build-deb/build.ninja ] || [ "$(cat build-deb/.flags 2>/dev/null)" != "$deb_flags" ]; then
	rm -rf build-deb
	CFLAGS=$deb_cflags CPPFLAGS=$deb_cppflags LDFLAGS=$deb_ldflags \
		meson setup build-deb --buildtype=plain -Dwerror=true >/dev/null
	printf '%s\n' "$deb_flags" >build-deb/.flags
fi
ninja -C build-deb >/dev/null

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
export TMPDIR="${TMPDIR:-/tmp}"

status=0
echo "== tests (release build) =="
meson test -C build-release --print-errorlogs --num-processes 2 || status=1
echo "== tests (ASan + UBSan build) =="
# Under the sanitizers: the unit, integration and style suites. The fuzzers
# build their own ASan+UBSan binaries with clang, and the reliability sweeps
# (thousands of runs with interposed faults) run in the release build only.
CUSTOS_ASAN=1 meson test -C build-asan --print-errorlogs --num-processes 2 \
	--timeout-multiplier 3 --suite unit --suite integration --suite style || status=1

# The reliability figures (test, runs, failures) of both runs.
echo "== reliability figures =="
python3 tests/reliability/table.py build-release/meson-logs/testlog.json \
	build-asan/meson-logs/testlog.json || true

# Count the results of both runs from meson's machine-readable logs.
python3 - build-release/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
PY
exit $status
