#!/usr/bin/env bash
# The demo: a 4-thread program parks three threads (nanosleep, futex, read)
# and then dereferences NULL in its main thread; fh-bpf, attached to it
# before the crash, prints every thread's traceback.
#
#   scripts/demo.sh BUILD_DIR        (make demo)
set -euo pipefail

build=${1:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (fh-bpf loads BPF programs): sudo make demo" >&2
	exit 1
fi

dir=$(mktemp -d)
trap 'kill $target 2>/dev/null || true; rm -rf "$dir"' EXIT
mkfifo "$dir/report" "$dir/go" "$dir/ready"

# The target reports its threads and "ready" on fd 3, then waits for a byte
# on fd 4 before crashing.
"$build/targets/crash" --threads 4 --report 3 --go 4 segv 3>"$dir/report" 4<>"$dir/go" &
target=$!
exec 5<"$dir/report"
echo "demo: target pid $target, threads:"
while read -r line <&5; do
	[ "$line" = ready ] && break
	echo "  $line"
done

echo "demo: sudo fh-bpf -p $target"
"$build/fh-bpf" -p "$target" --ready-fd 6 6>"$dir/ready" &
watcher=$!
read -r _ <"$dir/ready"

echo "demo: fh-bpf is armed; making the target crash"
echo
echo x >"$dir/go"
wait "$target" 2>/dev/null || true
status=0
wait "$watcher" || status=$?
echo
echo "demo: fh-bpf exited with status $status (3: the target died of a fatal signal)"
