#!/usr/bin/env bash
# The HTTP API's rules a web developer relies on: filters on a list
# (repeated: AND, typed, unknown column: 400), PATCH changes the given
# columns and PUT replaces the row, 201 with Location, a strong ETag on a
# row with 304 on If-None-Match, GET /v1/tables, JSON bodies on 404, 405
# and 413, 401 with WWW-Authenticate: Bearer only for a missing or wrong
# token, 403 on an observer and on a node without token_file, and CORS
# headers and preflights only where [http] cors_origin is set.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

ORIGIN=https://lab.example.org
node dortmund
node wuppertal
node observer observer
http_node dortmund
echo "cors_origin = $ORIGIN" >>"$T/dortmund.conf"
http_node wuppertal
sed -i '/^token_file = /d' "$T/wuppertal.conf"	# writes disabled
http_node observer
peer dortmund wuppertal
peer wuppertal dortmund
peer observer dortmund
peer_in dortmund observer observer
start dortmund
start wuppertal
start observer

B=$T/body
H=$T/headers

# req NODE METHOD PATH [CURL-ARGS...]: the status; body in $B, headers
# (lower-case names, no CR) in $H.
req() {
	local n=$1 m=$2 p=$3 code
	shift 3
	: >"$B"
	code=$(curl -s -o "$B" -D "$H.raw" -w '%{http_code}' --max-time 10 \
	    -X "$m" "$@" "${HTTP_URL[$n]}$p")
	tr -d '\r' <"$H.raw" | awk -F': ' '{ printf "%s: %s\n", tolower($1), $2 }' \
	    >"$H"
	echo "$code"
}

# header NAME: the value of a header of the last answer (empty if none)
header() { grep -i "^$1: " "$H" | head -1 | cut -d' ' -f2-; }

# expect CODE NODE METHOD PATH [CURL-ARGS...]; errors: a JSON body with
# an "error" string, sent as application/json
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
		case $(header content-type) in
		application/json*) ;;
		*) fail "$2 $3: $want as $(header content-type), not JSON" ;;
		esac
	fi
}

TOK="Authorization: Bearer ${HTTP_TOKEN[dortmund]}"
OTOK="Authorization: Bearer ${HTTP_TOKEN[observer]}"
JSON="Content-Type: application/json"
ROW=/v1/tables/activities/rows

# --- filters beside paging ----------------------------------------------------
for i in $(seq 1 30); do
	kind=workshop
	[ $((i % 3)) -eq 0 ] && kind=meeting
	expect 201 dortmund PUT $ROW/act-$(printf %02d "$i") -H "$TOK" -H "$JSON" \
	    -d "{\"title\":\"t$i\",\"kind\":\"$kind\",\"participants\":$i}"
done
expect 200 dortmund GET "$ROW?limit=1000"
assert_eq "$(jq '.rows | length' "$B")" 30 "rows without a filter"
expect 200 dortmund GET "$ROW?title=t5"
assert_eq "$(jq -c '[.rows[].id]' "$B")" '["act-05"]' "title=t5"
expect 200 dortmund GET "$ROW?kind=meeting"
assert_eq "$(jq '.rows | length' "$B")" 10 "kind=meeting"
expect 200 dortmund GET "$ROW?kind=meeting&participants=6"
assert_eq "$(jq -c '[.rows[].id]' "$B")" '["act-06"]' "two filters: AND"
expect 200 dortmund GET "$ROW?kind=meeting&participants=5"
assert_eq "$(jq -c .rows "$B")" '[]' "two filters that exclude each other"
expect 200 dortmund GET "$ROW?kind=meeting&kind=workshop"
assert_eq "$(jq -c .rows "$B")" '[]' "one column twice: AND"
expect 200 dortmund GET "$ROW?participants=07"
assert_eq "$(jq -c '[.rows[].id]' "$B")" '["act-07"]' \
    "a filter compares as the column's type (07 is 7)"
ids="" after=""
while :; do
	expect 200 dortmund GET "$ROW?kind=meeting&limit=4${after:+&after=$after}"
	ids="$ids$(jq -r '.rows[].id' "$B" | tr '\n' ' ')"
	after=$(jq -r '.next // empty' "$B")
	[ -n "$after" ] || break
done
assert_eq "$ids" "act-03 act-06 act-09 act-12 act-15 act-18 act-21 act-24 act-27 act-30 " \
    "a filter over pages"
expect 200 dortmund GET "$ROW?location=%5CN&limit=1000"
assert_eq "$(jq '.rows | length' "$B")" 30 "\\N filters NULL"
expect 400 dortmund GET "$ROW?nosuch=1"
expect 400 dortmund GET "$ROW?participants=many"
expect 400 dortmund GET "$ROW?format=xml"

# --- PUT, PATCH, POST, Location -----------------------------------------------
expect 201 dortmund PUT "$ROW/act%2Fnew" -H "$TOK" -H "$JSON" \
    -d '{"title":"New","kind":"fair","participants":40}'
