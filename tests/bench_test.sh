#!/usr/bin/env bash
# Smoke test of the speed benchmark: tiny datasets made here with `bilevel convert` (IDX: 400
# training images of 4 x 4 pixels, 300 train / 100 val, 10 classes, half the labels corrupted;
# LIBSVM: 200 rows of 500 features in 4 classes, half of them val, and 60 test rows), then
# bilevel_bench once under mpirun -np 2 with --quick. It must exit 0 and write JSON with every
# section, the expected rows and positive times; no time is asserted.
#
#   bash tests/bench_test.sh BENCH_EXE BILEVEL_EXE MPIEXEC
set -euo pipefail
bench="$(realpath "$1")"
exe="$(realpath "$2")"
mpiexec="$3"
fail() { echo "bench_test: FAIL: $*" >&2; exit 1; }

tmp="$(mktemp -d /tmp/bilevel_bench_XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

python3 - <<'EOF'
import random, struct
rng = random.Random(1)

def idx(path, magic, dims, values):
    with open(path, "wb") as f:
        f.write(struct.pack(">I" + "I" * len(dims), magic, *dims))
        f.write(bytes(values))

for name, n in (("train", 400), ("test", 100)):
    idx(f"{name}-images", 0x803, (n, 4, 4), [rng.randrange(256) for _ in range(16 * n)])
    idx(f"{name}-labels", 0x801, (n,), [rng.randrange(10) for _ in range(n)])

for name, n in (("train", 200), ("test", 60)):
    with open(f"{name}.svm", "w") as f:
        for i in range(n):
            columns = sorted(rng.sample(range(1, 501), 20))
            f.write(" ".join([str(i % 4)] + [f"{c}:{rng.random():.3f}" for c in columns]) + "\n")
EOF

"$exe" convert idx --images train-images --labels train-labels --test-images test-images \
  --test-labels test-labels --n-train 300 --n-val 100 --noise 0.5 --seed 1 \
  --output mnist.h5 >/dev/null || fail "convert idx"
"$exe" convert libsvm --train train.svm --test test.svm --num-features 500 --seed 1 \
  --output news20.h5 >/dev/null || fail "convert libsvm"

status=0
timeout 120 "$mpiexec" -np 2 "$bench" --mnist mnist.h5 --news20 news20.h5 --json bench.json \
  --quick >out.txt 2>err.txt || status=$?
[ "$status" = 0 ] || { cat out.txt err.txt >&2; fail "bilevel_bench exited $status"; }

python3 - <<'EOF' || { cat out.txt >&2; fail "bench.json"; }
import json
d = json.load(open("bench.json"))
assert set(d) == {"machine", "stream", "oracles", "iterations", "scaling"}, sorted(d)
assert d["machine"]["cores"] > 0 and d["machine"]["ranks"] == 2, d["machine"]
assert d["stream"]["one_core_gb_per_s"] > 0 and d["stream"]["all_ranks_gb_per_s"] > 0
# 2 problems x 3 batch sizes x 6 oracles; 8 reference runs; 4 scaling runs on 1 and 2 ranks.
assert len(d["oracles"]) == 36, len(d["oracles"])
for r in d["oracles"]:
    assert r["median_s"] > 0 and r["min_bytes"] > 0 and r["gb_per_s"] > 0, r
# 10 reference runs: l2reg's stocBiO rows twice, with block-sparse and with dense steps.
assert len(d["iterations"]) == 10, len(d["iterations"])
for r in d["iterations"]:
    assert r["median_s"] > 0, r
    steps = r["minibatch_steps"]
    if r["algorithm"] == "stocbio":
        block = r["problem"] == "l2reg" and not r["name"].endswith(" dense")
        assert steps == ("block-sparse" if block else "dense"), r
    else:
        assert steps == "full batch", r
    if steps == "block-sparse":  # no communication on one rank
        assert r["allreduce_calls"] == 0 and r["allgather_calls"] == 0, r
    else:
        assert r["allreduce_calls"] >= r["min_allreduce_calls"] > 0, r
assert sorted(r["ranks"] for r in d["scaling"]) == [1] * 5 + [2] * 5, d["scaling"]
for r in d["scaling"]:
    assert r["median_s"] > 0 and r["speedup"] > 0 and r["efficiency"] > 0, r
    if r["ranks"] == 2 and r["minibatch_steps"] == "block-sparse":
        # T + 1 + Q sums, each an allgather of the touched blocks, and no allreduce
        assert r["allreduce_calls"] == 0, r
        assert r["allgather_calls"] >= r["min_allgather_calls"] == 21, r
        assert r["allgather_bytes"] > 0, r
EOF
grep -q "^Scaling" out.txt || fail "no scaling table on stdout"
echo "bench_test: OK"
