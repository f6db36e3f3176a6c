#!/usr/bin/env bash
# Two cities configured only through `labsyncctl setup` and the [peer:ID]
# block each one printed, appended to the other's config, converge with
# CURVE on: each admits the other's key, neither runs insecure. setup
# refuses to overwrite what it wrote, and the block carries the key that
# setup stored. A research partner set up the same way (--role partner)
# gets its observations to both cities and may write nothing else.
. "$(dirname "$0")/lib.sh"

# setup_node NAME [ROLE]: labsyncctl setup into $T/NAME/ on free loopback ports;
# the printed block goes to $T/NAME.peer, and $T/NAME.conf (what lib.sh's
# start and ctl use) points at the config it wrote.
setup_node() {
	local name=$1 role=${2:-city}
	"$LABSYNCCTL" setup --id "$name" --role "$role" --listen 127.0.0.1 \
	    --publish-port "$(free_port)" --sync-port "$(free_port)" \
	    --dir "$T/$name" --database "$T/$name.db" \
	    --schema "$ROOT/config/schema.sql" \
	    >"$T/$name.peer" 2>"$T/$name-setup.log" ||
	    fail "setup $name: $(cat "$T/$name-setup.log")"
	ln -s "$T/$name/labsync.conf" "$T/$name.conf"
}

setup_node dortmund
setup_node wuppertal
setup_node institut partner
grep -qx 'role = partner' "$T/institut.peer" &&
    grep -qx 'writable = observations' "$T/institut.peer" ||
    fail "the partner's block lacks its role or tables: $(cat "$T/institut.peer")"
grep -qx 'writable = observations' "$T/institut/labsync.conf" ||
    fail "the partner's config lacks [sync] writable"

assert_eq "$(stat -c %a "$T/dortmund/labsync.key")" 600 "secret key mode"
grep -qxF "public_key = $(cat "$T/dortmund/labsync.pub")" "$T/dortmund.peer" ||
    fail "the printed block lacks the stored public key: $(cat "$T/dortmund.peer")"
grep -qx '\[peer:dortmund\]' "$T/dortmund.peer" || fail "no [peer:dortmund]"
grep -q insecure "$T/dortmund.conf" && fail "setup wrote an insecure config"

# a second setup refuses (status 1) and changes nothing
sum=$(cat "$T/dortmund/labsync.conf" "$T/dortmund/labsync.key" | sha256sum)
"$LABSYNCCTL" setup --id dortmund --role city --listen 127.0.0.1 \
    --dir "$T/dortmund" >/dev/null 2>&1
assert_eq "$?" 1 "status of a second setup without --force"
assert_eq "$(cat "$T/dortmund/labsync.conf" "$T/dortmund/labsync.key" |
    sha256sum)" "$sum" "files after a refused setup"

# the exchange: each city appends the other's block
{ echo; cat "$T/wuppertal.peer"; echo; cat "$T/institut.peer"; } \
    >>"$T/dortmund/labsync.conf"
{ echo; cat "$T/dortmund.peer"; echo; cat "$T/institut.peer"; } \
    >>"$T/wuppertal/labsync.conf"
{ echo; cat "$T/dortmund.peer"; echo; cat "$T/wuppertal.peer"; } \
    >>"$T/institut/labsync.conf"
for n in dortmund wuppertal institut; do
	assert_eq "$("$LABSYNCD" -n -c "$T/$n.conf" 2>&1)" "configuration OK" \
	    "labsyncd -n on $n's config"
done

start dortmund
start wuppertal
ctl dortmund put activities a1 title="Workshop" participants=12 || fail put
ctl wuppertal put labs l1 city=Wuppertal || fail put
converge 30 dortmund wuppertal
assert_eq "$(rows wuppertal activities)" 1 "wuppertal activities"
assert_eq "$(rows dortmund labs)" 1 "dortmund labs"

# CURVE did it: each admitted the other's key; nobody ran insecure
grep -q "zap: admitted peer wuppertal" "$T/dortmund.log" ||
    fail "dortmund did not admit wuppertal's key"
grep -q "zap: admitted peer dortmund" "$T/wuppertal.log" ||
    fail "wuppertal did not admit dortmund's key"
grep -qi insecure "$T/dortmund.log" "$T/wuppertal.log" &&
    fail "a node ran insecure"
wait_for 10 "dortmund sees wuppertal up" \
    sh -c "'$LABSYNCCTL' -c '$T/dortmund.conf' status | grep -q 'peer wuppertal (city): up'"

# the partner: its observation reaches both cities, other tables refuse
start institut
ctl institut put observations o1 observer_org=institut note="gezählt" ||
    fail "the partner's observation"
ctl institut put activities a2 title=nope >/dev/null 2>&1
assert_eq "$?" 1 "status of the partner's write to activities"
converge 60 dortmund wuppertal institut
assert_eq "$(rows dortmund observations)" 1 "dortmund observations"
assert_eq "$(rows wuppertal observations)" 1 "wuppertal observations"
assert_eq "$(rows institut activities)" 1 "the partner's activities (replicated)"
pass
