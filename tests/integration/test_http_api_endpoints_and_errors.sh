#!/usr/bin/env bash
# The HTTP API against real daemons over loopback (curl): every endpoint,
# every error code in the documented order (405, 401, 403, 404, 413, 400)
# with a JSON body {"error": ...}, nothing written on any error, and a
# write made through the API replicates like any other.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node dortmund
node wuppertal
node observer observer
http_node dortmund
http_node observer bare		# listen = PORT: loopback only
peer dortmund wuppertal
peer wuppertal dortmund
peer observer dortmund
peer_in dortmund observer observer
start dortmund
start wuppertal
start observer

B=$T/body

# req NODE METHOD PATH [CURL-ARGS...]: the status code; the body in $B.
req() {
	local n=$1 m=$2 p=$3
	shift 3
	: >"$B"
	curl -s -o "$B" -w '%{http_code}' --max-time 10 -X "$m" "$@" \
	    "${HTTP_URL[$n]}$p"
}

# expect CODE NODE METHOD PATH [CURL-ARGS...]: that code; errors carry
# a JSON body with a string "error".
expect() {
	local want=$1 got
	shift
	got=$(req "$@")
	[ "$got" = "$want" ] ||
	    fail "$2 $3 ($1): status $got, expected $want; body: $(head -c 300 "$B")"
	if [ "$want" -ge 400 ]; then
		jq -e '.error | type == "string" and length > 0' "$B" \
		    >/dev/null 2>&1 ||
		    fail "$2 $3: $want without a JSON error body: $(head -c 300 "$B")"
	fi
}

TOK="Authorization: Bearer ${HTTP_TOKEN[dortmund]}"
OTOK="Authorization: Bearer ${HTTP_TOKEN[observer]}"
BAD="Authorization: Bearer not-${HTTP_TOKEN[dortmund]}"
JSON="Content-Type: application/json"
ROW=/v1/tables/activities/rows
UUID7='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# --- success paths ----------------------------------------------------------
expect 200 dortmund GET /healthz
assert_eq "$(jq -r .status "$B")" ok "/healthz body"
expect 200 observer GET /healthz
grep -qx "listen = ${HTTP_PORT[observer]}" "$T/observer.conf" ||
    fail "the observer's listen line is no bare port"
if command -v ss >/dev/null; then	# (iproute2)
	ss -Htln "sport = :${HTTP_PORT[observer]}" | awk '{ print $4 }' |
	    grep -qx "127.0.0.1:${HTTP_PORT[observer]}" ||
	    fail "a bare port does not bind 127.0.0.1 only: $(ss -Htln \
	    "sport = :${HTTP_PORT[observer]}")"
fi

expect 201 dortmund PUT $ROW/act-http-1 -H "$TOK" -H "$JSON" \
    -d '{"kind":"workshop","title":"First title","participants":12}'
assert_eq "$(jq -r .id "$B")" act-http-1 "PUT reply id"
assert_eq "$(jq -r .row.title "$B")" "First title" "PUT reply row"
expect 200 dortmund PATCH $ROW/act-http-1 -H "$TOK" -H "$JSON" \
    -d '{"title":"Second title","location":null}'
expect 200 dortmund GET $ROW/act-http-1
assert_eq "$(jq -c 'del(.location)' "$B")" \
    '{"ends_at":null,"id":"act-http-1","kind":"workshop","lab_id":null,"participants":12,"stakeholders":null,"starts_at":null,"status":null,"summary":null,"theme_id":null,"title":"Second title"}' \
    "PATCH updates only the given columns"
assert_eq "$(jq -r '.participants|type' "$B")" number "INTEGER stays a number"
GOOD_ROW=$(jq -cS . "$B")

expect 201 dortmund POST $ROW -H "$TOK" -H "$JSON" \
    -d '{"title":"Posted","participants":3}'
NEWID=$(jq -r .id "$B")
[[ $NEWID =~ $UUID7 ]] || fail "POST id is no UUIDv7: $NEWID"
expect 201 dortmund POST $ROW -H "$TOK" -H "$JSON" -d '{}'
NEWID2=$(jq -r .id "$B")
[[ $NEWID2 =~ $UUID7 ]] || fail "POST id is no UUIDv7: $NEWID2"
[[ $NEWID2 > $NEWID ]] || fail "UUIDv7 ids not time-ordered: $NEWID2 <= $NEWID"
expect 200 dortmund GET $ROW/$NEWID
assert_eq "$(jq -r .title "$B")" Posted "GET of the POSTed row"
assert_eq "$(jq -r .id "$B")" "$NEWID" "GET of the POSTed row: id"

