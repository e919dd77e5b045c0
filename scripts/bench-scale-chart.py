#!/usr/bin/env python3
"""Draws docs/benchmarks-scale.png from the scale suite's chart data (.bench/scale-chart.json).

usage: bench-scale-chart.py CHART_JSON OUT_PNG

One log-log panel per figure: the figure against the database's pages, our VFS (solid) and the
Go VFS (dashed). A line of slope 1 grows with the database, a flat line does not. The bytes per
page panel adds our resident page map and marks the issue's target for it.
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"our VFS": ("#4C72B0", "-", "o"), "Go VFS": ("#DD8452", "--", "s"),
         "our page map": ("#55A868", ":", "^")}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        data = json.load(f)
    pages = data["pages"]
    panels = data["panels"]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.2 * rows), squeeze=False)
    for ax, p in zip(axes.flat, panels):
        for s in p["series"]:
            pts = [(x, y) for x, y in zip(pages, s["values"]) if y is not None and y > 0]
            if not pts:
                continue
            color, ls, marker = STYLE.get(s["target"], ("gray", ":", "x"))
            xs, ys = zip(*pts)
            ax.plot(xs, ys, linestyle=ls, marker=marker, color=color, label=s["target"])
            for x, y in pts:
                ax.annotate(f"{y:.0f}" if y >= 100 else f"{y:.3g}", (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=7, color=color)
        if p["key"] == "bpp":
            ax.axhline(data["index_target_bpp"], color="crimson", linestyle=":", linewidth=1.2,
                       label="index target (issue)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f'{p["title"]} ({p["unit"]})', fontsize=10)
        ax.set_xlabel("pages (log)", fontsize=8)
        ax.grid(which="both", linestyle=":", alpha=0.5)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(data["title"], fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
