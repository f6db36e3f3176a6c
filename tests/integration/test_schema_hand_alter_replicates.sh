#!/usr/bin/env bash
# A column added by hand with the sqlite3 shell on running nodes is
# picked up without a reload: the daemon notices the schema change like
# any other commit, rebuilds its triggers, and a write to the column on
# one node reaches the other.
. "$(dirname "$0")/lib.sh"

pair a b
ctl a put activities act-1 title="Before" || fail "put on a"
converge 20 a b
sent=$(ctl a status --json | jq .stats.published)

for n in a b; do
	sql "$n" "ALTER TABLE activities ADD COLUMN funding TEXT"
	wait_for 5 "$n picks up the new column" grep -q \
	    'schema: table activities has a new column funding' "$T/$n.log"
done
assert_eq "$(ctl a status --json | jq .stats.published)" "$sent" \
    "changes a published for the new column"
ctl a schema | grep -q "^activities	funding	TEXT$" ||
    fail "labsyncctl schema on a lacks activities.funding"

sql a "UPDATE activities SET funding = 'EU grant' WHERE id = 'act-1'"
sql a "INSERT INTO activities(id, title, funding) VALUES ('act-2', 'New', 'City')"
wait_for 10 "funding reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-1 | jq -r .funding)\" = 'EU grant' ]"
wait_for 10 "a new row's funding reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-2 | jq -r .funding)\" = City ]"
converge 20 a b

# The schema file never had the column: a reload keeps it (labsync drops
# nothing), and it still replicates.
kill -HUP "${PID[a]}"
wait_for 10 "a reloads" grep -q 'configuration reloaded' "$T/a.log"
grep -q 'reload refused' "$T/a.log" && fail "a refused a reload"
ctl a put activities act-2 funding="Foundation" || fail "put on a"
wait_for 10 "funding after the reload reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-2 | jq -r .funding)\" = Foundation ]"
assert_eq "$(ctl a status --json | jq -r .fingerprint)" \
    "$(ctl b status --json | jq -r .fingerprint)" "fingerprints"
pass