assert_eq "$(header location)" "$ROW/act%2Fnew" "Location of a PUT that creates"
expect 200 dortmund GET "$(header location)"
assert_eq "$(jq -r .title "$B")" New "GET at the Location"
[ -z "$(header location)" ] || fail "Location on a 200"
expect 200 dortmund PATCH "$ROW/act%2Fnew" -H "$TOK" -H "$JSON" \
    -d '{"title":"Patched"}'
[ -z "$(header location)" ] || fail "Location on a PATCH"
assert_eq "$(jq -c '.row | [.title, .kind, .participants]' "$B")" \
    '["Patched","fair",40]' "PATCH changes only the given columns"
expect 200 dortmund PUT "$ROW/act%2Fnew" -H "$TOK" -H "$JSON" \
    -d '{"title":"Replaced"}'
[ -z "$(header location)" ] || fail "Location on a PUT that replaces"
expect 200 dortmund GET "$ROW/act%2Fnew"
assert_eq "$(jq -c '[.title, .kind, .participants]' "$B")" \
    '["Replaced",null,null]' "PUT replaces the row: the rest is NULL"
expect 404 dortmund PATCH $ROW/act-none -H "$TOK" -H "$JSON" -d '{"title":"x"}'
expect 404 dortmund PATCH $ROW/act-none -H "$TOK" -H "$JSON" -d 'not json'
expect 404 dortmund GET $ROW/act-none
expect 400 dortmund PATCH "$ROW/act%2Fnew" -H "$TOK" -H "$JSON" -d '{"nosuch":1}'
expect 400 dortmund PUT "$ROW/act%2Fnew" -H "$TOK" -H "$JSON" -d '{"nosuch":1}'
expect 200 dortmund GET "$ROW/act%2Fnew"
assert_eq "$(jq -r .title "$B")" Replaced "refused writes changed nothing"
expect 201 dortmund POST $ROW -H "$TOK" -H "$JSON" -d '{"title":"Posted"}'
NEWID=$(jq -r .id "$B")
assert_eq "$(header location)" "$ROW/$NEWID" "Location of a POST"
wait_for 15 "PATCH and PUT reach wuppertal" sh -c \
    "\"$LABSYNCCTL\" -c '$T/wuppertal.conf' get activities act/new | grep -q Replaced"
assert_eq "$(ctl wuppertal get activities act/new | jq -c '[.kind, .participants]')" \
    '[null,null]' "the replace at wuppertal"

