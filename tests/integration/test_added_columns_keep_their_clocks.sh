#!/usr/bin/env bash
# Columns added to a synced table (ALTER TABLE on every node, then a
# restart) have clocks of their own. A row whose columns' clocks are
# spelt out (a partial update) gets a partial update of the last new
# column at both nodes while they are apart, wuppertal's first: once they
# meet, dortmund's later value must win on both. (Until e21a9db the
# triggers put the new column's clock in the slot of the one before it,
# so dortmund took wuppertal's older value and the nodes diverged.)
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal
ctl dortmund put activities act-1 kind=workshop title=first >/dev/null ||
    fail "put act-1"
ctl dortmund put activities act-1 title=second >/dev/null ||
    fail "partial update of act-1"
converge 30 dortmund wuppertal
stop dortmund
stop wuppertal

for n in dortmund wuppertal; do
	sql $n "ALTER TABLE activities ADD COLUMN extra1 TEXT;
	    ALTER TABLE activities ADD COLUMN extra2 TEXT"
	start $n	# the triggers learn the new columns
	stop $n
done
sql wuppertal "UPDATE activities SET extra2 = 'wuppertal' WHERE id = 'act-1'"
sleep 0.05	# dortmund's clock is later
sql dortmund "UPDATE activities SET extra2 = 'dortmund' WHERE id = 'act-1'"

start dortmund
start wuppertal
converge 30 dortmund wuppertal
for n in dortmund wuppertal; do
	assert_eq "$(sql $n "SELECT title || ' ' || coalesce(extra1, '-') ||
	    ' ' || extra2 FROM activities WHERE id = 'act-1'")" \
	    "second - dortmund" "act-1 at $n"
done
pass
