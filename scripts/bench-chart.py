#!/usr/bin/env python3
"""Draws docs/benchmarks.png from the chart data the bench driver writes (.bench/chart.json).

usage: bench-chart.py CHART_JSON OUT_PNG

Two panels, one bar per workload and pass: our VFS ÷ Go VFS and our VFS ÷ local SQLite, medians,
log scale; left of the 1× line means ours is faster. The write rows (one bar per database) compare
times too: for throughput, the time per transaction or row.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fmt(r):
    if r >= 10:
        return f"{r:.0f}×"
    if r >= 0.095:
        return f"{r:.2f}×"
    if r >= 0.0095:
        return f"{r:.3f}×"
    return f"{r:.4f}×"


def panel(ax, data, key, title, target_key, bound_key=None, invert=True):
    metrics = data["metrics"]
    groups = data["groups"]
    n = len(groups)
    height = 0.8 / max(n, 1)
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]
    values = []
    for gi, g in enumerate(groups):
        ys, xs, labels = [], [], []
        for mi, v in enumerate(g[key]):
            if v is None or v <= 0:
                continue
            ys.append(mi + (gi - (n - 1) / 2) * height)
            xs.append(v)
            bound = bound_key is not None and g[bound_key][mi]
            labels.append(("< " if bound else "") + fmt(v))
            values.append(v)
        bars = ax.barh(ys, xs, height=height * 0.9, color=colors[gi % len(colors)], label=g["name"])
        for bar, label in zip(bars, labels):
            ax.text(
                bar.get_width() * 1.08,
                bar.get_y() + bar.get_height() / 2,
                label,
                va="center",
                fontsize=7,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.8),
            )
    # The ceiling for this ratio, where it sets one.
    marked = False
    for mi, t in enumerate(data[target_key]):
        if t is None:
            continue
        ax.plot([t, t], [mi - 0.45, mi + 0.45], color="crimson", linestyle="--", linewidth=1.5,
                label=None if marked else "target (issue)")
        marked = True
        values.append(t)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(metrics)))
    ax.set_yticklabels(metrics, fontsize=9)
    if invert:  # once: the two panels share the y axis
        ax.invert_yaxis()
    if values:
        lo = min(values + [1.0])
        hi = max(values + [1.0])
        ax.set_xlim(lo / 3, hi * 6)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", which="major", linestyle=":", alpha=0.6)
    ax.set_xlabel("ratio of medians (log scale; < 1 = ours faster)", fontsize=9)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        data = json.load(f)
    rows = len(data["metrics"])
    fig, axes = plt.subplots(1, 2, figsize=(15, 1.0 + 0.75 * rows), sharey=True)
    panel(axes[0], data, "vs_go", "our VFS ÷ Go VFS", "target_go", "vs_go_bound")
    panel(axes[1], data, "vs_local", "our VFS ÷ local SQLite", "target_local", invert=False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(data["title"], fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
