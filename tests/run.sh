#!/usr/bin/env bash
# run.sh: the whole suite (make check): unit tests under valgrind, config
# goldens, then integration tests with real daemons on loopback. Prints
# PASS/FAIL/SKIP per test and one closing line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
skipped=0
failed=""

record() {	# record NAME STATUS
	case $2 in
	0) pass=$((pass + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) fail=$((fail + 1)); failed="$failed $1" ;;
	esac
}

# Unit tests: cmocka, under valgrind when it is there.
for t in build/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	if command -v valgrind >/dev/null; then
		valgrind -q --error-exitcode=99 --leak-check=full \
		    --errors-for-leak-kinds=definite,indirect "$t" >"$t.out" 2>&1
	else
		"$t" >"$t.out" 2>&1
	fi
	rc=$?
	if [ $rc -eq 0 ]; then echo "PASS $name"; else
		echo "FAIL $name (status $rc)"; tail -n 40 "$t.out"; fi
	record "$name" $rc
done

# Config goldens: count their own cases.
out=$(tests/config/run.sh build/labsyncd)
echo "$out" | grep -v '^[0-9]* passed'
line=$(echo "$out" | tail -n 1)
p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
pass=$((pass + ${p:-0}))
fail=$((fail + ${f:-1}))
[ "${f:-1}" = 0 ] || failed="$failed config"

# Integration tests: one script each, real daemons.
for t in tests/integration/test_*.sh; do
	[ -e "$t" ] || continue
	timeout 300 bash "$t"
	rc=$?
	[ $rc -eq 124 ] && echo "FAIL $(basename "$t" .sh): timed out"
	record "$(basename "$t" .sh)" $rc
done

[ -z "$failed" ] || echo "failed:$failed"
[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
