#!/usr/bin/env bash
# A new table, added to the schema file and to [sync] tables, is created
# and replicated after a reload: first on a, then on b; rows written once
# both reloaded reach the other node. Removing a table from [sync]
# tables is still refused.
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
ctl a put labs lab-1 city=Dortmund || fail "put on a"
converge 20 a b

add_table() {	# add_table NODE: evaluations in its schema and [sync] tables
	cat >>"$T/$1-schema.sql" <<'SQL'

CREATE TABLE IF NOT EXISTS evaluations (
    id          TEXT PRIMARY KEY,
    activity_id TEXT,
    score       INTEGER,
    note        TEXT
) STRICT;
SQL
	sed -i 's/^tables = .*/&, evaluations/' "$T/$1.conf"
	kill -HUP "${PID[$1]}"
	wait_for 10 "$1 syncs evaluations" \
	    grep -q 'schema: table evaluations is synced from now on' \
	    "$T/$1.log"
}

add_table a
grep -q 'added table evaluations' "$T/a.log" || fail "a did not log the table"
ctl a schema | grep -q "^evaluations	score	INTEGER$" ||
    fail "labsyncctl schema on a lacks evaluations.score"
add_table b
ctl a put evaluations ev-1 activity_id=act-1 score=4 note="good" ||
    fail "put on a"
ctl b put evaluations ev-2 activity_id=act-1 score=2 || fail "put on b"
wait_for 10 "ev-1 reaches b" \
    sh -c "'$LABSYNCCTL' -c '$T/b.conf' get evaluations ev-1 >/dev/null"
wait_for 10 "ev-2 reaches a" \
    sh -c "'$LABSYNCCTL' -c '$T/a.conf' get evaluations ev-2 >/dev/null"
assert_eq "$(ctl b get evaluations ev-1 | jq -r .score)" 4 "score on b"
converge 20 a b
assert_eq "$(ctl a status --json | jq -r .fingerprint)" \
    "$(ctl b status --json | jq -r .fingerprint)" "fingerprints"
assert_eq "$(ctl a status --json | jq -r '.peers[0].fingerprint')" \
    "$(ctl b status --json | jq -r .fingerprint)" "b's fingerprint as a has it"

# Removing a table is refused; the node keeps syncing the old set.
cp "$T/a.conf" "$T/a-ok.conf"
sed -i 's/^tables = .*/tables = labs, themes, activities, initiatives, volunteer_offers, observations/' "$T/a.conf"
kill -HUP "${PID[a]}"
wait_for 10 "a refuses removing a table" \
    grep -q 'reload refused: \[sync\] tables (a table removed) changed' \
    "$T/a.log"
ctl b put evaluations ev-3 score=5 || fail "put on b"
wait_for 10 "ev-3 reaches a" \
    sh -c "'$LABSYNCCTL' -c '$T/a-ok.conf' get evaluations ev-3 >/dev/null"
kill -0 "${PID[a]}" 2>/dev/null || fail "a died"
pass
