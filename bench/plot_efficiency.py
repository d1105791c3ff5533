"""Summary figure of an efficiency run: AULC gain over random per dataset and policy.

Usage: python bench/plot_efficiency.py RESULTS.json OUT.png
(RESULTS.json is the results.json that `labelwise bench efficiency` writes.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main(results: Path, out: Path) -> None:
    comparisons = json.loads(results.read_text())
    names = [n for n in comparisons[0]["results"] if n != "random"]
    x = np.arange(len(comparisons))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(1.1 * len(comparisons) + 2, 4.2), dpi=120)
    for i, name in enumerate(names):
        deltas, errors = [], []
        for comp in comparisons:
            diff = np.subtract(
                comp["results"][name]["aulc_per_seed"],
                comp["results"]["random"]["aulc_per_seed"],
            )
            deltas.append(diff.mean() * 100)
            errors.append(diff.std() * 100)
        ax.bar(x + i * width, deltas, width, yerr=errors, capsize=2, label=name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels([c["dataset"] for c in comparisons], rotation=25, ha="right")
    ax.set_ylabel("AULC - random (accuracy points)")
    ax.set_ylim(bottom=max(ax.get_ylim()[0], -12))
    ax.set_title(
        "Gain over random sampling, mean ± std of paired differences over seeds"
    )
    ax.legend(fontsize=8, ncol=len(names))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