# paging: 7 themes, pages of 3, then one page of exactly all of them
for i in 1 2 3 4 5 6 7; do
	expect 201 dortmund PUT /v1/tables/themes/rows/th-0$i -H "$TOK" \
	    -H "$JSON" -d "{\"title\":\"Theme $i\"}"
done
ids="" after="" pages=0
while :; do
	q="limit=3${after:+&after=$after}"
	expect 200 dortmund GET "/v1/tables/themes/rows?$q"
	pages=$((pages + 1))
	n=$(jq '.rows | length' "$B")
	[ "$n" -le 3 ] || fail "page of $n rows with limit=3"
	ids="$ids$(jq -r '.rows[].id' "$B" | tr '\n' ' ')"
	after=$(jq -r '.next // empty' "$B")
	[ -n "$after" ] || break
	[ "$pages" -lt 10 ] || fail "paging does not end"
done
assert_eq "$ids" "th-01 th-02 th-03 th-04 th-05 th-06 th-07 " "ids over all pages"
assert_eq "$pages" 3 "pages"
assert_eq "$(jq -c .next "$B")" null "next at the end"
expect 200 dortmund GET "/v1/tables/themes/rows?limit=7"
assert_eq "$(jq -c '[(.rows | length), .next]' "$B")" '[7,null]' "one full page"
expect 200 dortmund GET "/v1/tables/themes/rows?limit=6"
assert_eq "$(jq -c '[(.rows | length), .next]' "$B")" '[6,"th-06"]' "limit=6"
expect 200 dortmund GET "/v1/tables/themes/rows?after=th-07"
assert_eq "$(jq -c .rows "$B")" '[]' "a page after the last row"
expect 200 dortmund GET "/v1/tables/activities/rows"
assert_eq "$(jq '.rows | length' "$B")" 3 "activities listed without limit"
assert_eq "$(jq -r '[.rows[].id] | sort | join(" ")' "$B")" \
    "$(printf '%s\n' act-http-1 "$NEWID" "$NEWID2" | LC_ALL=C sort | paste -sd ' ')" \
    "activities listed"

# ids may hold reserved characters, percent-encoded; the auth scheme's
# case does not matter
expect 201 dortmund PUT "$ROW/act%2Fslash%20id" -H "$JSON" \
    -H "authorization: bearer ${HTTP_TOKEN[dortmund]}" -d '{"title":"Slash"}'
assert_eq "$(ctl dortmund get activities 'act/slash id' | jq -r .title)" Slash \
    "a row with a percent-encoded id"
expect 200 dortmund GET "$ROW/act%2Fslash%20id"
assert_eq "$(jq -r .id "$B")" "act/slash id" "GET of a percent-encoded id"

expect 200 dortmund DELETE /v1/tables/themes/rows/th-07 -H "$TOK"
expect 404 dortmund GET /v1/tables/themes/rows/th-07
expect 404 dortmund DELETE /v1/tables/themes/rows/th-07 -H "$TOK"

# local table: written and read with the token, never replicated
expect 201 dortmund PUT /v1/tables/participants/rows/p-1 -H "$TOK" \
    -H "$JSON" -d '{"name":"Erika Mustermann","consent":1}'
expect 200 dortmund GET /v1/tables/participants/rows/p-1 -H "$TOK"
assert_eq "$(jq -r .name "$B")" "Erika Mustermann" "local row"
expect 200 dortmund GET /v1/tables/participants/rows -H "$TOK"
assert_eq "$(jq '.rows | length' "$B")" 1 "local rows listed"

# --- replication of API writes ----------------------------------------------
title_at() { ctl "$1" get activities "$2" 2>/dev/null | jq -r .title; }
title_is() { [ "$(title_at "$1" "$2")" = "$3" ]; }
wait_for 15 "PUT at dortmund reaches wuppertal" \
    title_is wuppertal act-http-1 "Second title"
wait_for 15 "POST at dortmund reaches wuppertal" title_is wuppertal "$NEWID" Posted
assert_eq "$(ctl wuppertal get activities act-http-1 | jq -r .participants)" 12 \
    "participants at wuppertal"
