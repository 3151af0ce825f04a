"""The final step: g_ flags rebuilt from groups."""

import numpy as np
import pyarrow as pa


def test_with_membership_adds_one_flag_column_per_group_after_groups():
    from debias.corpus.finalize import with_membership

    rng = np.random.default_rng(3)
    names = ["a", "b", "c", "d", "e"]
    rows = [[str(g) for g in rng.choice(names, size=rng.integers(0, 4), replace=False)] for _ in range(1003)]
    rows[7] = None  # a null list: no group
    full = pa.table({"id": [f"r{i}" for i in range(len(rows))], "groups": pa.array(rows, type=pa.list_(pa.string())),
                     "label": np.arange(len(rows)) % 2})
    full = full.replace_schema_metadata({"k": "v"})
    for table in (full, full.slice(5, 900), full.slice(0, 0)):
        out = with_membership(table, names)
        assert out.column_names == ["id", "groups"] + [f"g_{g}" for g in names] + ["label"]
        assert out.schema.metadata == {b"k": b"v"}
        for g in names:  # the oracle: a plain membership test per row
            assert out[f"g_{g}"].to_pylist() == [g in (r or []) for r in table["groups"].to_pylist()]
        assert out.select(["id", "groups", "label"]).equals(table.select(["id", "groups", "label"]))
        assert with_membership(out, names) is out  # already there: unchanged

