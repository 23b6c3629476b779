#!/usr/bin/env bash
# Speed of potc's generated C against this CPU's peak and onnxruntime, and
# potc's own compile time and memory on a ResNet-18-sized model.
# See bench/README.md for what each column means.
#
#   bench/run.sh [--keep] [--no-resnet] [--resnet-run]
#
#   --keep        keep the temp dir with all generated files (its path is printed)
#   --no-resnet   skip the compile-time table's ResNet-18 row (needs onnx + numpy)
#   --resnet-run  also time the generated ResNet-18 code (its weights are C
#                 literals: cc -O3 on the 187 MB .c takes ~40 s and 2.5 GB)
#
# Environment: BENCH_N (default 2000 iterations), BENCH_MIN_SEC (1: more
# iterations when N would take less), BENCH_MAX_SEC (30: fewer when N would
# take more), BENCH_PORTABLE (1: also time the generated C built with
# -O3 -mavx2 -mfma and with plain -O3; 0: skip), POTC_BUILD (default
# build-bench), CC (cc), PYTHON (/usr/bin/python3, needs numpy; onnx for
# --resnet*), POTC_ORT_DIR.
# The tables go to stdout and to bench/results/latest.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${POTC_BUILD:-$root/build-bench}
CC=${CC:-cc}
PY=${PYTHON:-/usr/bin/python3}
N=${BENCH_N:-2000}
MIN_SEC=${BENCH_MIN_SEC:-1}
MAX_SEC=${BENCH_MAX_SEC:-30}
CFLAGS_GEN="-O3 -march=native"
# the portable builds of the generated C: AVX2 + FMA (x86-64 since about
# 2013), and the x86-64 baseline (SSE2), which is what a generic -O3 build
# gets; onnxruntime picks its kernels at run time either way
CFLAGS_AVX2="-O3 -mavx2 -mfma"
CFLAGS_BASE="-O3"
PORTABLE=${BENCH_PORTABLE:-1}
keep=0 resnet=1 resnet_run=0
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	--no-resnet) resnet=0 ;;
	--resnet-run) resnet_run=1 ;;
	-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
	esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/potc-bench.XXXXXX")
if [ "$keep" = 1 ]; then
	echo "run.sh: keeping $tmp" >&2
else
	trap 'rm -rf "$tmp"' EXIT
fi
log() { echo "run.sh: $*" >&2; }

# ---- build potc (incremental).  A failed link deletes build/potc, so the
# last good binary is kept as potc.lastgood and used when the build breaks
# (others may be mid-edit).
build_potc() {
	if [ ! -f "$build/CMakeCache.txt" ]; then
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 ||
			{ cat "$tmp/cmake.log" >&2; return 1; }
	fi
	if cmake --build "$build" -j"$(nproc)" >"$tmp/build.log" 2>&1; then
		cp "$build/potc" "$build/potc.lastgood"
		potc=$build/potc
		return 0
	fi
	grep -E 'error' "$tmp/build.log" | head -5 >&2
	[ -x "$build/potc.lastgood" ] || return 1
	log "build failed; using the last good build $build/potc.lastgood ($(date -r "$build/potc.lastgood" '+%F %T'))"
	potc=$build/potc.lastgood
}
build_potc || { log "cannot build potc: its columns are n/a"; potc=""; }
[ -z "$potc" ] || grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt" ||
	log "warning: $build is not a Release build"

# ---- arithmetic helpers (awk: bash has no floats)
calc() { awk "BEGIN { $1 }"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a";
	else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# iterations for a model taking EST_US per run: N, raised to last MIN_SEC,
# lowered to stay under MAX_SEC (at least 10)
iters_for() { calc "t = $1 * 1e-6; n = $N; if (t > 0 && n * t < $MIN_SEC) n = int($MIN_SEC / t) + 1;
	if (t > 0 && n * t > $MAX_SEC) n = int($MAX_SEC / t) + 1; if (n < 10) n = 10; print n"; }
# one or two significant decimals, or "n/a" when an input is
num() { case "$2" in n/a|'') echo n/a ;; *) calc "printf \"$1\", $2" ;; esac; }

# CPUs kept busy by other processes, sampled over 1 s while we sleep
busy_cpus() {
	local a b
	a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
	echo "$a $b" | awk '{ n = (NF - 2) / 2; for (i = 2; i <= n + 1; i++) { t0 += $i; t1 += $(i + n + 1) }
		i0 = $5 + $6; i1 = $(5 + n + 1) + $(6 + n + 1)
		printf "%.1f", (t1 - t0 - (i1 - i0)) / (t1 - t0) * '"$(nproc)"' }'
}

