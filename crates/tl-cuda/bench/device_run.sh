#!/bin/bash
# One device call: the CUDA op tests, the runtime tests, examples on cpu vs cuda, and a small
# timing with --stats. Run from the folder that holds the binaries (tl, ops, runtime,
# kernels_compile) and the .tl files.
set -u
cd "$(dirname "$0")"
export XDG_CACHE_HOME="$PWD/cache"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== kernels_compile"; ./kernels_compile 2>&1 | grep -E "^test |test result|panicked" | head -5
t0=$(date +%s.%N)
echo "== ops"; ./ops 2>&1 | grep -E "^test |test result|panicked|error" | head -40
echo "== runtime"; ./runtime 2>&1 | grep -E "^test |test result|panicked|error" | head -30
t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" "BEGIN{printf \"tests took %.1f s\\n\", b-a}"
for f in examples/*.tl; do ex=$(basename "$f" .tl); [ "$ex" = errors ] && continue;
  if [ -f "examples/$ex.tl" ]; then
    ./tl run "examples/$ex.tl" > "cpu_$ex.txt" 2>&1
    ./tl run "examples/$ex.tl" --device cuda > "cuda_$ex.txt" 2>&1
    if cmp -s "cpu_$ex.txt" "cuda_$ex.txt"; then echo "example $ex: cuda output identical to cpu";
    else echo "example $ex: DIFFERS"; diff "cpu_$ex.txt" "cuda_$ex.txt" | head -8; fi
  fi
done
echo "== bench"; ./tl run matmul_elementwise.tl --device cuda --stats 2>&1 | tail -20
echo "== no-gpu message check"; CUDA_VISIBLE_DEVICES="" ./tl run examples/mlp.tl --device cuda 2>&1 | head -2
