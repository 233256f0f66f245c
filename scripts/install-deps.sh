#!/usr/bin/env bash
# Install what building, testing and benchmarking fh-bpf needs (Debian 12, as root).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (it calls apt-get)" >&2
	exit 1
fi

packages=(
	make g++ pkg-config
	clang llvm
	libclang-rt-14-dev # libFuzzer, ASan and UBSan runtimes for tests/fuzz (clang 14)
	bpftool libbpf-dev
	libelf-dev libdw-dev zlib1g-dev
	libdebuginfod-dev # incidents show asks debuginfod servers (the library is loaded when asked)
	debuginfod # the incidents tests serve a debug file from a local server
	curl # and poll that server's /metrics
	nlohmann-json3-dev # incident records written and read back
	catch2
	libc6-dbg gdb elfutils
	python3 python3-dev # the --native tests build a C extension for Debian's python3
	rsyslog # the --syslog tests relay through two rsyslogd of their own
	systemd # systemd-analyze checks the unit make install writes
)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
