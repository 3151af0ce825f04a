"""The served classes of a model dir and how probabilities become scores and labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from debias.evaluation.thresholds import POOLED, GroupRule, GroupThresholds
from debias.serving.classes import ServedClasses, class_names, decide, served_classes


def _model_dir(tmp_path, id2label: dict | None, name: str = "m"):
    d = tmp_path / name
    d.mkdir()
    conf = {"model_type": "bert"} | ({"id2label": id2label} if id2label is not None else {})
    (d / "config.json").write_text(json.dumps(conf))
    return d


def test_names_and_focus_from_card_config_or_default(tmp_path):
    binary = _model_dir(tmp_path, None, "binary")  # transformers writes no id2label for 2 classes
    assert served_classes(binary, {}) == ServedClasses(("non-toxic", "toxic"), 1)
    three = _model_dir(tmp_path, {"0": "hate", "1": "offensive", "2": "neither"}, "three")
    assert served_classes(three, {}) == ServedClasses(("hate", "offensive", "neither"), 1)
    assert served_classes(three, {"focus_class": "hate"}).focus == 0  # train writes the class name
    assert served_classes(three, {"focus_class": 2}).focus == 2
    placeholders = _model_dir(tmp_path, {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}, "ph")
    assert class_names(placeholders, {}) == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert class_names(placeholders, {"class_names": ["a", "b", "c"]}) == ["a", "b", "c"]
    one_logit = _model_dir(tmp_path, {"0": "LABEL_0"}, "sigmoid")
    assert served_classes(one_logit, {}).n == 2


def test_a_card_that_disagrees_with_the_model_is_named(tmp_path):
    three = _model_dir(tmp_path, {"0": "a", "1": "b", "2": "c"})
    with pytest.raises(ValueError, match="names 2 classes .* has 3"):
        class_names(three, {"class_names": ["x", "y"]})
    with pytest.raises(ValueError, match="focus_class 'spam' is not one of"):
        served_classes(three, {"focus_class": "spam"})
    with pytest.raises(ValueError, match="focus class 3"):
        ServedClasses(("a", "b", "c"), 3)


def test_binary_keeps_the_threshold_rule_and_k_classes_take_the_argmax():
    p2 = np.array([[0.9, 0.1], [0.3, 0.7], [0.55, 0.45]])
    rule = GroupThresholds.global_only(0.4, source="test")
    scores, labels = decide(p2, classes=ServedClasses(("n", "p")), rule=rule, groups=[[], [], []],
                            keys=["a", "b", "c"])
    assert scores.tolist() == [0.1, 0.7, 0.45] and labels.tolist() == [0, 1, 1]  # 0.45 >= 0.4: not argmax
    # a per-group rule decides binary labels (female always positive, the rest at 0.5)
    per_group = GroupThresholds(constraint="demographic_parity", threshold=0.5, source="hand", seed=1,
                                rules={"female": GroupRule([float("-inf")], [1.0]), POOLED: GroupRule([0.5], [1.0])})
    _, labels = decide(p2, classes=ServedClasses(("n", "p")), rule=per_group,
                       groups=[["female"], [], []], keys=["a", "b", "c"])
    assert labels.tolist() == [1, 1, 0]
    p3 = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.1, 0.2, 0.7]])
    scores, labels = decide(p3, classes=ServedClasses(("a", "b", "c"), focus=0), rule=per_group,
                            groups=[["female"], [], []], keys=["a", "b", "c"])
    assert scores.tolist() == [0.2, 0.6, 0.1] and labels.tolist() == [1, 0, 2]  # the rule is not used
    with pytest.raises(ValueError, match=r"expected \(3, 2\) class probabilities"):
        decide(p3, classes=ServedClasses(("n", "p")), rule=rule, groups=[[]] * 3, keys=["a", "b", "c"])
