#!/usr/bin/env bash
# fh-bpf benchmark harness.  It measures and prints figures; it is not a test
# and passes or fails nothing (a missed aim is reported, not fatal).
#
#   bench/run.sh [OUT]                          every figure (what `make bench` runs)
#   bench/run.sh OUT capture THREADS [FAULTS]   figures 1, 2 and 4 for one thread count
#   bench/run.sh OUT start [STARTS]             figure 3
#   bench/run.sh OUT compare THREADS            figure 5
#   bench/run.sh OUT python [THREADS [CRASHES [DUMPS]]]  figures 6, 7 and 8
#   bench/run.sh OUT live [THREADS [DUMPS]]     figure 9 (all of 1, 10, 100, 1000 without THREADS)
#   bench/run.sh OUT throughput                 figure 10
#   bench/run.sh OUT peers                      figure 11 (bpftrace, BCC)
#   bench/run.sh OUT system                     figures 12-15 (the --system-wide agent)
#
# OUT is the build directory (default: build).  Run as root from anywhere; the
# reproduce commands printed are relative to the repository root.  Raw logs
# (fh-bpf -v output, tracebacks, /usr/bin/time reports, gdb and eu-stack
# output, the Python targets' own faulthandler output) are kept in
# bench/results/ (git-ignored).
#
# What is measured, and how:
#
#  1. In-kernel capture time per thread.  Target: bench/fault_loop THREADS
#     FAULTS 3 (compiled here into OUT/bench/): THREADS-1 workers parked in
#     nanosleep while the main thread takes a SIGSEGV, and recovers from it,
#     once per byte read from fd 3.  fh-bpf -v prints one line per captured
#     event:
#       fh-bpf: timing: N threads, B stack bytes, kernel capture X us
#               (Y us/thread), symbolized in S ms, signal to printed Z ms
#     X is the difference of two bpf_ktime_get_ns() stamps taken by the BPF
#     program itself (event record reserved -> end record submitted), so it
#     covers walking the thread list, reading each thread's registers and
#     copying its stack into the ring buffer.  Figure: median of Y over every
#     event (FAULTS >= 20), run for 1, 10, 100 and 200 threads; B is reported
#     as stack bytes per event.
#  2. Crash -> traceback printed: Z from the same lines (BPF stamp at the
#     signal to the traceback written by fh-bpf, both CLOCK_MONOTONIC).  The
#     first event is cold (first unwinding and symbolisation); the figure for
#     the others is their median.  The harness writes one byte per event to
#     the target, waits (through a fifo on fh-bpf's stderr) for the event's
#     timing line and per-thread lines, then pauses 50 ms so that events
#     never overlap.
#  3. Start -> armed: the "armed in" figure of fh-bpf -v (BPF load and attach,
#     then reading the target's mappings and symbols), and the wall time from
#     launching fh-bpf until its --ready-fd fifo delivers "ready".  Median of
#     STARTS (default 7) starts against one build/targets/crash --threads 10
#     --auto wait, each watcher detached with SIGTERM before the next start.
#  4. Peak RSS of fh-bpf over the figure-1 runs: /usr/bin/time -v "Maximum
#     resident set size"; VmHWM from /proc/PID/status, read after the last
#     event while the target is still alive, as a cross-check (and as the
#     figure when /usr/bin/time is missing).
#  5. The same job done by ptrace-based tools: crash --threads N --auto wait,
#     then wall time of `eu-stack -p PID` (and `eu-stack -s -p PID`, which
#     adds the source lines fh-bpf prints) and of
#     `gdb -p PID -batch -ex "thread apply all bt"`, median of 3 each.  Both
#     stop every thread of the target while they run; fh-bpf does not.  Then
#     fh-bpf is attached to that same target and `kill -SEGV PID` is sent:
#     its (cold) signal -> printed time for the same threads.  bpftrace and
#     BCC are only looked for, never installed.
#
# Figures 6-8 are taken on Python targets, tests/targets/py_target.py (see
# its docstring), run by CPython 3.11 twice over: pyenv's build
# (/root/.pyenv/versions/3.11.7/bin/python3) and Debian's /usr/bin/python3.11
# (an interpreter that is missing is skipped, and said so).  THREADS is the
# target's worker count (default: 10, then 100); with its main thread the
# process has THREADS+1 threads, shown as "10+1" and "100+1".
#
#  6. Python crash capture.  `PY py_target.py FAULT_FILE segv THREADS` prints
#     "ready" once its workers are parked, then crashes with SIGSEGV
#     (ctypes.string_at(0)) on a line from its stdin.  Per crash: a new
#     target, fh-bpf -p PID -v --ready-fd 4 -o FILE armed on it (ready read
#     from the fifo on its stderr), one line written to the target's stdin
#     fifo, then the -v lines read up to "target exited":
#       fh-bpf: timing: N threads, B stack bytes, kernel capture X us (Y
#               us/thread), symbolized in S ms, signal to printed Z ms
#       fh-bpf: capture: R record bytes; Python: P threads, C code objects
#     The target enables its own faulthandler (the oracle of the tests): it
#     prints first, then re-raises SIGSEGV with the default action, and that
#     signal (SI_TKILL) is the one fh-bpf captures and times.  X and Y as in
#     figure 1, here including the Python part of the capture (thread
#     states, frame chains, code objects and their line tables); R is every
#     ring-buffer byte of the event (bytes per event), B its stack bytes; Z
#     is always cold, as every crash is a new fh-bpf.  Each crash is one
#     process: median and range over CRASHES (default 5) per interpreter
#     and thread count.  fh-bpf's traceback is also compared with the
#     target's own (fh-bpf: lines aside), as a check that the figure is for
#     a complete capture.
#  7. --dump latency.  `PY py_target.py FAULT_FILE dump THREADS`: after
#     "ready" and one line on its stdin, the target writes its own
#     faulthandler.dump_traceback to FAULT_FILE, prints "dumped" and waits
#     for another line.  Then DUMPS (default 10) runs of
#     `fh-bpf -p PID --dump -v -o FILE` on that same live target: the
#     "dumped N Python threads in X ms" figure of -v (reading the target's
#     memory and rendering), and the wall time of the whole command (start,
#     attach, symbols, dump, exit), measured by the harness; medians.  Each
#     dump is compared with the target's own.
#  8. The same job done by gdb, for Debian's /usr/bin/python3.11 on the
#     figure-7 target, after its dumps: `gdb -p PID -batch -ex "thread apply
#     all py-bt"`, wall time, median of 3.  gdb stops every thread of the
#     target while it runs; fh-bpf --dump does not.  py-bt comes from
#     Debian's python3.11-dbg package (gdb extension and the interpreter's
#     debug symbols): the harness requires it, and runs `apt-get install -y
#     python3.11-dbg` (after `apt-get update` if that fails) when it is
#     missing.  How many threads of gdb's output hold Python frames
#     ("Traceback (most recent call first)", `  File "..."` lines), and
#     "Python Exception" / "Unable to locate python frame" lines, are
#     reported next to the time, with the main thread's py-bt as a sample.
#
# Synchronisation is by fifos (opened read-write by the harness so that no
# open() blocks, in a mktemp -d directory).  Where the harness follows
# fh-bpf's stderr, --ready-fd points at the same fifo, so there is a single
# stream to read and a long error report cannot wedge fh-bpf.  Every wait has
# a time limit (BENCH_LIMIT seconds, default 60) and gives up early if the
# process it waits for has died.  All child processes are killed (by pid) on
# exit or interruption: SIGTERM, then SIGKILL after 3 s.

set -euo pipefail
export LC_ALL=C

FAULTS_DEFAULT=31    # captures per thread count: 1 cold + 30 warm
STARTS_DEFAULT=7     # fh-bpf starts for figure 3
TOOL_RUNS=3          # runs of eu-stack / gdb per target
SPACING=0.05         # pause between two faults, seconds (spacing, not a sync)
LIMIT=${BENCH_LIMIT:-60} # seconds any single wait may take

# Aims shown next to the figures.
AIM_KERNEL_US=5      # in-kernel capture, us per thread
AIM_PRINTED_MS=20    # crash -> printed, 10 threads, warm
AIM_ARMED_MS=150     # start -> armed
AIM_RSS_MB=40        # fh-bpf peak RSS