# ---- peak
"$CC" -O3 -march=native -ffp-contract=fast "$root/bench/peak.c" -o "$tmp/peak"
peak=$("$tmp/peak" 2>"$tmp/peak.err" | awk '/^peak_macs_per_s/ { print $2 }')
log "peak $peak MACs/s ($(tr '\n' ';' <"$tmp/peak.err"))"

# ---- onnxruntime-node (optional)
ort_dir=${POTC_ORT_DIR:-/opt/potc-ort}
have_ort() { command -v node >/dev/null 2>&1 &&
	(cd "$ort_dir" 2>/dev/null && node -e 'require("onnxruntime-node")') >/dev/null 2>&1; }
if ! have_ort && command -v npm >/dev/null 2>&1; then
	"$root/scripts/setup_ort.sh" >&2 || true
fi
if have_ort; then
	ort_ver=$(cd "$ort_dir" && node -p 'require("onnxruntime-node/package.json").version')
else
	ort_ver=""
	log "onnxruntime-node not available: its columns are n/a"
fi
ort_us() { # MODEL IN ITERS -> median us
	node "$root/scripts/ort_run.js" "$1" "$2" --bench "$3" 2>"$tmp/ort.err" |
		awk '/^median_us/ { print $2 }' | grep . || { cat "$tmp/ort.err" >&2; echo n/a; }
}

# median us of the program PROG on IN (iterations from a 20-run estimate)
time_prog() { # PROG IN -> "median_us iterations"
	local est n t
	est=$("$1" "$2" -o "$(dirname "$1")/tmp.npy" --time 20 2>&1 >/dev/null | awk '/median_us/ { print $2 }')
	n=$(iters_for "${est:-0}")
	t=$("$1" "$2" -o "$(dirname "$1")/tmp.npy" --time "$n" 2>&1 >/dev/null | awk '/median_us/ { print $2 }')
	echo "${t:-n/a} $n"
}
# can this CPU run code built with -mavx2 -mfma?
have_avx2() { grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; }

# ---- model inputs: the first sample of ref_input.npy, else random data of
# the model's input shape (symbolic dims -> 1)
make_input() { # MODEL OUT.npy
	"$PY" - "$1" "$2" <<'EOF'
import os, sys
import numpy as np
model, out = sys.argv[1], sys.argv[2]
ref = os.path.join(os.path.dirname(model), "ref_input.npy")
if os.path.exists(ref):
    x = np.load(ref)[:1]
else:
    import onnx
    g = onnx.load(model, load_external_data=False).graph
    init = {t.name for t in g.initializer}
    inp = [i for i in g.input if i.name not in init][0]
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(dims, dtype=np.float32)
np.save(out, np.ascontiguousarray(x, dtype=np.float32))
EOF
}
maxdiff() { # A.npy B.npy -> max |a - b|
	"$PY" -c 'import sys, numpy as np
a, b = (np.load(f).astype(np.float64).ravel() for f in sys.argv[1:3])
print("shape mismatch" if a.shape != b.shape else "%.3g" % np.abs(a - b).max())' "$1" "$2"
}
# "wall_s peak_rss_KiB exit_code cpu_s" of one command: its own rusage, so
# the python wrapper's start-up is not counted
measure() {
	"$PY" -c 'import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
t = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f %d %d %.4f" % (t, r.ru_maxrss, rc, r.ru_utime + r.ru_stime))' "$@"
}