converge 30 dortmund wuppertal observer
ctl wuppertal get themes th-07 >/dev/null 2>&1 && fail "API delete not replicated"
ctl wuppertal get participants p-1 >/dev/null 2>&1 &&
    fail "a local row left the node"

# --- status --------------------------------------------------------------------
expect 200 dortmund GET /v1/status
jq -e '.node == "dortmund" and .role == "city" and
    (.vector | type == "object") and (.vector.dortmund | type == "number") and
    (.peers | length == 2) and
    all(.peers[]; has("name") and has("state") and has("lag") and
        has("last_contact_s") and has("last_error"))' "$B" >/dev/null ||
    fail "GET /v1/status lacks fields: $(cat "$B")"
jq -e '.peers[] | select(.name == "wuppertal") | .state == "up" and
    .lag == 0 and (.last_contact_s | type == "number")' "$B" >/dev/null ||
    fail "wuppertal's peer entry: $(cat "$B")"
assert_eq "$(jq -cS '{node, role, vector}' "$B")" \
    "$(ctl dortmund status --json | jq -cS '{node, role, vector}')" \
    "GET /v1/status and labsyncctl status --json"
expect 200 observer GET /v1/status
assert_eq "$(jq -r .role "$B")" observer "observer's status role"
expect 200 dortmund GET /metrics
grep -q '^labsync_changes_captured_total ' "$B" || fail "/metrics content"

# --- errors, each in the documented order -----------------------------------
# Nothing below may write: the change log and both nodes stay as they are.
SUM_DO=$(ctl dortmund checksum)
SUM_OB=$(ctl observer checksum)
VEC_DO=$(ctl dortmund status --json | jq -cS .vector)
VEC_OB=$(ctl observer status --json | jq -cS .vector)
LOCAL_DO=$(ctl dortmund list participants)

# 405 before everything, even without a token
expect 405 dortmund POST $ROW/act-http-1 -d '{"title":"BAD"}'
expect 405 dortmund PATCH $ROW -d '{"title":"BAD"}'
expect 405 dortmund POST $ROW/act-http-1 -H "$TOK" -d '{"title":"BAD"}'
expect 405 dortmund PUT $ROW -H "$TOK" -d '{"title":"BAD"}'
expect 405 dortmund DELETE $ROW -H "$TOK"
expect 405 dortmund POST /healthz
expect 405 dortmund POST /metrics -H "$TOK"
expect 405 dortmund PUT /v1/status -H "$TOK"
expect 405 dortmund POST /v1/tables/nosuch/rows/x
expect 405 observer POST $ROW/act-http-1 -H "$OTOK"
expect 405 dortmund TRACE /healthz
expect 405 dortmund OPTIONS $ROW -H "$TOK"
expect 405 dortmund DELETE /v1/tables/participants/rows
allow_is() {	# allow_is METHOD PATH ALLOW: a 405's Allow header
	curl -s -o /dev/null -D "$T/headers" -X "$1" --max-time 10 \
	    "${HTTP_URL[dortmund]}$2"
	tr -d '\r' <"$T/headers" | grep -qix "allow: $3" ||
	    fail "$1 $2: no 'Allow: $3' in: $(cat "$T/headers")"
}
allow_is POST $ROW/act-http-1 "GET, PUT, PATCH, DELETE"
allow_is PUT $ROW "GET, POST"
allow_is POST /healthz GET

# 401: no token, a wrong token, another scheme; writes and local reads
for h in "" "$BAD" "Authorization: Basic ${HTTP_TOKEN[dortmund]}" \
    "Authorization: Bearer" "Authorization: Bearer ${HTTP_TOKEN[dortmund]}x" \
    "Authorization: Bearer ${HTTP_TOKEN[dortmund]:1}"; do
	a=(-H "${h:-X-None: 1}")
	expect 401 dortmund PUT $ROW/act-never "${a[@]}" -H "$JSON" -d '{"title":"BAD"}'
	expect 401 dortmund PUT $ROW/act-http-1 "${a[@]}" -H "$JSON" -d '{"title":"BAD"}'
	expect 401 dortmund POST $ROW "${a[@]}" -H "$JSON" -d '{"title":"BAD"}'
	expect 401 dortmund DELETE $ROW/act-http-1 "${a[@]}"
	expect 401 dortmund GET /v1/tables/participants/rows "${a[@]}"
	expect 401 dortmund GET /v1/tables/participants/rows/p-1 "${a[@]}"
	expect 401 dortmund PUT /v1/tables/participants/rows/p-1 "${a[@]}" \
	    -H "$JSON" -d '{"name":"BAD"}'
	expect 401 dortmund PUT /v1/tables/nosuch/rows/x "${a[@]}" -d '{}'
	expect 401 observer PUT $ROW/act-never "${a[@]}" -H "$JSON" -d '{"title":"BAD"}'
