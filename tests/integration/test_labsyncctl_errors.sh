#!/usr/bin/env bash
# labsyncctl's exit statuses: 0 ok, 1 not found or refused, 2 usage,
# config or value error; and "put TABLE -" makes a UUIDv7 id that
# replicates like any other.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

status_is() {	# status_is WANT WHAT COMMAND...: exit status and a message
	local want=$1 what=$2 rc
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] ||
	    fail "$what: exit status $rc, expected $want ($(cat "$T/err"))"
	[ "$want" = 0 ] || [ -s "$T/err" ] || fail "$what: no error message"
}

status_is 2 "put with an unknown column" \
    ctl dortmund put activities act-x no_such_column=1
grep -q no_such_column "$T/err" || fail "unknown column not named: $(cat "$T/err")"
status_is 2 "put of a non-integer into participants" \
    ctl dortmund put activities act-x participants=many
grep -q participants "$T/err" || fail "bad column not named: $(cat "$T/err")"
status_is 2 "put of a non-number into a REAL column" \
    ctl dortmund put volunteer_offers vo-x hours_per_week=lots
status_is 2 "put into an unknown table" ctl dortmund put no_such_table x a=1
ctl dortmund get activities act-x >/dev/null 2>&1 &&
    fail "a refused put left a row"

status_is 1 "get of a missing row" ctl dortmund get activities no-such-row
status_is 1 "delete of a missing row" ctl dortmund delete activities no-such-row
status_is 2 "unknown command" ctl dortmund frobnicate
status_is 2 "no command" ctl dortmund
status_is 2 "put without an id" ctl dortmund put activities

printf '[node]\nid = broken\nno_such_key = 1\n' >"$T/bad.conf"
status_is 2 "a bad config file" "$LABSYNCCTL" -c "$T/bad.conf" status
status_is 2 "a missing config file" "$LABSYNCCTL" -c "$T/missing.conf" list labs

status_is 0 "put with a made id" ctl dortmund put activities - \
    title="Made id" participants=5
id=$(cat "$T/out")
[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
    fail "printed id '$id' is not a UUIDv7"
# its first 48 bits are the Unix time in ms: close to now
ms=$((16#${id:0:8}${id:9:4}))
now=$(($(date +%s%3N)))
[ $((now - ms)) -ge 0 ] && [ $((now - ms)) -lt 60000 ] ||
    fail "UUIDv7 time $ms is not now ($now)"
status_is 0 "a second made id" ctl dortmund put activities - title="Second"
id2=$(cat "$T/out")
[ "$id2" != "$id" ] || fail "two puts made the same id"
[ $((16#${id2:0:8}${id2:9:4})) -ge "$ms" ] ||
    fail "ids not time-ordered: $id then $id2"

assert_eq "$(ctl dortmund get activities "$id" | jq -r .title)" "Made id" \
    "row of the made id"
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities "$id" | jq -r .participants)" 5 \
    "the made id at wuppertal"
status_is 0 "delete of the made id" ctl wuppertal delete activities "$id"
converge 30 dortmund wuppertal
status_is 1 "get of the deleted made id" ctl dortmund get activities "$id"
pass
