#!/usr/bin/env bash
# The README's results table: every algorithm with the defaults of `bilevel solve` on one data
# problem, on RANKS MPI ranks (2), each for a budget of solver seconds; prints one markdown row
# per algorithm (test accuracy and loss at the end, iterations, solver time, and the cleaning
# quality or the lambda statistics that explain the result). Metrics go to OUT (build/results).
#   tools/results.sh hyperclean data/mnist_p0.5.h5 30
#   tools/results.sh l2reg data/news20.h5 60 aid-cg stocbio     # only these algorithms
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
  echo "usage: tools/results.sh PROBLEM DATA.h5 SECONDS [ALGORITHM ...]" >&2
  exit 2
fi
problem=$1 data=$2 seconds=$3
shift 3
algorithms=("$@")
if [ ${#algorithms[@]} -eq 0 ]; then
  algorithms=(aid-cg aid-neumann itd stocbio bsa ttsa hoag)
fi
out=${OUT:-build/results}
mkdir -p "$out"
source tools/mpi_env.sh

echo "| algorithm | test accuracy | test loss | iterations | solver time | explains it |"
echo "| --- | --- | --- | --- | --- | --- |"
for algorithm in "${algorithms[@]}"; do
  name="$out/${problem}_$(basename "$data" .h5)_${algorithm}"
  mpirun -np "${RANKS:-2}" build/bilevel solve --problem "$problem" --data "$data" \
    --algorithm "$algorithm" --max-time "$seconds" --eval-every 10 --quiet \
    --metrics "$name.jsonl" >"$name.json"
  python3 - "$name.json" "$algorithm" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read())
def f(key, fmt):
    return fmt.format(r[key]) if key in r and r[key] is not None else "-"
if "cleaning_precision" in r:
    why = "cleaning precision {} recall {}".format(f("cleaning_precision", "{:.3f}"),
                                                   f("cleaning_recall", "{:.3f}"))
else:
    why = "lambda mean {} min {} max {}".format(f("lambda_mean", "{:.2f}"),
                                               f("lambda_min", "{:.2f}"), f("lambda_max", "{:.2f}"))
print("| {} | {} | {} | {} | {} s | {} |".format(
    sys.argv[2], f("test_acc", "{:.2%}").replace("%", " %"), f("test_loss", "{:.4f}"),
    r["iterations"], f("time_s", "{:.1f}"), why))
EOF
done
