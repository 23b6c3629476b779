#!/bin/sh
# PoT/APoT weights and 16-bit accumulators (qkernels_narrow.c) against 32-bit
# accumulation, on the Fashion-MNIST CNN's second Conv (u8 [1,16,14,14] ->
# 32 channels, 3x3, pad 1), batch 1, one thread: median microseconds of
# model_run over N runs per flag set.  The models come from the unit test
# (POTC_QNARROW_BENCH); u8_acc32_eqconv is qkernels_conv.c's kernel (its
# SIMD paths where the flags enable them), every other row is the plain C of
# qkernels_narrow.c.  Other processes on the cores inflate the times:
# compare rows of one run.
#   bench/qnarrow.sh [BUILD_DIR]   (default build-pc; needs tests/test_qnarrow)
# Env: N (runs, default 5000), FLAGS (flag sets, '+' for spaces).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-pc}
n=${N:-5000}
flags=${FLAGS:-"-O3+-march=native -O3+-mavx2"}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
POTC_QNARROW_BENCH=$t "$build/tests/test_qnarrow" >/dev/null 2>&1
cat > "$t/bench.c" <<'C'
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"
static uint8_t in0[16 * 14 * 14];
static int8_t out0[32 * 14 * 14];
static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	double *us = malloc(sizeof *us * (size_t)n);
	unsigned r = 12345;
	for (size_t i = 0; i < sizeof in0; i++)
		in0[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 24);
	for (int i = 0; i < 200; i++)
		model_run(in0, out0);
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		model_run(in0, out0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
	}
	qsort(us, (size_t)n, sizeof *us, cmp);
	unsigned s = 0;
	for (size_t i = 0; i < sizeof out0; i++)
		s = s * 31u + (uint8_t)out0[i];
	printf("%.1f %08x\n", us[n / 2], s);
	return 0;
}
C
printf '| model | flags | median us | output hash |\n|---|---|---:|---|\n'
for m in u8_acc32_eqconv u8_acc32 u8_acc16 pot4_acc32 pot4_acc16 apot4_acc32 apot4_acc16; do
	for f in $flags; do
		fl=$(echo "$f" | tr '+' ' ')
		gcc -std=c99 $fl -I"$t/$m" "$t/$m/model.c" "$t/bench.c" -o "$t/b" 2>/dev/null
		set -- $("$t/b" "$n")
		printf '| %s | %s | %s | %s |\n' "$m" "$fl" "$1" "$2"
	done
done
