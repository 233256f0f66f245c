#!/usr/bin/env bash
# The demo, in two acts.
#
# 1. A 4-thread C program parks three threads (nanosleep, futex, read) and
#    spins a fourth in a C loop.  `fh-bpf -p PID --dump` prints every
#    thread while it runs (the spinning one from a timer sample); then
#    fh-bpf watches it, and its main thread dereferences NULL: every
#    thread's traceback, captured in the kernel before the process dies.
# 2. A small Python service (scripts/demo_app.py) started under fh-bpf
#    (launch mode: `fh-bpf -- python3 demo_app.py`): a dump of its Python
#    threads on demand, then its main thread crashes in ctypes, and fh-bpf
#    prints what faulthandler would have, and exits with the service's
#    status.
#
#   scripts/demo.sh BUILD_DIR        (make demo)
set -euo pipefail

build=${1:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (fh-bpf loads BPF programs): sudo make demo" >&2
	exit 1
fi

dir=$(mktemp -d)
target=
trap 'kill $target 2>/dev/null || true; rm -rf "$dir"' EXIT
mkfifo "$dir/report" "$dir/go" "$dir/ready"

# The target reports its threads and "ready" on fd 3, then waits for a byte
# on fd 4 before crashing.
"$build/targets/crash" --threads 4 --spinners 1 --report 3 --go 4 segv 3>"$dir/report" 4<>"$dir/go" &
target=$!
exec 5<"$dir/report"
echo "demo: target pid $target, threads:"
while read -r line <&5; do
	[ "$line" = ready ] && break
	echo "  $line"
done

echo
echo "demo: sudo fh-bpf -p $target --dump      (every thread now; the target runs on)"
echo
"$build/fh-bpf" -p "$target" --dump

echo
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

# The same for a Python program, started under fh-bpf.
python=$(command -v python3 || true)
# The interpreter itself, not a wrapper that execs it (a pyenv shim, say):
# fh-bpf then builds its programs for it before it starts.
[ -n "$python" ] && python=$("$python" -c 'import sys; print(sys.executable)')
if [ -z "$python" ]; then
	echo "demo: no python3: skipping the Python part (scripts/install-deps.sh installs it)"
	exit 0
fi
top=$(cd "$(dirname "$0")/.." && pwd)
mkfifo "$dir/pyin" "$dir/pyout"
echo
echo "demo: sudo fh-bpf -- $python scripts/demo_app.py   ($("$python" --version 2>&1), launch mode)"
"$build/fh-bpf" -- "$python" "$top/scripts/demo_app.py" <"$dir/pyin" >"$dir/pyout" &
watcher=$!
exec 7>"$dir/pyin" 8<"$dir/pyout"
read -r _ <&8
target=$(pgrep -P "$watcher" | head -n1)
echo "demo: the service (pid $target) is up; sudo fh-bpf -p $target --dump"
echo
"$build/fh-bpf" -p "$target" --dump
echo
echo "demo: sending the service a request that crashes it"
echo
echo request >&7
status=0
wait "$watcher" || status=$?
target=
echo
echo "demo: fh-bpf exited with status $status (the service's: 128 + 11, SIGSEGV)"
