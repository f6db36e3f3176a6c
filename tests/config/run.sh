#!/usr/bin/env bash
#
# run.sh: config golden tests. Each tests/config/NAME.conf is checked with
# "labsyncd -n -c tests/config/NAME.conf" from the repository root; the
# merged stdout and stderr must equal NAME.out, and the exit status must be
# 0 for good-* files and 78 (EX_CONFIG) for bad-* files. The shipped
# examples in config/ must check out as well.
#
# usage: tests/config/run.sh path/to/labsyncd
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 labsyncd" >&2
	exit 2
fi
bin=$1
case $bin in
/*) ;;
*) bin=$PWD/$bin ;;
esac
if [ ! -x "$bin" ]; then
	echo "$0: $1: not an executable" >&2
	exit 2
fi

cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

pass=0
fail=0

# -n reads the secret key files as the start does; these configs name
# keys that are not there, so hand them over the way systemd does
# (LoadCredential=, accepted whatever their mode). Any 40 Z85 characters
# make a valid CURVE secret key.
mkdir "$tmp/creds" || exit 2
for k in full.key labsync.key; do
	echo 'JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6' >"$tmp/creds/$k"
done
export CREDENTIALS_DIRECTORY=$tmp/creds

# check NAME CONF EXPECTED-OUTPUT-FILE EXPECTED-STATUS
check() {
	local name=$1 conf=$2 expect=$3 want=$4 status

	"$bin" -n -c "$conf" >"$tmp/out" 2>&1 </dev/null
	status=$?
	if diff -u "$expect" "$tmp/out" >"$tmp/diff" &&
	    [ "$status" -eq "$want" ]; then
		echo "PASS config/$name"
		pass=$((pass + 1))
	else
		echo "FAIL config/$name"
		[ "$status" -eq "$want" ] ||
			echo "  exit status $status, expected $want"
		sed 's/^/  /' "$tmp/diff"
		fail=$((fail + 1))
	fi
}

for conf in tests/config/*.conf; do
	name=$(basename "$conf" .conf)
	case $name in
	good-*) want=0 ;;
	bad-*) want=78 ;;
	*) echo "FAIL config/$name: name must start with good- or bad-"
	   fail=$((fail + 1)); continue ;;
	esac
	if [ ! -f "tests/config/$name.out" ]; then
		echo "FAIL config/$name: no tests/config/$name.out"
		fail=$((fail + 1))
		continue
	fi
	check "$name" "$conf" "tests/config/$name.out" "$want"
done

echo "configuration OK" >"$tmp/ok"
for conf in config/*.conf; do
	check "example-$(basename "$conf" .conf)" "$conf" "$tmp/ok" 0
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
