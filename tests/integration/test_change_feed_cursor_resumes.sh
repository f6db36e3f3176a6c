#!/usr/bin/env bash
# The change feed (GET /v1/changes, labsyncctl watch). Two cities write;
# a's feed, read page by page with a small limit, holds every change a
# holds (its own and b's) exactly once, in the order a committed them;
# a cursor saved before a kill -9 and restart resumes without loss or
# repetition; table= filters; bad parameters answer 400; a cursor below
# what compaction removed answers 410 with a hint, since=0 does not; and
# `labsyncctl watch` prints a change made on b as it arrives.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"

node a
node b
peer a b
peer b a
http_node a
start a
start b

feed() {	# feed QUERY: the body; the HTTP status in $T/status
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 \
	    "${HTTP_URL[a]}/v1/changes?$1" >"$T/status"
	cat "$T/body"
}
# read_from CURSOR: every change after it, 2 a page, as lines
# "cursor origin table id op" in $T/seen (appended); the last cursor
read_from() {
	local since=$1 body n
	while :; do
		body=$(feed "since=$since&limit=2")
		[ "$(cat "$T/status")" = 200 ] || fail "feed since=$since: $(cat "$T/status") $body"
		n=$(jq '.changes | length' <<<"$body")
		[ "$n" -le 2 ] || fail "limit=2 gave $n changes"
		jq -r '.changes[] | "\(.cursor) \(.origin) \(.table) \(.id) \(.op)"' \
		    <<<"$body" >>"$T/seen"
		[ "$n" = 0 ] && break
		since=$(jq -r .next <<<"$body")
	done
	echo "$since"
}

for i in 1 2 3 4 5; do
	ctl a put activities act-$i title="Werkstatt $i" participants=$i >/dev/null ||
	    fail "put act-$i at a"
done
for i in 1 2 3; do
	ctl b put labs lab-$i city=Wuppertal name="Labor $i" >/dev/null ||
	    fail "put lab-$i at b"
done
ctl a delete activities act-2 >/dev/null || fail "delete at a"
converge 30 a b

: >"$T/seen"
body=$(feed "since=0&limit=4")
first=$(jq -r '.changes[3].cursor' <<<"$body")
jq -r '.changes[] | "\(.cursor) \(.origin) \(.table) \(.id) \(.op)"' \
    <<<"$body" >"$T/seen"
assert_eq "$(jq -r '.changes[0].columns.title' <<<"$body")" "Werkstatt 1" \
    "the first change's title"
assert_eq "$(jq -r '.changes[0] | [.table, .id, .op, .origin,
    (.hlc | type)] | join(" ")' <<<"$body")" "activities act-1 upsert a number" \
    "the first change's fields"
assert_eq "$(jq -r .next <<<"$body")" "$first" "next is the last cursor"

# a dies and comes back; the saved cursor resumes
kill -9 "${PID[a]}"
wait "${PID[a]}" 2>/dev/null
start a
ctl b put labs lab-4 city=Wuppertal name="Labor 4" >/dev/null || fail "put lab-4"
converge 30 a b
last=$(read_from "$first")

# every change exactly once, cursors rising
assert_eq "$(wc -l <"$T/seen")" 10 "changes in the feed"
assert_eq "$(cut -d' ' -f1 "$T/seen" | sort -n | uniq | wc -l)" 10 \
    "distinct cursors"
cut -d' ' -f1 "$T/seen" | sort -n -c || fail "cursors not in order: $(cat "$T/seen")"
assert_eq "$(cut -d' ' -f2- "$T/seen" | sort | tr '\n' ';')" \
"a activities act-1 upsert;a activities act-2 delete;a activities act-2 upsert;\
a activities act-3 upsert;a activities act-4 upsert;a activities act-5 upsert;\
b labs lab-1 upsert;b labs lab-2 upsert;b labs lab-3 upsert;b labs lab-4 upsert;" \
    "what the feed holds"
# commit order: a's own changes in the order it made them, b's likewise
assert_eq "$(awk '$2 == "a" { printf "%s:%s ", $4, $5 }' "$T/seen")" \
    "act-1:upsert act-2:upsert act-3:upsert act-4:upsert act-5:upsert act-2:delete " \
    "a's changes in commit order"
assert_eq "$(awk '$2 == "b" { printf "%s ", $4 }' "$T/seen")" \
    "lab-1 lab-2 lab-3 lab-4 " "b's changes in commit order"
assert_eq "$(feed "since=$last" | jq -c .changes)" "[]" "nothing after the end"

# table= filters
assert_eq "$(feed "since=0&table=labs" | jq -r '[.changes[].table] | unique | join(",")')" \
    labs "table=labs"
assert_eq "$(feed "since=0&table=labs" | jq '.changes | length')" 4 \
    "changes of labs"

# bad parameters
for q in since=abc since=-1 limit=0 limit=1001 table=nosuch nosuch=1; do
	feed "$q" >/dev/null
	case $q in
	table=*) want=404 ;;
	*) want=400 ;;
	esac
	assert_eq "$(cat "$T/status")" "$want" "status of ?$q"
	jq -e .error "$T/body" >/dev/null || fail "?$q: no JSON error: $(cat "$T/body")"
done

# compaction removed entries up to cursor 5 (set by hand here): a cursor
# below answers 410 with a hint; 0 and 5 are fine
stop a
sql a "UPDATE labsync_state SET at_floor = 5"
start a
feed "since=3" >/dev/null
assert_eq "$(cat "$T/status")" 410 "status of a cursor below the floor"
jq -e '.hint | test("read the tables again")' "$T/body" >/dev/null ||
    fail "410 without a hint: $(cat "$T/body")"
feed "since=0" >/dev/null
assert_eq "$(cat "$T/status")" 200 "since=0 after compaction"
feed "since=5" >/dev/null
assert_eq "$(cat "$T/status")" 200 "since=5 after compaction"

# watch prints what b writes, as it arrives, then stops on SIGTERM
"$LABSYNCCTL" -c "$T/a.conf" watch activities >"$T/watch.out" \
    2>"$T/watch.err" &
PID[watch]=$!
sleep 1
ctl b put activities act-w title="Beobachtet" >/dev/null || fail "put act-w at b"
ctl b put labs lab-w city=Wuppertal >/dev/null || fail "put lab-w at b"
wait_for 20 "watch prints act-w" grep -q '"id":"act-w"' "$T/watch.out"
kill -TERM "${PID[watch]}"
wait "${PID[watch]}"
assert_eq "$?" 0 "watch's exit status after SIGTERM"
unset 'PID[watch]'
assert_eq "$(jq -r '[.origin, .table, .op, .columns.title] | join(" ")' \
    "$T/watch.out")" "b activities upsert Beobachtet" "what watch printed"
pass
