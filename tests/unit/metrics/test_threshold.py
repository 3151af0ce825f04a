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
