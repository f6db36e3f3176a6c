#!/usr/bin/env bash
# Per-column last-writer-wins: two cities edit different columns of the
# same row at the same time (neither has seen the other's edit); after
# convergence both edits are present on both nodes.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

ctl dortmund put activities act-1 kind=workshop title="Old title" \
    participants=10 status=planned || fail "put"
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .title)" "Old title" \
    "row at wuppertal before the edits"

# Both edits at once, without waiting for each other.
ctl dortmund put activities act-1 title="New title" >"$T/e1" 2>&1 &
e1=$!
ctl wuppertal put activities act-1 participants=42 >"$T/e2" 2>&1 &
e2=$!
wait $e1 || fail "title edit at dortmund: $(cat "$T/e1")"
wait $e2 || fail "participants edit at wuppertal: $(cat "$T/e2")"

converge 30 dortmund wuppertal
for n in dortmund wuppertal; do
	row=$(ctl $n get activities act-1) || fail "act-1 missing at $n"
	assert_eq "$(echo "$row" | jq -r .title)" "New title" "title at $n"
	assert_eq "$(echo "$row" | jq -r .participants)" 42 "participants at $n"
	assert_eq "$(echo "$row" | jq -r .kind)" workshop "untouched kind at $n"
	assert_eq "$(echo "$row" | jq -r .status)" planned "untouched status at $n"
done
assert_eq "$(rows dortmund activities)" 1 "activities at dortmund"
pass
