#!/usr/bin/env bash
# The dashboard (GET /) in a real browser: headless Chromium loads the page
# from one city, rows are written on both cities after the page's first
# render, and the page shows them by polling, with each row's city (its
# origin node id). No request leaves 127.0.0.1: the page's own requests
# (DevTools Network events) all go to the node that served it, the
# browser's net log names no other host, and the served HTML references
# none. Fails, never skips, without chromium or python3-websocket
# (make deps installs them).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CHROMIUM=$(command -v chromium) || fail "chromium is not installed (make deps)"
[ -x "$PY" ] && "$PY" -c 'import websocket' 2>/dev/null ||
    fail "python3-websocket is not installed (make deps)"
command -v curl >/dev/null || fail "curl is not installed (make deps)"

# Chromium in its own process group, so that every process of it goes.
CHROME_PID=
stop_chromium() {
	[ -n "$CHROME_PID" ] || return 0
	kill -9 -- -"$CHROME_PID" 2>/dev/null
	wait "$CHROME_PID" 2>/dev/null
	CHROME_PID=
}
dash_cleanup() {
	local rc=$?
	stop_chromium
	(exit $rc)
	cleanup
}
trap dash_cleanup EXIT

node dortmund
node wuppertal
http_node dortmund
peer dortmund wuppertal
peer wuppertal dortmund
start dortmund
start wuppertal
URL=${HTTP_URL[dortmund]}

# Written before the page loads: a theme, a lab and an activity.
ctl dortmund put themes th-climate title=Klimaanpassung >/dev/null ||
    fail "put theme"
ctl dortmund put labs lab-do city=Dortmund name="KoSI-Lab Dortmund" \
    >/dev/null || fail "put lab"
ctl dortmund put activities act-before lab_id=lab-do theme_id=th-climate \
    kind=workshop title="Werkstatt vorher" starts_at=2024-05-02T17:00 \
    participants=12 >/dev/null || fail "put activity"
converge 20 dortmund wuppertal

# --- the page over plain HTTP ------------------------------------------------
H=$T/headers
code=$(curl -s -D "$H" -o "$T/page.html" -w '%{http_code}' --max-time 10 \
    "$URL/") || fail "curl GET /"
assert_eq "$code" 200 "GET / status"
ctype=$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$H" | tr -d '\r')
assert_eq "$ctype" "text/html; charset=utf-8" "GET / Content-Type"
grep -q '<title>labsync</title>' "$T/page.html" || fail "GET / is not the page"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$URL/")
assert_eq "$code" 405 "POST /"
# no reference to any other host (scripts, styles, fonts, links)
others=$(grep -Eo '(https?:)?//[A-Za-z0-9.-]+' "$T/page.html" |
    grep -Ev '^(https?:)?//(127\.0\.0\.1)$' | sort -u)
[ -z "$others" ] || fail "the page references other hosts: $others"
# ?meta=1 gives each row's origin; without it, rows are as before
curl -s --max-time 10 "$URL/v1/tables/activities/rows?meta=1" >"$T/meta" ||
    fail "curl ?meta=1"
assert_eq "$(jq -r '.rows[0]._origin' "$T/meta")" dortmund "_origin"
curl -s --max-time 10 "$URL/v1/tables/activities/rows" >"$T/plain" ||
    fail "curl rows"
assert_eq "$(jq -r '.rows[0] | has("_origin")' "$T/plain")" false \
    "_origin without ?meta=1"

# --- the page in Chromium ----------------------------------------------------
# The rows written after the first render, on both cities.
cat >"$T/write.sh" <<EOF
set -e
"$LABSYNCCTL" -c "$T/dortmund.conf" put activities act-after-do \
    lab_id=lab-do theme_id=th-climate kind=meeting \
    title="Stadtteilrunde Nord" starts_at=2024-06-11T18:00 >/dev/null
"$LABSYNCCTL" -c "$T/wuppertal.conf" put activities act-after-wu \
    theme_id=th-climate kind=fair title="Quartiersfest Elberfeld" \
    starts_at=2024-06-20T15:00 participants=80 >/dev/null
"$LABSYNCCTL" -c "$T/wuppertal.conf" put volunteer_offers vo-1 \
    organisation="Tafel Wuppertal" title="Lesepatenschaft" \
    hours_per_week=2 >/dev/null
"$LABSYNCCTL" -c "$T/dortmund.conf" put observations ob-1 \
    activity_id=act-after-do observer_org="Klimainstitut" \
    indicator=Reichweite value=0.75 observed_at=2024-06-12 >/dev/null
EOF

CDP_PORT=$(free_port)
mkdir -p "$T/chromium"
setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu \
    --user-data-dir="$T/chromium" --lang=de-DE --accept-lang=de-DE \
    --remote-debugging-address=127.0.0.1 --remote-debugging-port="$CDP_PORT" \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --log-net-log="$T/net-log.json" \
    --no-first-run --no-default-browser-check --disable-sync \
    --disable-background-networking --disable-component-update \
    --disable-default-apps --disable-extensions --disable-breakpad \
    --disable-features=Translate,OptimizationHints,MediaRouter \
    --window-size=1280,1600 about:blank >"$T/chromium.log" 2>&1 &
CHROME_PID=$!

"$PY" "$(dirname "$0")/dashboard_cdp.py" "$CDP_PORT" "$URL/" "$T/write.sh" \
    "Stadtteilrunde Nord" "Quartiersfest Elberfeld" "Lesepatenschaft" \
    "Klimainstitut" >"$T/shown" 2>"$T/cdp.log" ||
    fail "$(cat "$T/cdp.log")"

# The wuppertal row is shown with its city; both cities have a count.
grep -q 'Quartiersfest Elberfeld.*wuppertal' "$T/shown" ||
    fail "the wuppertal row lacks its city: $(grep Elberfeld "$T/shown")"
grep -q 'Stadtteilrunde Nord.*dortmund' "$T/shown" ||
    fail "the dortmund row lacks its city: $(grep 'Stadtteilrunde' "$T/shown")"
grep -q 'Klimaanpassung' "$T/shown" || fail "theme title not shown"
# month x city: dortmund, wuppertal, total
grep -Eq '^2024-06\s+1\s+1\s+2$' "$T/shown" &&
    grep -Eq '^2024-05\s+1\s+0\s+1$' "$T/shown" ||
    fail "month table: $(grep '^2024-0' "$T/shown")"

# Chromium's net log: every connection it opened went to 127.0.0.1. (The
# browser's own background requests, not the page's, fail at name
# resolution under --host-resolver-rules; its UDP "connect" to learn the
# default route sends nothing and opens no connection.)
for i in $(seq 50); do kill -0 "$CHROME_PID" 2>/dev/null || break; sleep 0.2; done
stop_chromium
[ -s "$T/net-log.json" ] || fail "no net log"
grep -q "\"remote_address\":\"127.0.0.1:${HTTP_PORT[dortmund]}\"" \
    "$T/net-log.json" || fail "the net log does not show the page's connections"
others=$(grep -Eo '"(remote_address|address_list)":\[?"[^]}]*' \
    "$T/net-log.json" | grep -Eo '"[^"]*:[0-9]+"' | tr -d '"' |
    grep -v '^127\.0\.0\.1:' | sort -u)
[ -z "$others" ] || fail "Chromium connected to other hosts: $others"
pass
