#!/usr/bin/env bash
# labsyncctl watch reads the feed on a connection of its own, opened
# before some origins were known: the first change of a node a has never
# heard from (here b, whose first write comes after watch started, and c,
# a third city relayed through b) is printed like any other, not skipped,
# and every change is printed once, in commit order. GET /v1/changes
# agrees with what watch printed; c, without token_file, serves its feed
# (relayed changes included) without a token; watch blocked on a reader
# that stopped reading still ends on SIGTERM, with 0.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"

node a
node b
node c
peer a b
peer b a
peer b c
peer c b
http_node a
http_node c
sed -i '/^token_file = /d' "$T/c.conf"	# reads need none: the feed too
start a
start b
start c

ctl a put activities act-a title="Vor dem Beobachten" >/dev/null ||
    fail "put act-a at a"

# from the cursor of act-a, a's newest change: what watch prints does not
# depend on how soon it starts
start_at=$(curl -s --max-time 10 "${HTTP_URL[a]}/v1/changes?since=0" |
    jq -r '.changes[] | select(.id == "act-a") | .cursor')
[ -n "$start_at" ] || fail "act-a is not in a's feed"
"$LABSYNCCTL" -c "$T/a.conf" watch --since "$start_at" >"$T/watch.out" \
    2>"$T/watch.err" &
PID[watch]=$!

ctl b put labs lab-b city=Wuppertal name="Labor B" >/dev/null ||
    fail "put lab-b at b"
ctl c put labs lab-c city=Bochum name="Labor C" >/dev/null ||
    fail "put lab-c at c"
ctl a put activities act-a2 title="Danach" >/dev/null || fail "put act-a2 at a"
converge 30 a b c
printed() {	# printed ID...: watch printed each
	local id
	for id in "$@"; do
		grep -q "\"id\":\"$id\"" "$T/watch.out" || return 1
	done
}
deadline=$((SECONDS + 20))
until printed lab-b lab-c act-a2; do
	[ "$SECONDS" -lt "$deadline" ] || fail "watch did not print lab-b," \
	    "lab-c and act-a2 within 20 s; it printed: $(cat "$T/watch.out")" \
	    "and said: $(cat "$T/watch.err")"
	sleep 0.2
done
sleep 1		# a change printed twice would show by now
kill -TERM "${PID[watch]}"
wait "${PID[watch]}"
assert_eq "$?" 0 "watch's exit status after SIGTERM"
unset 'PID[watch]'

assert_eq "$(jq -r '"\(.origin) \(.id)"' "$T/watch.out" | sort | tr '\n' ';')" \
    "a act-a2;b lab-b;c lab-c;" "what watch printed, once each"
# the feed over HTTP: the same changes after act-a, with the same cursors
assert_eq "$(curl -s --max-time 10 "${HTTP_URL[a]}/v1/changes?since=$start_at" |
    jq -c '[.changes[] | [.cursor, .id]]')" \
    "$(jq -s -c '[.[] | [.cursor, .id]]' "$T/watch.out")" \
    "watch and GET /v1/changes agree"
[ ! -s "$T/watch.err" ] || fail "watch said on stderr: $(cat "$T/watch.err")"

# c has no token_file; its feed, without a token, holds every change,
# a's relayed through b as well
assert_eq "$(curl -s --max-time 10 "${HTTP_URL[c]}/v1/changes?since=0" |
    jq -r '[.changes[] | "\(.origin):\(.id)"] | sort | join(" ")')" \
    "a:act-a a:act-a2 b:lab-b c:lab-c" "c's feed without a token"

# a reader that stops reading: watch blocks on the full pipe, and SIGTERM
# ends it as asked, with 0, not as a failed write (EINTR, exit 1)
sqlite3 "$T/a.db" ".timeout 10000" "WITH RECURSIVE n(x) AS (SELECT 1
    UNION ALL SELECT x + 1 FROM n WHERE x < 2000)
    INSERT INTO activities(id, title) SELECT printf('bulk-%04d', x),
    'Viele Zeilen, damit die Leitung voll wird' FROM n;" ||
    fail "2000 rows at a"
mkfifo "$T/pipe"
exec 3<>"$T/pipe"	# a reader that never reads
"$LABSYNCCTL" -c "$T/a.conf" watch --since 0 >"$T/pipe" 2>"$T/watch.err" &
PID[watch]=$!
# a byte read: watch runs its loop (its signal handlers are set); the
# rest fills the pipe
read -r -N 1 -t 30 -u 3 _ || fail "watch wrote nothing: $(cat "$T/watch.err")"
kill -0 "${PID[watch]}" || fail "watch ended before SIGTERM: $(cat "$T/watch.err")"
kill -TERM "${PID[watch]}"
wait_for 10 "watch ends on SIGTERM while its reader does not read" \
    bash -c "! kill -0 ${PID[watch]}"
wait "${PID[watch]}"
assert_eq "$?" 0 "watch's exit status after SIGTERM, blocked"
unset 'PID[watch]'
exec 3<&-
pass
