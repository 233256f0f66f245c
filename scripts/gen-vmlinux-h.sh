#!/usr/bin/env bash
# Regenerate the checked-in vmlinux.h from a kernel's BTF.
#
#   scripts/gen-vmlinux-h.sh [BTF_FILE]     (default: /sys/kernel/btf/vmlinux)
#
# The build never reads the build host's kernel: CO-RE relocations adapt the
# programs to the running kernel at load time. Regenerate only to use kernel
# types the current header lacks.
set -euo pipefail

btf=${1:-/sys/kernel/btf/vmlinux}
arch=$(uname -m)
case "$arch" in
x86_64) dir=x86 ;;
*) echo "gen-vmlinux-h.sh: unsupported architecture: $arch" >&2; exit 1 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bpf/vmlinux/$dir/vmlinux.h"

[ -r "$btf" ] || { echo "gen-vmlinux-h.sh: cannot read $btf (kernel built without BTF?)" >&2; exit 1; }
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
bpftool btf dump file "$btf" format c >"$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