done
# the observer's own token is not dortmund's, and the other way round
expect 401 observer PUT $ROW/act-never -H "$TOK" -H "$JSON" -d '{"title":"BAD"}'
expect 401 dortmund PUT $ROW/act-never -H "$OTOK" -H "$JSON" -d '{"title":"BAD"}'
expect 401 dortmund GET /v1/tables/participants/rows -H "$OTOK"

# 403: a write on the observer with its right token, before 404/413/400
expect 403 observer PUT $ROW/act-never -H "$OTOK" -H "$JSON" -d '{"title":"BAD"}'
expect 403 observer POST $ROW -H "$OTOK" -H "$JSON" -d '{"title":"BAD"}'
expect 403 observer DELETE $ROW/act-http-1 -H "$OTOK"
expect 403 observer PUT /v1/tables/nosuch/rows/x -H "$OTOK" -d '{}'
expect 403 observer PUT $ROW/act-never -H "$OTOK" -d 'not json'
expect 200 observer GET $ROW/act-http-1
assert_eq "$(jq -cS . "$B")" "$GOOD_ROW" "the row at the observer"

# 404: unknown table, missing row, unknown path (before 413 and 400)
expect 404 dortmund GET /v1/tables/nosuch/rows
expect 404 dortmund GET /v1/tables/nosuch/rows/x
expect 404 dortmund PUT /v1/tables/nosuch/rows/x -H "$TOK" -H "$JSON" -d '{"title":"x"}'
expect 404 dortmund POST /v1/tables/nosuch/rows -H "$TOK" -H "$JSON" -d 'not json'
expect 404 dortmund DELETE /v1/tables/nosuch/rows/x -H "$TOK"
expect 404 dortmund GET /v1/tables/_labsync_log/rows
expect 404 dortmund GET /v1/tables/sqlite_master/rows
expect 404 dortmund GET $ROW/act-never
expect 404 dortmund DELETE $ROW/act-never -H "$TOK"
expect 404 dortmund GET /nope
expect 404 dortmund GET /v1
expect 404 dortmund GET /v1/tables/activities
expect 404 dortmund GET /v1/tables/activities/nope
expect 404 dortmund PUT /v1/tables/activities/rows/a/b -H "$TOK" -d '{}'
expect 200 dortmund GET /	# the dashboard page (its own test)
expect 400 dortmund GET "$ROW/act%00never"
# a table the schema has but the config does not list is unknown too
sqlite3 "$T/dortmund.db" ".timeout 10000" \
    "CREATE TABLE IF NOT EXISTS scratch (id TEXT PRIMARY KEY, v TEXT)" ||
    fail "create scratch"
expect 404 dortmund GET /v1/tables/scratch/rows
expect 404 dortmund PUT /v1/tables/scratch/rows/x -H "$TOK" -d '{"v":"x"}'

# 413: a body just above 1 MiB, with the right token (exactly 1 MiB is fine)
mk_body() {	# mk_body SIZE COLUMN: a JSON object of exactly SIZE bytes
	python3 -c '
import sys
size, col = int(sys.argv[1]), sys.argv[2]
head = "{\"%s\":\"" % col
sys.stdout.write(head + "x" * (size - len(head) - 2) + "\"}")' "$1" "$2"
}
mk_body 1048577 title >"$T/big.json"
mk_body 1048576 name >"$T/mib.json"
assert_eq "$(stat -c %s "$T/big.json")" 1048577 "size of the big body"
expect 413 dortmund PUT $ROW/act-never -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
expect 413 dortmund PUT $ROW/act-http-1 -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
expect 413 dortmund POST $ROW -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
# a body of 10 MB, well past what a client would send by mistake: JSON too
mk_body 10000000 title >"$T/huge.json"
expect 413 dortmund POST $ROW -H "$TOK" -H "$JSON" --data-binary @"$T/huge.json"
head -c 1048577 /dev/zero | tr '\0' '{' >"$T/bigbad.json"
expect 413 dortmund PUT $ROW/act-never -H "$TOK" --data-binary @"$T/bigbad.json"
expect 404 dortmund PUT /v1/tables/nosuch/rows/x -H "$TOK" --data-binary @"$T/big.json"
expect 404 dortmund DELETE $ROW/act-never -H "$TOK" --data-binary @"$T/big.json"
expect 413 dortmund DELETE $ROW/act-http-1 -H "$TOK" --data-binary @"$T/big.json"
expect 401 dortmund PUT $ROW/act-never -H "$JSON" --data-binary @"$T/big.json"

