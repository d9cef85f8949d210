# Shared helpers for custos's integration tests (sourced, POSIX sh + bash).
# Each test script prints TAP: `ok N - ...` / `not ok N - ...`, then `1..N`.
# Environment from meson: CUSTOS (the CLI), CUSTOS_FP (the crash-point CLI),
# CUSTOS_SRC (source root). Each test gets its own scratch directory, removed
# at exit unless KEEP=1.
set -u
: "${CUSTOS:?CUSTOS must point at the custos binary}"
T_N=0
T_FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/custos-test.XXXXXX")
export CUSTOS_STORE="$WORK/store"
trap 't_cleanup' EXIT

t_cleanup() {
	status=$?
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $WORK"
	else
		rm -rf "$WORK"
	fi
	return $status
}

# ok COND-EXIT-STATUS DESCRIPTION: record a test result.
t_ok() {
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}

# t_run DESCRIPTION CMD...: passes when CMD exits 0.
t_run() {
	d=$1
	shift
	"$@" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	t_ok $rc "$d"
	if [ $rc -ne 0 ]; then
		sed 's/^/#   /' "$WORK/last.err" | head -20
	fi
	return $rc
}

# t_status WANT DESCRIPTION CMD...: passes when CMD exits with WANT.
t_status() {
	want=$1
	d=$2
	shift 2
	"$@" >"$WORK/last.out" 2>"$WORK/last.err"
	rc=$?
	if [ $rc -eq "$want" ]; then
		t_ok 0 "$d"
	else
		t_ok 1 "$d (exit $rc, wanted $want)"
		sed 's/^/#   /' "$WORK/last.err" | head -20
	fi
}

# t_grep DESCRIPTION PATTERN FILE: passes when FILE contains PATTERN (grep -E).
t_grep() {
	if grep -Eq -- "$2" "$3"; then
		t_ok 0 "$1"
	else
		t_ok 1 "$1"
		echo "#   pattern '$2' not found in:"
		sed 's/^/#   /' "$3" | head -20
	fi
}

t_done() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
}
