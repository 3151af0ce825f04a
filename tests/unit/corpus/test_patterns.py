"""Membership-pattern counts give the audit and balance cells that the rows give."""

import pandas as pd
import pyarrow as pa
import pytest
from corpus_batches import _rows

from debias.corpus import audit, balance
from debias.corpus.patterns import (
    audit_from_patterns,
    cells_from_patterns,
    merge_pattern_counts,
    pattern_counts,
    pattern_strings,
)


@pytest.mark.parametrize("intersectional", [False, True])
def test_pattern_counts_give_the_same_audit_and_cells_as_row_counts(intersectional):
    df, names = _rows()
    pc = merge_pattern_counts([pattern_counts(df.iloc[:150]), pattern_counts(df.iloc[150:])])
    got = audit_from_patterns(pc, group_names=names)
    want = audit.audit_counts(df, group_names=names)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    gc = audit.group_counts(want)
    cells = cells_from_patterns(pc, intersectional=intersectional, group_counts=gc)
    direct = balance.cell_counts(df[df["split"] == "train"], intersectional=intersectional, group_counts=gc)
    key = ["cell", "label"]
    pd.testing.assert_frame_equal(cells.sort_values(key).reset_index(drop=True),
                                  direct.sort_values(key).reset_index(drop=True)[key + ["n"]], check_dtype=False)


def test_pattern_strings_arrow_path_matches_python_lists():

    rows = [["b", "a"], [], None, ["x"], ["c", "a", "b"], ["gay", "female"]] * 3
    want = ["a+b", "", "", "x", "a+b+c", "female+gay"] * 3
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array(
        [pa.array(rows[:7], pa.list_(pa.string())), pa.array(rows[7:], pa.list_(pa.string()))])))
    assert isinstance(arrow.dtype, pd.ArrowDtype)
    assert pattern_strings(arrow) == want
    assert pattern_strings(pd.Series(rows, dtype=object)) == want
    assert pattern_strings(arrow.iloc[4:6]) == want[4:6]  # a slice: offsets into the chunk
    from debias.corpus.patterns import pattern_array

    flat = pa.array(rows, pa.list_(pa.string()))
    assert pattern_array(flat).to_pylist() == want
    assert pattern_array(flat.slice(3, 4)).to_pylist() == want[3:7]  # unsorted rows inside a slice
    assert pattern_array(flat.slice(1, 3)).to_pylist() == want[1:4]  # no row out of order
    assert pattern_array(pa.array([], pa.list_(pa.string()))).to_pylist() == []

