"""debias.training.losses: terms against hand-computed values, gradient reversal, DRO updates, and the
all-reduced penalty equal to the single-process penalty of the concatenated batch."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from debias.training.losses import (
    AdversaryHead,
    FairnessObjective,
    GroupDRO,
    LossInputs,
    counterfactual_logit_pairing,
    cross_entropy,
    grad_reverse,
    group_loss_parity,
    soft_demographic_parity,
    soft_equalized_odds,
    with_none_cell,
)


def _local(t):  # single process: no reduction
    return t


def test_with_none_cell():
    m = torch.tensor([[1, 0], [0, 0], [1, 1]])
    assert with_none_cell(m).tolist() == [[1, 0, 0], [0, 0, 1], [1, 1, 0]]


def test_cross_entropy_weighted_by_hand():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    y = torch.tensor([0, 1])
    # CE_0 = ln 2; CE_1 = -ln(3/4); weights 1 and 3.
    want = (math.log(2) + 3 * math.log(4 / 3)) / 4
    assert cross_entropy(logits, y, sample_weight=torch.tensor([1.0, 3.0])).item() == pytest.approx(want)
    assert cross_entropy(logits, y).item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)


def test_group_loss_parity_by_hand():
    loss = torch.tensor([1.0, 2.0, 3.0, 6.0])
    cells = with_none_cell(torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]]))
    # group means 1.5, 3, 6 (none); population variance 3.5; range 4.5
    assert group_loss_parity(loss, cells, reduce=_local).item() == pytest.approx(3.5)
    assert group_loss_parity(loss, cells, spread="range", reduce=_local).item() == pytest.approx(4.5)
    # a row in two groups counts in both: g0 = (1+2)/2, g1 = (1+3)/2, none = 6
    cells2 = with_none_cell(torch.tensor([[1, 1], [1, 0], [0, 1], [0, 0]]))
    assert group_loss_parity(loss, cells2, spread="range", reduce=_local).item() == pytest.approx(4.5)
    # an absent group is ignored, not treated as mean 0
    cells3 = with_none_cell(torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert group_loss_parity(loss, cells3, reduce=_local).item() == pytest.approx(3.5)


def test_soft_demographic_parity_by_hand():
    p = torch.tensor([0.2, 0.4, 0.9, 0.5])
    cells = with_none_cell(torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]]))
    # overall 0.5; groups 0.3, 0.9, 0.5 -> |dev| 0.2, 0.4, 0
    assert soft_demographic_parity(p, cells, reduce=_local).item() == pytest.approx(0.2)
    assert soft_demographic_parity(p, cells, reduction="max_abs", reduce=_local).item() == pytest.approx(0.4)
    assert soft_demographic_parity(p, cells, reduction="mean_sq", reduce=_local).item() == pytest.approx(0.2 / 3)
    same = torch.full((4,), 0.7)
    assert soft_demographic_parity(same, cells, reduce=_local).item() == pytest.approx(0.0)


def test_soft_equalized_odds_by_hand():
    p = torch.tensor([0.2, 0.4, 0.9, 0.5, 0.1])
    y = torch.tensor([0, 1, 1, 0, 0])
    cells = with_none_cell(torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0], [0, 1]]))
    # y=0: overall 0.8/3; g0 .2, g1 .1, none .5 -> 1/15, 1/6, 7/30
    # y=1: overall .65; g0 .4, g1 .9, none absent -> 1/4, 1/4
    want = (1 / 15 + 1 / 6 + 7 / 30 + 1 / 4 + 1 / 4) / 5
    assert soft_equalized_odds(p, y, cells, reduce=_local).item() == pytest.approx(want)


def test_counterfactual_logit_pairing_by_hand():
    a = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    b = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    # margins 1, 3 vs 2, 0 -> |d| = 1, 3
    assert counterfactual_logit_pairing(a, b).item() == pytest.approx(2.0)
    assert counterfactual_logit_pairing(a, b, distance="l2").item() == pytest.approx(5.0)
    assert counterfactual_logit_pairing(a, a).item() == 0.0
    with pytest.raises(ValueError, match="aligned"):
        counterfactual_logit_pairing(a, b[:1])


def test_gradient_reversal_flips_the_gradient():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (grad_reverse(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]


def test_adversary_head_reverses_only_the_encoder_side():
    torch.manual_seed(0)
    pooled = torch.randn(6, 8, requires_grad=True)
    target = torch.tensor([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    head = AdversaryHead(8, 1, alpha=1.0)
    torch.nn.functional.binary_cross_entropy_with_logits(head(pooled), target).backward()
    reversed_grad = pooled.grad.clone()
    head_grad = [p.grad.clone() for p in head.parameters()]
    # same head without reversal: the input gradient is the exact opposite, the head's equal
    pooled.grad = None
    head.zero_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(head.net(pooled), target).backward()
    torch.testing.assert_close(reversed_grad, -pooled.grad)
    for g, p in zip(head_grad, head.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_group_dro_exponentiated_update_by_hand():
    dro = GroupDRO(n_cells=4, eta=1.0)
    loss = torch.tensor([1.0, 2.0, 3.0])
    # cells: (g0,y0) rows 0 ; (g0,y1) row 1 ; (none,y0) row 2 ; (none,y1) empty
    cells = GroupDRO.cells(with_none_cell(torch.tensor([[1], [1], [0]])), torch.tensor([0, 1, 0]))
    assert cells.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]]
    # column order: (g0,y0), (none,y0), (g0,y1), (none,y1); means 1, 3, 2, absent
    out = dro(loss, cells, reduce=_local)
    e = math.e
    q = torch.tensor([e, e**3, e**2, 1.0]) / (e + e**3 + e**2 + 1.0)
    torch.testing.assert_close(dro.q_, q.double())
    assert out.item() == pytest.approx(float(q[0] * 1 + q[1] * 3 + q[2] * 2))
    assert dro.q_.sum().item() == pytest.approx(1.0)
    other = GroupDRO(n_cells=4, eta=1.0)
    other.load_state_dict(dro.state_dict())
    torch.testing.assert_close(other.q_, dro.q_)
    with pytest.raises(ValueError, match="cells"):
        GroupDRO(n_cells=2).load_state_dict(dro.state_dict())


def test_objective_is_weighted_sum_and_validates():
    torch.manual_seed(0)
    logits = torch.randn(6, 2)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    m = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]])
    obj = FairnessObjective([{"name": "cross_entropy"},
                             {"name": "soft_demographic_parity", "weight": 2.0},
                             {"name": "group_loss_parity", "weight": 0.0}], n_groups=2, reduce=_local)
    total, parts = obj(LossInputs(logits=logits, y=y, membership=m))
    assert set(parts) == {"cross_entropy", "soft_demographic_parity", "group_loss_parity"}
    assert total.item() == pytest.approx(parts["cross_entropy"] + 2 * parts["soft_demographic_parity"], rel=1e-6)
    with pytest.raises(ValueError, match="unknown loss term"):
        FairnessObjective([{"name": "focal"}], n_groups=1)
    with pytest.raises(ValueError, match="unknown params"):
        FairnessObjective([{"name": "group_dro", "params": {"step": 1}}], n_groups=1)
    with pytest.raises(ValueError, match="needs identity group"):
        FairnessObjective([{"name": "adversarial"}], n_groups=0)


# ------------------------------------------------------------ all-reduce equivalence (gloo, 2 ranks)

def _batch():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(8, 2, generator=g)
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    m = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    return logits, y, m


def _penalties(logits, y, m, reduce):
    cells = with_none_cell(m)
    ce_i = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    p = torch.softmax(logits, -1)[:, 1]
    dro = GroupDRO(n_cells=2 * cells.shape[1], eta=0.5)
    return {
        "glp": group_loss_parity(ce_i, cells, reduce=reduce),
        "glp_range": group_loss_parity(ce_i, cells, spread="range", reduce=reduce),
        "dp": soft_demographic_parity(p, cells, reduce=reduce),
        "eo": soft_equalized_odds(p, y, cells, reduce=reduce),
        "dro": dro(ce_i, GroupDRO.cells(cells, y), reduce=reduce),
    }


def _worker(rank, world, port, out):
    import torch.distributed as dist

    from debias.training.losses import all_reduce_sum

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        logits, y, m = _batch()
        half = slice(rank * 4, rank * 4 + 4)  # uneven group mix between the two slices
        res = {}
        for name in ["glp", "glp_range", "dp", "eo", "dro"]:
            lg = logits[half].clone().requires_grad_(True)
            val = _penalties(lg, y[half], m[half], all_reduce_sum)[name]
            val.backward()
            res[name] = (val.item(), lg.grad.tolist())  # plain lists: no shared-memory handles
        out.put((rank, res))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_reduced_penalty_equals_single_process_penalty_on_concatenated_batch():
    logits, y, m = _batch()
    want = {}
    for name in ["glp", "glp_range", "dp", "eo", "dro"]:
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
            assert got[rank][name][0] == pytest.approx(value, rel=1e-6), name
            # backward all-reduce gives W x the local gradient; DDP's average divides by W.
            torch.testing.assert_close(torch.tensor(got[rank][name][1]) / 2, grad[rank * 4:rank * 4 + 4])
    # the slices alone give a different penalty: the test would catch a missing all-reduce
    local0 = _penalties(logits[:4], y[:4], m[:4], _local)["dp"].item()
    assert local0 != pytest.approx(want["dp"][0], rel=1e-3)
