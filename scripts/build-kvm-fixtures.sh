#!/bin/sh
# Builds the KVM Keep's syscall fixtures (tests/kvm/src -> tests/kvm/bin): small
# static programs, linked with musl (apt-get install musl-tools) so they stay small.
# The binaries are committed; rerun this after changing a source.
set -eu
cd "$(dirname "$0")/../tests/kvm"
mkdir -p bin
for src in src/*.c; do
    name=$(basename "$src" .c)
    musl-gcc -static -Os -s -o "bin/$name" "$src"
done
for src in src/*.S; do
    name=$(basename "$src" .S)
    gcc -nostdlib -static -s -o "bin/$name" "$src"
done
ls -l bin
