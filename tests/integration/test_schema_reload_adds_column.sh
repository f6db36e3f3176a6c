#!/usr/bin/env bash
# A column added to the schema file reaches the database on SIGHUP: the
# daemon adds it (ALTER TABLE), rebuilds its triggers and takes writes to
# it at once, without publishing anything by itself. A and B converge;
# A's schema gains activities.funding (edited in place), A reloads and
# writes to it and to old columns; B, still on the old schema, gets the
# old columns at once and keeps the new one's values waiting; B then
# reloads the same schema, applies what it kept, and A's later writes to
# the new column reach B. The second round points
# `schema` at a new file with a new column instead.
. "$(dirname "$0")/lib.sh"

node a
node b
peer a b
peer b a
for n in a b; do
	cp "$ROOT/config/schema.sql" "$T/$n-schema.sql"
	sed -i "s|^schema = .*|schema = $T/$n-schema.sql|" "$T/$n.conf"
done
start a
start b

ctl a put activities act-1 title="Before" participants=3 || fail "put on a"
converge 20 a b

published() {	# published NODE: changes it sent on its live feed
	ctl "$1" status --json | jq .stats.published
}
col_of() {	# col_of NODE TABLE ID COLUMN
	ctl "$1" get "$2" "$3" | jq -r ".$4"
}
fp_of() {	# fp_of NODE: its schema fingerprint
	ctl "$1" status --json | jq -r .fingerprint
}

# In place: a column in the CREATE TABLE of activities.
fp_before=$(fp_of a)
sent=$(published a)
sed -i 's/^\(    status       TEXT\)\( *-- planned, done, cancelled\)$/\1,\2\n    funding      TEXT/' \
    "$T/a-schema.sql"
grep -q '^    funding ' "$T/a-schema.sql" || fail "test could not edit schema"
kill -HUP "${PID[a]}"
t0=$SECONDS
wait_for 5 "a takes a write to the new column" \
    ctl a put activities act-1 funding="EU grant"
[ $((SECONDS - t0)) -le 5 ] || fail "write to funding took over 5 s"
grep -q 'schema .*a-schema.sql: added column activities.funding (TEXT)' \
    "$T/a.log" || fail "a did not log the added column"
assert_eq "$(sqlite3 "$T/a.db" "SELECT count(*) FROM pragma_table_info('activities') WHERE name = 'funding'")" 1 \
    "funding in a's database"
# adding the column published nothing; the one write did
assert_eq "$(published a)" "$((sent + 1))" "changes a published"
[ "$(fp_of a)" != "$fp_before" ] || fail "a's fingerprint did not change"
ctl a put activities act-2 title="Old columns only" || fail "put on a"
ctl a put activities act-4 title="Both" funding="Both funded" ||
    fail "put on a"
# b, on the old schema, takes every old-column value at once, also of rows
# that set the new column, and keeps the new column's values aside as
# waiting: nothing red on either side
title_at_b() {	# title_at_b ID TITLE
	[ "$(col_of b activities "$1" title)" = "$2" ]
}
wait_for 10 "act-2 at b before its reload" title_at_b act-2 "Old columns only"
wait_for 10 "act-4's title at b before its reload" title_at_b act-4 "Both"
ctl b refused | grep -q $'activities\tact-4\tfunding\tunknown_column\twaiting' ||
    fail "b keeps act-4's funding waiting: $(ctl b refused)"
waiting_at_a() { ctl a status | grep '^peer b ' | grep -q waiting; }
wait_for 10 "a shows b waiting" waiting_at_a
ctl a status | grep '^peer b ' | grep -q refused && fail "a shows b refused"

# B reloads the same schema; new writes on A to funding reach B.
cp "$T/a-schema.sql" "$T/b-schema.sql"
kill -HUP "${PID[b]}"
wait_for 10 "b adds the column" grep -q 'added column activities.funding' \
    "$T/b.log"
assert_eq "$(fp_of a)" "$(fp_of b)" "fingerprints after both reloaded"
# what b kept aside is applied by its reload, within 10 s
funding_at_b() {	# funding_at_b ID VALUE
	[ "$(col_of b activities "$1" funding)" = "$2" ]
}
wait_for 10 "act-4's kept funding at b" funding_at_b act-4 "Both funded"
wait_for 10 "act-1's kept funding at b" funding_at_b act-1 "EU grant"
ctl a put activities act-3 title="Funded" funding="City budget" ||
    fail "put on a"
ctl a put activities act-1 funding="EU grant 2" || fail "put on a"
wait_for 10 "funding reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-3 | jq -r .funding)\" = 'City budget' ]"
wait_for 10 "funding update reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-1 | jq -r .funding)\" = 'EU grant 2' ]"
wait_for 30 "old-column row reaches b" \
    sh -c "'$LABSYNCCTL' -c '$T/b.conf' get activities act-2 >/dev/null"
converge 30 a b

# A new file named by `schema`, with one more column, on both nodes.
for n in a b; do
	sed 's/^    funding      TEXT$/&,\n    budget       REAL/' \
	    "$T/a-schema.sql" >"$T/$n-schema-v2.sql"
	sed -i "s|^schema = .*|schema = $T/$n-schema-v2.sql|" "$T/$n.conf"
done
grep -q '^    budget ' "$T/a-schema-v2.sql" || fail "test could not edit schema"
kill -HUP "${PID[b]}"
wait_for 10 "b adds budget" grep -q 'added column activities.budget' \
    "$T/b.log"
kill -HUP "${PID[a]}"
wait_for 5 "a takes a write to budget" \
    ctl a put activities act-3 budget=1200.5
ctl a put activities act-4 title="Budgeted" budget=99.5 || fail "put on a"
wait_for 10 "budget reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-4 | jq -r .budget)\" = 99.5 ]"
converge 20 a b
grep -q 'takes effect at the next restart' "$T/a.log" &&
    fail "a still says schema takes effect at the next restart"
kill -0 "${PID[a]}" 2>/dev/null || fail "a died"
kill -0 "${PID[b]}" 2>/dev/null || fail "b died"
pass
