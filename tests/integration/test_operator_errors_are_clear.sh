#!/usr/bin/env bash
# What a new operator runs into says what is wrong, with the exit status
# the man pages give: labsyncd -n checks the key and token files as the
# start does; a failed start leaves no control socket; status tells
# "permission denied" from "not running"; a peer's last error shows its
# age and is cleared once the peer is up; put refuses an empty id (exit
# 2, one prefix); a missing database points at init; dump keeps one line
# per row whatever the key holds.
SECURE=1
. "$(dirname "$0")/lib.sh"

# --- labsyncd -n checks what the start checks
node a
chk() {	# chk NAME: labsyncd -n on $T/NAME.conf, output in $T/NAME.n
	"$LABSYNCD" -n -c "$T/$1.conf" >"$T/$1.n" 2>&1
}
sed "s|secret_key_file = .*|secret_key_file = $T/none.key|" "$T/a.conf" \
    >"$T/nokey.conf"
chk nokey
assert_eq "$?" 78 "-n with a missing secret key"
grep -q "$T/none.key: No such file" "$T/nokey.n" ||
    fail "-n does not name the missing key: $(cat "$T/nokey.n")"

cp "$T/keys/a.key" "$T/open.key"
chmod 640 "$T/open.key"
sed "s|secret_key_file = .*|secret_key_file = $T/open.key|" "$T/a.conf" \
    >"$T/open.conf"
chk open
assert_eq "$?" 78 "-n with a group-readable secret key"
grep -q "open.key is readable by group or others" "$T/open.n" ||
    fail "-n does not refuse the key's mode: $(cat "$T/open.n")"
mkdir "$T/creds"
cp "$T/open.key" "$T/creds/open.key"
CREDENTIALS_DIRECTORY=$T/creds "$LABSYNCD" -n -c "$T/open.conf" \
    >"$T/cred.n" 2>&1 || fail "-n refuses a key from systemd: $(cat "$T/cred.n")"

cp "$T/a.conf" "$T/notoken.conf"
printf '\n[http]\nlisten = 127.0.0.1:%s\ntoken_file = %s\n' "$(free_port)" \
    "$T/none.token" >>"$T/notoken.conf"
chk notoken
assert_eq "$?" 78 "-n with a missing token_file"
grep -q "token_file $T/none.token: No such file" "$T/notoken.n" ||
    fail "-n does not name the missing token: $(cat "$T/notoken.n")"
chk a || fail "-n on a good config: $(cat "$T/a.n")"
assert_eq "$(cat "$T/a.n")" "configuration OK" "-n on a good config"

# --- a failed start leaves no control socket, and does not remove the
# socket of a daemon that runs
ctl a init >/dev/null || fail "init a"
busy=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
time.sleep(30)' "$busy" &
holder=$!
for _ in $(seq 50); do
	ss -ltn | grep -q "127.0.0.1:$busy " && break
	sleep 0.1
done
cp "$T/a.conf" "$T/busy.conf"
(umask 077 && echo secret >"$T/a.token")
printf '\n[http]\nlisten = 127.0.0.1:%s\ntoken_file = %s\n' "$busy" \
    "$T/a.token" >>"$T/busy.conf"
timeout 20 "$LABSYNCD" -c "$T/busy.conf" >"$T/busy.log" 2>&1 &&
    fail "labsyncd started on a busy HTTP port"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
grep -q "cannot listen for HTTP" "$T/busy.log" ||
    fail "the failed start does not say why: $(cat "$T/busy.log")"
[ -e "$T/a.db.sock" ] && fail "a failed start left $T/a.db.sock behind"

start a
timeout 20 "$LABSYNCD" -c "$T/a.conf" >"$T/second.log" 2>&1 &&
    fail "a second labsyncd started on the same database"
[ -S "$T/a.db.sock" ] || fail "a second start removed the running one's socket"
ctl a status >/dev/null || fail "status after a refused second start"

# --- status: permission denied is not "not running"
chmod 755 "$T"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$LABSYNCCTL" -c "$T/a.conf" status 2>&1)
rc=$?
chmod 700 "$T"
assert_eq "$rc" 1 "status without the right to use the control socket"
case $out in
*"permission denied"*) ;;
*) fail "status as another user: $out" ;;
esac
case $out in
*"not running"*) fail "status as another user says not running: $out" ;;
esac

# --- a peer's last error: with its age, cleared once the peer is up
node b
peer a b
peer b a
sed -i '/^\[peer:a\]/,$d' "$T/b.conf"	# b does not list a's key yet
peer_in b x	# ... a section of its own keeps the file valid
kill -HUP "${PID[a]}"
start b
err_age() {
	ctl a status --json |
	    jq -e '.peers[] | select(.name == "b") |
	        (.last_error | test("refused our key")) and
	        (.last_error_age_s | type == "number")'
}
wait_for 30 "a's status shows b refusing its key, with the age" err_age
ctl a status | grep "^peer b " | grep -Eq "last error [0-9]+ s ago: it refused our key" ||
    fail "status text: $(ctl a status | grep '^peer b ')"
peer b a
kill -HUP "${PID[b]}"
b_up() {
	ctl a status --json |
	    jq -e '.peers[] | select(.name == "b") | .state == "up"'
}
wait_for 30 "b up at a once it lists a's key" b_up
ctl a status --json | jq -e '.peers[] | select(.name == "b") |
    .last_error == "" and .last_error_age_s == null' >/dev/null ||
    fail "last error kept after b came up: $(ctl a status --json)"
ctl a status | grep "^peer b " | grep -q "last error" &&
    fail "status text keeps the error: $(ctl a status | grep '^peer b ')"

# --- put with an empty id: a value error, exit 2, one prefix
out=$(ctl a put labs "" name=x 2>&1)
assert_eq "$?" 2 "put with an empty id"
case $out in
labsyncctl:*labsync:*) fail "double prefix: $out" ;;
labsyncctl:*) ;;
*) fail "put with an empty id: $out" ;;
esac

# --- a database that was never made: a hint at init
node fresh
out=$(ctl fresh get labs x 2>&1)
assert_eq "$?" 1 "get on a missing database"
case $out in
*"labsyncctl -c $T/fresh.conf init"*) ;;
*) fail "get on a missing database: $out" ;;
esac
[ -e "$T/fresh.db" ] && fail "get created the database"

# --- dump: one line per row, whatever the key (an older database, or a
# writer without the triggers, may hold such keys)
ctl fresh init >/dev/null || fail "init fresh"
sqlite3 "$T/fresh.db" ".dbconfig enable_trigger off" >/dev/null \
    "INSERT INTO labs(id, name) VALUES ('t' || char(9) || 'ab', 'tab'),
    ('n' || char(10) || 'l', 'newline'), ('c' || char(13) || 'r', 'cr'),
    ('b\\s', 'backslash'), ('plain', 'plain')" || fail "sqlite3 insert"
ctl fresh dump >"$T/dump" || fail "dump"
assert_eq "$(wc -l <"$T/dump")" 5 "dump lines for 5 rows"
# the keys, escaped as man/labsyncctl.1 says, in key order
assert_eq "$(cut -f2 "$T/dump")" "$(printf '%s\n' 'b\\s' 'c\rr' 'n\nl' \
    'plain' 't\tab')" "keys in the dump"
pass
