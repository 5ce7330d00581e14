"""`vwe-pool simulate --plot`: latency and cost against pool size, as a PNG (matplotlib,
installed with the `bench` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pool.sim.engine import SimResult


def plot(results: Sequence[SimResult], auto: SimResult | None, path: str | os.PathLike[str],
         *, target_s: float | None = None, quantile: str = "p95",
         chosen: int | None = None) -> None:
    """Latency quantiles and container-hours against pool size; the autoscaler is drawn at
    its time-weighted mean target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.size for r in results]
    fig, (ax_lat, ax_cost) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True)
    styles = {"p50": ("tab:green", "o"), "p95": ("tab:orange", "s"), "p99": ("tab:red", "^")}
    for name, (color, marker) in styles.items():
        ax_lat.plot(sizes, [r.quantile(name) for r in results], marker=marker, color=color,
                    label=name)
        if auto is not None:
            ax_lat.scatter([auto.mean_target], [auto.quantile(name)], marker="*", s=220,
                           color=color, edgecolors="black", zorder=5)
    if auto is not None:
        ax_lat.scatter([], [], marker="*", s=160, color="white", edgecolors="black",
                       label=f"autoscaler (mean target {auto.mean_target:.2f})")
        ax_lat.axvline(auto.mean_target, color="grey", linestyle=":", linewidth=1)
        ax_cost.axvline(auto.mean_target, color="grey", linestyle=":", linewidth=1)
    if target_s is not None:
        ax_lat.axhline(target_s, color="black", linestyle="--", linewidth=1,
                       label=f"target {quantile} {target_s:g} s")
    if chosen is not None:
        for ax in (ax_lat, ax_cost):
            ax.axvspan(chosen - 0.15, chosen + 0.15, color="tab:blue", alpha=0.12,
                       label=f"recommended: {chosen}" if ax is ax_lat else None)
    values = [r.quantile(n) for r in results for n in styles]
    if values and min(values) > 0 and max(values) > 20 * min(values):
        ax_lat.set_yscale("log")  # an overloaded small pool would flatten the rest
    ax_lat.set_ylabel("job latency (s)")
    ax_lat.set_title("vwe-pool simulate: latency and cost against pool size")
    ax_lat.grid(True, alpha=0.3)
    ax_lat.legend(loc="upper right")

    ax_cost.plot(sizes, [r.container_hours for r in results], marker="o", color="tab:blue",
                 label="fixed size")
    ax_cost2 = ax_cost.twinx()
    ax_cost2.plot(sizes, [r.warm_hit_ratio * 100 for r in results], marker=".",
                  color="tab:purple", linestyle="--", label="warm-hit %")
    ax_cost2.set_ylabel("warm-hit (%)")
    ax_cost2.set_ylim(-5, 105)
    if auto is not None:
        ax_cost.scatter([auto.mean_target], [auto.container_hours], marker="*", s=220,
                        color="tab:blue", edgecolors="black", zorder=5, label="autoscaler")
        ax_cost2.scatter([auto.mean_target], [auto.warm_hit_ratio * 100], marker="D", s=40,
                         color="tab:purple", edgecolors="black", zorder=5)
    ax_cost.set_xlabel("pool size (warm target)")
    ax_cost.set_ylabel("cost (container-hours)")
    ax_cost.set_xticks(sizes)
    ax_cost.grid(True, alpha=0.3)
    lines, labels = ax_cost.get_legend_handles_labels()
    lines2, labels2 = ax_cost2.get_legend_handles_labels()
    ax_cost.legend(lines + lines2, labels + labels2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
