#!/usr/bin/env bash
# Start-up refusals: each bad security setting stops labsyncd with exit
# status 78 (EX_CONFIG) and a message naming the file. A key handed over
# by systemd ($CREDENTIALS_DIRECTORY) is accepted as systemd wrote it.
. "$(dirname "$0")/lib.sh"

"$LABSYNCCTL" keygen "$T/good" >/dev/null || fail keygen
"$LABSYNCCTL" keygen "$T/peer" >/dev/null || fail keygen
"$LABSYNCCTL" keygen "$T/good" >/dev/null 2>&1 && fail "keygen overwrote a key"
[ "$(stat -c %a "$T/good.key")" = 600 ] || fail "secret key mode is not 600"

PUB=$(free_port)
SYNC=$(free_port)
# conf NAME SECURITY-LINES [PEER-KEY-LINE] [LISTEN-HOST]
conf() {
	cat >"$T/$1.conf" <<CONF
[node]
id = refusals
database = $T/$1.db
schema = $ROOT/config/schema.sql
[listen]
publish = tcp://${4:-127.0.0.1}:$PUB
sync = tcp://${4:-127.0.0.1}:$SYNC
[security]
$2
[peer:partner]
publish = tcp://127.0.0.1:1
sync = tcp://127.0.0.1:2
${3:-public_key_file = $T/peer.pub}
[sync]
tables = labs, activities
CONF
}

# refused NAME EXPECTED-MESSAGE-PART [ENV...]: labsyncd must exit 78
refused() {
	local name=$1 want=$2 rc
	shift 2
	env "$@" timeout 20 "$LABSYNCD" -c "$T/$name.conf" >"$T/$name.out" 2>&1
	rc=$?
	[ $rc -eq 78 ] || { cat "$T/$name.out"; fail "$name: exit $rc, expected 78"; }
	grep -q -- "$want" "$T/$name.out" ||
	    { cat "$T/$name.out"; fail "$name: message lacks '$want'"; }
	grep -q -- "$T/$name.conf\|$T/" "$T/$name.out" ||
	    fail "$name: message does not name the file"
}

conf nokey "insecure = false"
refused nokey "no secret_key_file"

conf remote "insecure = true" "" 192.0.2.1
refused remote "not loopback"

conf missing "secret_key_file = $T/nonexistent.key"
refused missing "nonexistent.key: No such file"

mkdir "$T/dir.key"
conf dir "secret_key_file = $T/dir.key"
refused dir "not a regular file"

: >"$T/empty.key"
chmod 600 "$T/empty.key"
conf empty "secret_key_file = $T/empty.key"
refused empty "is empty"

echo "this is not a key" >"$T/bad.key"
chmod 600 "$T/bad.key"
conf malformed "secret_key_file = $T/bad.key"
refused malformed "not one line of 40 Z85"

cp "$T/good.key" "$T/open.key"
chmod 644 "$T/open.key"
conf open "secret_key_file = $T/open.key"
refused open "readable by group or others"

cp "$T/good.key" "$T/group.key"
chmod 640 "$T/group.key"
conf group "secret_key_file = $T/group.key"
refused group "readable by group or others"

conf badpeer "secret_key_file = $T/good.key" "public_key = not-a-valid-z85-key"
refused badpeer "public_key"

# a credential from systemd is accepted whatever its mode
mkdir "$T/creds"
cp "$T/good.key" "$T/creds/open.key"
chmod 644 "$T/creds/open.key"
conf cred "secret_key_file = $T/open.key"
CREDENTIALS_DIRECTORY=$T/creds "$LABSYNCD" -c "$T/cred.conf" >"$T/cred.log" 2>&1 &
PID[cred]=$!
for _ in $(seq 100); do
	grep -q "ready" "$T/cred.log" && break
	kill -0 "${PID[cred]}" 2>/dev/null || { cat "$T/cred.log"; fail "credential refused"; }
	sleep 0.1
done
grep -q "ready" "$T/cred.log" || fail "credential: not ready"
stop cred

# insecure = true warns at every start
conf warn "insecure = true"
"$LABSYNCD" -c "$T/warn.conf" >"$T/warn.log" 2>&1 &
PID[warn]=$!
for _ in $(seq 100); do grep -q ready "$T/warn.log" && break; sleep 0.1; done
stop warn
grep -q "insecure = true" "$T/warn.log" || fail "no warning for insecure"
pass
