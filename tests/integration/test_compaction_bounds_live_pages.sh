#!/usr/bin/env bash
# 5,000 updates of one ~1 KB row at a. A peer that is down (c) holds a's
# log: a keeps every entry c has not confirmed, also across a restart of a
# (what c confirmed before it went down is kept in labsync_peer_seen, and
# compaction goes exactly that far), while b, whose only peer is a, drops
# them. Once c is back and has confirmed them, within 90 s both a's and
# b's live pages ((page_count - freelist_count) x page_size) are under
# 1 MiB; labsync_changelog_bytes shrinks and status shows what c held back.
# Daemon defaults for compaction (compact_after 30 s).
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node a
node b
node c
http_node a
peer a b
peer b a
peer a c
peer c a
start a
start b
start c

MIB=$((1024 * 1024))
live() {
	sqlite3 "$T/$1.db" ".timeout 10000" "SELECT (p.page_count -
	    f.freelist_count) * z.page_size FROM pragma_page_count() AS p,
	    pragma_freelist_count() AS f, pragma_page_size() AS z"
}
vec() { ctl "$1" status --json | jq -r ".vector.$2 // 0"; }
# entries of origin a in NODE's log
log_a() {
	sql "$1" "SELECT count(*) FROM labsync_log l JOIN labsync_origin o
	    ON l.key >> 40 = o.id WHERE o.name = 'a'"
}
floor_a() { sql "$1" "SELECT floor FROM labsync_origin WHERE name = 'a'"; }
metric() {
	curl -s --max-time 10 "${HTTP_URL[a]}/metrics" |
	    awk -v m="$1" '$1 == m { print $2 }'
}
# UPDATES N FROM: N updates of act-big, each a new ~1 KB title, one
# transaction of the sqlite3 shell (the capture triggers log each one)
updates() {
	{
		echo "BEGIN;"
		for i in $(seq "$2" $(($2 + $1 - 1))); do
			echo "UPDATE activities SET title = printf('%d-%s', $i,
			    hex(zeroblob(500))) WHERE id = 'act-big';"
		done
		echo "COMMIT;"
	} | sqlite3 -cmd ".timeout 10000" "$T/a.db" || fail "updates at a"
}

ctl a put activities act-big title=first || fail "put at a"
updates 100 1
n1=101
stamped() { [ "$(vec a a)" = "$1" ]; }
wait_for 20 "a stamps its first 101 changes" stamped $n1
converge 30 a b c
# c confirmed them, and a saved that (at most a second later)
c_saved() {
	[ "$(sql a "SELECT seq FROM labsync_peer_seen WHERE peer = 'c' AND
	    origin = 'a'")" = "$n1" ]
}
wait_for 20 "a records what c confirmed" c_saved

stop c
updates 5000 102
full=$((n1 + 5000))
wait_for 30 "a stamps the 5,000 updates" stamped $full
converge 60 a b
big=$(live a)
[ "$big" -gt $((4 * MIB)) ] ||
    fail "a's live pages after 5,000 updates: $big (the test writes too little)"
bytes_before=$(metric labsync_changelog_bytes)
[ "${bytes_before%.*}" -gt $((4 * MIB)) ] ||
    fail "labsync_changelog_bytes after 5,000 updates: $bytes_before"

# a restarts while c is down: what c confirmed is read back
stop a
start a

# b's only peer, a, holds everything: b compacts once compact_after has
# passed (the witness that it has, for a), within 90 s of a confirming
b_small() { [ "$(log_a b)" = 0 ] && [ "$(live b)" -lt $MIB ]; }
wait_for 90 "b's log compacted, its live pages under 1 MiB" b_small
assert_eq "$(floor_a b)" "$full" "b's floor of a"

# a keeps exactly what c has not confirmed, and says so (its first
# entries are older than b's: a's step for them comes by now, or soon)
a_floor_n1() { [ "$(floor_a a)" = "$n1" ]; }
wait_for 20 "a's floor of a at what c confirmed before it went down" a_floor_n1
assert_eq "$(log_a a)" 5000 "a's entries of a (c is down)"
[ "$(live a)" -gt $((4 * MIB)) ] || fail "a's live pages with c down: $(live a)"
ctl a status | grep '^peer c ' | grep -q 'holds back 5000 log entries' ||
    fail "status: $(ctl a status | grep '^peer c ')"
assert_eq "$(ctl a status --json | jq -r '.peers[] | select(.name == "c") |
    .holds_log')" 5000 "status --json: holds_log of c"
assert_eq "$(metric labsync_changelog_changes)" 5000 "labsync_changelog_changes at a"
age=$(metric 'labsync_peer_oldest_unconfirmed_seconds{peer="c"}')
[ "${age%.*}" -ge 30 ] || fail "oldest unconfirmed for c: $age s"

# c returns, confirms, and the log goes within 90 s
start c
converge 60 a b c
a_small() { [ "$(log_a a)" = 0 ] && [ "$(live a)" -lt $MIB ]; }
wait_for 90 "a's log compacted, its live pages under 1 MiB" a_small
assert_eq "$(floor_a a)" "$full" "a's floor of a"
assert_eq "$(ctl a status --json | jq -r '.peers[] | select(.name == "c") |
    .holds_log')" 0 "status --json: holds_log of c after it confirmed"
bytes_after=$(metric labsync_changelog_bytes)
[ "${bytes_after%.*}" -lt $((bytes_before / 10)) ] ||
    fail "labsync_changelog_bytes: $bytes_before, then $bytes_after"
assert_eq "$(metric 'labsync_peer_oldest_unconfirmed_seconds{peer="c"}')" 0.000 \
    "oldest unconfirmed for c after it confirmed"
assert_eq "$(ctl a get activities act-big | jq -r .title | cut -d- -f1)" \
    "$full" "the row's newest value at a"
for n in b c; do
	assert_eq "$(ctl $n get activities act-big | jq -r .title | cut -d- -f1)" \
	    "$full" "the row's newest value at $n"
done
pass
