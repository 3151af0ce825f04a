import numpy as np
import pytest
from sklearn.metrics import f1_score

from debias.metrics import best_f1_threshold


def _oracle(y, s):
    """Brute force: sklearn's F1 at every distinct score, highest threshold on ties."""
    best = (-1.0, None)
    for t in sorted(set(s.tolist()), reverse=True):
        f = f1_score(y, (s >= t).astype(int))
        if f > best[0] + 1e-12:
            best = (f, t)
    return best[1], best[0]


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_f1_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    s = np.round(rng.random(n) * 0.6 + 0.4 * y, 1 + seed % 3)  # coarse rounding makes ties
    t, f = best_f1_threshold(y, s)
    ot, of = _oracle(y, s)
    assert t == pytest.approx(ot)
    assert f == pytest.approx(of)


def test_perfect_separation_cuts_between_classes():
    t, f = best_f1_threshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9])
    assert (t, f) == (0.6, 1.0)


@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1]])
def test_one_class_is_an_error(y):
    with pytest.raises(ValueError, match="both classes"):
        best_f1_threshold(y, np.linspace(0, 1, len(y)))


def test_labels_must_be_binary():
    with pytest.raises(ValueError, match="0/1"):
        best_f1_threshold([0, 2], [0.1, 0.2])


# ---------------------------------------------------------------- sweeps (levelling-down trade-off)

from debias.metrics import flip_rate_sweep, recall_matched_threshold, threshold_sweep  # noqa: E402


def _groups(rng, n):
    names = ["a", "b", "c"]
    return [[g for g in names if rng.random() < 0.4] for _ in range(n)]


def _sweep_oracle(y, s, groups, t, min_n):
    """One threshold, by plain loops and scikit-learn's confusion matrix."""
    from sklearn.metrics import confusion_matrix

    pred = (s >= t).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    tprs, fprs, accs = [], [], []
    for g in sorted({x for gs in groups for x in gs}):
        idx = [i for i, gs in enumerate(groups) if g in gs]
        yg, pg = y[idx], pred[idx]
        gtn, gfp, gfn, gtp = confusion_matrix(yg, pg, labels=[0, 1]).ravel()
        if gtp + gfn >= min_n:
            tprs.append(gtp / (gtp + gfn))
            accs.append(gtp / (gtp + gfn))
        if gtn + gfp >= min_n:
            fprs.append(gfp / (gtn + gfp))
            accs.append(gtn / (gtn + gfp))
    return {"recall": tp / (tp + fn), "fpr": fp / (fp + tn),
            "worst_group_recall": min(tprs) if tprs else np.nan,
            "fpr_gap": max(fprs) - min(fprs) if len(fprs) >= 2 else np.nan,
            "worst_group_accuracy": min(accs) if accs else np.nan}


@pytest.mark.parametrize("seed", range(4))
def test_threshold_sweep_matches_loops(seed):
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    groups = _groups(rng, n)
    s = np.clip(rng.random(n) * 0.7 + 0.3 * y + 0.1 * np.array([("a" in g) for g in groups]), 0, 1).round(2)
    ts = np.linspace(0.05, 0.95, 19)
    min_n = 5 + 40 * (seed % 2)
    got = threshold_sweep(y, s, groups, ts, min_group_size=min_n)
    for t in ts:
        want = _sweep_oracle(y, s, groups, t, min_n)
        for k, v in want.items():
            assert got.loc[t, k] == pytest.approx(v, nan_ok=True), (t, k)


def test_threshold_sweep_gap_needs_two_groups():
    got = threshold_sweep([0, 0, 1], [0.2, 0.8, 0.9], [["a"], [], ["a"]], [0.5], min_group_size=1)
    assert np.isnan(got.loc[0.5, "fpr_gap"])
    assert got.loc[0.5, "worst_group_recall"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        threshold_sweep([0, 1], [0.1], [[], []], [0.5])


@pytest.mark.parametrize("seed", range(4))
def test_recall_matched_threshold_is_the_highest_that_reaches_the_target(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    y[0] = 1
    s = rng.random(300).round(1 + seed % 2)  # ties
    target = float(rng.uniform(0.1, 1.0))
    t = recall_matched_threshold(y, s, target)
    recall = lambda th: ((s >= th) & (y == 1)).sum() / (y == 1).sum()  # noqa: E731
    assert recall(t) >= target - 1e-12
    higher = sorted({x for x in s.tolist() if x > t})
    assert all(recall(h) < target for h in higher)  # brute force: no higher score reaches it


def test_recall_matched_threshold_errors():
    with pytest.raises(ValueError, match="positive"):
        recall_matched_threshold([0, 0], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        recall_matched_threshold([0, 1], [0.1, 0.2], 1.5)


def test_flip_rate_sweep_matches_pairs():
    rng = np.random.default_rng(3)
    pair = np.repeat(np.arange(50), 2)
    s = rng.random(100)
    ts = [0.1, 0.5, 0.9]
    got = flip_rate_sweep(pair, s, ts)
    for t in ts:
        d = (s >= t).astype(int).reshape(50, 2)
        assert got.loc[t] == pytest.approx(np.mean(d[:, 0] != d[:, 1]))
