#!/usr/bin/env bash
# Deletes replicate, and a delete racing an update follows one rule,
# decided by the (hlc, origin) order of the two changes (merge_change
# in merge.c):
#   - a delete at D removes every column value written before D;
#   - if no write newer than D exists the row is gone everywhere;
#   - a write after D (in HLC terms) revives the row: the columns it
#     wrote carry its values, every other column is NULL.
# So "update, then delete" removes the row; "delete, then update"
# leaves a row with only the updated columns. Every node ends the same.
. "$(dirname "$0")/lib.sh"

pair dortmund wuppertal

# hlc NODE ORIGIN: the HLC of ORIGIN's newest change in NODE's log.
hlc() {
	sqlite3 "$T/$1.db" ".timeout 5000" "SELECT l.hlc FROM labsync_log l
	    JOIN labsync_origin o ON l.key >> 40 = o.id
	    WHERE o.name = '$2' ORDER BY l.key DESC LIMIT 1"
}

absent_on_both() {
	local n
	for n in dortmund wuppertal; do
		ctl $n get activities "$1" >/dev/null 2>&1
		[ $? -eq 1 ] || return 1
	done
}

full_row() {	# full_row ID: a row with every column we check set
	ctl dortmund put activities "$1" kind=workshop title="Title $1" \
	    participants=10 status=planned || fail "put $1"
}

# 1. Plain delete: insert at dortmund, delete at wuppertal.
full_row act-del
converge 30 dortmund wuppertal
ctl wuppertal get activities act-del >/dev/null || fail "act-del not at wuppertal"
ctl wuppertal delete activities act-del || fail "delete at wuppertal"
converge 30 dortmund wuppertal
for n in dortmund wuppertal; do
	ctl $n get activities act-del >/dev/null 2>&1
	assert_eq "$?" 1 "get of the deleted row at $n (exit status)"
done

# 2. Delete after an update: the update at wuppertal comes first, the
# delete at dortmund later (possibly before the update has arrived).
full_row act-upd-del
converge 30 dortmund wuppertal
ctl wuppertal put activities act-upd-del participants=11 || fail "update"
sleep 0.05
ctl dortmund delete activities act-upd-del || fail "delete"
converge 30 dortmund wuppertal
upd=$(hlc dortmund wuppertal) del=$(hlc dortmund dortmund)
[ "$upd" -lt "$del" ] || fail "update hlc $upd not before delete hlc $del"
wait_for 10 "act-upd-del absent on both" absent_on_both act-upd-del

# 3. Write after a delete: the delete at dortmund comes first, the update
# of one column at wuppertal later: the row comes back with only that
# column, the others NULL.
full_row act-del-upd
converge 30 dortmund wuppertal
ctl dortmund delete activities act-del-upd || fail "delete"
sleep 0.05
ctl wuppertal put activities act-del-upd participants=99 || fail "update"
converge 30 dortmund wuppertal
del=$(hlc wuppertal dortmund) upd=$(hlc wuppertal wuppertal)
[ "$del" -lt "$upd" ] || fail "delete hlc $del not before update hlc $upd"
for n in dortmund wuppertal; do
	row=$(ctl $n get activities act-del-upd) ||
	    fail "act-del-upd not revived at $n"
	assert_eq "$(echo "$row" | jq -r .participants)" 99 "revived participants at $n"
	assert_eq "$(echo "$row" | jq -c '[.kind, .title, .status]')" \
	    '[null,null,null]' "columns written before the delete at $n"
done

# 4. A true race: delete and update at the same moment. Whichever the
# (hlc, origin) order says came last decides the outcome, on both nodes.
full_row act-race
converge 30 dortmund wuppertal
ctl dortmund delete activities act-race >"$T/r1" 2>&1 &
r1=$!
ctl wuppertal put activities act-race title="Raced" >"$T/r2" 2>&1 &
r2=$!
wait $r1 || fail "racing delete: $(cat "$T/r1")"
wait $r2 || fail "racing update: $(cat "$T/r2")"
converge 30 dortmund wuppertal
del=$(hlc dortmund dortmund) upd=$(hlc dortmund wuppertal)
[ -n "$del" ] && [ -n "$upd" ] || fail "no hlc for the racing changes"
# ties on hlc go to the greater origin name: wuppertal > dortmund
if [ "$del" -gt "$upd" ]; then
	echo "race: delete ($del) after update ($upd): row must be gone"
	absent_on_both act-race || fail "act-race still present after a later delete"
else
	echo "race: update ($upd) after delete ($del): row must be revived"
	for n in dortmund wuppertal; do
		row=$(ctl $n get activities act-race) ||
		    fail "act-race not revived at $n"
		assert_eq "$(echo "$row" | jq -c '[.title, .kind, .participants, .status]')" \
		    '["Raced",null,null,null]' "revived act-race at $n"
	done
fi
pass
