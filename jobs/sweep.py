"""Lambda sweep: train once per fairness weight and write the accuracy-vs-fairness Pareto front.

    debias sweep --config configs/demo.yaml --run-dir runs/demo \
        [--set train.sweep_weights=[0,0.3,1,3]] [--x val_auc] [--y val_eo_difference]

Each point is a full Ray Train run (``jobs.train.fit``) with the weights of
``train.sweep_terms`` (default: every configured term except cross-entropy) set to one value;
the point's metrics are those of its best epoch on the validation objective. Ray Train V2
trainers cannot run inside ``tune.Tuner``, so the runs go one after another from a plain loop;
each already uses every worker the config gives it.

Output ``RUN_DIR/sweep/``: ``pareto.json`` (every point, with ``on_front``), ``pareto.md`` (the
table) and ``pareto.png`` (the plot), plus ``manifest.json``.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from debias.config import LossTerm, PipelineConfig
from debias.runs import stage_output, stage_path


def sweep_configs(cfg: PipelineConfig) -> list[tuple[float, PipelineConfig]]:
    """One config per weight in ``train.sweep_weights`` (terms missing from the losses are added)."""
    tc = cfg.train
    terms = tc.sweep_terms or [t.name for t in tc.losses if t.name != "cross_entropy"]
    if not terms:
        raise ValueError("the sweep needs a fairness term: set train.sweep_terms or add a non-CE loss "
                         f"to train.losses (found only {[t.name for t in tc.losses]})")
    if not tc.sweep_weights:
        raise ValueError("train.sweep_weights is empty; give the weights to try, e.g. [0, 0.3, 1, 3]")
    out = []
    for lam in tc.sweep_weights:
        c = cfg.model_copy(deep=True)
        losses = {t.name: t.model_copy() for t in c.train.losses}
        for name in terms:
            losses[name] = LossTerm(name=name, weight=float(lam),
                                    params=losses[name].params if name in losses else {})
        c.train.losses = list(losses.values())
        c.train.run_name = None  # every point is a fresh, uniquely named run
        out.append((float(lam), c))
    return out


def best_metrics(result: Any) -> dict[str, Any]:
    """Metrics of the best reported checkpoint (by ``selection_score``; ties: later epoch)."""
    from debias.training.selection import best_checkpoint

    best = best_checkpoint([(m, m) for _, m in (result.best_checkpoints or [])])
    return dict(result.metrics or {}) if best is None else best


def _markdown(df: pd.DataFrame, x: str, y: str) -> str:
    cols = ["weight", x, y, "val_accuracy", "val_worst_group_accuracy", "epoch", "on_front", "run_name"]
    cols = [c for c in cols if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        cells = [str(int(v)) if c == "epoch" else f"{v:.4f}" if isinstance(v, float)
                 else ("yes" if v is True else "" if v is False else str(v)) for c, v in r.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(df: pd.DataFrame, x: str, y: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(df[y], df[x], c=["tab:red" if f else "tab:gray" for f in df["on_front"]], zorder=3)
    front = df[df["on_front"]].sort_values(y)
    ax.plot(front[y], front[x], color="tab:red", lw=1, zorder=2, label="Pareto front")
    for _, r in df.iterrows():
        ax.annotate(f"λ={r['weight']:g}", (r[y], r[x]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"{y} (lower is fairer)")
    ax.set_ylabel(f"{x} (higher is better)")
    ax.set_title("accuracy vs fairness over the fairness weight")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: PipelineConfig, run_dir: str, *, x: str = "val_auc", y: str = "val_eo_difference") -> dict[str, Any]:
    """Train one run per weight, then write the Pareto table, JSON and plot to ``RUN_DIR/sweep``."""
    import tempfile

    from debias.training.selection import pareto_front
    from jobs import train

    points = sweep_configs(cfg)
    for _, c in points:
        train.preflight(c, run_dir)  # every config valid before the first run starts
    rows = []
    inputs = [stage_path(run_dir, "preprocess", "train"), stage_path(run_dir, "preprocess", "val")]
    with stage_output(run_dir, "sweep", config=cfg, inputs=inputs, seed=cfg.seed) as w:
        for i, (lam, c) in enumerate(points):
            print(f"[debias sweep] point {i + 1}/{len(points)}: weight {lam:g}", flush=True)
            fitted = train.fit(c, run_dir)
            m = best_metrics(fitted["result"])
            rows.append({"weight": lam, "run_name": fitted["run_name"], **m,
                         "fit_seconds": round(fitted["fit_seconds"], 1)})
        df = pd.DataFrame(rows)
        for col in (x, y):
            if col not in df.columns:
                raise ValueError(f"sweep metric {col!r} was not reported; reported: {', '.join(df.columns)}")
        df["on_front"] = pareto_front(df, maximize=x, minimize=y)
        w.write_json("pareto.json", {"x": x, "y": y, "points": df.to_dict(orient="records")})
        w.write_text("pareto.md", _markdown(df, x, y))
        with tempfile.TemporaryDirectory() as tmp:
            png = os.path.join(tmp, "pareto.png")
            _plot(df, x, y, png)
            with open(png, "rb") as src, w.fs.open_output_stream(w.sub("pareto.png")) as dst:
                dst.write(src.read())
        w.manifest.update({"sweep": {"weights": [p[0] for p in points], "x": x, "y": y,
                                     "front": df.loc[df["on_front"], "weight"].tolist()}})
    print(_markdown(df, x, y), flush=True)
    return {"points": df, "dir": stage_path(run_dir, "sweep")}
