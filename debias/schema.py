"""The row and prediction schema, written once: column names, the group-column prefix, the no-group
cell and the reject columns that every stage shares.

A preprocessed row (see docs/ARCHITECTURE.md, "Row schema") carries ``groups``, the identity groups
its text mentions, and one boolean ``g_<group>`` flag per known group; a prediction row carries
``y_true``, ``y_score`` and ``y_pred``. Stages name these columns through this module so that a
rename is one edit.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CLASS_NAMES", "CORE_SUITE_COLUMNS", "GROUPS", "GROUP_PREFIX", "ID", "IS_AUGMENTED", "LABEL", "NO_GROUP", "PAIR_ID",
    "READ_LINE", "READ_RAW", "READ_REJECT", "READ_REJECT_REASONS", "REJECT_COLUMNS", "REJECT_REASON", "SAMPLE_WEIGHT",
    "SPLIT", "TEXT", "TEXT_PAIR", "Y_PRED", "Y_SCORE", "Y_TRUE",
    "group_column", "group_columns", "group_name", "is_group_column", "membership_columns",
]

# A preprocessed row
ID = "id"
TEXT = "text"
TEXT_PAIR = "text_pair"  # the second text of a pair task (data.text_pair_col), null for single texts
LABEL = "label"
GROUPS = "groups"
SPLIT = "split"
SAMPLE_WEIGHT = "sample_weight"
PAIR_ID = "pair_id"
IS_AUGMENTED = "is_augmented"

GROUP_PREFIX = "g_"
NO_GROUP = "__none__"  # the cell of rows that mention no identity group (audit, balance, training, report)

# A rejected row: the input's id and raw values as strings, why, and at which stage
REJECT_REASON = "reject_reason"
REJECT_COLUMNS = (ID, "raw_text", "raw_label", REJECT_REASON, "stage")
# The reasons of stage "read" (debias.corpus.read): records that could not be read as a row.
# Stage "clean" has its own (debias.corpus.clean.REJECT_REASONS), "undecodable_text" among them,
# which the reader also gives for bad bytes in the text column.
READ_REJECT_REASONS = ("malformed_json", "not_an_object", "malformed_csv", "wrong_field_count", "missing_column",
                       "wrong_type", "undecodable")
# The reader's columns beside the configured ones: the reason (null for a row to keep), the
# raw record of a rejected one and the line it starts on
READ_REJECT = "read_reject"
READ_RAW = "read_raw"
READ_LINE = "read_line"

# A prediction row (evaluate, serve monitor, metrics)
Y_TRUE = "y_true"
Y_SCORE = "y_score"
Y_PRED = "y_pred"
# What the report calls label 0 and label 1 unless told otherwise (the toxicity task's names)
CLASS_NAMES = ("non-toxic", "toxic")
CORE_SUITE_COLUMNS = (ID, TEXT, Y_TRUE, GROUPS, PAIR_ID, "suite")


def group_column(group: str) -> str:
    """The flag column of one group: ``g_<group>``."""
    return f"{GROUP_PREFIX}{group}"


def group_columns(groups: Iterable[str]) -> list[str]:
    """The flag columns of ``groups``, in their order."""
    return [group_column(g) for g in groups]


def is_group_column(col: object) -> bool:
    """True for a ``g_<group>`` flag column name."""
    return isinstance(col, str) and col.startswith(GROUP_PREFIX)


def group_name(col: str) -> str:
    """The group a flag column stands for (``g_female`` -> ``female``); other names pass through."""
    return col[len(GROUP_PREFIX):] if is_group_column(col) else col


def membership_columns(columns: Iterable[object]) -> list[str]:
    """The flag columns present among ``columns``, sorted (what a training batch's membership
    matrix is built from)."""
    return sorted(c for c in columns if is_group_column(c))
