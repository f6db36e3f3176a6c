#!/usr/bin/env bash
# Any SQLite client is a writer: INSERT, UPDATE and DELETE made with the
# plain sqlite3 shell on one node's database, while its daemon runs, are
# captured by the triggers and reach the peer.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

sql() {	# sql STATEMENTS: run them on dortmund's database with sqlite3
	sqlite3 "$T/dortmund.db" ".timeout 10000" "$1" ||
	    fail "sqlite3 at dortmund: $1"
}

field_is() {	# field_is NODE TABLE ID FIELD VALUE
	[ "$(ctl "$1" get "$2" "$3" | jq -r ".$4")" = "$5" ]
}

gone() {	# gone NODE TABLE ID
	ctl "$1" get "$2" "$3" >/dev/null 2>&1
	[ $? -eq 1 ]
}

sql "INSERT INTO activities(id, kind, title, participants)
     VALUES ('act-sh-1', 'meeting', 'Written by sqlite3', 12)"
wait_for 20 "INSERT reaches wuppertal" \
    field_is wuppertal activities act-sh-1 title "Written by sqlite3"
assert_eq "$(ctl wuppertal get activities act-sh-1 | jq -r .participants)" 12 \
    "participants of the inserted row"

sql "UPDATE activities SET participants = 13, status = 'done'
     WHERE id = 'act-sh-1'"
wait_for 20 "UPDATE reaches wuppertal" \
    field_is wuppertal activities act-sh-1 participants 13
assert_eq "$(ctl wuppertal get activities act-sh-1 | jq -r .status)" done \
    "status of the updated row"

# several statements in one transaction, on two tables
sql "BEGIN;
     INSERT INTO labs(id, city, name) VALUES ('lab-sh', 'Dortmund', 'Shell lab');
     INSERT INTO observations(id, activity_id, indicator, value)
         VALUES ('obs-sh', 'act-sh-1', 'satisfaction', 4.5);
     COMMIT;"
wait_for 20 "a two-table transaction reaches wuppertal" \
    field_is wuppertal observations obs-sh value 4.5
assert_eq "$(ctl wuppertal get labs lab-sh | jq -r .name)" "Shell lab" "lab-sh"

sql "DELETE FROM activities WHERE id = 'act-sh-1'"
wait_for 20 "DELETE reaches wuppertal" gone wuppertal activities act-sh-1

converge 30 dortmund wuppertal
assert_eq "$(rows wuppertal activities)" 0 "activities left at wuppertal"
assert_eq "$(rows wuppertal labs)" 1 "labs at wuppertal"
pass
