#!/usr/bin/env bash
# A research partner p writes observations and nothing else. Two cities a
# and b peer both ways; p peers with a only, so its changes reach b through
# a. p's observation reaches both cities; its write to activities is
# refused locally; a change to activities captured as p's (its triggers
# tampered with) is kept aside as refused by both cities, never applied,
# and does not block p's later observations. A change p serves under a
# city's origin is ignored: a partner's link carries its own changes only.
. "$(dirname "$0")/lib.sh"

node a
node b
node p partner "writable = observations"
peer a b
peer b a
peer p a
peer a p partner
echo "writable = observations" >>"$T/a.conf"
peer_in b p partner
echo "writable = observations" >>"$T/b.conf"
http_port=$(free_port)
printf '\n[http]\nlisten = %s\n' "$http_port" >>"$T/p.conf"

# a partner with an HTTP listener and no token_file is a valid config
"$LABSYNCD" -n -c "$T/p.conf" >"$T/check.out" 2>&1 ||
    fail "labsyncd -n refuses the partner's config: $(cat "$T/check.out")"

start a
start b
start p
assert_eq "$(ctl p status --json | jq -r .role)" partner "p's role"
curl -sf "http://127.0.0.1:$http_port/metrics" | grep -q '^labsync_writable 1$' ||
    fail "p does not report labsync_writable 1"

ctl p put observations obs-1 observer_org="Klimainstitut" indicator=co2 \
    value=1.5 || fail "put observations at p"
wait_for 30 "obs-1 at a" ctl a get observations obs-1
wait_for 30 "obs-1 at b (relayed by a)" ctl b get observations obs-1
assert_eq "$(ctl b get observations obs-1 | jq -r .observer_org)" \
    Klimainstitut "obs-1 at b"

# p refuses a local write to activities: labsyncctl and any SQLite client
out=$(ctl p put activities act-p title="Not allowed" 2>&1)
assert_eq "$?" 1 "exit status of put activities at p"
case $out in
*partner*activities*) ;;
*) fail "put activities at p: unclear message: $out" ;;
esac
out=$(sqlite3 "$T/p.db" ".timeout 10000" \
    "INSERT INTO activities(id, title) VALUES ('act-p', 'x')" 2>&1) &&
    fail "sqlite3 write to activities at p succeeded"
case $out in
*partner*) ;;
*) fail "sqlite3 write at p: unclear error: $out" ;;
esac

# p's software tampered with: its insert trigger on activities loses the
# refusal, so a write there is captured as a change of origin p
stop p
trig=$(sqlite3 "$T/p.db" "SELECT sql FROM sqlite_master
    WHERE type = 'trigger' AND name = 'labsync_activities_ins'")
case $trig in
*"WHEN 1 THEN RAISE"*) ;;
*) fail "p's activities trigger has no partner refusal: $trig" ;;
esac
trig=${trig//WHEN 1 THEN RAISE/WHEN 0 THEN RAISE}
sql p "DROP TRIGGER labsync_activities_ins; $trig;"
sql p "INSERT INTO activities(id, title) VALUES ('act-forged', 'Forged')"
assert_eq "$(sqlite3 "$T/p.db" "SELECT count(*) FROM labsync_log
    WHERE key >> 40 = (SELECT self FROM labsync_state)")" 2 \
    "changes captured as p's"
start p

# the cities keep it aside as refused and do not apply it
refused_at() {
	ctl "$1" refused | grep -q $'^p\t2\tactivities\tact-forged\t.*not_writable\trefused'
}
wait_for 30 "a refuses p's activities change" refused_at a
wait_for 30 "b refuses p's activities change" refused_at b
ctl a get activities act-forged >/dev/null 2>&1 && fail "act-forged at a"
ctl b get activities act-forged >/dev/null 2>&1 && fail "act-forged at b"
assert_eq "$(sqlite3 "$T/a.db" "SELECT count(*) FROM activities
    WHERE id = 'act-forged'")" 0 "act-forged row at a"

# p's later observations still reach both cities
ctl p put observations obs-2 observer_org="Klimainstitut" indicator=no2 \
    value=2 || fail "put obs-2 at p"
wait_for 30 "obs-2 at a" ctl a get observations obs-2
wait_for 30 "obs-2 at b" ctl b get observations obs-2
# and the cities' own writes still flow to p
ctl b put activities act-b title="Wuppertal" || fail "put at b"
wait_for 30 "act-b at p" ctl p get activities act-b

# p's log tampered with: a change claiming b's origin, next in b's
# sequence, which p would serve a as if it relayed it. a takes only p's
# own changes over p's link: it ignores it, and b's real change of that
# sequence still reaches a.
stop p
bseq=$(sqlite3 "$T/p.db" "SELECT seq FROM labsync_origin WHERE name = 'b'")
sql p "INSERT INTO labsync_log(key, hlc, tbl, pk, op, mask, v3)
    SELECT id << 40 | (seq + 1), (CAST(strftime('%s', 'now') AS INTEGER)
    * 1000 + 5000) << 16, 'activities', 'act-b2', 0, 8, 'Forged as b'
    FROM labsync_origin WHERE name = 'b';
    UPDATE labsync_origin SET seq = seq + 1 WHERE name = 'b';"
start p
wait_for 30 "a ignores what p relays of others" \
    grep -q "peer p: changes of other origins (b #$((bseq + 1))) ignored" "$T/a.log"
assert_eq "$(sqlite3 "$T/a.db" "SELECT count(*) FROM activities
    WHERE title = 'Forged as b'")" 0 "b's forged change at a"
ctl b put activities act-b2 title="Wuppertal, real" || fail "put act-b2 at b"
real_at_a() {
	[ "$(sql a "SELECT title FROM activities WHERE id = 'act-b2'")" = \
	    "Wuppertal, real" ]
}
wait_for 30 "b's real act-b2 at a" real_at_a
pass
