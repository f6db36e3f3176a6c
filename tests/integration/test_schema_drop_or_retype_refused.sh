#!/usr/bin/env bash
# labsync never drops or retypes a column by itself: a schema file that
# removes a column or changes its declared type is refused at reload (the
# log names the table and the column; the node keeps its schema and keeps
# serving) and by `labsyncd -n` (exit 78). A file that only adds passes
# `labsyncd -n`, which says what a reload would add.
. "$(dirname "$0")/lib.sh"

node a
node b
peer a b
peer b a
cp "$ROOT/config/schema.sql" "$T/a-schema.sql"
sed -i "s|^schema = .*|schema = $T/a-schema.sql|" "$T/a.conf"
start a
start b
ctl a put activities act-1 title="Before" summary="kept" || fail "put on a"
converge 20 a b

refused() {	# refused WHAT PATTERN: a's reload and labsyncd -n refuse
	local what=$1 pattern=$2 n out rc
	n=$(grep -c 'reload refused' "$T/a.log")
	kill -HUP "${PID[a]}"
	wait_for 10 "a refuses the $what" \
	    sh -c "[ \$(grep -c 'reload refused' '$T/a.log') -gt $n ]"
	grep 'reload refused' "$T/a.log" | tail -n 1 | grep -q "$pattern" ||
	    fail "a's refusal of the $what does not name the column"
	out=$("$LABSYNCD" -n -c "$T/a.conf" 2>&1)
	rc=$?
	assert_eq "$rc" 78 "labsyncd -n on the $what"
	echo "$out" | grep -q "$pattern" ||
	    fail "labsyncd -n does not name the column: $out"
	kill -0 "${PID[a]}" 2>/dev/null || fail "a died on the $what"
}

# A dropped column.
cp "$T/a-schema.sql" "$T/good.sql"
sed -i '/^    summary      TEXT,/d' "$T/a-schema.sql"
grep -q summary "$T/a-schema.sql" && fail "test could not edit the schema"
refused "dropped column" "table activities, column summary: in the database but not in the file"

# A retyped column.
sed 's/^    participants INTEGER,/    participants TEXT,/' "$T/good.sql" \
    >"$T/a-schema.sql"
refused "retyped column" "table activities, column participants: declared INTEGER in the database, TEXT in the file"

# The node kept its schema and serves: columns there, writes replicate.
assert_eq "$(sqlite3 "$T/a.db" "SELECT type FROM pragma_table_info('activities') WHERE name = 'participants'")" \
    INTEGER "participants' type on a"
ctl a put activities act-1 summary="still here" participants=7 ||
    fail "put on a after the refusals"
wait_for 10 "write after the refusals reaches b" \
    sh -c "[ \"\$('$LABSYNCCTL' -c '$T/b.conf' get activities act-1 | jq -r .participants)\" = 7 ]"
ctl a status | grep -q '^node a (city), running' || fail "a not running"

# A file that adds a column passes -n, which says what it would add.
sed 's/^    name        TEXT,$/&\n    website     TEXT,/' "$T/good.sql" \
    >"$T/a-schema.sql"
grep -q website "$T/a-schema.sql" || fail "test could not edit the schema"
out=$("$LABSYNCD" -n -c "$T/a.conf" 2>&1) || fail "labsyncd -n refused an addition: $out"
echo "$out" | grep -q 'would add column labs.website (TEXT)' ||
    fail "labsyncd -n does not say what it adds: $out"
echo "$out" | grep -qx 'configuration OK' || fail "labsyncd -n: $out"
assert_eq "$(sqlite3 "$T/a.db" "SELECT count(*) FROM pragma_table_info('labs') WHERE name = 'website'")" \
    0 "labsyncd -n changed the database"
pass