# 400: bad JSON, not an object, unknown column, a value that does not fit
for body in 'not json' '{"title":' '{"title":"a"} x' '' '["title","BAD"]' \
    '"BAD"' '42' 'null' '{"nosuch":"BAD"}' '{"title":"BAD","nosuch":1}' \
    '{"participants":"BAD"}' '{"title":"BAD","participants":"12"}' \
    '{"participants":1.5}' '{"participants":true}' '{"title":17}' \
    '{"title":{"a":1}}' '{"title":["BAD"]}' '{"id":"act-other"}' \
    '{"title":"BAD","title":"dup"}' '{"participants":99999999999999999999999}'; do
	expect 400 dortmund PUT $ROW/act-never -H "$TOK" -H "$JSON" -d "$body"
	expect 400 dortmund PUT $ROW/act-http-1 -H "$TOK" -H "$JSON" -d "$body"
	expect 400 dortmund POST $ROW -H "$TOK" -H "$JSON" -d "$body"
done
expect 400 dortmund PUT /v1/tables/volunteer_offers/rows/vo-x -H "$TOK" -d '{"hours_per_week":"two"}'
expect 400 dortmund PUT /v1/tables/participants/rows/p-1 -H "$TOK" -d '{"consent":"yes"}'
expect 400 dortmund PUT /v1/tables/participants/rows/p-1 -H "$TOK" -d '{"email":1}'
expect 400 dortmund GET "/v1/tables/themes/rows?limit=0"
expect 400 dortmund GET "/v1/tables/themes/rows?limit=abc"
expect 400 dortmund GET "/v1/tables/themes/rows?limit=1001"
expect 200 dortmund GET "/v1/tables/themes/rows?limit=1000"

# nothing of the above was written anywhere
expect 200 dortmund GET $ROW/act-http-1
assert_eq "$(jq -cS . "$B")" "$GOOD_ROW" "the row after the refused requests"
expect 404 dortmund GET $ROW/act-never
assert_eq "$(ctl dortmund checksum)" "$SUM_DO" "dortmund's data after the errors"
assert_eq "$(ctl observer checksum)" "$SUM_OB" "observer's data after the errors"
assert_eq "$(ctl dortmund status --json | jq -cS .vector)" "$VEC_DO" \
    "dortmund's change log after the errors"
assert_eq "$(ctl observer status --json | jq -cS .vector)" "$VEC_OB" \
    "observer's change log after the errors"
assert_eq "$(ctl dortmund list participants)" "$LOCAL_DO" "the local table"

# a 1 MiB body is not too large (local table: it stays home)
expect 201 dortmund PUT /v1/tables/participants/rows/p-big -H "$TOK" \
    -H "$JSON" --data-binary @"$T/mib.json"
expect 200 dortmund GET /v1/tables/participants/rows/p-big -H "$TOK"
assert_eq "$(jq -r '.name | length' "$B")" 1048565 "1 MiB body stored"

# a marker written after the errors reaches wuppertal, the refused rows never
expect 201 dortmund PUT $ROW/act-marker -H "$TOK" -H "$JSON" -d '{"title":"Marker"}'
wait_for 15 "marker reaches wuppertal" title_is wuppertal act-marker Marker
assert_eq "$(title_at wuppertal act-http-1)" "Second title" "act-http-1 at wuppertal"
ctl wuppertal get activities act-never >/dev/null 2>&1 &&
    fail "a refused row reached wuppertal"
assert_eq "$(ctl wuppertal list activities | grep -c BAD)" 0 \
    "a refused value reached wuppertal"

# the daemons are still fine
expect 200 dortmund GET /healthz
expect 200 observer GET /healthz
kill -0 "${PID[dortmund]}" && kill -0 "${PID[observer]}" ||
    fail "a daemon died"
pass
