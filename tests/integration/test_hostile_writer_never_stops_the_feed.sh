#!/usr/bin/env bash
# Whatever a writer on dortmund tries (labsyncctl, the HTTP API, Python's
# sqlite3 module, the sqlite3 shell): oversized keys and values, wrong
# types, NUL bytes, empty keys, tabs and newlines in keys, a column added
# by hand. Each is refused where it is written (labsyncctl exit 2 naming
# the limit, HTTP 400, an SQLite error naming it) or replicated; after
# each, an ordinary write on dortmund reaches wuppertal within 10 s, and
# the two end with equal checksums.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"

node dortmund
node wuppertal
http_node dortmund
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal

TOK="Authorization: Bearer ${HTTP_TOKEN[dortmund]}"
B=$T/body
N=0

# still_flowing WHAT: an ordinary write on dortmund reaches wuppertal.
still_flowing() {
	N=$((N + 1))
	ctl dortmund put themes "ok-$N" title="after $1" >/dev/null ||
	    fail "ordinary write after $1"
	wait_for 10 "the write after $1 reaches wuppertal" \
	    ctl wuppertal get themes "ok-$N"
}

# ctl_refused WHAT PATTERN ARGS...: labsyncctl exits 2, says PATTERN.
ctl_refused() {
	local what=$1 pat=$2 rc
	shift 2
	ctl dortmund "$@" >/dev/null 2>"$T/ctl.err"
	rc=$?
	[ "$rc" -eq 2 ] ||
	    fail "labsyncctl $what: exit $rc, expected 2: $(cat "$T/ctl.err")"
	grep -qF -- "$pat" "$T/ctl.err" ||
	    fail "labsyncctl $what: '$pat' not in: $(cat "$T/ctl.err")"
	still_flowing "labsyncctl $what"
}

# http_refused WHAT PATTERN PATH BODY-FILE [CODE]: that status (400 by
# default), the error says PATTERN (if not empty).
http_refused() {
	local what=$1 pat=$2 path=$3 file=$4 want=${5:-400} code
	code=$(curl -s -o "$B" -w '%{http_code}' --max-time 20 -X PUT \
	    -H "$TOK" -H 'Content-Type: application/json' \
	    --data-binary "@$file" "${HTTP_URL[dortmund]}$path")
	[ "$code" = "$want" ] ||
	    fail "HTTP $what: status $code, expected $want: $(head -c 300 "$B")"
	[ -z "$pat" ] || jq -r .error "$B" 2>/dev/null | grep -qF -- "$pat" ||
	    fail "HTTP $what: '$pat' not in: $(head -c 300 "$B")"
	still_flowing "HTTP $what"
}

# py_refused WHAT PATTERN SQL [PARAMETER-EXPRESSIONS]: Python's sqlite3
# module gets an error saying PATTERN, and nothing is written.
py_refused() {
	local what=$1 pat=$2
	python3 - "$T/dortmund.db" "$3" "${4:-()}" >"$T/py.out" 2>&1 <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
try:
    db.execute(sys.argv[2], eval(sys.argv[3]))
    db.commit()
except sqlite3.Error as e:
    print("refused:", e)
    sys.exit(3)
print("written")
PY
	[ $? -eq 3 ] || fail "python $what: not refused: $(cat "$T/py.out")"
	grep -qF -- "$pat" "$T/py.out" ||
	    fail "python $what: '$pat' not in: $(cat "$T/py.out")"
	still_flowing "python $what"
}

# shell_refused WHAT PATTERN SQL: the sqlite3 shell fails, saying PATTERN.
shell_refused() {
	local what=$1 pat=$2
	sqlite3 -cmd ".timeout 10000" "$T/dortmund.db" "$3" >"$T/sh.out" 2>&1 &&
	    fail "sqlite3 $what: not refused"
	grep -qF -- "$pat" "$T/sh.out" ||
	    fail "sqlite3 $what: '$pat' not in: $(cat "$T/sh.out")"
	still_flowing "sqlite3 $what"
}

still_flowing "the start"
LONG=$(printf 'w%.0s' $(seq 1500))

# --- oversized keys (1500 bytes) ------------------------------------------
ctl_refused "a 1500-byte key" "limit of 1024 bytes" put themes "$LONG" title=x
echo '{"title": "x"}' >"$T/small.json"
http_refused "a 1500-byte key" "limit of 1024 bytes" \
    "/v1/tables/themes/rows/$LONG" "$T/small.json"
py_refused "a 1500-byte key" "limit of 1024 bytes" \
    "INSERT INTO themes(id, title) VALUES (?, 'x')" "('w' * 1500,)"
shell_refused "a 1500-byte key" "limit of 1024 bytes" \
    "INSERT INTO themes(id, title) VALUES ('$LONG', 'x')"
# a key at the limit is fine and replicated
ctl dortmund put themes "$(printf 'k%.0s' $(seq 1024))" title=at-limit ||
    fail "a 1024-byte key refused"
wait_for 10 "the 1024-byte key reaches wuppertal" \
    ctl wuppertal get themes "$(printf 'k%.0s' $(seq 1024))"

# --- oversized values (3 MB) ----------------------------------------------
python3 -c 'import json; print(json.dumps({"description": "d" * 3000000}))' \
    >"$T/big.json"
