#!/usr/bin/env bash
# Exporter-style models (tests/models/NAME.onnx, see README.md) against the
# outputs onnxruntime gave for them (NAME.outK.npy): `potc run` and the
# generated C (gcc and clang, -Werror) must match within rtol 1e-4, atol
# 1e-5.  NAME.args, when present, holds extra potc options (one line).
set -u
potc=${1:?usage: run.sh PATH/TO/potc}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

check() { # check NAME CMD...: one result
	local name=$1; shift
	if out=$("$@" 2>&1); then pass=$((pass+1)); echo "ok   $name: ${out##*$'\n'}"
	else fail=$((fail+1)); echo "FAIL $name: $out" | head -8; fi
}

compare() { # compare W PREFIX NAME: W/PREFIXk.npy against NAME.outk.npy
	local k=0 msg=
	for ref in "$3".out*.npy; do
		msg=$(/usr/bin/python3 "$root/tests/compare_npy.py" "$1/$2$k.npy" "$ref") ||
			{ echo "output $k: $msg"; return 1; }
		k=$((k+1))
	done
	echo "$msg"
}

outs() { # outs W PREFIX NAME: -o W/PREFIXk.npy for each reference output
	local k=0
	for ref in "$3".out*.npy; do printf -- '-o\n%s\n' "$1/$2$k.npy"; k=$((k+1)); done
}

run_ref() { # run_ref NAME W: potc's reference evaluator
	local o; mapfile -t o < <(outs "$2" run "$1")
	"$potc" run "$1.onnx" "${ins[@]}" "${args[@]}" "${o[@]}" && compare "$2" run "$1"
}

run_c() { # run_c NAME W CC: compile to C, build with CC, run
	local o; mapfile -t o < <(outs "$2" "c_$3_" "$1")
	mkdir -p "$2/$3" &&
	"$potc" "$1.onnx" -o "$2/$3/model.c" --driver "$2/$3/main.c" "${args[@]}" &&
	"$3" -std=c99 -O2 -Wall -Wextra -Werror -pedantic "$2/$3/model.c" "$2/$3/main.c" \
		-o "$2/$3/prog" -lm &&
	"$2/$3/prog" "${ins[@]}" "${o[@]}" && compare "$2" "c_$3_" "$1"
}

for model in "$here"/*.onnx; do
	n=${model%.onnx}
	m=$(basename "$n")
	w=$tmp/$m; mkdir -p "$w"
	ins=("$n".in*.npy)
	args=()
	[ -f "$n.args" ] && read -r -a args < "$n.args"
	check "$m: potc run" run_ref "$n" "$w"
	for cc in gcc clang; do
		check "$m: generated C ($cc)" run_c "$n" "$w" "$cc"
	done
done
echo "models: $pass passed, $fail failed"
[ $fail -eq 0 ]
