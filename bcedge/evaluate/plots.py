"""Precision-recall curves (IoU 0.5) as a PNG, one line per class."""
from __future__ import annotations

from pathlib import Path


def plot_pr_curves(metrics: dict, path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    for name, curve in metrics.get("pr_curves", {}).items():
        ap50 = metrics["per_class"][name]["AP50"]
        ax.plot(curve["recall"], curve["precision"], label=f"{name} (AP50 {ap50:.3f})" if ap50 is not None else name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=title or f"PR at IoU 0.5, mAP50 {metrics.get('mAP50', 0):.3f}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
