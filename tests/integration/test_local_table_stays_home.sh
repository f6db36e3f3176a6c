#!/usr/bin/env bash
# Personal data stays home: rows of a table listed as local (participants)
# are never sent, neither as changes nor in catch-up; synced tables next
# to it replicate as usual.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

ctl dortmund put participants p-1 lab_id=lab-do name="Erika Mustermann" \
    email=erika@example.org consent=1 || fail "put participant"
sqlite3 "$T/dortmund.db" ".timeout 10000" "INSERT INTO participants(id, name)
    VALUES ('p-2', 'Max Mustermann')" || fail "participant via sqlite3"
ctl dortmund put participants p-1 email=new@example.org || fail "update participant"
ctl dortmund put activities act-1 title="Workshop" participants=2 ||
    fail "put activity"
converge 30 dortmund wuppertal
assert_eq "$(ctl wuppertal get activities act-1 | jq -r .title)" Workshop \
    "synced row at wuppertal"
# the later synced change has arrived, so anything sent before it has too
ctl dortmund put activities act-2 title="Later" || fail "put activity"
wait_for 20 "act-2 at wuppertal" ctl wuppertal get activities act-2

assert_eq "$(sqlite3 "$T/dortmund.db" "SELECT count(*) FROM participants")" 2 \
    "participants at dortmund"
assert_eq "$(sqlite3 "$T/wuppertal.db" "SELECT count(*) FROM participants")" 0 \
    "participants at wuppertal"
# nothing about them in the change logs or bookkeeping either: a log
# entry holds a change as received (body) or, for a local one, its values
for n in dortmund wuppertal; do
	assert_eq "$(sqlite3 "$T/$n.db" "SELECT
	    count(*) FILTER (WHERE instr(b, CAST('Workshop' AS BLOB))),
	    count(*) FILTER (WHERE instr(b, CAST('Mustermann' AS BLOB))
	        OR instr(b, CAST('example.org' AS BLOB)))
	    FROM (SELECT CAST(coalesce(body, x'') AS BLOB) ||
	        CAST(coalesce(tbl, '') || coalesce(v0, '') || coalesce(v1, '') ||
	        coalesce(v2, '') || coalesce(v3, '') || coalesce(v4, '') ||
	        coalesce(v5, '') || coalesce(v6, '') || coalesce(v7, '') ||
	        coalesce(v8, '') || coalesce(v9, '') || coalesce(v10, '')
	        AS BLOB) AS b FROM labsync_log)")" "1|0" \
	    "activity and participant data in $n's change log"
	assert_eq "$(sqlite3 "$T/$n.db" "SELECT count(*) FROM labsync_row
	    WHERE tbl = 'participants'") $(sqlite3 "$T/$n.db" \
	    "SELECT count(*) FROM labsync_log WHERE tbl = 'participants'")" \
	    "0 0" "participant bookkeeping at $n"
done
assert_eq "$(ctl dortmund status --json | jq -r .vector.dortmund)" 2 \
    "dortmund's changes (only the two activities)"
# a restart of the peer and a full catch-up do not carry them either
stop wuppertal
start wuppertal
converge 30 dortmund wuppertal
assert_eq "$(sqlite3 "$T/wuppertal.db" "SELECT count(*) FROM participants")" 0 \
    "participants at wuppertal after a catch-up"
pass
