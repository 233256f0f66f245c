#!/usr/bin/env bash
# Run every libFuzzer harness built in BUILD_DIR/fuzz over its seed corpus
# (tests/fuzz/corpus/<harness>) for SECONDS each, under ASan/UBSan.  One line
# a harness: its executions and whether it found anything; then
# "N passed, N failed" (N counts harnesses).
#
#   tests/fuzz/run.sh [--seconds N] [--keep] BUILD_DIR
#
# Without --keep the corpus a run grows is thrown away (the smoke run of
# `make test`); with --keep (`make fuzz`) it is kept in
# BUILD_DIR/fuzz/corpus/<harness> and grows across runs.  An input that
# crashes a harness is saved in BUILD_DIR/fuzz/findings/<harness>/ (reproduce:
# BUILD_DIR/fuzz/<harness> FILE) and its report printed.
set -uo pipefail

seconds=15
keep=0
while [ $# -gt 1 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) break ;;
	esac
done
build=${1:?usage: tests/fuzz/run.sh [--seconds N] [--keep] BUILD_DIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$build" ] && build=$(cd "$build" && pwd)
cd "$top"

harnesses=()
for src in tests/fuzz/fuzz_*.cpp; do
	harnesses+=("$(basename "$src" .cpp)")
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
for h in "${harnesses[@]}"; do
	bin=$build/fuzz/$h
	if [ ! -x "$bin" ]; then
		echo "$h: not built (make OUT=$build fuzz-build): counted as failed"
		failed=$((failed + 1))
		continue
	fi
	if [ "$keep" = 1 ]; then
		corpus=$build/fuzz/corpus/$h
	else
		corpus=$scratch/$h
	fi
	mkdir -p "$corpus" "$build/fuzz/findings/$h"
	seeds=(tests/fuzz/corpus/$h)
	if [ "$h" = fuzz_elf ]; then
		# The test targets, compiled binaries with DWARF and CFI, as seeds
		# too when they are built (one name byte, a 4-byte offset first).
		mkdir -p "$scratch/elf-seeds"
		for t in "$build"/targets/*; do
			[ -f "$t" ] && { printf '\000\020\000\000\000'; cat "$t"; } >"$scratch/elf-seeds/$(basename "$t")"
		done
		seeds+=("$scratch/elf-seeds")
	fi
	log=$scratch/$h.log
	# The smoke run starts from the same seed each time: a run that
	# fails can be run again as it was (the long runs vary).
	seed=()
	[ "$keep" = 0 ] && seed=(-seed=1)
	"$bin" "${seed[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$build/fuzz/findings/$h/" \
		"$corpus" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
	if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
		echo "$h: ${runs} executions in ${seconds} s, nothing found"
		passed=$((passed + 1))
	else
		echo "$h: FAILED (exit status $rc) after ${runs:-?} executions:"
		grep -E 'ERROR|runtime error|check failed|SUMMARY|Test unit written|#[0-9]+ 0x' "$log" | head -30 | sed 's/^/   /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
