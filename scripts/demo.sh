#!/usr/bin/env bash
# The demo: a 4-thread C program parks three threads (nanosleep, futex,
# read) and then dereferences NULL in its main thread; fh-bpf, attached to it
# before the crash, prints every thread's traceback.  Then the same for a
# Python service (scripts/demo_app.py): Python frames, as faulthandler would.
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

# The same for a Python program: Python frames, as faulthandler prints them.
python=$(command -v python3 || true)
if [ -z "$python" ]; then
	echo "demo: no python3: skipping the Python part (scripts/install-deps.sh installs it)"
	exit 0
fi
top=$(cd "$(dirname "$0")/.." && pwd)
mkfifo "$dir/pyin" "$dir/pyout" "$dir/pyready"
"$python" "$top/scripts/demo_app.py" <"$dir/pyin" >"$dir/pyout" &
target=$!
exec 7>"$dir/pyin" 8<"$dir/pyout"
read -r _ <&8
echo
echo "demo: a Python service, pid $target ($("$python" --version 2>&1)); sudo fh-bpf -p $target"
"$build/fh-bpf" -p "$target" --ready-fd 6 6>"$dir/pyready" &
watcher=$!
read -r _ <"$dir/pyready"
echo "demo: fh-bpf is armed; sending the service a request that crashes it"
echo
echo request >&7
wait "$target" 2>/dev/null || true
status=0
wait "$watcher" || status=$?
echo
echo "demo: fh-bpf exited with status $status"
