#!/usr/bin/env bash
# Erasure with three cities in a full mesh, one of them down during the
# erase. A row is written in several versions on different nodes, each
# with its own marker string; c, while a and b are down, writes one more
# version (so c's own log holds an update older than the erasure, which
# a and b never saw). `labsyncctl erase` at a then exits at once; within
# 60 s no file of a or b whose name starts with its database path (the
# database, -wal, -shm) holds any marker. c returns: within 60 s of that
# no file of any node holds one, the row is absent everywhere (c's old
# update did not bring it back), an unrelated row is untouched, and
# `labsyncctl erasures` shows the audit row on all three. Last, a row
# deleted before is erased too (its old values were still in the logs),
# and erasing a key no node has seen exits 1.
. "$(dirname "$0")/lib.sh"

for n in a b c; do
	node $n
done
for n in a b c; do
	for m in a b c; do
		[ $n = $m ] || peer $n $m
	done
done
for n in a b c; do
	start $n
done

tag=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
v1=ERASE-ME-v1-$tag v2=ERASE-ME-v2-$tag v3=ERASE-ME-v3-$tag
v4=ERASE-ME-v4-$tag keep=KEEP-ME-$tag

# holds NODE STRING: a file of NODE's database holds STRING
holds() {
	local f
	for f in "$T/$1.db"*; do
		[ -f "$f" ] || continue
		grep -q -a -F -- "$2" "$f" && return 0
	done
	return 1
}

# clean NODE STRING...: no file of NODE's database holds any STRING
clean() {
	local n=$1 s
	shift
	for s in "$@"; do
		holds "$n" "$s" && return 1
	done
	return 0
}

absent() {	# absent NODE ID: get says no such row (exit 1)
	ctl "$1" get activities "$2" >/dev/null 2>&1
	[ $? -eq 1 ]
}

ctl a put activities gone title="$v1" summary="first $v1" participants=4 ||
    fail "put v1 at a"
ctl c put activities kept title="$keep" summary="unrelated" ||
    fail "put the unrelated row at c"
converge 30 a b c
ctl b put activities gone title="$v2" || fail "put v2 at b"
converge 30 a b c
ctl c put activities gone summary="third $v4" || fail "put v4 at c"
converge 30 a b c
for n in a b c; do
	holds $n "$v2" || fail "the marker search does not see $v2 at $n"
done

# c alone writes one more version, which a and b do not see before the
# erasure, then goes down
stop a
stop b
ctl c put activities gone title="$v3" || fail "put v3 at c"
stop c

start a
start b
ctl a erase activities gone || fail "erase at a"
for n in a b; do
	absent $n gone || wait_for 30 "the row gone at $n" absent $n gone
done
for n in a b; do
	wait_for 60 "no erased value in $n's files" clean $n "$v1" "$v2" "$v4"
done

# c returns first knowing a and b only as peers that connect in: they
# fetch its old update, it does not learn of the erasure. They must take
# the update without its values (logged empty: the row stays erased).
cp "$T/c.conf" "$T/c.full.conf"
sed -i -e "/^publish = tcp:\/\/127.0.0.1:${PORT_PUB[a]}\$/d" \
    -e "/^sync = tcp:\/\/127.0.0.1:${PORT_SYNC[a]}\$/d" \
    -e "/^publish = tcp:\/\/127.0.0.1:${PORT_PUB[b]}\$/d" \
    -e "/^sync = tcp:\/\/127.0.0.1:${PORT_SYNC[b]}\$/d" "$T/c.conf"
start c
cseq=$(sql c "SELECT seq FROM labsync_origin WHERE name = 'c'")
has_c() {	# has_c NODE: NODE holds all of c's changes
	[ "$(sql "$1" "SELECT seq FROM labsync_origin WHERE name = 'c'")" = \
	    "$cseq" ]
}
for n in a b; do
	wait_for 30 "$n fetches c's old update" has_c $n
	absent $n gone || fail "c's old update brought the row back at $n"
	clean $n "$v1" "$v2" "$v3" "$v4" ||
	    fail "c's old update left its values in $n's files"
done
holds c "$v3" || fail "c, which did not learn of the erasure, lost $v3"
stop c
mv "$T/c.full.conf" "$T/c.conf"
start c
for n in a b c; do
	wait_for 60 "no erased value in $n's files after c's return" \
	    clean $n "$v1" "$v2" "$v3" "$v4"
done
converge 30 a b c
for n in a b c; do
	absent $n gone || fail "the erased row is back at $n"
	assert_eq "$(ctl $n get activities kept | jq -r .title)" "$keep" \
	    "the unrelated row at $n"
	holds $n "$keep" || fail "the unrelated row's value is gone at $n"
	clean $n "$v1" "$v2" "$v3" "$v4" || fail "an erased value is back at $n"
done

# the audit: the same erasure on every node, who asked, no value
me=$(id -un)
for n in a b c; do
	out=$(ctl $n erasures --json) || fail "erasures at $n"
	assert_eq "$(echo "$out" | jq length)" 1 "erasures at $n"
	assert_eq "$(echo "$out" | jq -r '.[0] | [.table, .id, .origin,
	    .requested_by] | join(" ")')" "activities gone a $me" \
	    "the audit row at $n"
	[ "$(echo "$out" | jq '.[0].asked_ms <= .[0].done_ms')" = true ] ||
	    fail "the audit row at $n was done before it was asked: $out"
	assert_eq "$(echo "$out" | jq -c '.[0].peers | keys')" \
	    "$(printf '%s\n' a b c | grep -vx $n | jq -R . | jq -cs .)" \
	    "the peers the audit at $n lists"
	assert_eq "$(ctl $n erasures | grep -c "activities	gone	a:")" 1 \
	    "the audit line at $n"
	case $(sql $n "SELECT * FROM labsync_erasure") in
	*ERASE-ME*) fail "the audit at $n holds an erased value" ;;
	esac
done

old=OLD-ME-$tag
ctl b put activities deleted title="$old" || fail "put the row to delete"
converge 30 a b c
ctl b delete activities deleted || fail "delete at b"
converge 30 a b c
for n in a b c; do
	holds $n "$old" || fail "the deleted row's value is not in $n's log"
done
ctl a erase activities deleted || fail "erase of the deleted row at a"
ctl a erase activities never-seen 2>/dev/null
assert_eq "$?" 1 "erase of a key never seen (exit status)"
for n in a b c; do
	wait_for 60 "the deleted row's value gone from $n's files" clean $n "$old"
	assert_eq "$(ctl $n erasures --json | jq -c '[.[].id]')" \
	    '["gone","deleted"]' "erasures at $n"
done
converge 30 a b c
pass
