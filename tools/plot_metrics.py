#!/usr/bin/env python3
"""Plots bilevel metrics files (`bilevel solve --metrics FILE`) as PNG figures.

    tools/plot_metrics.py results/sweep-123/*.jsonl -o sweep.png
    tools/plot_metrics.py a.jsonl b.jsonl --labels "AID-BiO,stocBiO" -o cmp.png --logy
    tools/plot_metrics.py run.jsonl --metrics outer_loss,phi_gap -o run.png

One figure: a row per metric (by default the outer loss and, where the runs have them, the
test loss and the test accuracy), against wall time (the solver's time_s) in the left column
and against outer iterations in the right one; one curve per run. A run is labelled by its
algorithm, read from the summary beside its metrics file (FILE with .jsonl replaced by .json,
as jobs/sweep.sbatch writes it, or summary.json in the same directory), or else by its file
name; runs of one algorithm share a colour and differ in line style, with the seed (or the
file name) in the label. --labels sets the labels in the order of the files.

Needs matplotlib (Debian: python3-matplotlib, which tools/setup.sh installs). Where the python3
first on PATH has none, the script starts again under /usr/bin/python3.
"""

import argparse
import json
import math
import os
import sys

try:
    import matplotlib
except ImportError:  # e.g. a pyenv python3 first on PATH; Debian's matplotlib is for /usr/bin's
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3") and not os.environ.get("PLOT_METRICS_REEXEC"):
        os.environ["PLOT_METRICS_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("plot_metrics.py: matplotlib is missing (Debian: apt-get install python3-matplotlib)")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_METRICS = ["outer_loss", "test_loss", "test_acc"]
TITLES = {
    "outer_loss": "outer loss f(x, y)",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
    "hypergrad_norm": "hypergradient estimate norm",
    "true_hypergrad_norm": "|grad Phi(x)|",
    "phi_gap": "Phi(x) - Phi(x*)",
    "hypergrad_rel_error": "hypergradient relative error",
}
# Metrics that span orders of magnitude: log scale unless --linear.
LOG_BY_DEFAULT = ("norm", "error", "gap")
STYLES = ["-", "--", ":", "-."]


def read_metrics(path):
    """The metrics records of one file, in order, skipping blank and broken lines."""
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                print(f"plot_metrics.py: {path}:{number}: not JSON, skipped", file=sys.stderr)
                continue
            if isinstance(record, dict) and "iter" in record:
                records.append(record)
    return records


def read_summary(path):
    """The run's JSON summary beside a metrics file, or {}."""
    stem = path[:-len(".jsonl")] if path.endswith(".jsonl") else os.path.splitext(path)[0]
    for candidate in (stem + ".json", os.path.join(os.path.dirname(path) or ".", "summary.json")):
        if candidate == path or not os.path.isfile(candidate):
            continue
        try:
            with open(candidate) as f:
                lines = [line for line in f if line.strip()]
            if lines:
                summary = json.loads(lines[-1])
                if isinstance(summary, dict):
                    return summary
        except (OSError, json.JSONDecodeError):
            pass
    return {}


def seed_of(path):
    """'0' from '..._seed0.jsonl', or None."""
    base = os.path.basename(path)
    at = base.rfind("seed")
    if at < 0:
        return None
    digits = ""
    for c in base[at + 4:]:
        if not c.isdigit():
            break
        digits += c
    return digits or None


def value(record, key):
    v = record.get(key)
    if v is None or isinstance(v, str):
        return math.nan
    return float(v)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Plot bilevel metrics files (JSON lines) against wall time and iterations.")
    parser.add_argument("files", nargs="+", help="metrics files (bilevel solve --metrics)")
    parser.add_argument("-o", "--output", default="metrics.png", help="PNG file (metrics.png)")
    parser.add_argument("--labels", help="comma-separated labels, one per file")
    parser.add_argument("--metrics", help="comma-separated metrics to plot "
                        "(default: outer_loss, test_loss, test_acc where present)")
    parser.add_argument("--logy", action="store_true", help="log scale on every y axis")
    parser.add_argument("--linear", action="store_true", help="linear scale on every y axis")
    parser.add_argument("--title", help="the figure's title")
    parser.add_argument("--dpi", type=int, default=120)
    args = parser.parse_args(argv)

    runs = []
    for path in args.files:
        records = read_metrics(path)
        if not records:
            print(f"plot_metrics.py: {path}: no metrics records, skipped", file=sys.stderr)
            continue
        summary = read_summary(path)
        runs.append({"path": path, "records": records,
                     "algorithm": summary.get("algorithm"), "seed": seed_of(path)})
    if not runs:
        sys.exit("plot_metrics.py: nothing to plot")

    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.files):
        sys.exit(f"plot_metrics.py: --labels has {len(labels)} labels for {len(args.files)} files")
    algorithms = []
    for run in runs:
        if run["algorithm"] and run["algorithm"] not in algorithms:
            algorithms.append(run["algorithm"])
    per_algorithm = {}
    for i, run in enumerate(runs):
        if labels:
            run["label"] = labels[args.files.index(run["path"])]
        elif run["algorithm"]:
            same = sum(1 for r in runs if r["algorithm"] == run["algorithm"])
            run["label"] = run["algorithm"]
            if same > 1:
                run["label"] += (f" (seed {run['seed']})" if run["seed"] is not None
                                 else f" ({os.path.basename(run['path'])})")
        else:
            run["label"] = os.path.basename(run["path"])
        key = run["algorithm"] or run["label"]
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        group = algorithms.index(run["algorithm"]) if run["algorithm"] else len(algorithms) + i
        run["color"] = colors[group % len(colors)]
        run["style"] = STYLES[per_algorithm.get(key, 0) % len(STYLES)]
        per_algorithm[key] = per_algorithm.get(key, 0) + 1

    if args.metrics:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    else:
        metrics = [m for m in DEFAULT_METRICS
                   if any(not math.isnan(value(r, m)) for run in runs for r in run["records"])]
    if not metrics:
        sys.exit("plot_metrics.py: the files have none of the metrics asked for")

    fig, axes = plt.subplots(len(metrics), 2, figsize=(11, 3.3 * len(metrics) + 0.8),
                             squeeze=False)
    for row, metric in enumerate(metrics):
        any_positive = False
        for col, (xkey, xlabel) in enumerate((("time_s", "time (s)"),
                                              ("iter", "outer iterations"))):
            ax = axes[row][col]
            for run in runs:
                xs = [value(r, xkey) for r in run["records"]]
                ys = [value(r, metric) for r in run["records"]]
                if all(math.isnan(y) for y in ys):
                    continue
                any_positive = any_positive or any(y > 0 for y in ys)
                ax.plot(xs, ys, run["style"], color=run["color"], label=run["label"],
                        linewidth=1.6)
            log = args.logy or (not args.linear and any(k in metric for k in LOG_BY_DEFAULT))
            if log and any_positive:
                ax.set_yscale("log", nonpositive="mask")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(TITLES.get(metric, metric))
            ax.grid(True, alpha=0.3)
            if row == 0 and col == 1:
                ax.legend(fontsize="small", loc="best")
    fig.suptitle(args.title or "bilevel: " + ", ".join(
        algorithms if algorithms else [run["label"] for run in runs]))
    fig.tight_layout()
    out_dir = os.path.dirname(args.output)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.output, dpi=args.dpi)
    print(f"plot_metrics.py: wrote {args.output} ({len(runs)} runs: "
          f"{', '.join(run['label'] for run in runs)}; {', '.join(metrics)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
