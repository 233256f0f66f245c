#!/usr/bin/env bash
# Run fh-bpf's test tiers and print one closing line "N passed, N failed"
# (N counts test cases).
#
#   scripts/run-tests.sh [--unit-only] BUILD_DIR
#
# Tier 1 (unit: renderer, record decoding, options, symbolizer on the fixture
# binary) needs no privileges.  Tier 2 (end-to-end: the real BPF programs
# against real targets, checked against gdb) needs root; without root it is
# reported as failed, never silently skipped.  Tier 3 (fuzz smoke: each
# libFuzzer harness of tests/fuzz for FUZZ_SMOKE_SECONDS, 15 by default,
# under ASan/UBSan; `make fuzz-build` builds them) counts one test case a
# harness; a harness not built counts as failed.  --unit-only runs tier 1.
set -uo pipefail

unit_only=0
if [ "${1:-}" = "--unit-only" ]; then
	unit_only=1
	shift
fi
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export FH_BUILD="$build" FH_SOURCE_DIR="$top"

passed=0
failed=0

# Run one Catch2 binary; add its test-case counts to the totals.
run_tier() {
	local name=$1 bin=$2 log
	log=$(mktemp)
	echo "== $name: $bin"
	"$bin" --durations yes 2>&1 | tee "$log" | grep -vE '^[0-9.]+ s: ' || true
	grep -E '^[0-9.]+ s: ' "$log" | sort -rn | head -5 | sed 's/^/   slowest: /'
	local line p f
	if line=$(grep -E '^All tests passed \(' "$log"); then
		p=$(sed -E 's/.* in ([0-9]+) test case.*/\1/' <<<"$line")
		f=0
	elif line=$(grep -E '^test cases: ' "$log"); then
		p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
		grep -qE '[0-9]+ passed' <<<"$line" || p=0
	else
		echo "$name: no summary (the binary crashed?)"
		p=0
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	rm -f "$log"
}

run_tier unit "$build/tests/unit-tests"
if [ "$unit_only" = 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "end-to-end tier: needs root (it loads BPF programs): counted as failed"
		failed=$((failed + 1))
	else
		run_tier e2e "$build/tests/e2e-tests"
	fi
	echo "== fuzz smoke: $build/fuzz"
	log=$(mktemp)
	"$top/tests/fuzz/run.sh" --seconds "${FUZZ_SMOKE_SECONDS:-15}" "$build" 2>&1 | tee "$log"
	if line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1); then
		passed=$((passed + $(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")))
		failed=$((failed + $(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")))
	else
		echo "fuzz smoke: no summary: counted as failed"
		failed=$((failed + 1))
	fi
	rm -f "$log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
