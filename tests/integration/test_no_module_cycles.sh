#!/usr/bin/env bash
# No two files of labsync call each other, directly or through a third:
# calls between modules go one way (main -> peer -> catchup -> sync ->
# store, and so on), so each file can be read with only what it calls
# in mind. Read from the symbol tables of the built objects: A depends on
# B when A's object uses a symbol that B's defines (nm). Files sharing a
# private header (daemon/X_private.h) count as one module, X.
#
# The checker is first run on small objects built here, one set with a
# loop of three files and one without, so that it is known to see loops.
. "$(dirname "$0")/lib.sh"

# module OBJECT: the module an object belongs to
module() {
	local m
	m=$(basename "$1" .o)
	echo "${GROUP[$m]:-$m}"
}

# edges OBJECT...: "A B SYMBOL" for each symbol A uses that B defines
edges() {
	local o
	for o in "$@"; do
		nm --defined-only -g "$o" |
		    awk -v m="$(module "$o")" '$2 ~ /^[TDBRCV]$/ { print "D", m, $3 }'
		nm -u "$o" | awk -v m="$(module "$o")" '{ print "U", m, $2 }'
	done | awk '
	    $1 == "D" { def[$3] = $2; next }
	    { use[++n] = $2 " " $3 }
	    END {
		for (i = 1; i <= n; i++) {
			split(use[i], f, " ")
			if ((f[2] in def) && def[f[2]] != f[1])
				print f[1], def[f[2]], f[2]
		}
	    }' | sort -u
}

# cycles: from "A B SYMBOL" lines, each set of modules that reach each
# other, with the calls between them; nothing if there is none
cycles() {
	awk '
	{
		e[$1, $2] = 1
		sym[$1, $2] = sym[$1, $2] " " $3
		node[$1] = 1; node[$2] = 1
	}
	END {
		for (a in node) for (b in node) r[a, b] = e[a, b]
		for (k in node) for (a in node) if (r[a, k])
			for (b in node) if (r[k, b]) r[a, b] = 1
		for (a in node) {
			if (!r[a, a] || done[a]) continue
			line = "loop:"
			for (b in node) if (r[a, b] && r[b, a]) {
				done[b] = 1
				line = line " " b
			}
			print line
			for (b in node) for (c in node)
				if (e[b, c] && r[a, b] && r[b, a] && r[a, c] &&
				    r[c, a])
					print "  " b " -> " c ":" sym[b, c]
		}
	}'
}

declare -A GROUP

# The checker sees a loop through three files, and none in a chain.
mkdir -p "$T/loop" "$T/chain"
echo 'void b_f(void); void a_f(void); void a_f(void) { b_f(); }' >"$T/loop/a.c"
echo 'void c_f(void); void b_f(void); void b_f(void) { c_f(); }' >"$T/loop/b.c"
echo 'void a_f(void); void c_f(void); void c_f(void) { a_f(); }' >"$T/loop/c.c"
cp "$T/loop/a.c" "$T/loop/b.c" "$T/chain/"
echo 'void c_f(void); void c_f(void) { }' >"$T/chain/c.c"
for d in loop chain; do
	for f in a b c; do
		cc -c -o "$T/$d/$f.o" "$T/$d/$f.c" || fail "cannot build $d/$f.o"
	done
done
out=$(edges "$T"/loop/*.o | cycles)
echo "$out" | grep -q '^loop:' || fail "checker missed the loop a -> b -> c -> a"
[ -z "$(edges "$T"/chain/*.o | cycles)" ] ||
    fail "checker saw a loop in the chain a -> b -> c"

# The modules of labsync.
for h in "$ROOT"/daemon/*_private.h; do
	[ -e "$h" ] || continue
	g=$(basename "$h" _private.h)
	for f in $(grep -l "#include \"$(basename "$h")\"" "$ROOT"/daemon/*.c); do
		GROUP[$(basename "$f" .c)]=$g
	done
done
objs=()
for src in "$ROOT"/daemon/*.c; do
	o=$ROOT/build/obj/$(basename "$src" .c).o
	[ -e "$o" ] || fail "$o missing: run make all first"
	objs+=("$o")
done
[ "${#objs[@]}" -gt 10 ] || fail "only ${#objs[@]} objects found"
e=$(edges "${objs[@]}")
echo "$e" | grep -q '^peer sync ' || fail "no calls from peer to sync seen"
out=$(echo "$e" | cycles)
[ -z "$out" ] || fail "modules call each other in a loop:
$out"
pass
