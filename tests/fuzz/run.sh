#!/bin/bash
# Builds the libFuzzer targets in tests/fuzz/ with clang-14 (ASan + UBSan)
# straight from the lib/ and daemon/ sources, replays every committed
# regression input, then fuzzes each target for a bounded time. Prints TAP,
# one test point per target.
#
#   tests/fuzz/run.sh [--nightly] [TARGET...]
#
# CI mode fuzzes FUZZ_SECONDS (default 20) per target; --nightly, 600.
# Inputs: tests/fuzz/corpus/<target>/ (seeds, committed) and
# tests/fuzz/regress/<target>/ (every input that ever crashed, committed,
# always replayed first). New corpus entries go to a scratch directory, or
# to FUZZ_CORPUS/<target>/ if set (to keep a nightly corpus between runs);
# they never go into the source tree. A crashing input is kept under
# FUZZ_ARTIFACTS (default <cache>/artifacts): fix the bug, then commit the
# input to tests/fuzz/regress/<target>/.
#
# Objects and binaries are cached in FUZZ_CACHE (default
# $TMPDIR/custos-fuzz-<uid>), keyed by the content of the sources.
# Exit status: 0 when every target passed; 1 otherwise; 77 when clang-14 or
# its fuzzer runtime is missing (under meson, which sets CUSTOS_SRC and
# counts any non-zero status of a TAP test as an error, the skip is "1..0 #
# SKIP" with status 0).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${CUSTOS_SRC:-$(cd "$here/../.." && pwd)}
fuzzdir=$src/tests/fuzz
nightly=0
targets=()
for a in "$@"; do
	case $a in
	--nightly) nightly=1 ;;
	-*) echo "usage: $0 [--nightly] [TARGET...]" >&2; exit 2 ;;
	*) targets+=("$a") ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=(note meta sidecar device pattern config control name remote)
if [ $nightly = 1 ]; then secs=${FUZZ_SECONDS:-600}; else secs=${FUZZ_SECONDS:-20}; fi

CC=${FUZZ_CC:-clang-14}
cache=${FUZZ_CACHE:-${TMPDIR:-/tmp}/custos-fuzz-$(id -u)}
artifacts=${FUZZ_ARTIFACTS:-$cache/artifacts}

skip() {
	echo "1..0 # SKIP $*"
	if [ -n "${CUSTOS_SRC:-}" ]; then exit 0; fi
	exit 77
}

# ---- toolchain probe ----
command -v "$CC" >/dev/null 2>&1 || skip "$CC not found"
mkdir -p "$cache/obj" "$cache/bin" || exit 1
probe=$cache/probe
if ! printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' |
	"$CC" -fsanitize=fuzzer,address,undefined -x c - -o "$probe" >/dev/null 2>&1; then
	skip "$CC cannot build a libFuzzer target (libclang-rt-14-dev missing?)"
fi
rm -f "$probe"

# ---- build (cached) ----
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
	-fno-omit-frame-pointer -std=c17 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter
	-I"$src/lib/include" -I"$src/lib" -I"$src/daemon" -I"$fuzzdir")
