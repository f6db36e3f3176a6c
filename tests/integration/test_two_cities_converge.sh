#!/usr/bin/env bash
# Two cities write on both sides and converge to identical dumps; the
# values keep their column types. With one peer each, a city publishes
# only its own changes: relaying the other's would send them back.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

ctl dortmund put activities act-do-1 kind=workshop \
    title="School and business cooperation" participants=23 || fail "put"
ctl wuppertal put activities act-wu-1 kind=fair \
    title="Volunteering fair" participants=140 || fail "put"
ctl wuppertal put labs lab-wu city=Wuppertal name="KoSI-Lab Wuppertal" ||
    fail "put"
converge 30 dortmund wuppertal
assert_eq "$(rows dortmund activities)" 2 "activities at dortmund"
assert_eq "$(ctl wuppertal get activities act-do-1 | jq -r .participants)" 23
assert_eq "$(ctl wuppertal get activities act-do-1 | jq -r '.participants|type')" \
    number "integer column stays a number"
assert_eq "$(ctl dortmund get labs lab-wu | jq -r .city)" Wuppertal
ctl dortmund get labs no-such-lab 2>/dev/null && fail "get of a missing row succeeded"
for n in dortmund wuppertal; do
	assert_eq "$(ctl $n status --json | jq -c '.stats | [.applied > 0,
	    .published == .captured]')" "[true,true]" \
	    "$n applied changes and published only its own"
done
pass
