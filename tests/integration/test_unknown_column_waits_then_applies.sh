#!/usr/bin/env bash
# a has a column b lacks (activities.funding, added on a first, as in a
# rolling schema change). a's writes to it are kept aside on b, waiting;
# the other columns flow, a's /healthz stays 200 and its status says
# waiting on b's line. Once b gains the column (ALTER TABLE by hand, which
# the daemon notices like any other write), the kept values are applied by
# themselves and the checksums match; `labsyncctl retry` then finds nothing.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node a
node b
peer a b
peer b a
http_node a
sqlite3 "$T/a.db" <"$ROOT/config/schema.sql" || fail "a's database"
sql a "ALTER TABLE activities ADD COLUMN funding TEXT"
start a
start b

healthz() {
	curl -s -o "$T/healthz" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[a]}/healthz"
}
b_has() {
	[ "$(sql b "SELECT count(*) FROM activities WHERE id = '$1' AND
	    title = '$2'")" = 1 ]
}

ctl a put activities act-1 title=first funding=city >/dev/null ||
    fail "put act-1"
ctl a put activities act-2 title=second >/dev/null || fail "put act-2"	# funding NULL: kept too
ctl a put activities act-1 funding=eu >/dev/null || fail "update act-1"
wait_for 10 "act-1 at b" b_has act-1 first
wait_for 10 "act-2 at b" b_has act-2 second
ctl b refused | grep -q $'^a\t1\tactivities\tact-1\tfunding\tunknown_column\twaiting\t' ||
    fail "b's kept list: $(ctl b refused)"
waiting_at_a() {
	ctl a status | grep -q '^peer b .*waiting 3 (unknown_column: activities.funding)'
}
wait_for 10 "waiting on b's line of a's status" waiting_at_a
sleep 1
assert_eq "$(healthz)" 200 "a's health while b waits"
assert_eq "$(curl -s "${HTTP_URL[a]}/metrics" |
    awk '$1 == "labsync_peer_waiting_changes{peer=\"b\"}" { print $2 }')" 3 \
    "waiting metric at a"

# b gains the column
sql b "ALTER TABLE activities ADD COLUMN funding TEXT"
nothing_kept_at_b() { [ -z "$(ctl b refused | grep -v '^#')" ]; }
wait_for 10 "b applies the kept values by itself" nothing_kept_at_b
ctl b retry | grep -q '^applied 0 kept changes, 0 still kept' ||
    fail "retry at b: $(ctl b retry)"
assert_eq "$(sql b "SELECT funding FROM activities WHERE id = 'act-1'")" \
    eu "funding at b"
converge 30 a b
# and takes new values of it at once, written at b as well
ctl a put activities act-2 funding=state >/dev/null || fail "put funding"
ctl b put activities act-3 title=third funding=b >/dev/null ||
    fail "put at b"
converge 30 a b
[ -z "$(ctl b refused | grep -v '^#')" ] || fail "still kept: $(ctl b refused)"
no_waiting() { ! ctl a status | grep '^peer b' | grep -q waiting; }
wait_for 10 "no waiting on b's line" no_waiting
pass
