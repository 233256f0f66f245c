#!/usr/bin/env bash
# fh-bpf benchmark harness.  It measures and prints figures; it is not a test
# and passes or fails nothing (a missed aim is reported, not fatal).
#
#   bench/run.sh [OUT]                          every figure (what `make bench` runs)
#   bench/run.sh OUT capture THREADS [FAULTS]   figures 1, 2 and 4 for one thread count
#   bench/run.sh OUT start [STARTS]             figure 3
#   bench/run.sh OUT compare THREADS            figure 5
#
# OUT is the build directory (default: build).  Run as root from anywhere; the
# reproduce commands printed are relative to the repository root.  Raw logs
# (fh-bpf -v output, tracebacks, /usr/bin/time reports, gdb and eu-stack
# output) are kept in bench/results/ (git-ignored).
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
	sed -n '5,8s/^# *//p' "${BASH_SOURCE[0]}" >&2
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

# --- numbers ---------------------------------------------------------------
# median: of the numbers on stdin, one a line.
median()
{
	sort -g | awk '{ v[NR] = $1 }
		END { if (!NR) { print "nan"; exit }
		      if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
f1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
f2() { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }
# verdict VALUE AIM: "met" if VALUE <= AIM.
verdict() { awk -v v="$1" -v a="$2" 'BEGIN { print (v !~ /^[0-9.]+$/) ? "-" : (v + 0 <= a + 0) ? "met" : "MISSED" }'; }
lines() { printf '%s\n' "$@"; }

# Summary rows: fig|measure|threads|value|aim|verdict|reproduce
ROWS=()
row() { local IFS='|'; ROWS+=("$*"); }

# --- setup -----------------------------------------------------------------
preflight()
{
	((EUID == 0)) || die "must run as root (fh-bpf needs CAP_BPF and CAP_PERFMON)"
	[[ -x $FH ]] || die "$FH missing: run make"
	[[ -x $CRASH ]] || die "$CRASH missing: run make targets"
	mkdir -p "$OUT/bench" "$RES"
	if [[ ! -x $FAULT_LOOP || bench/fault_loop.c -nt $FAULT_LOOP ]]; then
		# The flags of the test targets: -O2, no frame pointers, debug info.
		local cc
		read -ra cc <<<"${CC:-cc}"
		cc+=(-O2 -g -fomit-frame-pointer -pthread bench/fault_loop.c -o "$FAULT_LOOP")
		echo "  CC       $FAULT_LOOP   (${cc[*]})"
		"${cc[@]}"
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
	local tag=capture-$n d log tbs tfile logfd tpid wpid fhpid i j got
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
		for ((j = 0; j < got; j++)); do
			expect "$err_fd" '^fh-bpf: thread ' "$wpid" "fh-bpf (see $log)" "$logfd"
		done
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
start_target()
{
	local n=$1 d=$2 tout_fd=''
	open_fifos "$d" tout
	(exec >"$d/tout" && close_fifo_fds && exec "$CRASH" --threads "$n" --auto wait) &
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
# time_tool NAME N THREADS_RE SHOWN LABEL CMD...: run CMD TOOL_RUNS times,
# output to a file; print and record the median wall time.  THREADS_RE
# counts the threads in the output; SHOWN is CMD as printed, LABEL its name
# in the summary.
time_tool()
{
	local name=$1 n=$2 re=$3 shown=$4 label=$5 out i t0 t1 rc seen walls=() med
	shift 5
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
	row 5 "$label (stops the target)" "$n" "$(f1 "$med") ms" "" "" "$SELF compare $n"
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
		time_tool eu-stack "$n" '^TID ' "eu-stack -p PID" "eu-stack -p" eu-stack -p "$TPID"
		time_tool eu-stack-s "$n" '^TID ' "eu-stack -s -p PID" "eu-stack -s -p" eu-stack -s -p "$TPID"
	else
		echo "  eu-stack: not installed"
	fi
	if command -v gdb >/dev/null; then
		time_tool gdb "$n" '^Thread [0-9]+ ' 'gdb -p PID -batch -ex "thread apply all bt"' \
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

other_tools()
{
	if command -v bpftrace >/dev/null; then
		echo "  bpftrace: installed ($(command -v bpftrace)) but not benchmarked here"
	else
		echo "  bpftrace: not installed; not compared (this harness installs nothing)"
	fi
	if python3 -c 'import bcc' 2>/dev/null || [[ -d /usr/share/bcc/tools ]]; then
		echo "  BCC: installed but not benchmarked here"
	else
		echo "  BCC: not installed; not compared (this harness installs nothing)"
	fi
}

# --- summary ---------------------------------------------------------------
summary()
{
	local fig what n val aim ok repro
	echo "Summary (aims: <= $AIM_KERNEL_US us/thread in kernel, <= $AIM_PRINTED_MS ms crash -> printed at 10 threads warm,"
	echo "         <= $AIM_ARMED_MS ms to armed, <= $AIM_RSS_MB MB peak RSS, MB = 10^6 bytes).  Reproduce from $ROOT."
	printf '%-3s %-46s %7s %11s %11s %-7s  %s\n' fig measure threads value aim verdict reproduce
	printf '%-3s %-46s %7s %11s %11s %-7s  %s\n' --- ---------------------------------------------- ------- \
		----------- ----------- ------- ---------
	# By figure, in the order measured within each.
	lines "${ROWS[@]}" | sort -t'|' -k1,1n -s | while IFS='|' read -r fig what n val aim ok repro; do
		printf '%-3s %-46s %7s %11s %11s %-7s  %s\n' "$fig" "$what" "$n" "$val" "$aim" "$ok" "$repro"
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
	echo "[other tools]"
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
*) usage ;;
esac