# --- paths -----------------------------------------------------------------
usage()
{
	sed -n '5,12s/^# *//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_ARG=${1:-build}
[[ -d $OUT_ARG ]] || { echo "bench: no build directory '$OUT_ARG' (run make first)" >&2; exit 2; }
OUT=$(cd "$OUT_ARG" && pwd)
shift || true
cd "$ROOT"

# Path as shown in the output: relative to the repository root when inside it.
rel() { local p=$1; [[ $p == "$ROOT"/* ]] && p=${p#"$ROOT"/}; printf '%s' "$p"; }

OUTR=$(rel "$OUT")
FH=$OUTR/fh-bpf
CRASH=$OUTR/targets/crash
FAULT_LOOP=$OUTR/bench/fault_loop
COUNT_LOOP=$OUTR/bench/count_loop
SIGNAL_LOOP=$OUTR/bench/signal_loop
SIGNAL_TOGGLE=$OUTR/bench/signal_toggle
RES=bench/results
SELF="bench/run.sh $OUTR"
GNU_TIME=
[[ -x /usr/bin/time ]] && /usr/bin/time -v true >/dev/null 2>&1 && GNU_TIME=/usr/bin/time

# --- processes, fifos, cleanup ---------------------------------------------
CHILDREN=()   # pids of background children still to be reaped
FIFO_FDS=()   # fifo descriptors the harness holds open
TMP=

exec {ERR}>&2 # the harness's own stderr, kept while fd 2 is silenced
die() { echo "bench: $*" >&"$ERR"; exit 1; }
note() { echo "bench: $*" >&"$ERR"; }

cleanup()
{
	local rc=$? pid kid kids
	trap - EXIT INT TERM
	for pid in "${CHILDREN[@]}"; do
		# fh-bpf under /usr/bin/time: end fh-bpf (SIGTERM detaches it) and
		# let time reap it and exit by itself.
		kids=()
		read -ra kids 2>/dev/null <"/proc/$pid/task/$pid/children" || true
		if ((${#kids[@]})); then
			for kid in "${kids[@]}"; do kill -TERM "$kid" 2>/dev/null || true; done
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	# fh-bpf blocks SIGTERM until armed and may be stuck writing: give
	# everything 3 s, then SIGKILL what is left (this poll is a time limit).
	local tries=30 left=1
	while ((left && tries--)); do
		left=0
		for pid in "${CHILDREN[@]}"; do alive "$pid" && left=1; done
		((left)) && sleep 0.1
	done
	for pid in "${CHILDREN[@]}"; do
		if alive "$pid"; then
			kids=()
			read -ra kids 2>/dev/null <"/proc/$pid/task/$pid/children" || true
			kill -KILL "${kids[@]}" "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	[[ -n $TMP ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Background jobs must not inherit the harness's fifo descriptors: a target
# holding the write side of its own "go" fifo would never see EOF.  Called in
# the subshell of each job, just before it execs.
close_fifo_fds() { local fd; for fd in "${FIFO_FDS[@]}"; do exec {fd}>&-; done; }

# open_fifos DIR NAME...: mkfifo DIR/NAME and open it read-write (never
# blocks) into the variable NAME_fd.
open_fifos()
{
	local dir=$1 name fd
	shift
	for name; do
		mkfifo "$dir/$name"
		exec {fd}<>"$dir/$name"
		FIFO_FDS+=("$fd")
		printf -v "${name}_fd" '%s' "$fd"
	done
}

close_fds()
{
	local fd keep=() f
	for fd; do
		exec {fd}>&-
		for f in "${FIFO_FDS[@]}"; do [[ $f == "$fd" ]] || keep+=("$f"); done
		FIFO_FDS=("${keep[@]}")
		keep=()
	done
}

# reap PID: wait for it, leave its exit status in REAP_RC.
reap()
{
	local pid=$1 p keep=()
	REAP_RC=0
	wait "$pid" 2>/dev/null || REAP_RC=$? # (no "Segmentation fault" job notice)
	for p in "${CHILDREN[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	CHILDREN=("${keep[@]}")
}

# alive PID: true while PID exists and is not a zombie.
alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# expect FD REGEX PID WHAT [LOGFD]: read lines from FD until one matches
# REGEX, and leave it in LINE; every line read is copied to LOGFD.  Gives up
# if PID (WHAT) dies with nothing more to read, or after LIMIT seconds.
expect()
{
	local fd=$1 re=$2 pid=$3 what=$4 log=${5:-} part='' deadline=$((SECONDS + LIMIT))
	while :; do
		if IFS= read -r -t 1 -u "$fd" LINE; then
			LINE=$part$LINE
			part=
			[[ -n $log ]] && printf '%s\n' "$LINE" >&"$log"
			[[ $LINE =~ $re ]] && return 0
		else
			part+=$LINE # a timed-out read keeps its partial line
			alive "$pid" || die "$what (pid $pid) exited while waiting for /$re/"
			((SECONDS < deadline)) || die "timed out after ${LIMIT}s waiting for $what: /$re/"
		fi
	done
}

# thread_lines N FD PID LOG LOGFD: read the N "fh-bpf: thread" lines of one
# event from fh-bpf (PID) on FD.
thread_lines()
{
	local j
	for ((j = 0; j < $1; j++)); do
		expect "$2" '^fh-bpf: thread ' "$3" "fh-bpf (see $4)" "$5"
	done
}

# --- numbers ---------------------------------------------------------------
# median: of the numbers on stdin, one a line.
median()
{
	sort -g | awk '{ v[NR] = $1 }
		END { if (!NR) { print "nan"; exit }
		      if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
# spread: (max - min) / median of the numbers on stdin, in percent.
spread() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", (v[NR] - v[1]) * 100 / m }'; }
# range1, range2: minmax with 1 or 2 decimals.
range1() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f..%.1f", lo, hi }'; }
range2() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f..%.2f", lo, hi }'; }
f1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
# verdict VALUE AIM: "met" if VALUE <= AIM.
verdict() { awk -v v="$1" -v a="$2" 'BEGIN { print (v !~ /^-?[0-9.]+$/) ? "-" : (v + 0 <= a + 0) ? "met" : "MISSED" }'; }
lines() { printf '%s\n' "$@"; }

# Summary rows: fig|measure|threads|value|aim|verdict|reproduce
ROWS=()
row() { local IFS='|'; ROWS+=("$*"); }

# --- setup -----------------------------------------------------------------
# build_bench_target SRC BIN: compile SRC when BIN is missing or older, with
# the flags of the test targets: -O2, no frame pointers, debug info.
build_bench_target()
{
	local src=$1 bin=$2 cc
	[[ -x $bin && ! $src -nt $bin ]] && return 0
	read -ra cc <<<"${CC:-cc}"
	cc+=(-O2 -g -fomit-frame-pointer -pthread "$src" -o "$bin")
	echo "  CC       $bin   (${cc[*]})"
	"${cc[@]}"
}

preflight()
{
	((EUID == 0)) || die "must run as root (fh-bpf needs CAP_BPF and CAP_PERFMON)"
	[[ -x $FH ]] || die "$FH missing: run make"
	[[ -x $CRASH ]] || die "$CRASH missing: run make targets"
	mkdir -p "$OUT/bench" "$RES"
	build_bench_target bench/fault_loop.c "$FAULT_LOOP"
	build_bench_target bench/count_loop.c "$COUNT_LOOP"
	build_bench_target bench/signal_loop.c "$SIGNAL_LOOP"
	build_bench_target bench/signal_toggle.c "$SIGNAL_TOGGLE"
	# bpftrace finds tracepoints in tracefs.
	if [[ ! -d /sys/kernel/tracing/events ]]; then
		mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
			note "tracefs could not be mounted: bpftrace's tracepoints will be missing"
	fi
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/fh-bench.XXXXXX")
	ulimit -c 0 # the targets die of SIGSEGV; keep their cores out of the tree
}

header()
{
	local rev
	rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
	git diff --quiet HEAD 2>/dev/null || rev+=" (modified)"
	echo "fh-bpf benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "  $("$FH" --version 2>&1 | head -n1), commit $rev"
	echo "  kernel $(uname -r), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) (other work skews the figures)"
	if [[ -n $GNU_TIME ]]; then
		echo "  peak RSS via: $GNU_TIME -v (VmHWM from /proc/PID/status as a cross-check)"
	else
		echo "  peak RSS via: VmHWM from /proc/PID/status (no GNU /usr/bin/time)"
	fi
	echo
}

# --- figures 1, 2, 4: captures of fault_loop ---------------------------------
TIMING_RE='timing: ([0-9]+) threads, ([0-9]+) stack bytes, kernel capture ([0-9.]+) us \(([0-9.]+) us/thread\), symbolized in ([0-9.]+) ms, signal to printed ([0-9.]+) ms'

bench_capture()
{
	local n=$1 faults=${2:-$FAULTS_DEFAULT}
	local tag=capture-$n d log tbs tfile logfd tpid wpid fhpid i got
	local us=() lat=() sym=() bytes=() nthreads=() kernel_us=() wrap=()
	local go_fd='' out_fd='' err_fd='' # set by open_fifos
	((faults >= 1)) || die "FAULTS must be at least 1"
	d=$(mktemp -d "$TMP/$tag.XXXX")
	log=$RES/$tag.fh-bpf.log tbs=$RES/$tag.tracebacks.txt tfile=$RES/$tag.time.txt
	rm -f "$log" "$tbs" "$tfile"
	open_fifos "$d" go out err
	exec {logfd}>"$log"

	echo "[capture, threads=$n] $faults SIGSEGVs of $FAULT_LOOP, one capture each"
	# FAULTS+1 faults allowed: the target stays alive after the last event,
	# until the harness closes the go fifo (EOF: it exits with status 3).
	(exec 3<"$d/go" >"$d/out" && close_fifo_fds && exec "$FAULT_LOOP" "$n" $((faults + 1)) 3) &
	tpid=$!
	CHILDREN+=("$tpid")
	expect "$out_fd" '^ready$' "$tpid" fault_loop

	[[ -n $GNU_TIME ]] && wrap=("$GNU_TIME" -v -o "$tfile")
	# --ready-fd writes to the same fifo as stderr (fd 4 is a second open
	# of it): one stream, read in order, so a long error report from fh-bpf
	# can never fill a pipe that nobody reads.
	# --handled: fault_loop catches each SIGSEGV and carries on.
	local cmd=("$FH" -p "$tpid" -v --handled --ready-fd 4 -o "$tbs")
	(exec 4>"$d/err" 2>"$d/err" && close_fifo_fds && exec "${wrap[@]}" "${cmd[@]}") &
	wpid=$!
	CHILDREN+=("$wpid")
	expect "$err_fd" '^ready$' "$wpid" "fh-bpf (see $log)" "$logfd"
	fhpid=$wpid
	[[ -n $GNU_TIME ]] && fhpid=$(tr -d ' ' <"/proc/$wpid/task/$wpid/children")

	echo "  target : $FAULT_LOOP $n $((faults + 1)) 3 3<GO_FIFO    (one fault per byte written to GO_FIFO)"
	echo "  watcher: ${wrap[*]:+${wrap[*]} }$FH -p TARGET_PID -v --handled --ready-fd 4 -o $tbs 2>ERR_FIFO 4>ERR_FIFO"

	for ((i = 1; i <= faults; i++)); do
		printf x >&"$go_fd"
		expect "$err_fd" 'fh-bpf: timing: ' "$wpid" "fh-bpf (see $log)" "$logfd"
		[[ $LINE =~ $TIMING_RE ]] || die "unexpected timing line: $LINE"
		got=${BASH_REMATCH[1]}
		nthreads+=("$got")
		bytes+=("${BASH_REMATCH[2]}")
		kernel_us+=("${BASH_REMATCH[3]}")
		us+=("${BASH_REMATCH[4]}")
		sym+=("${BASH_REMATCH[5]}")
		lat+=("${BASH_REMATCH[6]}")
		# The event's per-thread lines follow: drain them before the next.
		thread_lines "$got" "$err_fd" "$wpid" "$log" "$logfd"
		sleep "$SPACING"
	done

	local hwm
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$fhpid/status")
	close_fds "$go_fd" # the target reads EOF and exits
	expect "$err_fd" 'target exited' "$wpid" "fh-bpf (see $log)" "$logfd"
	reap "$tpid"
	((REAP_RC == 3)) || note "fault_loop exited with status $REAP_RC (expected 3: EOF on its go fifo)"
	reap "$wpid"
	((REAP_RC == 3)) || note "fh-bpf exited with status $REAP_RC (expected 3: fatal signals printed)"
	close_fds "$out_fd" "$err_fd" "$logfd"

	local bad
	bad=$(lines "${nthreads[@]}" | awk -v n="$n" '$1 != n' | wc -l)
	((bad == 0)) || note "$bad of $faults events did not capture $n threads (see $log)"

	local k_med k_rng kev_med b_med cold warm_med warm_rng sym_med rss_kb rss_mb hwm_mb
	k_med=$(lines "${us[@]}" | median)
	k_rng=$(lines "${us[@]}" | minmax)
	kev_med=$(lines "${kernel_us[@]}" | median)
	b_med=$(lines "${bytes[@]}" | median)
	cold=${lat[0]}
	if ((faults > 1)); then
		warm_med=$(lines "${lat[@]:1}" | median)
		warm_rng=$(lines "${lat[@]:1}" | minmax)
		sym_med=$(lines "${sym[@]:1}" | median)
	else
		warm_med=nan warm_rng=- sym_med=nan
	fi
	# time -v and VmHWM count KiB; MB here is 10^6 bytes (MiB in brackets).
	hwm_mb=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
	rss_kb=$hwm
	[[ -n $GNU_TIME ]] && rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tfile")
	rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
	local rss_mib
	rss_mib=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')

	echo "  kernel capture  : median $(f2 "$k_med") us/thread (range $k_rng over $faults events), $(f1 "$kev_med") us/event"
	echo "  stack bytes     : $(printf '%.0f' "$b_med") per event, $(awk -v b="$b_med" -v n="$n" 'BEGIN { printf "%.0f", b / n }') per thread"
	echo "  signal->printed : cold $(f2 "$cold") ms; warm median $(f2 "$warm_med") ms (range $warm_rng over $((faults - 1)))"
	echo "  symbolised in   : warm median $(f2 "$sym_med") ms"
	echo "  peak RSS        : $rss_mb MB = $rss_mib MiB${GNU_TIME:+ (time -v; VmHWM after the last event: $hwm_mb MB)}"
	echo "  raw             : $log, $tbs${GNU_TIME:+, $tfile}"
	echo "  reproduce       : $SELF capture $n $faults"
	echo

	local repro="$SELF capture $n $faults"
	row 1 "kernel capture per thread (median of $faults)" "$n" "$(f2 "$k_med") us" "<= $AIM_KERNEL_US us" \
		"$(verdict "$k_med" "$AIM_KERNEL_US")" "$repro"
	row 1 "stack bytes per event (median)" "$n" "$(printf '%.0f' "$b_med") B" "" "" "$repro"
	# The aim for crash -> printed is set for 10 threads (warm).
	local aim='' ok=''
	((n == 10)) && aim="<= $AIM_PRINTED_MS ms" ok=$(verdict "$warm_med" "$AIM_PRINTED_MS")
	row 2 "signal -> printed, cold (1st event)" "$n" "$(f2 "$cold") ms" "" "" "$repro"
	row 2 "signal -> printed, warm (median of $((faults - 1)))" "$n" "$(f2 "$warm_med") ms" "$aim" "$ok" "$repro"
	row 4 "fh-bpf peak RSS ($rss_mib MiB)" "$n" "$rss_mb MB" "<= $AIM_RSS_MB MB" "$(verdict "$rss_mb" "$AIM_RSS_MB")" "$repro"
}

# --- figure 3: start -> armed ----------------------------------------------
# start_target N DIR: crash --threads N --auto wait, stdout on a fifo; sets
# TPID once all its threads are parked.
start_target() { start_target_shape "$2" --threads "$1"; }

# start_target_shape DIR ARGS...: crash ARGS... --auto wait.
start_target_shape()
{
	local d=$1 tout_fd=''
	shift
	open_fifos "$d" tout
	(exec >"$d/tout" && close_fifo_fds && exec "$CRASH" "$@" --auto wait) &
	TPID=$!
	CHILDREN+=("$TPID")
	expect "$tout_fd" '^ready$' "$TPID" crash
	close_fds "$tout_fd"
}

stop_target()
{
	kill -TERM "$1" 2>/dev/null || true
	reap "$1"
}

bench_start()
{
	local runs=${1:-$STARTS_DEFAULT} d log i t0 t1 wpid ready_fd=''
	local armed=() attached=() wall=()
	((runs >= 1)) || die "STARTS must be at least 1"
	d=$(mktemp -d "$TMP/start.XXXX")
	log=$RES/start.fh-bpf.log
	rm -f "$log"
	echo "[start -> armed] $runs starts of fh-bpf against $CRASH --threads 10 --auto wait"
	start_target 10 "$d"
	open_fifos "$d" ready
	for ((i = 1; i <= runs; i++)); do
		t0=${EPOCHREALTIME/./}
		(exec 4>"$d/ready" 2>>"$log" && close_fifo_fds && exec "$FH" -p "$TPID" -v --ready-fd 4) &
		wpid=$!
		CHILDREN+=("$wpid")
		expect "$ready_fd" '^ready$' "$wpid" "fh-bpf (see $log)"
		t1=${EPOCHREALTIME/./}
		wall+=("$(awk -v d=$((t1 - t0)) 'BEGIN { print d / 1000 }')")
		kill -TERM "$wpid" # detach (SIGINT is ignored by background jobs)
		reap "$wpid"
		((REAP_RC == 0)) || note "fh-bpf exited with status $REAP_RC after SIGTERM (expected 0)"
	done
	close_fds "$ready_fd"
	stop_target "$TPID"
	mapfile -t armed < <(sed -n 's/.*armed in \([0-9.]*\) ms.*/\1/p' "$log")
	mapfile -t attached < <(sed -n 's/.*loaded and attached in \([0-9.]*\) ms.*/\1/p' "$log")
	((${#armed[@]} == runs)) || die "expected $runs 'armed in' lines in $log, found ${#armed[@]}"

	local a_med w_med
	a_med=$(lines "${armed[@]}" | median)
	w_med=$(lines "${wall[@]}" | median)
	echo "  each   : $CRASH --threads 10 --auto wait;  $FH -p TARGET_PID -v --ready-fd 4 4>READY_FIFO, then SIGTERM"
	echo "  armed in (ms)          : ${armed[*]}  -> median $(f1 "$a_med") (first start $(f1 "${armed[0]}"))"
	echo "  BPF load+attach (ms)   : ${attached[*]}  -> median $(f1 "$(lines "${attached[@]}" | median)")"
	echo "  launch -> ready fd (ms): $(for w in "${wall[@]}"; do printf '%s ' "$(f1 "$w")"; done) -> median $(f1 "$w_med")"
	echo "  raw                    : $log"
	echo "  reproduce              : $SELF start $runs"
	echo
	row 3 "start -> armed (\"armed in\", median of $runs)" 10 "$(f1 "$a_med") ms" "<= $AIM_ARMED_MS ms" \
		"$(verdict "$a_med" "$AIM_ARMED_MS")" "$SELF start $runs"
	row 3 "launch -> ready fd, wall (median of $runs)" 10 "$(f1 "$w_med") ms" "<= $AIM_ARMED_MS ms" \
		"$(verdict "$w_med" "$AIM_ARMED_MS")" "$SELF start $runs"
}

# --- figure 5: eu-stack and gdb on the same kind of target -------------------
# time_tool FIG REPRO NAME N THREADS_RE SHOWN LABEL CMD...: run CMD
# TOOL_RUNS times, output to a file; print the median wall time and record
# it as a row of figure FIG (reproduced by REPRO).  THREADS_RE counts the
# threads in the output; SHOWN is CMD as printed, LABEL its name in the
# summary.
time_tool()
{
	local fig=$1 repro=$2 name=$3 n=$4 re=$5 shown=$6 label=$7 out i t0 t1 rc seen walls=() med
	shift 7
	out=$RES/compare-$n.$name.txt
	for ((i = 1; i <= TOOL_RUNS; i++)); do
		t0=${EPOCHREALTIME/./}
		rc=0
		"$@" >"$out" 2>&1 || rc=$?
		t1=${EPOCHREALTIME/./}
		walls+=("$(awk -v d=$((t1 - t0)) 'BEGIN { print d / 1000 }')")
		((rc == 0)) || note "$name exited with status $rc (see $out)"
	done
	seen=$(grep -cE "$re" "$out" || true)
	med=$(lines "${walls[@]}" | median)
	printf '  %-44s %8s ms median  (%s)  %s/%s threads in output\n' "$shown" "$(f1 "$med")" \
		"$(for w in "${walls[@]}"; do printf '%s ' "$(f1 "$w")"; done | sed 's/ $//')" "$seen" "$n"
	row "$fig" "$label (stops the target)" "$n" "$(f1 "$med") ms" "" "" "$repro"
}

bench_compare()
{
	local n=$1 d log tbs logfd wpid err_fd=''
	d=$(mktemp -d "$TMP/compare-$n.XXXX")
	log=$RES/compare-$n.fh-bpf.log tbs=$RES/compare-$n.tracebacks.txt
	rm -f "$log" "$tbs"
	echo "[compare, threads=$n] all threads' stacks of $CRASH --threads $n --auto wait"
	start_target "$n" "$d"
	echo "  ptrace-based tools (attach, stop every thread, unwind, print, detach); wall time of $TOOL_RUNS runs:"
	if command -v eu-stack >/dev/null; then
		time_tool 5 "$SELF compare $n" eu-stack "$n" '^TID ' "eu-stack -p PID" "eu-stack -p" \
			eu-stack -p "$TPID"
		time_tool 5 "$SELF compare $n" eu-stack-s "$n" '^TID ' "eu-stack -s -p PID" \
			"eu-stack -s -p" eu-stack -s -p "$TPID"
	else
		echo "  eu-stack: not installed"
	fi
	if command -v gdb >/dev/null; then
		time_tool 5 "$SELF compare $n" gdb "$n" '^Thread [0-9]+ ' 'gdb -p PID -batch -ex "thread apply all bt"' \
			"gdb thread apply all bt" \
			gdb -p "$TPID" -batch -ex "thread apply all bt"
	else
		echo "  gdb: not installed"
	fi

	# fh-bpf on the same target: armed beforehand, then an external SIGSEGV.
	open_fifos "$d" err
	exec {logfd}>"$log"
	(exec 4>"$d/err" 2>"$d/err" && close_fifo_fds && exec "$FH" -p "$TPID" -v --ready-fd 4 -o "$tbs") &
	wpid=$!
	CHILDREN+=("$wpid")
	expect "$err_fd" '^ready$' "$wpid" "fh-bpf (see $log)" "$logfd"
	exec 2>/dev/null # bash would report the target's death ("Segmentation fault")
	kill -SEGV "$TPID"
	expect "$err_fd" 'fh-bpf: timing: ' "$wpid" "fh-bpf (see $log)" "$logfd"
	[[ $LINE =~ $TIMING_RE ]] || die "unexpected timing line: $LINE"
	local got=${BASH_REMATCH[1]} sbytes=${BASH_REMATCH[2]} latency=${BASH_REMATCH[6]} kus=${BASH_REMATCH[4]}
	expect "$err_fd" 'target exited' "$wpid" "fh-bpf (see $log)" "$logfd"
	reap "$TPID"
	exec 2>&"$ERR"
	reap "$wpid"
	((REAP_RC == 3)) || note "fh-bpf exited with status $REAP_RC (expected 3)"
	close_fds "$err_fd" "$logfd"
	printf '  %-44s %8s ms (cold, one event; %s us/thread in kernel, %s stack bytes)  %s/%s threads; target not stopped\n' \
		"fh-bpf, kill -SEGV PID -> printed" "$(f1 "$latency")" "$(f2 "$kus")" "$sbytes" "$got" "$n"
	((sbytes > 0)) || note "fh-bpf copied no stack bytes: its tracebacks are cut short, the time is not comparable (see $tbs)"
	echo "  fh-bpf : $FH -p PID -v --ready-fd 4 -o $tbs 2>ERR_FIFO 4>ERR_FIFO, then kill -SEGV PID (timed from delivery)"
	echo "  raw    : $RES/compare-$n.*"
	echo "  reproduce: $SELF compare $n"
	echo
	row 5 "fh-bpf: kill -SEGV -> printed (cold, no stop)" "$n" "$(f1 "$latency") ms" "" "" "$SELF compare $n"
}

# Figure 11: the BPF peers on the job "every thread's stack, now".  bpftrace
# samples on-CPU stacks (profile:hz) and walks frame pointers; BCC's
# profile compiles its C with LLVM against the running kernel's headers at
# start.  The harness installs them from Debian (bpftrace, bpfcc-tools) when
# they are missing, as it does python3.11-dbg for figure 8.
need_pkg()
{
	local pkg=$1
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed' && return 0
	note "$pkg is not installed; figure 11 installs it: apt-get install -y $pkg"
	if ! apt-get install -y --no-install-recommends "$pkg" >>"$RES/apt-get.log" 2>&1; then
		apt-get update >>"$RES/apt-get.log" 2>&1 || true
		apt-get install -y --no-install-recommends "$pkg" >>"$RES/apt-get.log" 2>&1 || true
	fi
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed'
}

other_tools()
{
	local n=10 d t0 wall shown frames
	need_pkg bpftrace || note "bpftrace could not be installed (see $RES/apt-get.log)"
	need_pkg bpfcc-tools || note "bpfcc-tools could not be installed (see $RES/apt-get.log)"
	d=$(mktemp -d "$TMP/peers.XXXX")
	echo "[BPF peers] the stacks of $CRASH --threads $((n - 1)) --spinners 1 --auto wait ($n threads, one on a CPU)"
	start_target_shape "$d" --threads $((n - 1)) --spinners 1
	if command -v bpftrace >/dev/null; then
		local prog="profile:hz:99 /pid == $TPID/ { @[tid, ustack(16)] = count(); } interval:s:1 { exit(); }"
		t0=${EPOCHREALTIME/./}
		bpftrace -e "$prog" >"$RES/peers.bpftrace.txt" 2>&1 || note "bpftrace exited with status $?"
		wall=$(ms_since "$t0")
		shown=$(sed -nE 's/^@\[([0-9]+), *$/\1/p' "$RES/peers.bpftrace.txt" | sort -u | wc -l)
		frames=$(grep -cE '^ +park_spin\+|^ +worker_main\+' "$RES/peers.bpftrace.txt" || true)
		echo "  bpftrace -e '$prog'"
		echo "    wall $(f1 "$wall") ms (1 s of sampling); threads shown: $shown of $n (on-CPU only);" \
			"frames naming park_spin/worker_main: $frames (frame-pointer walk: -O2 code without"
		echo "    frame pointers gives one good frame, then garbage); raw: $RES/peers.bpftrace.txt"
		row 11 "bpftrace profile 1 s: threads shown" "$n" "$shown of $n" "" "" "$SELF peers"
		row 11 "bpftrace profile 1 s: wall" "$n" "$(f1 "$wall") ms" "" "" "$SELF peers"
	else
		echo "  bpftrace: not installed, and could not be (see $RES/apt-get.log)"
	fi
	local bcc=/usr/sbin/profile-bpfcc
	if [[ -x $bcc ]]; then
		t0=${EPOCHREALTIME/./}
		local rc=0
		"$bcc" -U -f -p "$TPID" 1 >"$RES/peers.bcc.txt" 2>&1 || rc=$?
		wall=$(ms_since "$t0")
		if ((rc)); then
			echo "  $bcc -U -f -p PID 1: failed after $(f1 "$wall") ms (status $rc): $(grep -m1 -iE 'kernel headers|error' "$RES/peers.bcc.txt" || echo '?')"
			echo "    (BCC compiles its BPF C with LLVM at run time, against the running kernel's headers; fh-bpf"
			echo "    ships compiled CO-RE objects and needs only BTF); raw: $RES/peers.bcc.txt"
			row 11 "BCC profile-bpfcc: runs here?" "$n" "no (status $rc)" "" "" "$SELF peers"
		else
			shown=$(wc -l <"$RES/peers.bcc.txt")
			echo "  $bcc -U -f -p PID 1: wall $(f1 "$wall") ms, $shown folded stacks; raw: $RES/peers.bcc.txt"
			row 11 "BCC profile-bpfcc 1 s: wall" "$n" "$(f1 "$wall") ms" "" "" "$SELF peers"
		fi
	else
		echo "  BCC: not installed, and could not be (see $RES/apt-get.log)"
	fi
	stop_target "$TPID"
	echo
}

# --- figures 6, 7, 8: Python targets -----------------------------------------
PY_TARGET=tests/targets/py_target.py
PYTHONS=(/root/.pyenv/versions/3.11.7/bin/python3 /usr/bin/python3.11)
PY_GDB=/usr/bin/python3.11 # the interpreter gdb's py-bt is timed on
PY_DBG_PKG=python3.11-dbg   # its gdb extension and debug symbols
PY_DBG_OK=                  # yes once PY_DBG_PKG is known to be installed
PY_DBG_NOTE=
PY_CRASHES_DEFAULT=5
PY_DUMPS_DEFAULT=10
CAPTURE_RE='capture: ([0-9]+) record bytes; Python: ([0-9]+) threads, ([0-9]+) code objects'
DUMPED_RE='dumped ([0-9]+) Python threads in ([0-9.]+) ms'

# py_label PY: "3.11.7 pyenv", "3.11.2 Debian", in PY_LABEL.
py_label()
{
	local py=$1 v
	v=$("$py" -c 'import platform; print(platform.python_version())') || die "$py does not run"
	case $py in
	*/.pyenv/*) PY_LABEL="$v pyenv" ;;
	/usr/bin/*) PY_LABEL="$v Debian" ;;
	*) PY_LABEL=$v ;;
	esac
}

# wait_exit PID WHAT: give PID (exiting by itself) LIMIT seconds, then SIGKILL
# it.  (The poll is a time limit, not a synchronisation.)
wait_exit()
{
	local pid=$1 deadline=$((SECONDS + LIMIT))
	while alive "$pid" && ((SECONDS < deadline)); do sleep 0.02; done
	alive "$pid" || return 0
	note "$2 (pid $pid) did not exit within ${LIMIT}s: killed"
	kill -KILL "$pid" 2>/dev/null || true
}

# ms_since T0: milliseconds from T0 (an EPOCHREALTIME without its dot) to now.
ms_since() { local t1=${EPOCHREALTIME/./}; awk -v d=$((t1 - $1)) 'BEGIN { print d / 1000 }'; }

# py_start_target PY MODE N DIR LOG: PY py_target.py DIR/fault MODE N, stdin
# from the fifo DIR/go (go_fd), stdout on the fifo DIR/out (out_fd), both
# opened here into the caller's variables; stderr appended to LOG.  Sets
# TPID once the target has printed "ready".
py_start_target()
{
	local py=$1 mode=$2 n=$3 d=$4 log=$5
	open_fifos "$d" go out
	(exec <"$d/go" >"$d/out" 2>>"$log" && close_fifo_fds && exec "$py" "$PY_TARGET" "$d/fault" "$mode" "$n") &
	TPID=$!
	CHILDREN+=("$TPID")
	expect "$out_fd" '^ready$' "$TPID" "$py $PY_TARGET (see $log)"
}

bench_py_crash()
{
	local py=$1 n=$2 runs=$3 tag d log tlog tbs fhs logfd i wpid got
	local go_fd='' out_fd='' err_fd='' # set by open_fifos
	local kev=() kthr=() rbytes=() sbytes=() lat=() sym=() pythr=() codes=() same=0
	py_label "$py"
	local label=$PY_LABEL
	tag=py-crash-${label// /-}-$n
	log=$RES/$tag.fh-bpf.log tlog=$RES/$tag.target.log
	tbs=$RES/$tag.tracebacks.txt fhs=$RES/$tag.faulthandler.txt
	rm -f "$log" "$tlog" "$tbs" "$fhs"
	echo "[python crash, $label, threads=$n+1] $runs processes of $py, one SIGSEGV each"
	for ((i = 1; i <= runs; i++)); do
		d=$(mktemp -d "$TMP/$tag.XXXX")
		py_start_target "$py" segv "$n" "$d" "$tlog"
		open_fifos "$d" err
		exec {logfd}>>"$log"
		(exec 4>"$d/err" 2>"$d/err" && close_fifo_fds && exec "$FH" -p "$TPID" -v --ready-fd 4 -o "$d/tb") &
		wpid=$!
		CHILDREN+=("$wpid")
		expect "$err_fd" '^ready$' "$wpid" "fh-bpf (see $log)" "$logfd"
		exec 2>/dev/null # bash would report the target's death ("Segmentation fault")
		echo crash >&"$go_fd"
		got=0
		while expect "$err_fd" 'fh-bpf: (timing|capture): |target exited' "$wpid" "fh-bpf (see $log)" "$logfd"; do
			if [[ $LINE =~ $TIMING_RE ]]; then
				got=${BASH_REMATCH[1]}
				sbytes+=("${BASH_REMATCH[2]}")
				kev+=("${BASH_REMATCH[3]}")
				kthr+=("${BASH_REMATCH[4]}")
				sym+=("${BASH_REMATCH[5]}")
				lat+=("${BASH_REMATCH[6]}")
			elif [[ $LINE =~ $CAPTURE_RE ]]; then
				rbytes+=("${BASH_REMATCH[1]}")
				pythr+=("${BASH_REMATCH[2]}")
				codes+=("${BASH_REMATCH[3]}")
			else
				break
			fi
		done
		reap "$TPID"
		exec 2>&"$ERR"
		((REAP_RC == 128 + 11)) || note "the target exited with status $REAP_RC (expected $((128 + 11)): SIGSEGV; see $tlog)"
		reap "$wpid"
		((REAP_RC == 3)) || note "fh-bpf exited with status $REAP_RC (expected 3: fatal signals printed)"
		close_fds "$go_fd" "$out_fd" "$err_fd" "$logfd"
		((got == n + 1)) || note "crash $i: fh-bpf captured $got threads, not $((n + 1)) (see $log)"
		grep -v '^fh-bpf:' "$d/tb" | cmp -s - "$d/fault" && ((++same))
		cat "$d/tb" >>"$tbs"
		cat "$d/fault" >>"$fhs"
	done
	((${#kev[@]} == runs)) || die "expected $runs timing lines in $log, found ${#kev[@]}"

	local k_med r_med
	k_med=$(lines "${kev[@]}" | median)
	echo "  target : $py $PY_TARGET FAULT_FILE segv $n <GO_FIFO >OUT_FIFO   (\"ready\", then SIGSEGV on a line from GO_FIFO)"
	echo "  watcher: $FH -p TARGET_PID -v --ready-fd 4 -o FILE 2>ERR_FIFO 4>ERR_FIFO   (a new one per crash)"
	echo "  kernel capture  : median $(f1 "$k_med") us/event (range $(lines "${kev[@]}" | range1)), $(f2 "$(lines "${kthr[@]}" | median)") us/thread (range $(lines "${kthr[@]}" | range2))"
	if ((${#rbytes[@]})); then
		r_med=$(lines "${rbytes[@]}" | median)
		echo "  bytes per event : median $(printf '%.0f' "$r_med") record bytes (range $(lines "${rbytes[@]}" | minmax)), of which $(printf '%.0f' "$(lines "${sbytes[@]}" | median)") stack bytes;" \
			"$(lines "${pythr[@]}" | median) Python threads, $(lines "${codes[@]}" | median) code objects"
	else
		r_med=nan
		echo "  bytes per event : no \"capture:\" line from this fh-bpf; $(printf '%.0f' "$(lines "${sbytes[@]}" | median)") stack bytes (median)"
	fi
	echo "  signal->printed : median $(f2 "$(lines "${lat[@]}" | median)") ms (range $(lines "${lat[@]}" | range2)), cold: a new fh-bpf per crash;" \
		"symbolised in $(f2 "$(lines "${sym[@]}" | median)") ms"
	echo "  tracebacks      : $same/$runs identical to the target's own faulthandler output (fh-bpf: lines aside)"
	echo "  raw             : $log, $tbs, $fhs"
	echo "  reproduce       : $SELF python $n $PY_CRASHES $PY_DUMPS"
	echo
	local repro="$SELF python $n $PY_CRASHES $PY_DUMPS" what="py $label crash"
	row 6 "$what: kernel capture/event (median of $runs)" "$n+1" "$(f1 "$k_med") us" "" "" "$repro"
	row 6 "$what: kernel capture/thread (median of $runs)" "$n+1" "$(f2 "$(lines "${kthr[@]}" | median)") us" "" "" "$repro"
	row 6 "$what: record bytes/event (median of $runs)" "$n+1" "$(printf '%.0f' "$r_med") B" "" "" "$repro"
	row 6 "$what: signal -> printed, cold (median of $runs)" "$n+1" "$(f2 "$(lines "${lat[@]}" | median)") ms" "" "" "$repro"
}

# need_py_dbg: make sure python3.11-dbg (py-bt) is installed; false if not.
need_py_dbg()
{
	local st
	st=$(dpkg-query -W -f='${Status} ${Version}' "$PY_DBG_PKG" 2>/dev/null || true)
	if [[ $st != "install ok installed "* ]]; then
		note "$PY_DBG_PKG is not installed; figure 8 requires it: apt-get install -y $PY_DBG_PKG"
		if ! apt-get install -y "$PY_DBG_PKG" >"$RES/apt-get.log" 2>&1; then
			apt-get update >>"$RES/apt-get.log" 2>&1 || true
			apt-get install -y "$PY_DBG_PKG" >>"$RES/apt-get.log" 2>&1 || true
		fi
		st=$(dpkg-query -W -f='${Status} ${Version}' "$PY_DBG_PKG" 2>/dev/null || true)
		[[ $st == "install ok installed "* ]] || { PY_DBG_NOTE="$PY_DBG_PKG could not be installed (see $RES/apt-get.log)"; return 1; }
		PY_DBG_NOTE="requires $PY_DBG_PKG: installed it now, version ${st##* }"
		return 0
	fi
	PY_DBG_NOTE="requires $PY_DBG_PKG (gdb's py-bt and the interpreter's debug symbols): installed, version ${st##* }"
}

bench_py_dump()
{
	local py=$1 n=$2 runs=$3 tag d log tlog i t0 rc same=0 wall=() took=() got=()
	local go_fd='' out_fd='' # set by open_fifos
	py_label "$py"
	local label=$PY_LABEL
	tag=py-dump-${label// /-}-$n
	log=$RES/$tag.fh-bpf.log tlog=$RES/$tag.target.log
	rm -f "$log" "$tlog" "$RES/$tag".*.txt
	echo "[python --dump, $label, threads=$n+1] $runs runs of fh-bpf --dump on one live target"
	d=$(mktemp -d "$TMP/$tag.XXXX")
	py_start_target "$py" dump "$n" "$d" "$tlog"
	echo dump >&"$go_fd"
	expect "$out_fd" '^dumped$' "$TPID" "$py $PY_TARGET (see $tlog)"
	cp "$d/fault" "$RES/$tag.faulthandler.txt"
	for ((i = 1; i <= runs; i++)); do
		rc=0
		t0=${EPOCHREALTIME/./}
		"$FH" -p "$TPID" --dump -v -o "$d/dump" 2>"$d/err" || rc=$?
		wall+=("$(ms_since "$t0")")
		cat "$d/err" >>"$log"
		((rc == 0)) || note "fh-bpf --dump exited with status $rc (see $log)"
		LINE=$(grep -E "$DUMPED_RE" "$d/err" || true)
		[[ $LINE =~ $DUMPED_RE ]] || die "no 'dumped' line from fh-bpf --dump -v (see $log)"
		got+=("${BASH_REMATCH[1]}")
		took+=("${BASH_REMATCH[2]}")
		grep -v '^fh-bpf:' "$d/dump" | cmp -s - "$d/fault" && ((++same))
		mv "$d/dump" "$RES/$tag.dump.txt" # the last one is kept
	done
	local t_med w_med
	t_med=$(lines "${took[@]}" | median)
	w_med=$(lines "${wall[@]}" | median)
	echo "  target : $py $PY_TARGET FAULT_FILE dump $n <GO_FIFO >OUT_FIFO   (\"ready\"; a line: its own dump, \"dumped\")"
	echo "  each   : $FH -p TARGET_PID --dump -v -o FILE   (the target is not stopped)"
	echo "  \"dumped in\" : median $(f2 "$t_med") ms (range $(lines "${took[@]}" | range2)), $(lines "${got[@]}" | median) Python threads"
	echo "  wall        : median $(f1 "$w_med") ms (range $(lines "${wall[@]}" | range1)): start, attach, read, render, exit"
	echo "  dumps       : $same/$runs identical to the target's own faulthandler.dump_traceback"
	local repro="$SELF python $n $PY_CRASHES $PY_DUMPS" what="py $label --dump"
	row 7 "$what: \"dumped in\" (median of $runs)" "$n+1" "$(f2 "$t_med") ms" "" "" "$repro"
	row 7 "$what: wall, no stop (median of $runs)" "$n+1" "$(f1 "$w_med") ms" "" "" "$repro"

	if [[ $py == "$PY_GDB" ]]; then
		py_gdb "$n" "$label" "$tag" "$repro" "$w_med"
	fi
	echo "  raw         : $RES/$tag.*"
	echo "  reproduce   : $repro"
	echo
	echo exit >&"$go_fd" # the target reads its second line and exits
	wait_exit "$TPID" "the --dump target"
	reap "$TPID"
	((REAP_RC == 0)) || note "the --dump target exited with status $REAP_RC (expected 0; see $tlog)"
	close_fds "$go_fd" "$out_fd"
}

# py_gdb N LABEL TAG REPRO FH_WALL: gdb's py-bt on the live target TPID, which
# is parked after its dump (figure 8).
py_gdb()
{
	local n=$1 label=$2 tag=$3 repro=$4 fh_wall=$5 out i t0 rc walls=() med
	echo "  gdb py-bt on the same target (stops every thread while it runs); wall time of $TOOL_RUNS runs:"
	if ! command -v gdb >/dev/null; then
		echo "  gdb: not installed"
		return 0
	fi
	if [[ $PY_DBG_OK != yes ]]; then
		echo "  gdb py-bt: not measured: $PY_DBG_NOTE"
		return 0
	fi
	out=$RES/$tag.gdb-py-bt.txt
	for ((i = 1; i <= TOOL_RUNS; i++)); do
		rc=0
		t0=${EPOCHREALTIME/./}
		gdb -p "$TPID" -batch -ex "thread apply all py-bt" </dev/null >"$out" 2>&1 || rc=$?
		walls+=("$(ms_since "$t0")")
		((rc == 0)) || note "gdb exited with status $rc (see $out)"
	done
	med=$(lines "${walls[@]}" | median)
	local threads tbs files builtin exc unable noline fh_files
	threads=$(grep -cE '^Thread [0-9]+ ' "$out" || true)
	tbs=$(grep -c '^Traceback (most recent call first):' "$out" || true)
	files=$(grep -cE '^ +File "' "$out" || true)
	builtin=$(grep -cE '^ +<built-in ' "$out" || true)
	exc=$(grep -c 'Python Exception' "$out" || true)
	unable=$(grep -c 'Unable to locate python frame' "$out" || true)
	noline=$(grep -cE '^ +File ".*", line \?' "$out" || true)
	fh_files=$(grep -cE '^ +File "' "$RES/$tag.dump.txt" || true)
	printf '  %-50s %8s ms median  (%s)\n' 'gdb -p PID -batch -ex "thread apply all py-bt"' "$(f1 "$med")" \
		"$(for w in "${walls[@]}"; do printf '%s ' "$(f1 "$w")"; done | sed 's/ $//')"
	printf '  %-50s %8s ms median  (figure 7, same target, not stopped)\n' "fh-bpf -p PID --dump" "$(f1 "$fh_wall")"
	echo "  $PY_DBG_NOTE"
	echo "  gdb output  : $threads/$((n + 1)) threads, $tbs with a \"Traceback (most recent call first):\"," \
		"$files 'File \"...\"' frame lines (fh-bpf --dump: $fh_files; faulthandler, hence fh-bpf, stops at 100"
	echo "                frames a thread, py-bt does not) plus $builtin '<built-in ...>' lines; $exc \"Python Exception\"," \
		"$unable \"Unable to locate python frame\"; $noline with \"line ?\" (gdb found no line number)"
	echo "  gdb sample (the main thread, thread 1):"
	awk '/^Thread 1 /{ p = 1 } p && /^$/ { exit } p' "$out" | head -n 8 | sed 's/^/    | /'
	row 8 "gdb py-bt, py $label (stops target, median of $TOOL_RUNS)" "$n+1" "$(f1 "$med") ms" "" "" "$repro"
	row 8 "fh-bpf --dump, same target (no stop, median of ${PY_DUMPS})" "$n+1" "$(f1 "$fh_wall") ms" "" "" "$repro"
}

# bench_python N CRASHES DUMPS: figures 6, 7, 8 for one worker count.
bench_python()
{
	local n=$1 crashes=${2:-$PY_CRASHES_DEFAULT} dumps=${3:-$PY_DUMPS_DEFAULT} py pys=()
	((n >= 1 && crashes >= 1 && dumps >= 1)) || die "THREADS, CRASHES and DUMPS must be at least 1"
	[[ -f $PY_TARGET ]] || die "$PY_TARGET missing"
	for py in "${PYTHONS[@]}"; do
		if [[ -x $py ]]; then pys+=("$py"); else echo "[python, threads=$n+1] $py: not installed, skipped"; fi
	done
	((${#pys[@]})) || { echo; return 0; }
	PY_CRASHES=$crashes PY_DUMPS=$dumps # for the reproduce commands
	# Figure 8's prerequisite, installed (if need be) before any target runs.
	if [[ -z $PY_DBG_OK ]]; then
		PY_DBG_OK=no
		if [[ " ${pys[*]} " == *" $PY_GDB "* ]] && command -v gdb >/dev/null; then
			need_py_dbg && PY_DBG_OK=yes
		fi
	fi
	for py in "${pys[@]}"; do bench_py_crash "$py" "$n" "$crashes"; done
	for py in "${pys[@]}"; do bench_py_dump "$py" "$n" "$dumps"; done
}

# --- summary ---------------------------------------------------------------
# --- figures 9, 10, 11: live dumps of running processes ----------------------
LIVE_DUMPS_DEFAULT=11 # SIGUSR1 dumps per target: 1 cold + 10 warm
THROUGHPUT_SECONDS=3  # each counting run
THROUGHPUT_RUNS=9     # alternating watched / not watched
AIM_SLOWDOWN_PCT=1    # the target's throughput while dumped every 10 ms
LIVE_RE='live dump: iterator ([0-9.]+) us, ([0-9]+) running threads sampled in ([0-9.]+) ms'
LTIMING_RE='timing: ([0-9]+) threads, ([0-9]+) stack bytes, live capture ([0-9.]+) us \(([0-9.]+) us/thread\), symbolized in ([0-9.]+) ms, dump to printed ([0-9.]+) ms'
PTIMING_RE='timing: ([0-9]+) Python threads read from memory in ([0-9.]+) ms, dump to printed ([0-9.]+) ms'

# live_watch KIND N DIR LOG: fh-bpf -p TPID -v on the fifo DIR/err (err_fd),
# armed; sets WPID.
live_watch()
{
	local n=$1 d=$2 log=$3 logfd=$4 maxt=256
	((n > maxt)) && maxt=$n
	open_fifos "$d" err
	(exec 4>"$d/err" 2>"$d/err" && close_fifo_fds &&
		exec "$FH" -p "$TPID" -v --no-signal --max-threads "$maxt" --ready-fd 4 -o "$d/dumps") &
	WPID=$!
	CHILDREN+=("$WPID")
	expect "$err_fd" '^ready$' "$WPID" "fh-bpf (see $log)" "$logfd"
}

# oneshot_dump N: wall time of `fh-bpf -p TPID --dump` (BPF load, capture,
# symbols, print, exit), median of TOOL_RUNS, in ONESHOT.
oneshot_dump()
{
	local n=$1 maxt=256 i t0 walls=()
	((n > maxt)) && maxt=$n
	for ((i = 1; i <= TOOL_RUNS; i++)); do
		t0=${EPOCHREALTIME/./}
		"$FH" -p "$TPID" --dump --max-threads "$maxt" -o "$TMP/oneshot.txt" 2>>"$TMP/oneshot.err" ||
			note "fh-bpf --dump exited with status $? (see $TMP/oneshot.err)"
		walls+=("$(ms_since "$t0")")
	done
	ONESHOT=$(lines "${walls[@]}" | median)
}

bench_live()
{
	local n=$1 dumps=${2:-$LIVE_DUMPS_DEFAULT}
	local tag=live-$n d log logfd i got err_fd='' pin_fd='' pout_fd=''
	local iter=() per=() sampled=() sample_ms=() printed=() bytes=()
	d=$(mktemp -d "$TMP/$tag.XXXX")
	log=$RES/$tag.fh-bpf.log
	rm -f "$log"
	exec {logfd}>"$log"
	local shape=(--threads 1)
	((n > 1)) && shape=(--threads $((n - 1)) --spinners 1)
	echo "[live dump, native, threads=$n] $CRASH ${shape[*]} --auto wait: $((n > 1 ? n - 1 : 1)) blocked, $((n > 1 ? 1 : 0)) spinning in a C loop"
	start_target_shape "$d" "${shape[@]}"
	live_watch "$n" "$d" "$log" "$logfd"
	for ((i = 1; i <= dumps; i++)); do
		kill -USR1 "$WPID"
		expect "$err_fd" 'fh-bpf: live dump: ' "$WPID" "fh-bpf (see $log)" "$logfd"
		[[ $LINE =~ $LIVE_RE ]] || die "unexpected line: $LINE"
		iter+=("${BASH_REMATCH[1]}")
		sampled+=("${BASH_REMATCH[2]}")
		sample_ms+=("${BASH_REMATCH[3]}")
		expect "$err_fd" 'fh-bpf: timing: ' "$WPID" "fh-bpf (see $log)" "$logfd"
		[[ $LINE =~ $LTIMING_RE ]] || die "unexpected timing line: $LINE"
		got=${BASH_REMATCH[1]}
		((got == n)) || note "dump $i captured $got of $n threads (see $log)"
		bytes+=("${BASH_REMATCH[2]}")
		per+=("$(awk -v us="${iter[-1]}" -v n="$got" 'BEGIN { printf "%.2f", us / n }')")
		printed+=("${BASH_REMATCH[6]}")
		thread_lines "$got" "$err_fd" "$WPID" "$log" "$logfd"
		sleep "$SPACING"
	done
	kill -TERM "$WPID"
	expect "$err_fd" 'detached from' "$WPID" "fh-bpf (see $log)" "$logfd"
	reap "$WPID"
	close_fds "$err_fd"
	oneshot_dump "$n"
	local it_med per_med s_med cold warm
	it_med=$(lines "${iter[@]:1}" | median)
	per_med=$(lines "${per[@]:1}" | median)
	s_med=$(lines "${sample_ms[@]:1}" | median)
	cold=${printed[0]}
	warm=$(lines "${printed[@]:1}" | median)
	echo "  watcher  : $FH -p PID -v --no-signal --max-threads $((n > 256 ? n : 256)) -o FILE, then kill -USR1 WATCHER, $dumps times"
	echo "  iterator (us, all threads)   : median $(f1 "$it_med") ($(f2 "$per_med") us/thread), range $(lines "${iter[@]:1}" | range1)"
	echo "  running threads sampled      : $(lines "${sampled[@]}" | sort | uniq -c | awk '{ printf "%s dumps: %s  ", $1, $2 }')median wait $(f2 "$s_med") ms"
	echo "  dump -> printed (ms)         : cold $(f1 "$cold"), warm median $(f1 "$warm") (range $(lines "${printed[@]:1}" | range1))"
	echo "  stack bytes per dump         : median $(lines "${bytes[@]}" | median)"
	echo "  fh-bpf --dump, whole command : $(f1 "$ONESHOT") ms median of $TOOL_RUNS (BPF load, capture, symbols, print)"
	echo "  raw: $log;  reproduce: $SELF live $n"
	row 9 "live dump, native: capture (iterator + samples)" "$n" "$(f2 "$(awk -v a="$it_med" -v b="$s_med" 'BEGIN { print a / 1000 + b }')") ms" "" "" "$SELF live $n"
	row 9 "live dump, native: SIGUSR1 -> printed, warm" "$n" "$(f1 "$warm") ms" "" "" "$SELF live $n"
	row 9 "live dump, native: fh-bpf --dump, whole command" "$n" "$(f1 "$ONESHOT") ms" "" "" "$SELF live $n"
	# The ptrace peers on the same target.
	if command -v eu-stack >/dev/null; then
		time_tool 9 "$SELF live $n" eu-stack-live "$n" '^TID ' "eu-stack -p PID" "eu-stack -p" \
			eu-stack -p "$TPID"
	fi
	if command -v gdb >/dev/null; then
		time_tool 9 "$SELF live $n" gdb-live "$n" '^Thread [0-9]+ ' \
			'gdb -p PID -batch -ex "thread apply all bt"' "gdb thread apply all bt" \
			gdb -p "$TPID" -batch -ex "thread apply all bt"
	fi
	stop_target "$TPID"

	# Python: count_loop.py parked (N-1 threads asleep, main in readline).
	local py=${PYTHONS[0]}
	[[ -x $py ]] || { note "$py missing: no Python live figure"; echo; return; }
	py_label "$py"
	local plog=$RES/$tag.python.fh-bpf.log pread=() pprinted=() pgot
	d=$(mktemp -d "$TMP/$tag-py.XXXX")
	exec {logfd}>"$plog"
	echo "[live dump, Python $PY_LABEL, threads=$n] bench/count_loop.py 0 $n: $((n - 1)) threads in time.sleep, main in readline"
	open_fifos "$d" pin pout
	(exec <"$d/pin" >"$d/pout" && close_fifo_fds && exec "$py" bench/count_loop.py 0 "$n") &
	TPID=$!
	CHILDREN+=("$TPID")
	expect "$pout_fd" '^ready$' "$TPID" count_loop.py
	live_watch "$n" "$d" "$plog" "$logfd"
	for ((i = 1; i <= dumps; i++)); do
		kill -USR1 "$WPID"
		expect "$err_fd" 'fh-bpf: timing: ' "$WPID" "fh-bpf (see $plog)" "$logfd"
		[[ $LINE =~ $PTIMING_RE ]] || die "unexpected timing line: $LINE"
		pgot=${BASH_REMATCH[1]}
		pread+=("${BASH_REMATCH[2]}")
		pprinted+=("${BASH_REMATCH[3]}")
		expect "$err_fd" 'fh-bpf: capture: ' "$WPID" "fh-bpf (see $plog)" "$logfd"
		sleep "$SPACING"
	done
	kill -TERM "$WPID"
	expect "$err_fd" 'detached from' "$WPID" "fh-bpf (see $plog)" "$logfd"
	reap "$WPID"
	close_fds "$err_fd"
	oneshot_dump "$n"
	stop_target "$TPID"
	close_fds "$pin_fd" "$pout_fd"
	local r_med p_med
	r_med=$(lines "${pread[@]:1}" | median)
	p_med=$(lines "${pprinted[@]:1}" | median)
	echo "  Python threads per dump      : $pgot (faulthandler's limit: 100, plus the '...' line)"
	echo "  read from memory (ms)        : median $(f2 "$r_med"), range $(lines "${pread[@]:1}" | range2)"
	echo "  dump -> printed (ms)         : cold $(f2 "${pprinted[0]}"), warm median $(f2 "$p_med")"
	echo "  fh-bpf --dump, whole command : $(f1 "$ONESHOT") ms median of $TOOL_RUNS"
	echo "  raw: $plog;  reproduce: $SELF live $n"
	echo
	row 9 "live dump, Python $PY_LABEL: SIGUSR1 -> printed" "$n" "$(f2 "$p_med") ms" "" "" "$SELF live $n"
	row 9 "live dump, Python $PY_LABEL: --dump, whole command" "$n" "$(f1 "$ONESHOT") ms" "" "" "$SELF live $n"
}

# count_run CMD...: one run of a counting target (stdin/stdout on fifos);
# RATE is its iterations per second.  With WATCH set, fh-bpf --timeout 0.01
# --repeat watches it; with PEER set, that command is run back to back on
# it while it counts.  With two CPUs or more the target runs on CPU 1 and
# the watcher or peer on CPU 0, the same in every run, to keep scheduler
# noise out of the comparison.
PIN_TARGET=() PIN_WATCHER=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
	PIN_TARGET=(taskset -c 1) PIN_WATCHER=(taskset -c 0)
fi

# bpf_run_time: "RUNS NS" of the newest live_sample program (the samplers:
# they run on the target's CPU), from the kernel's BPF statistics
# (kernel.bpf_stats_enabled).  The watcher is the only fh-bpf running; this
# bpftool cannot tell programs by process.
bpf_run_time()
{
	bpftool prog show --json 2>/dev/null | python3 -c '
import json, sys
progs = [p for p in json.load(sys.stdin) if p.get("name") == "live_sample"]
p = max(progs, key=lambda p: p["id"]) if progs else {}
print(p.get("run_cnt", 0), p.get("run_time_ns", 0))'
}

# peer_run NAME PID: one run of a ptrace-based peer on PID.
peer_run()
{
	case $1 in
	eu-stack) "${PIN_WATCHER[@]}" eu-stack -p "$2" ;;
	gdb) "${PIN_WATCHER[@]}" gdb -p "$2" -batch -ex "thread apply all bt" ;;
	esac
}

count_run()
{
	local d cpid wpid ppid in_fd='' cout_fd='' err_fd=''
	d=$(mktemp -d "$TMP/count.XXXX")
	open_fifos "$d" in cout
	(exec <"$d/in" >"$d/cout" && close_fifo_fds && exec "${PIN_TARGET[@]}" "$@") &
	cpid=$!
	CHILDREN+=("$cpid")
	expect "$cout_fd" '^ready$' "$cpid" "$1"
	TPID=$cpid
	if [[ -n ${WATCH:-} ]]; then
		open_fifos "$d" err
		(exec 4>"$d/err" 2>"$d/err" && close_fifo_fds &&
			exec "${PIN_WATCHER[@]}" "$FH" -p "$cpid" --no-signal --timeout 0.01 --repeat \
				--ready-fd 4 -o "$d/dumps") &
		wpid=$!
		CHILDREN+=("$wpid")
		expect "$err_fd" '^ready$' "$wpid" "fh-bpf"
	fi
	if [[ -n ${PEER:-} ]]; then
		(close_fifo_fds; while kill -0 "$cpid" 2>/dev/null; do
			peer_run "$PEER" "$cpid" >/dev/null 2>&1; done) &
		ppid=$!
		CHILDREN+=("$ppid")
	fi
	[[ -n ${WATCH:-} ]] && sysctl -q -w kernel.bpf_stats_enabled=1
	echo go >&"$in_fd"
	expect "$cout_fd" '^rate ' "$cpid" "$1"
	RATE=${LINE#rate }
	BPF_STATS=
	[[ -n ${WATCH:-} ]] && BPF_STATS=$(bpf_run_time)
	close_fds "$in_fd" # the target exits
	reap "$cpid"
	DUMPS=0
	if [[ -n ${WATCH:-} ]]; then
		expect "$err_fd" 'target exited' "$wpid" "fh-bpf"
		reap "$wpid"
		DUMPS=$(grep -c '^Timeout (' "$d/dumps" || true)
		close_fds "$err_fd"
	fi
	[[ -n ${PEER:-} ]] && reap "$ppid"
	close_fds "$cout_fd"
}

# throughput KIND CMD...: THROUGHPUT_RUNS pairs of runs, not watched and
# watched (fh-bpf --timeout 0.01 --repeat) alternately; then one run under
# each ptrace peer run back to back.
throughput()
{
	local kind=$1 base=() watched=() dumps=() i b w slow
	shift
	echo "[throughput, $kind] $* : iterations/s over ${THROUGHPUT_SECONDS}s, $THROUGHPUT_RUNS runs each, alternating"
	local runs_ns=()
	for ((i = 1; i <= THROUGHPUT_RUNS; i++)); do
		WATCH= PEER= count_run "$@"
		base+=("$RATE")
		WATCH=1 PEER= count_run "$@"
		watched+=("$RATE")
		dumps+=("$DUMPS")
		runs_ns+=("$BPF_STATS")
	done
	sysctl -q -w kernel.bpf_stats_enabled=0
	b=$(lines "${base[@]}" | median)
	w=$(lines "${watched[@]}" | median)
	slow=$(awk -v b="$b" -v w="$w" 'BEGIN { printf "%.2f", (b - w) * 100 / b }')
	echo "  not watched        : median $(awk -v v="$b" 'BEGIN { printf "%.4g", v }')/s  ($(lines "${base[@]}" | awk '{ printf "%.4g ", $1 }'))"
	echo "  dumped every 10 ms : median $(awk -v v="$w" 'BEGIN { printf "%.4g", v }')/s  ($(lines "${watched[@]}" | awk '{ printf "%.4g ", $1 }'))  -> slowdown $slow %"
	echo "  run-to-run spread  : not watched $(lines "${base[@]}" | spread) %, watched $(lines "${watched[@]}" | spread) % ((max - min) / median: a slowdown below it is noise)"
	echo "  dumps per run      : ${dumps[*]} (of $((THROUGHPUT_SECONDS * 100)) timeouts: the rest were skipped while a dump was being taken, and said so)"
	# The samplers' time, whatever the noise: an upper bound of what the
	# target's CPU gave to fh-bpf (the iterator runs on fh-bpf's).
	local share
	share=$(lines "${runs_ns[@]}" | awk -v s="$THROUGHPUT_SECONDS" '{ n += $1; t += $2; k++ }
		END { printf "%.0f ticks, %.1f us in all per run: %.3f %% of one CPU", n / k, t / k / 1000, t / k / (s * 1e9) * 100 }')
	echo "  samplers (BPF)     : $share (kernel.bpf_stats_enabled)"
	row 10 "throughput, $kind, samplers' BPF time on CPUs" "" "$(lines "${runs_ns[@]}" | awk -v s="$THROUGHPUT_SECONDS" '{ t += $2; k++ } END { printf "%.3f %%", t / k / (s * 1e9) * 100 }')" "<= $AIM_SLOWDOWN_PCT %" "" "$SELF throughput"
	echo "  watcher            : ${PIN_WATCHER[*]:+${PIN_WATCHER[*]} }$FH -p PID --no-signal --timeout 0.01 --repeat -o FILE${PIN_TARGET[*]:+  (target: ${PIN_TARGET[*]})}"
	row 10 "throughput, $kind, dumped every 10 ms: slowdown" "" "$slow %" "<= $AIM_SLOWDOWN_PCT %" \
		"$(verdict "$slow" "$AIM_SLOWDOWN_PCT")" "$SELF throughput"
	local name
	for name in eu-stack gdb; do
		command -v "$name" >/dev/null || { echo "  $name: not installed"; continue; }
		WATCH= PEER=$name count_run "$@"
		slow=$(awk -v b="$b" -v w="$RATE" 'BEGIN { printf "%.1f", (b - w) * 100 / b }')
		echo "  $name back to back (stops the target each time): $(awk -v v="$RATE" 'BEGIN { printf "%.4g", v }')/s -> slowdown $slow %"
		row 10 "throughput, $kind, $name run back to back" "" "$slow %" "" "" "$SELF throughput"
	done
	echo "  reproduce: $SELF throughput"
	echo
}

bench_throughput()
{
	throughput native "$COUNT_LOOP" "$THROUGHPUT_SECONDS" 4
	local py=${PYTHONS[0]}
	if [[ -x $py ]]; then
		py_label "$py"
		throughput "Python $PY_LABEL" "$py" bench/count_loop.py "$THROUGHPUT_SECONDS" 4
	fi
}

# --- figures 12-15: the system-wide agent ----------------------------------
#
# 12. Idle cost: fh-bpf -a armed on this host while nothing crashes: its
#     CPU time (utime + stime from /proc/PID/stat) and the run time of its
#     BPF programs (kernel.bpf_stats_enabled) over IDLE_SECONDS.
# 13. A workload that raises and handles SIGNALS signals (bench/signal_loop:
#     each one generated, delivered and handled: both signal tracepoints
#     fire), ns a signal, SYSTEM_RUNS runs each alternating: no agent,
#     fh-bpf -a, and a bpftrace one-liner that watches signal_generate for
#     SIGSEGV (the cheapest peer that sees crashes).  Slowdown of medians.
#     Whole runs seconds apart differ here by 10 % and more, so the same
#     signals again, alternated finely (bench/signal_toggle): rounds of
#     SIGNALS/TOGGLE_ROUNDS signals with no program on signal_generate,
#     with fh-bpf's (a reference taken while the agent ran) and with one
#     that does nothing (the floor: the kernel's call of any program).
# 14. Crash -> incident written: fh-bpf -a --comm crash -v, then
#     CRASHES runs of `crash --auto --threads 4 segv` one after the other
#     (each a process never seen before that crashes ~2 ms after exec);
#     "signal to written" of each timing line (BPF stamp at the signal to
#     the record written), the first cold, the median of the others.
# 15. A burst: BURST crashers started at once under fh-bpf -a --comm crash
#     --format json --log-dir DIR; wall time from the first start to the
#     last record written, records written and lost, and the share of
#     frames symbolized (a function name) over every frame of every record.
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-10}
SIGNALS=${BENCH_SIGNALS:-1000000}
SYSTEM_RUNS=${BENCH_SYSTEM_RUNS:-11}
TOGGLE_ROUNDS=${BENCH_TOGGLE_ROUNDS:-200}
TOGGLE_CHUNK=$((SIGNALS / TOGGLE_ROUNDS))
CRASHES=21
BURST=200

# agent_start DIR ARGS...: fh-bpf -a ARGS, armed; AGENT_PID; its stderr on
# the fifo DIR/aerr (agent_fd), copied to DIR/agent.err by expect.
agent_start()
{
	local d=$1 aready_fd='' aerr_fd=''
	shift
	rm -f "$d/aready" "$d/aerr"
	open_fifos "$d" aready aerr
	(exec 4>"$d/aready" 2>"$d/aerr" && close_fifo_fds &&
		exec "${PIN_WATCHER[@]}" "$FH" -a --ready-fd 4 "$@") &
	AGENT_PID=$!
	CHILDREN+=("$AGENT_PID")
	expect "$aready_fd" '^ready$' "$AGENT_PID" "fh-bpf -a"
	close_fds "$aready_fd"
	agent_fd=$aerr_fd
}

# agent_stop: SIGTERM, then its last lines up to "watch ended"; AGENT_LOST:
# its "lost:" line, if it said one.
agent_stop()
{
	kill -TERM "$AGENT_PID"
	AGENT_LOST=
	while :; do
		expect "$agent_fd" '' "$AGENT_PID" "fh-bpf -a"
		[[ $LINE == 'fh-bpf: lost: '* ]] && AGENT_LOST=${LINE#fh-bpf: lost: }
		[[ $LINE == *'system-wide watch ended'* ]] && break
	done
	reap "$AGENT_PID"
	close_fds "$agent_fd"
}

# cpu_ms PID: utime + stime so far, in ms.
cpu_ms()
{
	local stat hz
	stat=$(cat "/proc/$1/stat") || return 1
	stat=${stat##*) }
	hz=$(getconf CLK_TCK)
	awk -v s="$stat" -v hz="$hz" 'BEGIN { split(s, f, " "); print (f[12] + f[13]) * 1000 / hz }'
}

# agent_bpf: "RUNS NS" summed over the newest fh-bpf signal and process programs.
agent_bpf()
{
	bpftool prog show --json 2>/dev/null | python3 -c '
import json, sys
names = {"on_signal_generate", "on_signal_deliver", "on_exec", "on_fork"}
newest = {}
for p in json.load(sys.stdin):
    if p.get("name") in names and p["id"] > newest.get(p["name"], {"id": -1})["id"]:
        newest[p["name"]] = p
print(sum(p.get("run_cnt", 0) for p in newest.values()),
      sum(p.get("run_time_ns", 0) for p in newest.values()))'
}

# toggle_run DIR: fh-bpf -a armed, a reference taken to its signal_generate
# program by bench/signal_toggle, the agent stopped (its link goes, the
# program stays), then TOGGLE_ROUNDS rounds of TOGGLE_CHUNK signals in each
# of three states: no program, fh-bpf's, an empty one. TOGGLE_OUT: the
# "round OFF FH EMPTY" lines.
toggle_run()
{
	local d=$1 tpid id in_fd='' tout_fd=''
	agent_start "$d" -o "$d/toggle.incidents"
	id=$(bpftool prog show --json | python3 -c '
import json, sys
ids = [p["id"] for p in json.load(sys.stdin) if p.get("name") == "on_signal_generate"]
print(max(ids) if ids else "")')
	[[ -n $id ]] || die "fh-bpf -a: no on_signal_generate program loaded"
	rm -f "$d/in" "$d/tout"
	open_fifos "$d" in tout
	(exec <"$d/in" >"$d/tout" && close_fifo_fds &&
		exec "${PIN_TARGET[@]}" "$SIGNAL_TOGGLE" "$id" "$TOGGLE_ROUNDS" "$TOGGLE_CHUNK") &
	tpid=$!
	CHILDREN+=("$tpid")
	expect "$tout_fd" '^ready$' "$tpid" signal_toggle
	agent_stop
	echo go >&"$in_fd"
	TOGGLE_OUT=()
	while ((${#TOGGLE_OUT[@]} < TOGGLE_ROUNDS)); do
		expect "$tout_fd" '^round ' "$tpid" signal_toggle
		TOGGLE_OUT+=("${LINE#round }")
	done
	close_fds "$in_fd"
	reap "$tpid"
	close_fds "$tout_fd"
}

# paired A B: over TOGGLE_OUT ("OFF FH EMPTY" a round), "MEDIAN SUMS SE" of
# what column A costs more than column B, in % of a signal with no program:
# the median over the rounds, over the sums, and the standard error of the
# rounds' mean.
paired()
{
	local rs
	rs=$(lines "${TOGGLE_OUT[@]}" | awk -v a="$1" -v b="$2" '{ print ($a - $b) * 100 / $1 }')
	printf '%s %s\n' "$(f2 "$(median <<<"$rs")")" "$(lines "${TOGGLE_OUT[@]}" | awk -v a="$1" -v b="$2" -v rs="$rs" '
		{ off += $1; sa += $a; sb += $b }
		END { n = split(rs, r, "\n"); for (i = 1; i <= n; i++) { m += r[i] }; m /= n
		      for (i = 1; i <= n; i++) { v += (r[i] - m) ^ 2 }
		      printf "%.2f %.2f", (sa - sb) * 100 / off, sqrt(v / (n - 1) / n) }')"
}

# signal_run: one run of signal_loop; NS: ns a signal.
signal_run()
{
	local d cpid in_fd='' cout_fd=''
	d=$(mktemp -d "$TMP/sig.XXXX")
	open_fifos "$d" in cout
	(exec <"$d/in" >"$d/cout" && close_fifo_fds && exec "${PIN_TARGET[@]}" "$SIGNAL_LOOP" "$SIGNALS") &
	cpid=$!
	CHILDREN+=("$cpid")
	expect "$cout_fd" '^ready$' "$cpid" signal_loop
	echo go >&"$in_fd"
	expect "$cout_fd" '^ns ' "$cpid" signal_loop
	NS=${LINE#ns }
	close_fds "$in_fd"
	reap "$cpid"
	close_fds "$cout_fd"
}

bench_system()
{
	local d c0 c1 b0 b1 t0 wall
	d=$(mktemp -d "$TMP/system.XXXX")
	echo "[system-wide agent] $FH -a: every process of this host in scope"

	agent_start "$d" -o "$d/idle.incidents"
	sysctl -q -w kernel.bpf_stats_enabled=1
	c0=$(cpu_ms "$AGENT_PID")
	read -r _ b0 <<<"$(agent_bpf)"
	t0=${EPOCHREALTIME/./}
	sleep "$IDLE_SECONDS" # the window measured, not a synchronisation
	c1=$(cpu_ms "$AGENT_PID")
	read -r _ b1 <<<"$(agent_bpf)"
	wall=$(ms_since "$t0")
	sysctl -q -w kernel.bpf_stats_enabled=0
	agent_stop
	local cpu_pct bpf_pct
	cpu_pct=$(awk -v c=$((${c1%.*} - ${c0%.*})) -v w="$wall" 'BEGIN { printf "%.3f", c * 100 / w }')
	bpf_pct=$(awk -v b=$((b1 - b0)) -v w="$wall" 'BEGIN { printf "%.4f", b / 1e6 * 100 / w }')
	echo "  idle ${IDLE_SECONDS} s: fh-bpf $(f1 "$(awk -v a="$c1" -v b="$c0" 'BEGIN { print a - b }')") ms of CPU" \
		"($cpu_pct % of one CPU); its BPF programs $(awk -v b=$((b1 - b0)) 'BEGIN { printf "%.1f", b / 1e3 }') us ($bpf_pct %)"
	row 12 "system-wide, idle: fh-bpf CPU" "" "$cpu_pct %" "" "" "$SELF system"
	row 12 "system-wide, idle: its BPF programs" "" "$bpf_pct %" "" "" "$SELF system"

	local base=() agent=() peer=() i b a p
	local bt_prog='tracepoint:signal:signal_generate /args->sig == 11/ { printf("%d\n", args->pid); }'
	for ((i = 1; i <= SYSTEM_RUNS; i++)); do
		signal_run
		base+=("$NS")
		agent_start "$d" -o "$d/signals.incidents"
		signal_run
		agent+=("$NS")
		agent_stop
		if command -v bpftrace >/dev/null; then
			local bpid bout_fd=''
			rm -f "$d/bout"
			open_fifos "$d" bout
			(exec >"$d/bout" 2>&1 && close_fifo_fds && exec bpftrace -e "$bt_prog") &
			bpid=$!
			CHILDREN+=("$bpid")
			expect "$bout_fd" '^Attaching' "$bpid" bpftrace
			signal_run
			peer+=("$NS")
			kill -INT "$bpid"
			reap "$bpid"
			close_fds "$bout_fd"
		fi
	done
	# The programs' own time per signal, whatever the noise: one more run
	# with the kernel's BPF statistics (which add their own clock reads).
	local r0 n0 r1 n1 per
	agent_start "$d" -o "$d/signals.incidents"
	sysctl -q -w kernel.bpf_stats_enabled=1
	read -r n0 r0 <<<"$(agent_bpf)"
	signal_run
	read -r n1 r1 <<<"$(agent_bpf)"
	sysctl -q -w kernel.bpf_stats_enabled=0
	agent_stop
	per=$(awk -v r=$((r1 - r0)) -v s="$SIGNALS" 'BEGIN { printf "%.1f", r / s }')
	# The same SIGNALS signals with and without fh-bpf's program, in
	# chunks a few ms apart, and with a program that does nothing.
	toggle_run "$d"
	local fh_med fh_tot fh_se em_med em_tot em_se dif_med dif_tot dif_se off_ns
	read -r fh_med fh_tot fh_se <<<"$(paired 2 1)"
	read -r em_med em_tot em_se <<<"$(paired 3 1)"
	read -r dif_med dif_tot dif_se <<<"$(paired 2 3)"
	off_ns=$(lines "${TOGGLE_OUT[@]}" | awk '{ print $1 }' | median)
	b=$(lines "${base[@]}" | median)
	a=$(lines "${agent[@]}" | median)
	local slow
	slow=$(awk -v b="$b" -v a="$a" 'BEGIN { printf "%.2f", (a - b) * 100 / b }')
	echo "  $SIGNALS signals raised and handled ($SIGNAL_LOOP), ns a signal, $SYSTEM_RUNS runs each, alternating:"
	echo "    no agent   : median $(f1 "$b") ns  ($(lines "${base[@]}" | awk '{ printf "%.1f ", $1 }')), spread $(lines "${base[@]}" | spread) %"
	echo "    fh-bpf -a  : median $(f1 "$a") ns  ($(lines "${agent[@]}" | awk '{ printf "%.1f ", $1 }')) -> slowdown $slow %"
	local share
	share=$(awk -v p="$per" -v b="$b" 'BEGIN { printf "%.2f", p * 100 / b }')
	echo "    its BPF programs: $per ns a signal ($((n1 - n0)) runs; with the statistics' own clock reads) = $share % of a signal"
	echo "  the same signals in $TOGGLE_ROUNDS rounds of $TOGGLE_CHUNK in each state, order random each round," \
		"no program $(f1 "$off_ns") ns a signal ($SIGNAL_TOGGLE; median of the rounds' slowdowns, of the sums, standard error):"
	echo "    fh-bpf's signal_generate program: $fh_med %  (sums $fh_tot %, se $fh_se %)"
	echo "    a program that does nothing     : $em_med %  (sums $em_tot %, se $em_se %)" \
		"-> what the kernel's call of any program costs here"
	echo "    fh-bpf's program beyond that    : $dif_med %  (sums $dif_tot %, se $dif_se %)"
	row 13 "system-wide, 10^6 signals: slowdown, whole runs" "" "$slow %" "<= 1 %" "$(verdict "$slow" 1)" "$SELF system"
	row 13 "system-wide, 10^6 signals: slowdown, alternated" "" "$fh_med % (se $fh_se)" "<= 1 %" "$(verdict "$fh_med" 1)" "$SELF system"
	row 13 "an empty program on signal_generate: slowdown" "" "$em_med % (se $em_se)" "" "" "$SELF system"
	row 13 "fh-bpf's program beyond the empty one" "" "$dif_med % (se $dif_se)" "" "" "$SELF system"
	row 13 "system-wide, 10^6 signals: BPF ns a signal" "" "$per ns ($share %)" "" "" "$SELF system"
	if ((${#peer[@]})); then
		p=$(lines "${peer[@]}" | median)
		echo "    bpftrace   : median $(f1 "$p") ns  ($(lines "${peer[@]}" | awk '{ printf "%.1f ", $1 }')) -> slowdown" \
			"$(awk -v b="$b" -v a="$p" 'BEGIN { printf "%.2f", (a - b) * 100 / b }') %   bpftrace -e '$bt_prog'"
		row 13 "bpftrace signal_generate one-liner: slowdown" "" "$(awk -v b="$b" -v a="$p" 'BEGIN { printf "%.2f", (a - b) * 100 / b }') %" "" "" "$SELF system"
	fi

	# 14. one crash at a time
	agent_start "$d" --comm crash -v --rate-limit 0 -o "$d/crashes.incidents"
	local lat=() pid
	for ((i = 0; i < CRASHES; i++)); do
		"${PIN_TARGET[@]}" "$CRASH" --auto --threads 4 segv >/dev/null 2>&1 &
		pid=$!
		wait "$pid" 2>/dev/null || true
		expect "$agent_fd" "^fh-bpf: timing: pid $pid," "$AGENT_PID" "fh-bpf -a" 
		lat+=("$(sed -E 's/.*signal to written ([0-9.]+) ms.*/\1/' <<<"$LINE")")
	done
	agent_stop
	echo "  crash -> incident written (4 threads, a process never seen before): cold $(f2 "${lat[0]}") ms," \
		"then median $(lines "${lat[@]:1}" | median) ms ($(lines "${lat[@]:1}" | range2))"
	row 14 "system-wide: crash -> incident written, cold" 4 "$(f2 "${lat[0]}") ms" "" "" "$SELF system"
	row 14 "system-wide: crash -> incident written, warm" 4 "$(f2 "$(lines "${lat[@]:1}" | median)") ms" "" "" "$SELF system"

	# 15. a burst
	rm -rf "$d/burst"
	agent_start "$d" --comm crash -v --rate-limit 0 --format json --log-dir "$d/burst" -o "$d/burst.out"
	local pids=() n
	t0=${EPOCHREALTIME/./}
	{ # (bash reports each death by a signal on stderr)
		for ((i = 0; i < BURST; i++)); do
			"$CRASH" --auto --threads 1 segv >/dev/null 2>&1 &
			pids+=($!)
		done
		for pid in "${pids[@]}"; do wait "$pid" || true; done
	} 2>/dev/null
	local started
	started=$(ms_since "$t0")
	for ((n = 0; n < BURST; n++)); do
		expect "$agent_fd" '^fh-bpf: timing: ' "$AGENT_PID" "fh-bpf -a"
	done
	wall=$(ms_since "$t0")
	agent_stop
	local lost=${AGENT_LOST:-none} files share
	files=$(find "$d/burst" -name '*.json' | wc -l)
	share=$(cat "$d"/burst/*.json | python3 -c '
import json, sys
n = k = 0
for line in sys.stdin:
    for t in json.loads(line)["threads"]:
        for f in t["frames"]:
            n += 1
            k += f["function"] is not None
print("%.1f %% (%d of %d)" % (k * 100 / n, k, n) if n else "no frames")')
	echo "  burst of $BURST crashers started in $(f1 "$started") ms: $files records written in $(f1 "$wall") ms, lost: $lost;" \
		"frames symbolized: $share"
	row 15 "system-wide burst: $BURST crashes to records" 1 "$(f1 "$wall") ms" "" "" "$SELF system"
	row 15 "system-wide burst: records written" 1 "$files of $BURST" "" "" "$SELF system"
	row 15 "short-lived crashers: frames symbolized" 1 "${share%% (*}" "" "" "$SELF system"
	echo "  reproduce: $SELF system"
	echo
}

summary()
{
	local fig what n val aim ok repro r w=46 fmt dashes
	# The measure column is as wide as its longest entry (46 at least).
	for r in "${ROWS[@]}"; do
		IFS='|' read -r fig what _ <<<"$r"
		((${#what} <= w)) || w=${#what}
	done
	fmt="%-3s %-${w}s %7s %11s %11s %-7s  %s\n"
	printf -v dashes '%*s' "$w" ''
	echo "Summary (aims: <= $AIM_KERNEL_US us/thread in kernel, <= $AIM_PRINTED_MS ms crash -> printed at 10 threads warm,"
	echo "         <= $AIM_ARMED_MS ms to armed, <= $AIM_RSS_MB MB peak RSS, MB = 10^6 bytes; none set for Python (figures 6-8);"
	echo "         threads N+1: N workers and the main thread).  Reproduce from $ROOT."
	# shellcheck disable=SC2059 # the format is built above
	printf "$fmt" fig measure threads value aim verdict reproduce
	# shellcheck disable=SC2059
	printf "$fmt" --- "${dashes// /-}" ------- ----------- ----------- ------- ---------
	# By figure, in the order measured within each.
	lines "${ROWS[@]}" | sort -t'|' -k1,1n -s | while IFS='|' read -r fig what n val aim ok repro; do
		# shellcheck disable=SC2059
		printf "$fmt" "$fig" "$what" "$n" "$val" "$aim" "$ok" "$repro"
	done
}

# --- main ------------------------------------------------------------------
preflight
header
case ${1:-all} in
all)
	START=$SECONDS
	for n in 1 10 100 200; do
		bench_capture "$n"
	done
	bench_start
	for n in 10 200; do
		bench_compare "$n"
	done
	for n in 10 100; do
		bench_python "$n"
	done
	for n in 1 10 100 1000; do
		bench_live "$n"
	done
	bench_throughput
	bench_system
	other_tools
	echo
	summary
	echo
	echo "(whole run: $((SECONDS - START)) s; raw logs in $RES/)"
	;;
capture)
	[[ $# -ge 2 ]] || usage
	bench_capture "$2" "${3:-}"
	summary
	;;
start)
	bench_start "${2:-}"
	summary
	;;
compare)
	[[ $# -ge 2 ]] || usage
	bench_compare "$2"
	summary
	;;
python)
	if [[ $# -ge 2 ]]; then
		bench_python "$2" "${3:-}" "${4:-}"
	else
		for n in 10 100; do
			bench_python "$n"
		done
	fi
	summary
	;;
live)
	if [[ $# -ge 2 ]]; then
		bench_live "$2" "${3:-}"
	else
		for n in 1 10 100 1000; do
			bench_live "$n"
		done
	fi
	summary
	;;
throughput)
	bench_throughput
	summary
	;;
peers)
	other_tools
	summary
	;;
system)
	bench_system
	summary
	;;
*) usage ;;
esac
