#!/bin/bash
# Device-side time of every kernel of one decode step of chat.tl, measured by Nsight Compute
# (no events around launches, so small kernels are not inflated), and the mat-vec variants of
# mv_bench.cu. Same target-cudarun/ layout as device_session.sh.
set -u
R=target-cudarun
TL=${TL:-$R/tl}
export XDG_CACHE_HOME="$PWD/$R/cache" PYTHONPATH="$PWD/$R/py:${PYTHONPATH:-}"
M=/tmp/tl-models
STEPS=${STEPS:-"mv ncu"}
has() { [[ " $STEPS " == *" $1 "* ]]; }
if has mv; then
  echo "== mat-vec variants ($(date +%T))"
  nvcc -O3 -arch=sm_90 -o /tmp/mv_bench tools/cuda_check/mv_bench.cu 2>&1 | grep -v Warn | head -20 && timeout 300 /tmp/mv_bench
fi
if has ncu; then
  echo "== kernels of one f16 decode step (ncu, $(date +%T))"
  [ -f $M/tinyllama-shaped-f16.gguf ] || python3 tools/bench/make_tinyllama_shaped.py $M --vocab-from $R/stories260k.gguf --types f16 2>&1 | tail -1
  timeout 400 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file /tmp/ncu.csv \
    $TL run examples/llama/bench.tl --device cuda -- $M/tinyllama-shaped-f16.gguf --prompt ${NCU_PROMPT:-64} --gen 2 > /tmp/ncu_run.txt 2>&1
  tail -3 /tmp/ncu_run.txt
  python3 - <<'PY'
import csv, collections
rows = [r for r in csv.reader(open("/tmp/ncu.csv")) if len(r) > 10]
head, rows = rows[0], rows[1:]
ki, ni, vi, ui = head.index("ID"), head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
ks = []
for r in rows:
    v = float(r[vi].replace(",", ""))
    # ncu names the unit "ns"/"nsecond", "us"/"usecond" or "ms"/"msecond"; report microseconds.
    scale = {"ns": 1e-3, "nsecond": 1e-3, "ms": 1e3, "msecond": 1e3}.get(r[ui], 1.0)
    v = v * scale
    ks.append((r[ni].split("(")[0], v))
print(f"{len(ks)} kernels profiled")
import os
n = int(os.environ.get("PER_TOKEN", "290"))
last = ks[-n:]
tot = sum(v for _, v in last)
agg = collections.defaultdict(lambda: [0, 0.0])
for k, v in last:
    agg[k][0] += 1; agg[k][1] += v
print(f"last {n} kernels (one decode step): {tot:.1f} us of device time")
for k, (c, v) in sorted(agg.items(), key=lambda x: -x[1][1]):
    print(f"  {k:32s} {c:4d} launches {v:9.1f} us  {v/c:7.2f} us each  {100*v/tot:5.1f}%")
PY
fi
