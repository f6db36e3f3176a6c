#!/usr/bin/env bash
# A new user's first steps: labsyncctl -h/--help print the usage (every
# command the man page documents) on stdout and exit 0; `help` reads no
# configuration; `help put` shows put's usage line; an unknown command is
# named as unknown with a hint to `labsyncctl help` and exits 2; -V and
# --version of labsyncctl and labsyncd print one version and exit 0.
. "$(dirname "$0")/lib.sh"

runs() {	# runs WANT WHAT COMMAND...: exit status, stdout in $T/out
	local want=$1 what=$2 rc
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] ||
	    fail "$what: exit status $rc, expected $want ($(cat "$T/err"))"
}

# the commands of the man page, and of the usage
# (an entry is ".It Cm NAME ...", or ".It Xo" with ".Cm NAME" next)
man_cmds=$(awk '/^\.It Cm / { print $3 } xo && /^\.Cm / { print $2 }
    { xo = ($0 == ".It Xo") }' "$ROOT/man/labsyncctl.1" | sort)
[ "$(echo "$man_cmds" | wc -l)" -ge 10 ] ||
    fail "found only these commands in labsyncctl.1: $man_cmds"

for opt in -h --help; do
	runs 0 "labsyncctl $opt" "$LABSYNCCTL" "$opt"
	[ -s "$T/err" ] && fail "labsyncctl $opt wrote to stderr: $(cat "$T/err")"
	head -n 1 "$T/out" | grep -q '^usage: labsyncctl' ||
	    fail "labsyncctl $opt: no usage line: $(head -n 1 "$T/out")"
	usage_cmds=$(sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "$T/out" |
	    sort)
	assert_eq "$usage_cmds" "$man_cmds" \
	    "labsyncctl $opt lists the commands of labsyncctl.1"
done
cp "$T/out" "$T/usage"

# help needs no configuration: not a missing one, not a broken one, not
# the default one (run from an empty HOME and folder)
printf '[node]\nid = broken\nno_such_key = 1\n' >"$T/bad.conf"
runs 0 "help with a missing config" "$LABSYNCCTL" -c "$T/missing.conf" help
cmp -s "$T/out" "$T/usage" || fail "help and --help print different usages"
runs 0 "help with a broken config" "$LABSYNCCTL" -c "$T/bad.conf" help
mkdir "$T/empty"
(cd "$T/empty" && HOME="$T/empty" "$LABSYNCCTL" help) >"$T/out" 2>"$T/err" ||
    fail "help in an empty HOME: $(cat "$T/err")"
cmp -s "$T/out" "$T/usage" || fail "help in an empty HOME: another usage"

# help COMMAND: that command's usage line and its help
runs 0 "help put" "$LABSYNCCTL" -c "$T/missing.conf" help put
grep -q '^usage: labsyncctl .*put TABLE ID|- col=value \.\.\.$' "$T/out" ||
    fail "help put: no put synopsis: $(cat "$T/out")"
grep -q 'insert or update' "$T/out" || fail "help put: no help: $(cat "$T/out")"
runs 0 "help status" "$LABSYNCCTL" help status
grep -q 'status \[--json\]' "$T/out" || fail "help status: $(cat "$T/out")"

# unknown commands, alone and after help
for args in "foo" "help foo"; do
	# shellcheck disable=SC2086
	runs 2 "labsyncctl $args" "$LABSYNCCTL" -c "$T/bad.conf" $args
	grep -qx "labsyncctl: unknown command 'foo'" "$T/err" ||
	    fail "labsyncctl $args: not named unknown: $(cat "$T/err")"
	grep -q "labsyncctl help" "$T/err" ||
	    fail "labsyncctl $args: no hint to help: $(cat "$T/err")"
	[ -s "$T/out" ] && fail "labsyncctl $args wrote to stdout"
done

# still usage errors (exit 2, stderr): a bad option, no command, a wrong
# number of arguments (with that command's usage line)
runs 2 "a bad option" "$LABSYNCCTL" --no-such-option
[ -s "$T/out" ] && fail "a bad option printed the usage to stdout"
runs 2 "no command" "$LABSYNCCTL"
grep -q '^usage: labsyncctl' "$T/err" || fail "no command: no usage"
runs 2 "get with one argument" "$LABSYNCCTL" -c "$T/missing.conf" get t
grep -qx 'usage: labsyncctl \[-c file\] get TABLE ID' "$T/err" ||
    fail "get with one argument: $(cat "$T/err")"
runs 2 "help with two arguments" "$LABSYNCCTL" help put get

# one version, both spellings, both programs
runs 0 "labsyncctl -V" "$LABSYNCCTL" -V
ctl_v=$(cat "$T/out")
[[ $ctl_v =~ ^labsyncctl\ [0-9][^\ ]*$ ]] || fail "labsyncctl -V: '$ctl_v'"
runs 0 "labsyncctl --version" "$LABSYNCCTL" --version
assert_eq "$(cat "$T/out")" "$ctl_v" "labsyncctl --version"
runs 0 "labsyncd -V" "$LABSYNCD" -V
d_v=$(cat "$T/out")
runs 0 "labsyncd --version" "$LABSYNCD" --version
assert_eq "$(cat "$T/out")" "$d_v" "labsyncd --version"
assert_eq "${d_v#labsyncd }" "${ctl_v#labsyncctl }" \
    "labsyncd and labsyncctl versions"

# labsyncd's usage: asked for, stdout and 0; a bad option, 2
for opt in -h --help; do
	runs 0 "labsyncd $opt" "$LABSYNCD" "$opt"
	grep -q '^usage: labsyncd' "$T/out" || fail "labsyncd $opt: no usage"
	grep -q -- '--version' "$T/out" || fail "labsyncd $opt: no --version"
done
runs 2 "labsyncd with a bad option" "$LABSYNCD" --no-such-option
pass
