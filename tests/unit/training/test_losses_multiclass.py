"""K-class loss terms: numpy oracles for K = 3, the binary values at K = 2, and the all-reduced
penalty of two ranks equal to the single-process penalty of the concatenated batch."""

from __future__ import annotations

import itertools
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from debias.training.losses import (
    FairnessObjective,
    GroupDRO,
    LossInputs,
    counterfactual_logit_pairing,
    soft_demographic_parity,
    soft_equalized_odds,
    with_none_cell,
)


def _local(t):
    return t


def _batch(seed: int = 0, n: int = 24, k: int = 3, groups: int = 2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    m = (torch.rand(n, groups, generator=g) < 0.4).float()
    return logits, y, m


def _deviation(d: np.ndarray, how: str) -> float:
    return {"mean_abs": np.abs(d).mean(), "max_abs": np.abs(d).max(), "mean_sq": (d * d).mean()}[how]


@pytest.mark.parametrize("how", ["mean_abs", "max_abs", "mean_sq"])
def test_soft_demographic_parity_k_classes_equals_a_numpy_oracle(how):
    logits, _, m = _batch()
    p = torch.softmax(logits, dim=-1)
    cells = with_none_cell(m).numpy().astype(bool)
    P = p.numpy()  # noqa: N806
    devs = [P[cells[:, j], c].mean() - P[:, c].mean() for c in range(3) for j in range(cells.shape[1])
            if cells[:, j].any()]
    got = soft_demographic_parity(p, with_none_cell(m), reduction=how, reduce=_local).item()
    assert got == pytest.approx(_deviation(np.asarray(devs), how), rel=1e-5)


@pytest.mark.parametrize("how", ["mean_abs", "max_abs", "mean_sq"])
def test_soft_equalized_odds_k_classes_equals_a_numpy_oracle(how):
    logits, y, m = _batch(1)
    p = torch.softmax(logits, dim=-1)
    cells = with_none_cell(m).numpy().astype(bool)
    P, Y = p.numpy(), y.numpy()  # noqa: N806
    devs = []
    for c in range(3):
        for rows in (Y != c, Y == c):  # soft FPR, then soft TPR of class c
            if not rows.any():
                continue
            for j in range(cells.shape[1]):
                sel = rows & cells[:, j]
                if sel.any():
                    devs.append(P[sel, c].mean() - P[rows, c].mean())
    got = soft_equalized_odds(p, y, with_none_cell(m), reduction=how, reduce=_local).item()
    assert got == pytest.approx(_deviation(np.asarray(devs), how), rel=1e-5)


@pytest.mark.parametrize("how", ["mean_abs", "max_abs", "mean_sq"])
def test_two_class_matrix_gives_the_binary_value(how):
    logits, y, m = _batch(2, k=2)
    p = torch.softmax(logits, dim=-1)
    cells = with_none_cell(m)
    assert soft_demographic_parity(p, cells, reduction=how, reduce=_local).item() == pytest.approx(
        soft_demographic_parity(p[:, 1], cells, reduction=how, reduce=_local).item(), rel=1e-5)
    assert soft_equalized_odds(p, y, cells, reduction=how, reduce=_local).item() == pytest.approx(
        soft_equalized_odds(p[:, 1], y, cells, reduction=how, reduce=_local).item(), rel=1e-5)


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_counterfactual_logit_pairing_over_every_pairwise_log_odds(distance):
    logits, _, _ = _batch(3, n=6, k=4)
    cf = logits + torch.randn(6, 4, generator=torch.Generator().manual_seed(9))
    want = []
    for a, b in zip(logits.numpy(), cf.numpy(), strict=True):
        terms = [(a[i] - a[j]) - (b[i] - b[j]) for i, j in itertools.combinations(range(4), 2)]
        want.append(sum(abs(t) if distance == "l1" else t * t for t in terms) / 3)
    got = counterfactual_logit_pairing(logits, cf, distance=distance).item()
    assert got == pytest.approx(float(np.mean(want)), rel=1e-5)
    # the K-class formula at K = 2 is the binary one: |delta (z1 - z0)|
    two = torch.tensor([[0.2, 1.0]]), torch.tensor([[0.5, -0.3]])
    pair = (two[0] - two[1]).unsqueeze(2) - (two[0] - two[1]).unsqueeze(1)
    assert float(pair.abs().sum() / 2) == pytest.approx(
        counterfactual_logit_pairing(*two, distance="l1").item())


def test_group_dro_cells_for_k_classes():
    m = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([2, 0, 1])
    c = GroupDRO.cells(m, y, n_classes=3)
    assert c.shape == (3, 6)
    assert c.tolist() == [[0, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]
    # binary order unchanged: label 0 cells first
    assert GroupDRO.cells(m, torch.tensor([1, 0, 1])).tolist() == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]]


def test_objective_with_three_classes_runs_every_term_and_checks_the_logit_count():
    logits, y, m = _batch(4)
    terms = [{"name": n, "weight": 1.0} for n in ("cross_entropy", "group_loss_parity", "soft_demographic_parity",
                                                  "soft_equalized_odds", "group_dro")]
    obj = FairnessObjective(terms, n_groups=2, n_classes=3, reduce=_local)
    lg = logits.clone().requires_grad_(True)
    total, parts = obj(LossInputs(logits=lg, y=y, membership=m))
    total.backward()
    assert set(parts) == {t["name"] for t in terms} and lg.grad is not None and lg.grad.abs().sum() > 0
    assert obj.dro is not None and obj.dro.n_cells == 3 * 3
    with pytest.raises(ValueError, match="gives 2 logits; the objective expects 3"):
        obj(LossInputs(logits=logits[:, :2], y=y.clamp(max=1), membership=m))
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        FairnessObjective(terms, n_groups=2, n_classes=1)


def _penalties(logits, y, m, reduce):
    p = torch.softmax(logits, dim=-1)
    cells = with_none_cell(m)
    return {"dp": soft_demographic_parity(p, cells, reduce=reduce),
            "eo": soft_equalized_odds(p, y, cells, reduce=reduce)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out) -> None:
    import torch.distributed as dist

    from debias.training.losses import all_reduce_sum

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    logits, y, m = _batch(5, n=16)
    sl = slice(rank * 8, rank * 8 + 8)
    res = {}
    for name in ("dp", "eo"):
        lg = logits[sl].clone().requires_grad_(True)
        v = _penalties(lg, y[sl], m[sl], all_reduce_sum)[name]
        v.backward()
        res[name] = (v.item(), lg.grad.tolist())
    out.put((rank, res))
    dist.destroy_process_group()


def test_k_class_penalties_all_reduced_over_two_ranks_equal_the_concatenated_batch():
    logits, y, m = _batch(5, n=16)
    want = {}
    for name in ("dp", "eo"):
        lg = logits.clone().requires_grad_(True)
        v = _penalties(lg, y, m, _local)[name]
        v.backward()
        want[name] = (v.item(), lg.grad.clone())
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(out.get() for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for name, (value, grad) in want.items():
        for rank in range(2):
            assert got[rank][name][0] == pytest.approx(value, rel=1e-5), name
            torch.testing.assert_close(torch.tensor(got[rank][name][1]) / 2, grad[rank * 8:rank * 8 + 8])
    assert _penalties(logits[:8], y[:8], m[:8], _local)["dp"].item() != pytest.approx(want["dp"][0], rel=1e-3)
