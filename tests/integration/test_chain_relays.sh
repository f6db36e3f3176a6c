#!/usr/bin/env bash
# Relaying: in the chain A - B - C, A and C never talk to each other; B
# forwards what it learned (each change keeps its origin), so writes at A
# reach C, writes at C reach A, and all three end with the same data;
# also what B fetched by catch-up after being down.
. "$(dirname "$0")/lib.sh"

node a
node b
node c
peer a b
peer b a
peer b c
peer c b
start a
start b
start c

has_title() {	# has_title NODE ID TITLE
	[ "$(ctl "$1" get activities "$2" | jq -r .title)" = "$3" ]
}

ctl a put activities act-a title="From A" participants=1 || fail "put at a"
ctl c put activities act-c title="From C" participants=3 || fail "put at c"
ctl b put activities act-b title="From B" participants=2 || fail "put at b"
wait_for 30 "A's write reaches C" has_title c act-a "From A"
wait_for 30 "C's write reaches A" has_title a act-c "From C"

# updates of one row from both ends, then a delete relayed too
ctl a put activities act-c status=done || fail "update at a"
ctl c put activities act-a status=planned || fail "update at c"
ctl c put labs lab-c city=C name="Lab C" || fail "put lab at c"
ctl a delete activities act-b || fail "delete at a"
converge 30 a b c
for n in a b c; do
	assert_eq "$(rows $n activities)" 2 "activities at $n"
	assert_eq "$(ctl $n get activities act-c | jq -r .status)" done "act-c at $n"
	assert_eq "$(ctl $n get activities act-a | jq -r .status)" planned "act-a at $n"
	assert_eq "$(ctl $n get labs lab-c | jq -r .name)" "Lab C" "lab-c at $n"
done
ctl c get activities act-b >/dev/null 2>&1 && fail "A's delete did not reach C"

# C's vector knows A as an origin though it never spoke to A
assert_eq "$(ctl c status --json | jq -r .vector.a)" \
    "$(ctl a status --json | jq -r .vector.a)" "C's vector entry for A"
assert_eq "$(ctl c status --json | jq -r '[.peers[].name] | join(",")')" b \
    "C's peers"

# B down while A writes: B fetches the rows by catch-up, which it does
# not relay; C sees from B's heartbeat that B is ahead and fetches them
# from B in turn
stop b
sqlite3 "$T/a.db" ".timeout 10000" "
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000)
INSERT INTO activities(id, title, participants)
SELECT printf('while-b-down-%04d', x), 'Row ' || x, x FROM n;" ||
    fail "bulk insert at a"
start b
converge 60 a b c
assert_eq "$(sqlite3 "$T/c.db" "SELECT count(*) FROM activities
    WHERE id LIKE 'while-b-down-%'")" 2000 "rows A wrote while B was down, at C"
pass
