#!/usr/bin/env bash
# demo.sh (make demo): Dortmund, Wuppertal and a research observer on this
# machine, from the shipped configs in config/, with their databases in a
# temp folder. Each city records lab activity; the observer shows the
# converged view; all three checksums must match. Every process started
# here is stopped before exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/labsync-demo.XXXXXX)
PIDS=()

cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	[ $rc -eq 0 ] || tail -n 20 "$D"/*.log 2>/dev/null || true
	rm -rf "$D"
	exit $rc
}
trap cleanup EXIT

# The configs keep their databases in ../run/ beside their folder.
mkdir -p "$D/config" "$D/run"
cp "$ROOT"/config/{dortmund,wuppertal,observer}.conf "$ROOT/config/schema.sql" \
    "$D/config/"
ctl() { local n=$1; shift; "$ROOT/build/labsyncctl" -c "$D/config/$n.conf" "$@"; }

for n in dortmund wuppertal observer; do
	"$ROOT/build/labsyncd" -c "$D/config/$n.conf" 2>"$D/$n.log" &
	PIDS+=($!)
done
for n in dortmund wuppertal observer; do
	for _ in $(seq 100); do
		ctl "$n" status --json 2>/dev/null | grep -q '"phase":"running"' && break
		sleep 0.1
	done
	ctl "$n" status
done

echo
echo "== Dortmund records a workshop on school and business cooperation"
ctl dortmund put labs lab-dortmund city=Dortmund name="KoSI-Lab Dortmund" \
    description="Municipal lab for social innovation, Nordstadt"
ctl dortmund put themes theme-school-business \
    title="School and business cooperation"
ctl dortmund put activities act-do-2026-11-workshop lab_id=lab-dortmund \
    theme_id=theme-school-business kind=workshop \
    title="Pupils meet craft businesses" starts_at=2026-11-26T09:00 \
    ends_at=2026-11-26T13:00 location="Dietrich-Keuning-Haus" \
    participants=34 stakeholders="schools, chamber of crafts, city" \
    status=done

echo "== Wuppertal records a volunteering fair"
ctl wuppertal put labs lab-wuppertal city=Wuppertal name="KoSI-Lab Wuppertal"
ctl wuppertal put themes theme-volunteering title="Volunteering"
ctl wuppertal put activities act-wu-2026-11-fair lab_id=lab-wuppertal \
    theme_id=theme-volunteering kind=fair title="Volunteering fair Elberfeld" \
    starts_at=2026-11-28T11:00 location="Rathaus Barmen" participants=210 \
    stakeholders="associations, citizens, city" status=planned
id=$(ctl wuppertal put volunteer_offers - lab_id=lab-wuppertal \
    organisation="Tafel Wuppertal" title="Food bank drivers" hours_per_week=4)
echo "   volunteer offer $id"

echo "== the observer refuses local writes:"
ctl observer put labs lab-x name=nope || true

echo
echo "== waiting for the three nodes to converge"
for _ in $(seq 150); do
	a=$(ctl dortmund checksum); b=$(ctl wuppertal checksum)
	c=$(ctl observer checksum)
	[ "$a" = "$b" ] && [ "$b" = "$c" ] && break
	sleep 0.2
done
echo
echo "== the observer's view (research partners):"
ctl observer dump
echo
for n in dortmund wuppertal observer; do
	printf '%-10s %s\n' "$n" "$(ctl "$n" checksum)"
done
[ "$a" = "$b" ] && [ "$b" = "$c" ] || { echo "checksums differ" >&2; exit 1; }
echo
ctl observer status
echo
echo "demo OK: three nodes converged"
