#!/usr/bin/env bash
# DELETE /v1/tables/T/rows/ID?erase=1 erases the row like `labsyncctl
# erase`, under the rules of every HTTP write: 401 for a missing or wrong
# token, 403 on a node without token_file, 404 for no such row, 400 for
# an erase value that is not 0 or 1; a local table's row is not erased
# (403: it never left the node). The audit names "http" as the asker, on
# the peer too, where the row and its value are gone as well.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"

node a
node b
http_node a
http_node b
sed -i '/^token_file = /d' "$T/b.conf"	# writes disabled at b
peer a b
peer b a
start a
start b

TOK="Authorization: Bearer ${HTTP_TOKEN[a]}"
ROW=/v1/tables/activities/rows
B=$T/body

# expect CODE NODE METHOD PATH [CURL-ARGS...]
expect() {
	local want=$1 n=$2 m=$3 p=$4 got
	shift 4
	got=$(curl -s -o "$B" -w '%{http_code}' --max-time 10 -X "$m" "$@" \
	    "${HTTP_URL[$n]}$p")
	[ "$got" = "$want" ] ||
	    fail "$m $p at $n: status $got, expected $want: $(head -c 300 "$B")"
}

present() {	# present NODE ID
	ctl "$1" get activities "$2" >/dev/null 2>&1
}

tag=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
ctl a put activities r1 title="ERASE-ME-$tag" || fail "put r1"
ctl a put activities r2 title="plain delete" || fail "put r2"
ctl a put participants p1 name="Local Person" || fail "put p1"
converge 30 a b

expect 401 a DELETE "$ROW/r1?erase=1"
expect 401 a DELETE "$ROW/r1?erase=1" -H "Authorization: Bearer wrong"
expect 403 b DELETE "$ROW/r1?erase=1" -H "$TOK"
expect 400 a DELETE "$ROW/r1?erase=yes" -H "$TOK"
expect 404 a DELETE "$ROW/none?erase=1" -H "$TOK"
expect 403 a DELETE "/v1/tables/participants/rows/p1?erase=1" -H "$TOK"
ctl a get participants p1 >/dev/null ||
    fail "the refused erasure of a local row deleted it"
for n in a b; do
	present $n r1 || fail "r1 gone at $n after refused erasures"
done
assert_eq "$(ctl a erasures --json)" "[]" "erasures after the refusals"

expect 200 a DELETE "$ROW/r2?erase=0" -H "$TOK"
assert_eq "$(jq -c . "$B")" '{"deleted":"r2","erased":false}' "plain delete"
expect 200 a DELETE "$ROW/r1?erase=1" -H "$TOK"
assert_eq "$(jq -c . "$B")" '{"deleted":"r1","erased":true}' "erase"

converge 30 a b
for n in a b; do
	present $n r1 && fail "r1 still at $n"
	out=$(ctl $n erasures --json) || fail "erasures at $n"
	assert_eq "$(echo "$out" | jq -c '[.[] | [.table, .id, .origin,
	    .requested_by]]')" '[["activities","r1","a","http"]]' \
	    "the audit at $n"
done
clean() {	# clean NODE: no file of NODE's database holds r1's value
	local f
	for f in "$T/$1.db"*; do
		[ -f "$f" ] || continue
		grep -q -a -F "ERASE-ME-$tag" "$f" && return 1
	done
	return 0
}
for n in a b; do
	wait_for 60 "r1's value gone from $n's files" clean $n
done
pass