# ---- speed table
models=()
for m in "$root"/samples/*/model.onnx; do models+=("$m"); done
if [ "$resnet_run" = 1 ]; then resnet=1; fi
resnet_model=""
if [ "$resnet" = 1 ]; then
	gen=$root/samples/resnet18/make_resnet18.py
	if [ -f "$gen" ] && "$PY" "$gen" "$tmp/resnet18.onnx" >"$tmp/resnet18.log" 2>&1; then
		resnet_model=$tmp/resnet18.onnx
	else
		log "no ResNet-18 model ($gen missing or failed)"
	fi
fi
[ "$resnet_run" = 1 ] && [ -n "$resnet_model" ] && models+=("$resnet_model")

out=$root/bench/results/latest.md
busy0=$(busy_cpus)
mkdir -p "$root/bench/results"
{
echo "## Inference speed (1 thread, batch 1)"
echo
echo "CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), peak $(num %.4g "$(calc "print $peak / 1e9")") GMAC/s (bench/peak.c)."
echo "potc: generated C built with \`$CC $CFLAGS_GEN\` ($($CC --version | head -1)). onnxruntime-node: ${ort_ver:-n/a} (graph optimisation all, 1 intra-op thread)."
echo
echo "| model | MACs | potc C median us | MACs/s | % of peak | arena bytes | weight bytes | onnxruntime median us | potc/ort speed ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$out"
notes=() portable=()
# A row of the portable table: the same model.c built with the AVX2 and
# the baseline flags (n/a when it does not build or this CPU cannot run
# it), each output checked against the -march=native build's.
portable_row() { # NAME DIR NATIVE_US ORT_US; appends to portable and notes
	local name=$1 d=$2 nat=$3 ort=$4 row="| $1 | $3" us=() f i t n diff
	for i in 0 1; do
		f=$CFLAGS_AVX2
		[ "$i" = 1 ] && f=$CFLAGS_BASE
		t=n/a
		if [ -f "$d/model.c" ] && { [ "$i" = 1 ] || have_avx2; } &&
			$CC $f "$d/model.c" "$d/main.c" -o "$d/prog$i" -lm 2>"$d/cc$i.err" &&
			"$d/prog$i" "$d/in.npy" -o "$d/out$i.npy" 2>/dev/null; then
			diff=n/a
			[ -f "$d/potc_out.npy" ] && diff=$(maxdiff "$d/out$i.npy" "$d/potc_out.npy")
			read -r t n < <(time_prog "$d/prog$i" "$d/in.npy")
			notes+=("$name \`$f\`: iterations $n; max |this - the native build| on the output $diff")
		fi
		us+=("$t")
		row="$row | $t"
	done
	row="$row | $ort"
	for t in "$nat" "${us[@]}"; do
		if [ "$t" != n/a ] && [ "$ort" != n/a ]; then
			row="$row | $(calc "printf \"%.2f\", $ort / $t")"
		else
			row="$row | n/a"
		fi
	done
	portable+=("$row |")
}
for m in "${models[@]}"; do
	name=$(basename "$(dirname "$m")")
	[ "$m" = "$resnet_model" ] && name=resnet18
	d=$tmp/$name
	mkdir -p "$d"
	make_input "$m" "$d/in.npy"
	macs=$([ -n "$potc" ] && "$potc" info "$m" 2>/dev/null | awk '/^macs:/ { print $2 }' || true)
	macs=${macs:-n/a}
	potc_us=n/a arena=n/a wbytes=n/a np=n/a
	if [ -n "$potc" ] && "$potc" "$m" -o "$d/model.c" --driver "$d/main.c" 2>"$d/potc.err" &&
		$CC $CFLAGS_GEN "$d/model.c" "$d/main.c" -o "$d/prog" -lm 2>"$d/cc.err"; then
		arena=$(awk '/#define [A-Za-z0-9_]*_ARENA_BYTES/ { print $3 + 0 }' "$d/model.h")
		wbytes=$(awk '/#define [A-Za-z0-9_]*_WEIGHT_BYTES/ { print $3 + 0 }' "$d/model.h")
		"$d/prog" "$d/in.npy" -o "$d/potc_out.npy" 2>/dev/null || log "$name: generated program failed"
		read -r potc_us np < <(time_prog "$d/prog" "$d/in.npy")
	else
		log "$name: potc or cc failed: $(head -c 300 "$d/potc.err" "$d/cc.err" 2>/dev/null | tr '\n' ' ')"
	fi
	ort=n/a no=n/a
	if [ -n "$ort_ver" ]; then
		node "$root/scripts/ort_run.js" "$m" "$d/in.npy" -o "$d/ort_out.npy" 2>"$d/ort.err" ||
			log "$name: onnxruntime failed: $(head -c 300 "$d/ort.err")"
		est=$(ort_us "$m" "$d/in.npy" 20)
		no=$(iters_for "$( [ "$est" = n/a ] && echo 0 || echo "$est")")
		ort=$(ort_us "$m" "$d/in.npy" "$no")
	fi
	rate=n/a pct=n/a ratio=n/a
	if [ "$potc_us" != n/a ] && [ "$macs" != n/a ]; then
		rate=$(calc "printf \"%.3g\", $macs / ($potc_us * 1e-6)")
		pct=$(calc "printf \"%.2f\", 100 * $macs / ($potc_us * 1e-6) / $peak")
	fi
	if [ "$potc_us" != n/a ] && [ "$ort" != n/a ]; then
		ratio=$(calc "printf \"%.2f\", $ort / $potc_us")
	fi
	echo "| $name | $macs | $potc_us | $rate | $pct | $arena | $wbytes | $ort | $ratio |" | tee -a "$out"
	diff=n/a
	[ -f "$d/potc_out.npy" ] && [ -f "$d/ort_out.npy" ] && diff=$(maxdiff "$d/potc_out.npy" "$d/ort_out.npy")
	notes+=("$name: iterations potc $np, ort $no; max |potc - ort| on the output $diff")
	if [ "$PORTABLE" = 1 ]; then portable_row "$name" "$d" "$potc_us" "$ort"; fi
done
{
echo
echo "potc/ort speed ratio = onnxruntime median / potc median (> 1: potc is faster)."
echo "Other load: $busy0 of $(nproc) CPUs busy before the runs, $(busy_cpus) after; above ~0.3 other processes share the cores and the times are inflated."
if [ "$PORTABLE" = 1 ]; then
	echo
	echo "### The same generated C built for other x86-64 targets"
	echo
	echo "\`-march=native\` is this CPU (with AVX-512 if it has it); \`$CFLAGS_AVX2\` runs on any x86-64 with AVX2 and FMA; \`$CFLAGS_BASE\` is the x86-64 baseline (SSE2). onnxruntime picks its kernels at run time, so its column is the same for all three."
	echo
	echo "| model | \`$CFLAGS_GEN\` us | \`$CFLAGS_AVX2\` us | \`$CFLAGS_BASE\` us | onnxruntime us | ratio native | ratio avx2 | ratio base |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${portable[@]}"; do echo "$r"; done
	echo
	echo "ratio = onnxruntime median / potc median (> 1: potc is faster)."
fi
for s in "${notes[@]}"; do echo "- $s"; done
} | tee -a "$out"

# ---- compile-time table
{
echo
echo "## potc compile time (wall, median of 3 runs) and peak RSS"
echo
echo "| model | compile s | CPU s | peak RSS MiB | generated .c bytes | .c + .h bytes | goal < 2 s |"
echo "|---|---:|---:|---:|---:|---:|---|"
} | tee -a "$out"
cmodels=("$root"/samples/*/model.onnx)
[ -n "$resnet_model" ] && cmodels+=("$resnet_model")
for m in "${cmodels[@]}"; do
	name=$(basename "$(dirname "$m")")
	[ "$m" = "$resnet_model" ] && name=resnet18
	d=$tmp/compile-$name
	mkdir -p "$d"
	: >"$d/runs"
	if [ -z "$potc" ]; then
		echo "| $name | n/a (no potc) | | | | | |" | tee -a "$out"
		continue
	fi
	for i in 1 2 3; do
		measure "$potc" "$m" -o "$d/model.c" >>"$d/runs"
	done
	if awk '$3 != 0 { bad = 1 } END { exit !bad }' "$d/runs"; then
		echo "| $name | failed | | | | | |" | tee -a "$out"
		continue
	fi
	wall=$(awk '{ print $1 }' "$d/runs" | median)
	cpu=$(awk '{ print $4 }' "$d/runs" | median)
	rss=$(awk '{ print $2 }' "$d/runs" | sort -g | tail -1)
	csize=$(stat -c %s "$d/model.c")
	hsize=$(stat -c %s "$d/model.h")
	goal=""
	[ "$name" = resnet18 ] && goal=$(calc "print ($wall < 2) ? \"met\" : \"NOT met\"")
	echo "| $name | $(num %.3f "$wall") | $(num %.3f "$cpu") | $(num %.1f "$(calc "print $rss / 1024")") | $csize | $((csize + hsize)) | $goal |" |
		tee -a "$out"
done
if [ -n "$resnet_model" ] && [ -n "$potc" ]; then
	echo | tee -a "$out"
	echo "resnet18: $(grep -E '^(macs|parameters|weight_bytes|arena_bytes):' <("$potc" info "$resnet_model" 2>/dev/null) | tr '\n' ' ')" |
		tee -a "$out"
fi
log "tables saved to $out"
