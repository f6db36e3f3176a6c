#!/usr/bin/env bash
# A receiver whose schema is stricter than the sender's: b declares
# CHECK (participants >= 0), a does not. a's row with -5 participants
# cannot be written at b; it is kept aside there, refused (constraint),
# and the feed goes on behind it (never stuck); a sees the refusal in its
# status. Once a corrects the value, `labsyncctl retry` at b merges the
# kept change by the normal rule (the newer correction wins), and both
# nodes hold the same row.
. "$(dirname "$0")/lib.sh"

node a
node b
peer a b
peer b a
sed 's/participants INTEGER,      /participants INTEGER CHECK (participants >= 0),/' \
    "$ROOT/config/schema.sql" >"$T/b-schema.sql"
grep -q 'CHECK (participants >= 0)' "$T/b-schema.sql" || fail "b's schema"
sqlite3 "$T/b.db" <"$T/b-schema.sql" || fail "b's database"
sed -i "s|^schema = .*|schema = $T/b-schema.sql|" "$T/b.conf"
start a
start b

b_has() {
	[ "$(sql b "SELECT count(*) FROM activities WHERE id = '$1' AND
	    title = '$2'")" = 1 ]
}

ctl a put activities act-1 title=first participants=-5 >/dev/null ||
    fail "put act-1 at a"
ctl a put activities act-2 title=second participants=7 >/dev/null ||
    fail "put act-2 at a"
wait_for 15 "act-2 at b, behind the refused act-1" b_has act-2 second
assert_eq "$(sql b "SELECT count(*) FROM activities WHERE id = 'act-1'")" \
    0 "act-1 at b"
ctl b refused | grep -q $'^a\t1\tactivities\tact-1\t-\tconstraint\trefused\t' ||
    fail "b's refused list: $(ctl b refused)"
grep -q "refused by a constraint of this node's schema" "$T/b.log" ||
    fail "b's log does not say why"
wait_for 10 "a sees b refuse it" sh -c \
    "'$LABSYNCCTL' -c '$T/a.conf' status | grep -q '^peer b .*refused 1 (constraint'"

# a corrects the value; b takes the correction, then the kept change
ctl a put activities act-1 participants=5 >/dev/null || fail "fix at a"
corrected_at_b() {
	[ "$(sql b "SELECT participants FROM activities
	    WHERE id = 'act-1'")" = 5 ]
}
wait_for 15 "the correction at b" corrected_at_b
ctl b retry | grep -q '^applied 1 kept changes, 0 still kept' ||
    fail "retry at b: $(ctl b retry)"
assert_eq "$(sql b "SELECT title || ':' || participants FROM activities
    WHERE id = 'act-1'")" "first:5" "act-1 at b after the retry"
converge 30 a b
pass
