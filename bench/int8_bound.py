"""What bounds the int8 export's speed-up on this CPU: Amdahl over the encoder's Linear layers.

    .venv/bin/python bench/int8_bound.py [--rows 600] [--batch-size 64] [--max-length 64]

Dynamic int8 quantisation (``debias export --optimize int8``) replaces only the ``nn.Linear``
layers; attention's matmuls, softmax, layer norms, embeddings and the tokenizer stay fp32. So the
end-to-end speed-up is at most ``1 / ((1 - f) + f / r)`` where ``f`` is the share of fp32 forward
time spent in Linear layers and ``r`` the int8 / fp32 speed ratio of those layers' kernels, and
``r`` depends on the CPU's int8 dot-product instructions (AVX2 only vs AVX512-VNNI / AMX). One
thread, one process, side by side on the same batches:

1. ``f``: the fp32 model's forward with a timing hook around every Linear layer.
2. ``r``: the same Linear shapes and batches, fp32 vs the quantised module, kernel only.
3. The measured end-to-end ratio (fp32 vs int8 ``Predictor``, same texts) against the bound.

The model is the packaged MiniLM with a fresh 2-label head (weights do not change the cost).
Texts: Davidson tweets when ../shared/data is there, else the project's demo corpus generator.
Prints one table and writes bench/results/int8_bound.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DAVIDSON = ROOT.parent / "shared" / "data" / "davidson-hate-offensive" / "labeled_data.csv"


def texts(n: int) -> list[str]:
    if DAVIDSON.is_file():
        import pandas as pd

        return pd.read_csv(DAVIDSON, usecols=["tweet"])["tweet"].astype(str).sample(n, random_state=0).tolist()
    from debias.corpus.demo import generate_demo_corpus  # the project's own generator

    return generate_demo_corpus(n, seed=0)["text"].astype(str).tolist()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (best kept)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "int8_bound.json"))
    args = ap.parse_args()

    import torch

    from debias.evaluation.predict import Predictor
    from debias.serving.export import _quantize_torch
    from debias.training.model import default_model_dir, load_classifier

    torch.set_num_threads(1)
    src = default_model_dir()
    model, tok = load_classifier(src, num_labels=2)
    model.eval()
    data = texts(args.rows)
    enc = [tok(data[i:i + args.batch_size], padding=True, truncation=True, max_length=args.max_length,
               return_tensors="pt") for i in range(0, len(data), args.batch_size)]

    def forward_all(m) -> float:
        best = float("inf")
        with torch.inference_mode():
            m(**enc[0])  # warm
            for _ in range(args.repeats):
                t = time.perf_counter()
                for b in enc:
                    m(**b)
                best = min(best, time.perf_counter() - t)
        return best

    # 1. time inside the Linear layers (fp32 nn.Linear, or their dynamic-int8 replacements)
    #    during whole forward passes, for the fp32 model and its quantised copy
    inputs: dict[tuple[int, int], list[torch.Tensor]] = {}

    def in_linear(m_all, capture: bool) -> tuple[float, float]:
        spent, starts, hooks = [0.0], {}, []
        for mod in m_all.modules():
            if isinstance(mod, torch.nn.Linear) or type(mod).__name__ == "Linear" and hasattr(mod, "weight"):
                def pre(m, a):
                    starts[id(m)] = time.perf_counter()
                    if capture:
                        key = (a[0].shape[-1], m.out_features)
                        if len(inputs.setdefault(key, [])) < 4 * len(enc):
                            inputs[key].append(a[0].detach().clone())

                def post(m, a, out):
                    spent[0] += time.perf_counter() - starts[id(m)]
                hooks += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
        with torch.inference_mode():
            m_all(**enc[0])
            spent[0] = 0.0
            t = time.perf_counter()
            for b in enc:
                m_all(**b)
            total = time.perf_counter() - t
        for h in hooks:
            h.remove()
        return spent[0], total

    qmodel = _quantize_torch(model)
    lin32, tot32 = in_linear(model, capture=True)
    lin8, tot8 = in_linear(qmodel, capture=False)
    f = lin32 / tot32
    r_situ = lin32 / lin8
    other_ratio = (tot32 - lin32) / (tot8 - lin8)  # the non-Linear rest should not change (~1)
    need_r = f / (0.5 - (1.0 - f)) if f > 0.5 else float("inf")  # kernel ratio a 2x needs

    # 2. int8 / fp32 kernel ratio on the same shapes and activations
    shapes = []
    with torch.inference_mode():
        for (din, dout), xs in sorted(inputs.items()):
            lin = torch.nn.Linear(din, dout).eval()
            q = _quantize_torch(torch.nn.Sequential(lin))  # the export's own quantisation
            times = {}
            for name, m in (("fp32", lin), ("int8", q)):
                m(xs[0])
                best = float("inf")
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    for x in xs:
                        m(x)
                    best = min(best, time.perf_counter() - t)
                times[name] = best
            shapes.append({"in": din, "out": dout, "calls": len(xs), "fp32_s": times["fp32"],
                           "int8_s": times["int8"], "ratio": times["fp32"] / times["int8"]})
    fp32_lin = sum(s["fp32_s"] for s in shapes)
    r = fp32_lin / sum(s["int8_s"] for s in shapes)
    bound = 1.0 / ((1.0 - f) + f / r_situ)
    bound_inf = 1.0 / (1.0 - f)

    # 3. end to end, as bench/export.py measures (Predictor, length-sorted batches)
    fp32 = Predictor(src, batch_size=args.batch_size, max_length=args.max_length, num_threads=1)
    int8 = Predictor(src, batch_size=args.batch_size, max_length=args.max_length, num_threads=1)
    int8.model = _quantize_torch(int8.model)
    e2e = {}
    for name, p in (("fp32", fp32), ("int8", int8), ("fp32_again", fp32)):
        p.predict_texts(data[:64])
        t = time.perf_counter()
        p.predict_texts(data)
        e2e[name] = len(data) / (time.perf_counter() - t)
    fp32_rate = (e2e["fp32"] + e2e["fp32_again"]) / 2
    measured = e2e["int8"] / fp32_rate

    rows = [("CPU", f"{cpu_model()}, torch capability {torch.backends.cpu.get_cpu_capability()}, "
                    f"quantized engine {torch.backends.quantized.engine}"),
            ("share of fp32 forward in Linear layers (f)", f"{f:.3f}"),
            ("Linear layers in the forward, int8 vs fp32 (r)", f"{r_situ:.2f}x  (rest of the forward "
             f"{other_ratio:.2f}x)"),
            ("same shapes and activations, kernel alone", f"{r:.2f}x  (" + ", ".join(
                f"{s['in']}x{s['out']}: {s['ratio']:.2f}x" for s in shapes) + ")"),
            ("Amdahl: 1 / ((1 - f) + f / r)", f"{bound:.2f}x"),
            ("r that 2x end to end needs", f"{need_r:.2f}x"),
            ("bound with free Linear layers, 1 / (1 - f)", f"{bound_inf:.2f}x"),
            ("measured end to end (Predictor, texts/s)",
             f"{measured:.2f}x  (fp32 {e2e['fp32']:.1f} / {e2e['fp32_again']:.1f}, int8 {e2e['int8']:.1f})")]
    print(f"\nint8 speed-up bound, {len(data)} texts, batches of {args.batch_size}, max_length "
          f"{args.max_length}, 1 thread\n")
    print("| quantity | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    out = {"cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
           "engine": torch.backends.quantized.engine, "torch": torch.__version__, "rows": len(data),
           "linear_share": f, "linear_ratio_in_forward": r_situ,
           "rest_ratio": other_ratio, "kernel_ratio": r, "ratio_needed_for_2x": need_r, "shapes": shapes, "bound": bound,
           "bound_free_linear": bound_inf, "texts_per_s": e2e, "measured": measured}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