# (the HTTP API takes bodies up to 1 MiB: 413 before any rule)
http_refused "a 3 MB value" "" \
    /v1/tables/labs/rows/lab-big "$T/big.json" 413
py_refused "a 3 MB value" "limit of 1048576 bytes" \
    "INSERT INTO labs(id, description) VALUES ('lab-big', ?)" \
    "('d' * 3000000,)"
shell_refused "a 3 MB blob" "limit of 1048576 bytes" \
    "INSERT INTO labs(id, description) VALUES ('lab-big',
     CAST(zeroblob(3000000) AS TEXT))"
# at the limit: replicated
py_ok() {	# py_ok SQL PARAMETERS: written by Python's sqlite3 module
	python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
db.execute(sys.argv[2], eval(sys.argv[3])); db.commit()' \
	    "$T/dortmund.db" "$1" "$2" || fail "python: $1 refused"
}
py_ok "INSERT INTO labs(id, description) VALUES ('lab-1m', ?)" \
    "('m' * 1048576,)"
wait_for 20 "a 1 MiB value reaches wuppertal" \
    ctl wuppertal get labs lab-1m

# --- wrong types ----------------------------------------------------------
ctl_refused "text into an INTEGER column" "not an integer" \
    put activities act-1 participants=many
ctl_refused "text into a REAL column" "not a number" \
    put volunteer_offers vo-1 hours_per_week=lots
echo '{"hours_per_week": "lots"}' >"$T/type.json"
http_refused "text into a REAL column" "does not fit" \
    /v1/tables/volunteer_offers/rows/vo-1 "$T/type.json"
py_refused "text into an INTEGER column" "INTEGER" \
    "INSERT INTO activities(id, participants) VALUES ('act-1', ?)" \
    "('many',)"
shell_refused "a blob into a TEXT column" "TEXT" \
    "INSERT INTO labs(id, name) VALUES ('lab-blob', x'0102')"

# --- NUL bytes --------------------------------------------------------------
printf '{"title": "a\\u0000b"}\n' >"$T/nul.json"
http_refused "text with NUL" "NUL" /v1/tables/themes/rows/th-nul "$T/nul.json"
py_refused "text with NUL" "NUL" \
    "INSERT INTO themes(id, title) VALUES ('th-nul', ?)" "('a\\x00b',)"
shell_refused "text with NUL" "NUL" \
    "INSERT INTO themes(id, title) VALUES ('th-nul', CAST(x'610062' AS TEXT))"
py_refused "a key with NUL" "NUL" \
    "INSERT INTO themes(id, title) VALUES (?, 'x')" "('a\\x00b',)"

# --- empty keys -------------------------------------------------------------
ctl_refused "an empty key" "non-empty" put themes "" title=x
py_refused "an empty key" "non-empty" \
    "INSERT INTO themes(id, title) VALUES ('', 'x')"
shell_refused "an empty key" "non-empty" \
    "INSERT INTO themes(id, title) VALUES ('', 'x')"

# --- control characters in keys ---------------------------------------------
ctl_refused "a key with a tab" "control character" put themes "$(printf 'a\tb')" title=x
ctl_refused "a key with a newline" "control character" put themes "$(printf 'a\nb')" title=x
http_refused "a key with a tab" "control character" \
    /v1/tables/themes/rows/a%09b "$T/small.json"
py_refused "a key with a newline" "control character" \
    "INSERT INTO themes(id, title) VALUES (?, 'x')" "('a\\nb',)"
shell_refused "a key with a tab" "control character" \
    "INSERT INTO themes(id, title) VALUES ('a' || char(9) || 'b', 'x')"
# renaming a good key into a bad one
ctl dortmund put themes th-rename title=x || fail "put th-rename"
shell_refused "a rename to a key with a newline" "control character" \
    "UPDATE themes SET id = 'a' || char(10) || 'b' WHERE id = 'th-rename'"

# --- a column added by hand on dortmund only --------------------------------
# The daemon notices the ALTER and captures the column; wuppertal lacks
# it and keeps its values aside (waiting) while the feed goes on. Once
# wuppertal adds the column too, the kept values are applied by themselves.
sql dortmund "ALTER TABLE activities ADD COLUMN funding TEXT"
ctl dortmund put activities act-f title=funded funding=1000 ||
    fail "put with the new column"
wait_for 10 "the row with the new column reaches wuppertal" \
    ctl wuppertal get activities act-f
sql dortmund "UPDATE activities SET funding = '2000' WHERE id = 'act-f'"
still_flowing "an update of the new column"
sql dortmund "INSERT INTO activities(id, title, funding) VALUES ('act-g', 'g', '1')"
wait_for 10 "a shell insert with the new column reaches wuppertal" \
    ctl wuppertal get activities act-g
still_flowing "a shell insert with the new column"
sql wuppertal "ALTER TABLE activities ADD COLUMN funding TEXT"
funding_at_wuppertal() {
	[ "$(sql wuppertal "SELECT funding FROM activities WHERE id = 'act-f'")" = 2000 ]
}
wait_for 10 "the kept funding value applied at wuppertal" funding_at_wuppertal

# nothing refused on wuppertal, and both end alike
grep -q "batch refused" "$T/wuppertal.log" &&
    fail "wuppertal refused a batch: $(grep "batch refused" "$T/wuppertal.log" | head -3)"
converge 30 dortmund wuppertal
pass
