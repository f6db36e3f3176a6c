#!/usr/bin/env bash
# Two nodes that declare one column with different types: a's
# activities.participants is INTEGER, b's TEXT. a's writes to the other
# columns keep flowing to b; the integer b cannot take is kept aside there
# (labsyncctl refused lists it), a sees b refuse it (status, /healthz 503,
# the metric). Once b's table is rebuilt by hand with the sqlite3 shell
# to a's type and `labsyncctl retry` runs there, the kept value is
# applied, the checksums match and a's health is back.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node a
node b
peer a b
peer b a
http_node a
# b's activities.participants is TEXT
sed 's/participants INTEGER,/participants TEXT,   /' "$ROOT/config/schema.sql" \
    >"$T/b-schema.sql"
grep -q 'participants TEXT' "$T/b-schema.sql" || fail "b's schema"
sqlite3 "$T/b.db" <"$T/b-schema.sql" || fail "b's database"
sed -i "s|^schema = .*|schema = $T/b-schema.sql|" "$T/b.conf"
start a
start b

healthz() {
	curl -s -o "$T/healthz" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[a]}/healthz"
}
metric() {
	curl -s --max-time 10 "${HTTP_URL[a]}/metrics" |
	    awk -v k="$1" '$1 == k { print $2; exit }'
}
health_is() {
	[ "$(healthz)" = "$1" ]
}
b_has() {
	[ "$(sql b "SELECT count(*) FROM activities WHERE id = '$1' AND
	    title = '$2'")" = 1 ]
}

assert_eq "$(healthz)" 200 "a's health before"
ctl a put activities act-1 title=first participants=12 >/dev/null ||
    fail "put act-1"
wait_for 10 "act-1's title at b" b_has act-1 first
assert_eq "$(sql b "SELECT coalesce(participants, 'NULL') FROM activities
    WHERE id = 'act-1'")" NULL "participants at b before the fix"
ctl b refused | grep -q $'^a\t1\tactivities\tact-1\tparticipants\twrong_type\trefused\t' ||
    fail "b's refused list: $(ctl b refused)"
ctl b refused --json | grep -q '"state":"refused"' || fail "refused --json"

# the feed goes on behind it
ctl a put activities act-2 title=second >/dev/null || fail "put act-2"
wait_for 10 "act-2 at b" b_has act-2 second
ctl a put activities act-1 title=first-again >/dev/null || fail "put act-1"
wait_for 10 "act-1's new title at b" b_has act-1 first-again

# a, the sender, sees the refusal
refused_at_a() {
	ctl a status | grep -q '^peer b .*refused 1 (wrong_type: activities.participants)'
}
wait_for 10 "refused on b's line of a's status" refused_at_a
ctl a status --json | grep -q '"kept":"refused"' || fail "status --json"
wait_for 10 "a's health 503" health_is 503
grep -q '"peer":"b","reason":"wrong_type"' "$T/healthz" ||
    grep -q '"reason":"wrong_type"' "$T/healthz" ||
    fail "healthz problems: $(cat "$T/healthz")"
assert_eq "$(metric 'labsync_peer_refused_changes_total{peer="b"}')" 1 \
    "refused metric at a"
assert_eq "$(curl -s "${HTTP_URL[a]}/metrics" |
    awk '$1 == "labsync_changes_kept_aside" { print $2 }')" 0 "kept at a"
same_checksum a b && fail "checksums equal while b lacks a value"

# the operator rebuilds b's table to a's type, by hand, and retries
sql b "BEGIN;
CREATE TABLE activities_new (
    id TEXT PRIMARY KEY, lab_id TEXT, theme_id TEXT, kind TEXT, title TEXT,
    starts_at TEXT, ends_at TEXT, location TEXT, participants INTEGER,
    stakeholders TEXT, summary TEXT, status TEXT) STRICT;
INSERT INTO activities_new SELECT * FROM activities;
DROP TABLE activities;
ALTER TABLE activities_new RENAME TO activities;
COMMIT;"
cp "$ROOT/config/schema.sql" "$T/b-schema.sql"	# and b's schema file with it
# (the daemon may have seen the new table and applied it first)
ctl b retry | grep -q '^applied [01] kept changes, 0 still kept' ||
    fail "retry at b"
assert_eq "$(sql b "SELECT participants FROM activities WHERE
    id = 'act-1'")" 12 "participants at b after the retry"
[ -z "$(ctl b refused | grep -v '^#')" ] || fail "still kept: $(ctl b refused)"
converge 30 a b
wait_for 10 "a's health back to 200" health_is 200
ctl a status | grep '^peer b' | grep -q refused && fail "still refused"

# b's local writes are captured again (the rebuilt table's triggers)
ctl b put activities act-3 title=third participants=3 >/dev/null ||
    fail "put act-3 at b"
converge 30 a b
assert_eq "$(sql a "SELECT participants FROM activities WHERE
    id = 'act-3'")" 3 "act-3 at a"
pass
