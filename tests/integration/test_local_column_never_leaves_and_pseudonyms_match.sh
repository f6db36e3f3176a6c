#!/usr/bin/env bash
# Personal data stays home, column by column: a column listed in [sync]
# local (observations.note) never reaches another node's files, and a
# pseudonymised one (observations.observer_org) arrives as the same
# HMAC-SHA-256 under the cities' shared key on every node, never as the
# value. dump and checksum leave both out, so the nodes still compare
# equal.
. "$(dirname "$0")/lib.sh"

NOTE=NoteMarker-5f1e9a77
NOTE2=NoteMarker2-c40b3d18
ORG=OrgMarker-8d2c61f0
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
(umask 077 && echo "$KEY" >"$T/pseudonym.key")

# mark NAME [KEYED]: NAME's config gets the local column and the
# pseudonymised one (and with KEYED the key file)
mark() {
	sed -i 's/^local = participants$/local = participants, observations.note\
pseudonymise = observations.observer_org/' "$T/$1.conf"
	if [ -n "${2:-}" ]; then
		sed -i "s|^pseudonymise = .*|&\\
pseudonym_key_file = $T/pseudonym.key|" "$T/$1.conf"
	fi
	grep -q '^pseudonymise = observations.observer_org' "$T/$1.conf" ||
		fail "config of $1 not marked"
}

node a
node b
node c observer
mark a keyed
mark b keyed
mark c
peer a b
peer b a
peer a c observer
peer c a

# the key is as private as a secret key
chmod 644 "$T/pseudonym.key"
"$LABSYNCD" -c "$T/a.conf" >"$T/refused.log" 2>&1
assert_eq "$?" 78 "start with a group-readable pseudonym key"
grep -q "pseudonym.key" "$T/refused.log" || fail "refusal does not name the key"
chmod 600 "$T/pseudonym.key"

start a
start b
start c

ctl a put observations o-1 activity_id=act-1 observer_org="$ORG" \
    note="$NOTE" indicator=visitors value=12 || fail "put o-1"
sql a "INSERT INTO observations(id, observer_org, note, indicator)
    VALUES ('o-2', '$ORG', '$NOTE', 'mood')"
# the shell's write is noticed within 100 ms: wait for both changes
vector_a_is() { [ "$(ctl a status --json | jq -r .vector.a)" = "$1" ]; }
wait_for 10 "a's own two changes" vector_a_is 2
before=$(ctl a status --json | jq -r .vector.a)
# a write of only the local column is no change to send
ctl a put observations o-1 note="$NOTE2" || fail "update note"
sleep 0.5	# a change, had there been one, is read by then
assert_eq "$(ctl a status --json | jq -r .vector.a)" "$before" \
    "changes of a after writing only the local column"
ctl a put observations o-3 indicator=last || fail "put o-3"
wait_for 30 "o-3 at b" ctl b get observations o-3
wait_for 30 "o-3 at c" ctl c get observations o-3
converge 30 a b c

# the local column holds its value at a, and nothing elsewhere
assert_eq "$(sql a "SELECT note FROM observations WHERE id = 'o-1'")" "$NOTE2" \
    "note at a"
assert_eq "$(sql a "SELECT observer_org FROM observations WHERE id = 'o-1'")" \
    "$ORG" "observer_org at a"
want=$(python3 -c 'import hmac, hashlib, sys
print(hmac.new(bytes.fromhex(sys.argv[1]), sys.argv[2].encode(),
    hashlib.sha256).hexdigest())' "$KEY" "$ORG")
[ "${#want}" -eq 64 ] || fail "test HMAC"
for n in b c; do
	assert_eq "$(sql $n "SELECT count(*) FROM observations
	    WHERE note IS NOT NULL")" 0 "notes at $n"
	assert_eq "$(sql $n "SELECT group_concat(observer_org, ' ') FROM
	    (SELECT observer_org FROM observations WHERE id IN ('o-1', 'o-2')
	    ORDER BY id)")" "$want $want" "pseudonyms at $n"
	assert_eq "$(sql $n "SELECT count(*) FROM observations
	    WHERE id = 'o-3' AND observer_org IS NULL")" 1 "NULL stays NULL at $n"
done

# byte search of every file of b and c that starts with their database
# path (the database, -wal, -shm, ...); a as a check that it can fail
search() {
	python3 - "$T/$1.db" "$NOTE" "$NOTE2" "$ORG" <<'PY'
import glob, os, sys
path, marks = sys.argv[1], [m.encode() for m in sys.argv[2:]]
found = set()
for f in glob.glob(glob.escape(path) + "*"):
    if not os.path.isfile(f):
        continue
    data = open(f, "rb").read()
    for m in marks:
        if m in data:
            found.add(m.decode())
print(" ".join(sorted(found)))
PY
}
case $(search a) in
*"$NOTE"*) ;;
*) fail "the search does not find the note in a's own files" ;;
esac
for n in b c; do
	assert_eq "$(search $n)" "" "markers in $n's files"
done

# a full catch-up after a restart sends neither
stop b
rm -f "$T"/b.db*
start b
converge 60 a b c
assert_eq "$(sql b "SELECT observer_org FROM observations WHERE id = 'o-2'")" \
    "$want" "pseudonym at b after a catch-up"
assert_eq "$(search b)" "" "markers in b's files after a catch-up"
pass
