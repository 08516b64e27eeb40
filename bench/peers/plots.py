"""The PNG plots: commit rate vs processes and latency CDFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peers.approaches import ALL_APPROACHES, FS_DURABLE
from peers.ops import MODES


def plot(report: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    procs = report["config"]["procs"]
    cmap = plt.get_cmap("tab10")
    color: dict[str, Any] = {a.name: cmap(i % 10) for i, a in enumerate(ALL_APPROACHES)}
    color[FS_DURABLE] = "black"
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        for a in ALL_APPROACHES:
            pts = sorted(
                (r["procs"], r["rate"])
                for r in runs
                if r["approach"] == a.name and r["mode"] == mode
            )
            if pts:
                style = "-o" if a.name.startswith("fencedstate") else "--."
                if a.baseline_of:
                    style = ":o"
                ax.plot(
                    [p for p, _ in pts],
                    [max(v, 0.1) for _, v in pts],
                    style,
                    label=a.name,
                    color=color[a.name],
                    linewidth=2.5 if a.name == FS_DURABLE else 1.2,
                )
        ax.set_xscale("log", base=2)
        ax.set_xticks(procs, [str(p) for p in procs])
        ax.set_yscale("log")
        ax.set_xlabel("processes")
        ax.set_title(f"{mode}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("commits/s (median of reps)")
    axes[1].legend(fontsize=7, loc="lower left")
    info = report["machine"]
    fig.suptitle(
        f"Commit rate vs processes ({info['cores']} cores, "
        f"{info['filesystem'].split(' ')[0]}, kernel {info['kernel']}, "
        f"Python {info['python']})",
        fontsize=10,
    )
    fig.tight_layout()
    files = ["commit_rate_vs_processes.png"]
    fig.savefig(out / files[0], dpi=110)
    plt.close(fig)

    pshow = sorted({min(procs), max(procs)})
    fig, axes = plt.subplots(1, len(pshow), figsize=(7 * len(pshow), 5.5), squeeze=False)
    for ax, p in zip(axes[0], pshow, strict=True):
        for a in ALL_APPROACHES:
            r = next(
                (
                    r
                    for r in runs
                    if r["approach"] == a.name
                    and r["procs"] == p
                    and r["mode"] == ("contended" if "contended" in a.modes else "uncontended")
                ),
                None,
            )
            if r and r["lat_sample"]:
                xs = sorted(r["lat_sample"])
                ys = [(i + 1) / len(xs) for i in range(len(xs))]
                ax.plot(
                    [x / 1000 for x in xs],
                    ys,
                    label=a.name,
                    color=color[a.name],
                    linewidth=2.5 if a.name == FS_DURABLE else 1.2,
                )
        ax.set_xscale("log")
        ax.set_xlabel("commit latency, ms (log)")
        ax.set_ylabel("fraction of commits")
        ax.set_title(f"Latency CDF, P={p} (contended; raw peers: own file)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    files.append("latency_distribution.png")
    fig.savefig(out / files[1], dpi=110)
    plt.close(fig)
    return files
