#!/usr/bin/env bash
# The transitive-closure scale table: tl on tuples (semi-naive and naive), tl on dense tensors, and
# Soufflé when a `souffle` command is installed. Each tl row runs in its own process (time, CPU time,
# peak resident memory); every closure size is checked against a breadth-first search.
#
#   tools/bench/logic_closure.sh                 # all graphs; TL_CLOSURE_TIMEOUT=SECONDS per run (300)
#   TL_CLOSURE_CASE=dense-2k:dense cargo bench -p tl-logic --bench closure   # one row
#
# Graphs and engines are described at the top of crates/tl-logic/benches/closure.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TL_CLOSURE_TIMEOUT="${TL_CLOSURE_TIMEOUT:-300}"
cargo bench --locked -p tl-logic --bench closure

if ! command -v souffle >/dev/null 2>&1; then
    echo
    echo "souffle: not installed (Debian has no \`souffle\` package in this release: apt-get install"
    echo "souffle finds none), so the naive rows are the baseline beside the semi-naive engine."
    exit 0
fi

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
TL_CLOSURE_DUMP="$dir" cargo bench --locked -p tl-logic --bench closure
cat > "$dir/closure.dl" <<'DL'
.decl Edge(x: number, y: number)
.input Edge
.decl Path(x: number, y: number)
.printsize Path
Path(x, y) :- Edge(x, y).
Path(x, z) :- Edge(x, y), Path(y, z).
DL
souffle -o "$dir/closure" "$dir/closure.dl"
echo
echo "Soufflé $(souffle --version 2>&1 | head -n 1), compiled, 1 thread:"
printf '%-15s %9s %9s %9s\n' graph closure "wall s" "peak MiB"
for g in community-10k functional-10k forest-100k dense-2k; do
    /usr/bin/time -f '%e %M' -o "$dir/time" "$dir/closure" -j 1 -F "$dir/$g" -D "$dir" > "$dir/out"
    read -r wall kib < "$dir/time"
    size="$(awk '$1 == "Path" { print $2 }' "$dir/out")"
    printf '%-15s %9s %9s %9.0f\n' "$g" "$size" "$wall" "$(echo "$kib / 1024" | bc -l)"
done
