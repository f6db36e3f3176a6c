#!/usr/bin/env bash
# The envelope fuzzer (tests/fuzz) under ASan and UBSan: every seed
# message replays cleanly, and a short deterministic round (-seed=1,
# 20000 inputs) finds no crash, leak, sanitizer report or validated batch
# that SQL refuses. Skipped without clang and its libFuzzer runtime.
. "$(dirname "$0")/lib.sh"

cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || skip "$cc not installed (make deps)"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
{ (void)d; (void)n; return 0; }\n' >"$T/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined -o "$T/probe" "$T/probe.c" \
    >"$T/probe.log" 2>&1 ||
	skip "$cc cannot link libFuzzer (package libclang-rt-dev)"

make -C "$ROOT" --no-print-directory fuzz-check >"$T/fuzz.log" 2>&1 ||
	fail "make fuzz-check failed (log above)"
grep -q '^Done 20000 runs' "$T/fuzz.log" ||
	fail "the short round did not run 20000 inputs"
pass