# --- ETag ---------------------------------------------------------------------
expect 200 dortmund GET $ROW/act-05
TAG=$(header etag)
[[ $TAG =~ ^\"[0-9a-f]{32}\"$ ]] || fail "no strong ETag on a row: '$TAG'"
expect 200 dortmund GET $ROW/act-05
assert_eq "$(header etag)" "$TAG" "the same row, the same ETag"
expect 304 dortmund GET $ROW/act-05 -H "If-None-Match: $TAG"
assert_eq "$(stat -c %s "$B")" 0 "a 304 has no body"
assert_eq "$(header etag)" "$TAG" "a 304 carries the ETag"
expect 304 dortmund GET $ROW/act-05 -H "If-None-Match: \"0000\", $TAG"
expect 200 dortmund PATCH $ROW/act-05 -H "$TOK" -H "$JSON" -d '{"summary":"s"}'
expect 200 dortmund GET $ROW/act-05 -H "If-None-Match: $TAG"
[ "$(header etag)" != "$TAG" ] || fail "ETag unchanged after a PATCH"
assert_eq "$(jq -r .summary "$B")" s "the changed row after If-None-Match"

# --- GET /v1/tables -------------------------------------------------------------
expect 200 dortmund GET /v1/tables
jq -e '.tables | map(.name) | index("activities") != null and
    index("participants") != null and index("labsync_row") == null' "$B" \
    >/dev/null || fail "GET /v1/tables: $(cat "$B")"
jq -e '.tables[] | select(.name == "activities") | .synced == true and
    .local == false and (.columns | length == 12) and
    .columns[0] == {"name": "id", "type": "TEXT", "primary_key": true} and
    (.columns[] | select(.name == "participants")) ==
    {"name": "participants", "type": "INTEGER", "primary_key": false}' "$B" \
    >/dev/null || fail "activities in GET /v1/tables: $(cat "$B")"
jq -e '.tables[] | select(.name == "participants") | .synced == false and
    .local == true' "$B" >/dev/null || fail "participants is local: $(cat "$B")"
expect 405 dortmund POST /v1/tables -H "$TOK"

# --- 404, 405, 413 as JSON --------------------------------------------------------
expect 404 dortmund GET /nope
expect 404 dortmund GET /v1/tables/nosuch/rows
expect 405 dortmund POST $ROW/act-05 -H "$TOK" -d '{}'
assert_eq "$(header allow)" "GET, PUT, PATCH, DELETE" "Allow of a row"
expect 405 dortmund PATCH $ROW -H "$TOK" -d '{}'
assert_eq "$(header allow)" "GET, POST" "Allow of a table's rows"
python3 -c 'import sys; sys.stdout.write("{\"title\":\"" + "x" * (1 << 20) + "\"}")' \
    >"$T/big.json"
expect 413 dortmund PUT $ROW/act-big -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
expect 413 dortmund PATCH $ROW/act-05 -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
expect 413 dortmund POST $ROW -H "$TOK" -H "$JSON" --data-binary @"$T/big.json"
expect 404 dortmund GET $ROW/act-big

# --- 401 and 403 ------------------------------------------------------------------
for h in "X-None: 1" "Authorization: Bearer wrong" "Authorization: Basic abc" \
    "Authorization: Bearer ${HTTP_TOKEN[observer]}"; do
	expect 401 dortmund PUT $ROW/act-05 -H "$h" -H "$JSON" -d '{"title":"BAD"}'
	assert_eq "$(header www-authenticate)" Bearer "WWW-Authenticate ($h)"
	expect 401 dortmund PATCH $ROW/act-05 -H "$h" -H "$JSON" -d '{"title":"BAD"}'
	assert_eq "$(header www-authenticate)" Bearer "WWW-Authenticate ($h)"
	expect 401 dortmund GET /v1/tables/participants/rows -H "$h"
	[ "$h" = "$OTOK" ] ||
	    expect 401 observer PUT $ROW/act-05 -H "$h" -H "$JSON" -d '{"title":"BAD"}'
done
expect 401 observer PUT $ROW/act-05 -H "$TOK" -H "$JSON" -d '{"title":"BAD"}'
expect 200 dortmund GET $ROW/act-05
[ -z "$(header www-authenticate)" ] || fail "WWW-Authenticate on a 200"
# an observer with its right token: 403, not 401
for m in PUT PATCH DELETE; do
	expect 403 observer $m $ROW/act-05 -H "$OTOK" -H "$JSON" -d '{"title":"BAD"}'
	[ -z "$(header www-authenticate)" ] || fail "WWW-Authenticate on a 403"
done
expect 403 observer POST $ROW -H "$OTOK" -H "$JSON" -d '{"title":"BAD"}'
# a node without token_file takes no writes: 403 whatever the token
for h in "X-None: 1" "Authorization: Bearer wrong" "$TOK"; do
	for m in PUT PATCH DELETE; do
		expect 403 wuppertal $m $ROW/act-05 -H "$h" -H "$JSON" \
		    -d '{"title":"BAD"}'
		[ -z "$(header www-authenticate)" ] ||
		    fail "WWW-Authenticate on wuppertal's 403"
	done
	expect 403 wuppertal POST $ROW -H "$h" -H "$JSON" -d '{"title":"BAD"}'
	expect 403 wuppertal GET /v1/tables/participants/rows -H "$h"
done
expect 200 wuppertal GET "$ROW?title=t5"
assert_eq "$(jq -c '[.rows[].id]' "$B")" '["act-05"]' "reads need no token"
assert_eq "$(ctl wuppertal list activities | grep -c BAD)" 0 "a refused write was made"
assert_eq "$(ctl observer list activities | grep -c BAD)" 0 "a refused write was made"

# --- CORS -------------------------------------------------------------------------
expect 200 dortmund GET $ROW/act-05
assert_eq "$(header access-control-allow-origin)" "$ORIGIN" "CORS on a 200"
header access-control-expose-headers | grep -q ETag ||
    fail "ETag is not exposed to scripts"
expect 404 dortmund GET /v1/tables/nosuch/rows
assert_eq "$(header access-control-allow-origin)" "$ORIGIN" "CORS on a 404"
expect 401 dortmund PUT $ROW/act-05 -H "$JSON" -d '{}'
assert_eq "$(header access-control-allow-origin)" "$ORIGIN" "CORS on a 401"
expect 204 dortmund OPTIONS $ROW/act-05 -H "Origin: $ORIGIN" \
    -H "Access-Control-Request-Method: PATCH" \
    -H "Access-Control-Request-Headers: authorization, content-type"
assert_eq "$(header access-control-allow-origin)" "$ORIGIN" "CORS on a preflight"
assert_eq "$(header access-control-allow-methods)" "GET, PUT, PATCH, DELETE" \
    "preflight methods of a row"
header access-control-allow-headers | grep -q 'Authorization, Content-Type' ||
    fail "preflight headers: $(header access-control-allow-headers)"
expect 204 dortmund OPTIONS $ROW -H "Origin: $ORIGIN"
assert_eq "$(header access-control-allow-methods)" "GET, POST" \
    "preflight methods of a table's rows"
expect 404 dortmund OPTIONS /nope
for n in wuppertal observer; do
	expect 200 $n GET $ROW/act-05
	[ -z "$(header access-control-allow-origin)" ] ||
	    fail "$n: CORS header without cors_origin"
	expect 405 $n OPTIONS $ROW/act-05 -H "Origin: $ORIGIN"
	[ -z "$(header access-control-allow-origin)" ] ||
	    fail "$n: CORS header on OPTIONS without cors_origin"
done

kill -0 "${PID[dortmund]}" && kill -0 "${PID[wuppertal]}" &&
    kill -0 "${PID[observer]}" || fail "a daemon died"
pass