# shellcheck disable=SC2054
LDFLAGS=(-fsanitize=fuzzer,address,undefined)
LIBS=(-lcrypto -llmdb -ljansson -lutf8proc -linih -luv -lcurl -lpthread)
libsrcs=("$src"/lib/*.c "$src/daemon/config.c" "$src/daemon/dock.c" "$fuzzdir/stubs.c")

sum() { sha256sum | cut -c1-16; }
hdrkey=$( { echo "$CC ${CFLAGS[*]}"; cat "$src"/lib/*.h "$src"/lib/include/custos/*.h \
	"$src"/daemon/*.h "$fuzzdir"/*.h; } | sum)

build() {
	local objs=() pids=() fail=0 o s t key
	exec 9>"$cache/lock"
	flock 9
	for s in "${libsrcs[@]}"; do
		key=$( { echo "$hdrkey"; cat "$s"; } | sum)
		o=$cache/obj/$(basename "$s" .c)-$key.o
		objs+=("$o")
		if [ ! -e "$o" ]; then
			"$CC" "${CFLAGS[@]}" -c "$s" -o "$o.tmp" 2>"$o.log" && mv "$o.tmp" "$o" &
			pids+=($!)
		fi
	done
	for p in "${pids[@]}"; do wait "$p" || fail=1; done
	if [ $fail = 1 ]; then
		echo "Bail out! compiling the sources for fuzzing failed"
		cat "$cache"/obj/*.log | sed 's/^/# /' | head -60
		exit 1
	fi
	libkey=$(printf '%s\n' "${objs[@]}" | sum)
	lib=$cache/obj/libcustos-fuzz-$libkey.a
	if [ ! -e "$lib" ]; then
		rm -f "$lib.tmp"
		ar rcs "$lib.tmp" "${objs[@]}" && mv "$lib.tmp" "$lib" || exit 1
	fi
	pids=()
	for t in "${targets[@]}"; do
		s=$fuzzdir/fuzz-$t.c
		if [ ! -e "$s" ]; then
			echo "Bail out! no such fuzz target: $t"
			exit 1
		fi
		key=$( { echo "$libkey ${LDFLAGS[*]} ${LIBS[*]}"; cat "$s"; } | sum)
		bin[$t]=$cache/bin/fuzz-$t-$key
		if [ ! -e "${bin[$t]}" ]; then
			"$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" "$s" "$lib" "${LIBS[@]}" \
				-o "${bin[$t]}.tmp" 2>"${bin[$t]}.log" && mv "${bin[$t]}.tmp" "${bin[$t]}" &
			pids+=($!)
		fi
	done
	for p in "${pids[@]}"; do wait "$p" || fail=1; done
	if [ $fail = 1 ]; then
		echo "Bail out! building the fuzz targets failed"
		cat "$cache"/bin/*.log | sed 's/^/# /' | head -60
		exit 1
	fi
	# Drop what this build no longer uses.
	for f in "$cache"/obj/* "$cache"/bin/*; do
		case " ${objs[*]} $lib ${bin[*]} " in
		*" $f "*) ;;
		*) case $f in *.log) ;; *) find "$f" -maxdepth 0 -mmin +60 -delete 2>/dev/null ;; esac ;;
		esac
	done
	rm -f "$cache"/obj/*.log "$cache"/bin/*.log
	flock -u 9
}

declare -A bin
t0=$SECONDS
build
echo "# built ${#targets[@]} targets in $((SECONDS - t0)) s (cache $cache)"

# ---- run ----
work=$(mktemp -d "${TMPDIR:-/tmp}/custos-fuzz-run.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work # scratch files of the targets (libFuzzer may end without atexit)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-target options: longest input worth trying.
declare -A maxlen=([note]=8192 [meta]=4096 [sidecar]=8192 [device]=4096 [pattern]=1024
	[config]=8192 [control]=12000 [name]=1024 [remote]=4096)

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

# Prints the lines of a libFuzzer log that tell what went wrong, as TAP comments.
explain() {
	grep -E "ERROR: |SUMMARY: |invariant failed|runtime error|^ +#[0-9]+ .* $src/|Direct leak" "$1" |
		head -30 | sed 's/^/#   /'
}

echo "1..${#targets[@]}"
n=0
failed=0
for t in "${targets[@]}"; do
	n=$((n + 1))
	b=${bin[$t]}
	seeds=$fuzzdir/corpus/$t
	regress=$fuzzdir/regress/$t
	log=$work/$t.log
	art=$artifacts/$t
	mkdir -p "$art"

	# 1. Every regression input, each run once.
	nreg=0
	if [ -d "$regress" ]; then
		mapfile -t reg < <(find "$regress" -type f ! -name '.*' | sort)
		nreg=${#reg[@]}
		if [ "$nreg" -gt 0 ] && ! "$b" -runs=1 "${reg[@]}" >"$log" 2>&1; then
			echo "not ok $n - $t: a regression input fails again"
			explain "$log"
			failed=1
			continue
		fi
	fi

	# 2. Fuzz, from the seeds (and a kept corpus), writing new entries to scratch.
	if [ -n "${FUZZ_CORPUS:-}" ]; then
		scratch=$FUZZ_CORPUS/$t
	else
		scratch=$work/corpus-$t
	fi
	mkdir -p "$scratch"
	dirs=("$scratch")
	[ -d "$seeds" ] && dirs+=("$seeds")
	"$b" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="${maxlen[$t]:-4096}" \
		-artifact_prefix="$art/" -print_final_stats=1 -print_pcs=0 "${dirs[@]}" >"$log" 2>&1
	rc=$?
	ntargets=$((${ntargets:-0} + 1))
	[ $rc -eq 0 ] || nfail=$((${nfail:-0} + 1))
	runs=$(stat_of number_of_executed_units "$log")
	eps=$(stat_of average_exec_per_sec "$log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
	summary="$t: ${runs:-?} runs in ${secs} s (${eps:-?} exec/s), ${cov:-no coverage line}, $nreg regression inputs"
	if [ $rc -eq 0 ]; then
		echo "ok $n - $summary"
	else
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
		echo "not ok $n - $t: fuzzing found a failure (status $rc)"
		echo "#   input: ${crash:-none written}; reproduce: $b ${crash:-}"
		echo "#   after the fix, commit it as tests/fuzz/regress/$t/<name>"
		explain "$log"
		cp "$log" "$art/last-failure.log" 2>/dev/null
		failed=1
	fi
done
# (one row of the reliability table: targets fuzzed, targets that failed)
echo "# fuzz: ${ntargets:-0} runs, ${nfail:-0} failures (targets, ${secs} s each)"
exit $failed
