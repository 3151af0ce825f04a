"""The report's two words for any task shape: binary as named, else the focus class against the rest."""

from jobs.report import binary_reading


def test_binary_reading():
    assert binary_reading(("non-toxic", "toxic")) == ("non-toxic", "toxic")
    assert binary_reading(("negative", "positive"), "negative") == ("not negative", "negative")
    assert binary_reading(("hate", "offensive", "neither")) == ("not offensive", "offensive")
    assert binary_reading(("hate", "offensive", "neither"), "hate") == ("not hate", "hate")
