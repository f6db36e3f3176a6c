#!/usr/bin/env bash
# An application's own trigger on a synced table fires for local writes
# (the sqlite3 shell, the HTTP API, a bulk load) and never for changes
# replicated from another node, whether they arrive one at a time or in
# large batches; the daemon's connection keeps triggers off, and its
# HTTP API's writes are still captured and replicated. A key that is not
# non-empty text is refused; a changed key is a delete and an insert.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node dortmund
node wuppertal
http_node dortmund
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

# The application's audit trail: a table labsync does not sync, filled by
# the application's own trigger on a synced table.
for n in dortmund wuppertal; do
	sql "$n" "CREATE TABLE audit(id TEXT);
	    CREATE TRIGGER app_audit AFTER INSERT ON activities
	    BEGIN INSERT INTO audit VALUES (NEW.id); END;"
done
audited() { sql "$1" "SELECT count(*) FROM audit"; }

# a write through dortmund's HTTP API: captured, replicated, audited once
code=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 10 -X PUT \
    -H "Authorization: Bearer ${HTTP_TOKEN[dortmund]}" \
    -H "Content-Type: application/json" \
    -d '{"title":"Through the API"}' \
    "${HTTP_URL[dortmund]}/v1/tables/activities/rows/act-api")
assert_eq "$code" 201 "PUT through dortmund's API"
wait_for 20 "the API write reaches wuppertal" \
    ctl wuppertal get activities act-api

# a write with the sqlite3 shell at wuppertal
sql wuppertal "INSERT INTO activities(id, title) VALUES ('act-sh', 'Shell')"
wait_for 20 "the shell write reaches dortmund" \
    ctl dortmund get activities act-sh

# a bulk load at dortmund: wuppertal applies it in large batches
sql dortmund "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
    WHERE i < 3000) INSERT INTO activities(id, title)
    SELECT printf('act-bulk-%04d', i), 'bulk' FROM n"
converge 60 dortmund wuppertal

assert_eq "$(audited dortmund)" 3001 "local writes audited at dortmund"
assert_eq "$(audited wuppertal)" 1 "local writes audited at wuppertal"
assert_eq "$(sql wuppertal "SELECT id FROM audit")" act-sh \
    "the one write audited at wuppertal"
assert_eq "$(rows wuppertal activities)" 3002 "activities at wuppertal"

# the capture triggers refuse a key that is not non-empty text, inserted
# or changed to, and capture nothing of the refused write
seq_before=$(sql wuppertal "SELECT seq FROM labsync_state")
for stmt in "INSERT INTO activities(id, title) VALUES ('', 'empty key')" \
    "UPDATE activities SET id = '' WHERE id = 'act-sh'"; do
	out=$(sqlite3 "$T/wuppertal.db" ".timeout 10000" "$stmt" 2>&1) &&
	    fail "accepted: $stmt"
	case $out in
	*"labsync: primary key activities.id must be non-empty text"*) ;;
	*) fail "no clear refusal of '$stmt': $out" ;;
	esac
done
assert_eq "$(sql wuppertal "SELECT seq FROM labsync_state")" "$seq_before" \
    "changes captured of refused writes"
ctl wuppertal get activities act-sh >/dev/null || fail "act-sh lost"
# a key changed to a good one: a delete of the old and an insert of the
# new, at both nodes
sql wuppertal "UPDATE activities SET id = 'act-sh2' WHERE id = 'act-sh'"
converge 30 dortmund wuppertal
ctl dortmund get activities act-sh2 >/dev/null || fail "act-sh2 not at dortmund"
ctl dortmund get activities act-sh >/dev/null 2>&1 &&
    fail "act-sh, renamed, still at dortmund"
pass
