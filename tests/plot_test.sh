#!/usr/bin/env bash
# tools/plot_metrics.py on real runs: three algorithms on a small dataset made here (outer loss,
# test loss and test accuracy), and a sweep of three algorithms x two seeds on the quadratic;
# each PNG must be a valid, non-blank image of the expected size.
#
#   bash tests/plot_test.sh BILEVEL_EXE SOURCE_DIR MPIEXEC
#
# Needs matplotlib for /usr/bin/python3 (python3-matplotlib, installed by tools/setup.sh);
# without it the test is skipped (exit code 77).
set -euo pipefail
exe="$(realpath "$1")"
src="$(realpath "$2")"
mpiexec="$3"
python=/usr/bin/python3
plot="$src/tools/plot_metrics.py"
fail() { echo "plot_test: FAIL: $*" >&2; exit 1; }

if ! "$python" -c 'import matplotlib' 2>/dev/null; then
  echo "plot_test: SKIP: no matplotlib for $python (apt-get install python3-matplotlib)" >&2
  exit 77
fi
tmp="$(mktemp -d /tmp/bilevel_plot_XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# A PNG: signature, IHDR of the expected size, decodable, and not blank (enough pixels that
# are not the background).
check_png() {  # FILE MIN_WIDTH MIN_HEIGHT
  "$python" - "$@" <<'EOF' || fail "$1 is not a valid, non-blank PNG"
import struct, sys
path, min_w, min_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
assert data[12:16] == b"IHDR", "no IHDR first"
w, h = struct.unpack(">II", data[16:24])
assert w >= min_w and h >= min_h, f"size {w} x {h}"
assert data[-8:-4] == b"IEND", "no IEND at the end"
import matplotlib
matplotlib.use("Agg")
import matplotlib.image as mpimg
img = mpimg.imread(path)
assert img.shape[0] == h and img.shape[1] == w, "decoded size"
rgb = img[:, :, :3]
ink = (rgb.min(axis=2) < 0.9).mean()      # pixels that are not (near) white
colour = (rgb.max(axis=2) - rgb.min(axis=2) > 0.3).mean()  # coloured pixels: the curves
assert ink > 0.01, f"blank: {ink:.4f} of the pixels drawn"
assert colour > 0.001, f"no coloured curves: {colour:.5f}"
print(f"{path}: {w} x {h}, {len(data)} bytes, {ink:.3f} drawn, {colour:.4f} coloured")
EOF
}

# A small two-class dataset with a signal in the first three features.
awk 'BEGIN { srand(3)
  for (f = 0; f < 2; f++) {
    n = f == 0 ? 400 : 200; file = f == 0 ? "train.svm" : "test.svm"
    for (i = 0; i < n; i++) {
      s = 0; line = ""
      for (j = 1; j <= 10; j++) {
        v = rand() * 2 - 1; if (j <= 3) s += v
        if (rand() < 0.6) line = line " " j ":" sprintf("%.3f", v)
      }
      print (s + 0.2 * (rand() - 0.5) > 0 ? 1 : -1) line > file
    }
  } }'
"$exe" convert libsvm --train train.svm --test test.svm --output data.h5 >/dev/null

for algorithm in aid-cg aid-neumann stocbio; do
  "$mpiexec" -np 2 "$exe" solve -q --problem l2reg --data data.h5 --algorithm "$algorithm" \
    --outer-optimizer sgd --inner-lr 1 --outer-lr 10 --batch-size 64 --outer-iters 60 \
    --eval-every 5 \
    --metrics "l2reg_$algorithm.jsonl" > "l2reg_$algorithm.json"
done
out="$("$python" "$plot" l2reg_*.jsonl -o l2reg.png)"
echo "$out"
grep -q "3 runs: aid-cg, aid-neumann, stocbio; outer_loss, test_loss, test_acc" <<< "$out" ||
  fail "runs or metrics in: $out"
check_png l2reg.png 1000 1000

# A sweep on the quadratic: 3 algorithms x 2 seeds, named and summarised as jobs/sweep.sbatch
# names them; plotted with the quadratic's own metrics too.
mkdir sweep
for algorithm in aid-cg itd stocbio; do
  for seed in 0 1; do
    "$exe" solve -q --algorithm "$algorithm" --seed "$seed" --outer-iters 60 --eval-every 3 \
      --metrics "sweep/${algorithm}_seed$seed.jsonl" > "sweep/${algorithm}_seed$seed.json"
  done
done
out="$("$python" "$plot" sweep/*.jsonl --metrics outer_loss,phi_gap -o figs/sweep.png \
        --title "quadratic sweep")"
echo "$out"
grep -q "6 runs: aid-cg (seed 0), aid-cg (seed 1), itd (seed 0), itd (seed 1), stocbio (seed 0), stocbio (seed 1)" <<< "$out" ||
  fail "labels in: $out"
check_png figs/sweep.png 1000 600

# Labels given by hand, and bad input.
"$python" "$plot" sweep/aid-cg_seed0.jsonl sweep/itd_seed0.jsonl --labels "AID,ITD" -o two.png |
  grep -q "2 runs: AID, ITD" || fail "--labels"
check_png two.png 1000 300
echo "not json" > broken.jsonl
if "$python" "$plot" broken.jsonl -o none.png 2>/dev/null; then fail "a file without records plotted"; fi
[ ! -e none.png ] || fail "none.png written"
echo "plot_test: PASS"
