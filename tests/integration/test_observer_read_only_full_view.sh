#!/usr/bin/env bash
# A research partner's observer node connects to both cities, gets the
# full replicated view (the same checksum), and refuses local writes with
# a clear error, through labsyncctl and through any SQLite client alike.
. "$(dirname "$0")/lib.sh"

node dortmund
node wuppertal
node observer observer
peer dortmund wuppertal
peer wuppertal dortmund
peer observer dortmund
peer observer wuppertal
peer_in dortmund observer observer
peer_in wuppertal observer observer
start dortmund
start wuppertal
start observer
assert_eq "$(ctl observer status --json | jq -r .role)" observer "observer's role"

ctl dortmund put activities act-do title="Dortmund workshop" participants=20 ||
    fail "put at dortmund"
ctl wuppertal put activities act-wu title="Wuppertal fair" participants=140 ||
    fail "put at wuppertal"
ctl wuppertal put volunteer_offers vo-1 organisation="Tafel" \
    hours_per_week=2.5 || fail "put at wuppertal"
converge 30 dortmund wuppertal observer
assert_eq "$(rows observer activities)" 2 "activities at the observer"
assert_eq "$(ctl observer get volunteer_offers vo-1 | jq -r .hours_per_week)" \
    2.5 "a REAL value at the observer"
before=$(ctl observer checksum)

# labsyncctl refuses, exit status 1, and says why
out=$(ctl observer put activities act-ob title="Not allowed" 2>&1)
rc=$?
assert_eq "$rc" 1 "exit status of put at the observer"
case $out in
*observer*) ;;
*) fail "put at the observer: unclear message: $out" ;;
esac
out=$(ctl observer delete activities act-do 2>&1)
assert_eq "$?" 1 "exit status of delete at the observer"

# any other SQLite client is refused by the triggers
for stmt in \
    "INSERT INTO activities(id, title) VALUES ('act-ob', 'Not allowed')" \
    "UPDATE activities SET title = 'Changed' WHERE id = 'act-do'" \
    "DELETE FROM activities WHERE id = 'act-wu'"; do
	out=$(sqlite3 "$T/observer.db" ".timeout 10000" "$stmt" 2>&1) &&
	    fail "sqlite3 write at the observer succeeded: $stmt"
	case $out in
	*observer*) ;;
	*) fail "sqlite3 write at the observer: unclear error: $out" ;;
	esac
done

# nothing changed at the observer, and it still follows the cities
assert_eq "$(ctl observer checksum)" "$before" "observer's data after refusals"
ctl observer get activities act-ob >/dev/null 2>&1 &&
    fail "refused row exists at the observer"
assert_eq "$(ctl observer get activities act-do | jq -r .title)" \
    "Dortmund workshop" "act-do at the observer"
assert_eq "$(sqlite3 "$T/observer.db" "SELECT count(*) FROM labsync_log
    WHERE key >> 40 = (SELECT self FROM labsync_state)")" \
    0 "captured changes at the observer"
assert_eq "$(ctl observer status --json | jq -r '.vector.observer // 0')" 0 \
    "changes originated by the observer"
ctl dortmund put activities act-do2 title="Later" || fail "put at dortmund"
converge 30 dortmund wuppertal observer
assert_eq "$(rows observer activities)" 3 "activities at the observer later"
pass
