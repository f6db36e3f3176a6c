#!/usr/bin/env bash
# Our wire format is plain protobuf: Google's protoc decodes an envelope
# packed by wire.c (a batch whose values cover every kind) with
# proto/labsync.proto alone, field for field, with no unknown fields.
. "$(dirname "$0")/lib.sh"

command -v protoc >/dev/null || skip "protoc not installed (Debian: protobuf-compiler)"
[ -x "$ROOT/build/test_wire" ] || fail "build/test_wire missing (make unit)"

"$ROOT/build/test_wire" --emit "$T/env.bin" || fail "test_wire --emit failed"
[ -s "$T/env.bin" ] || fail "test_wire --emit wrote nothing"
protoc --decode=labsync.Envelope -I "$ROOT/proto" "$ROOT/proto/labsync.proto" \
    <"$T/env.bin" >"$T/env.txt" 2>"$T/protoc.err" ||
    fail "protoc could not decode the envelope: $(cat "$T/protoc.err")"

has() {	# has LINE: the decoded text holds LINE (leading blanks ignored)
	sed 's/^ *//' "$T/env.txt" | grep -qxF -- "$1" ||
	    fail "decoded envelope lacks '$1'"
}

has 'version: 1'
has 'sender: "dortmund"'
has 'origin: "dortmund"'
has 'origin: "wuppertal"'
has 'seq: 1'
has 'seq: 17'
has 'hlc: 1784258477229801473'
has 'table: "activities"'
has 'table: "labs"'
has 'pk: "act-do-1"'
has 'op: OP_DELETE'
has 'name: "participants"'
has 'null: true'
has 'integer: -42'
has 'integer: 9223372036854775807'
has 'integer: -9223372036854775808'
has 'real: 2.5'
has 'text: "Workshop"'
has 'blob: "\000\001\000\376\377\000"'
has 'blob: ""'
has 'more: true'
# UTF-8 text: octal escapes, or the characters themselves (newer protoc)
sed 's/^ *//' "$T/env.txt" | grep -qxF -e \
    'text: "Gr\303\274\303\237e aus K\303\266ln \342\202\254"' \
    -e 'text: "Grüße aus Köln €"' || fail "UTF-8 text not decoded"
assert_eq "$(grep -c '^  changes {' "$T/env.txt")" 3 "changes in the batch"
# fields protoc does not know show up as bare numbers
grep -qE '^ *[0-9]+:' "$T/env.txt" && fail "unknown fields in the envelope"
pass
