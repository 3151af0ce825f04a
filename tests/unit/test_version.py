"""``debias.__version__`` is a PEP 440 version and the one the package is built with."""

from __future__ import annotations

from pathlib import Path

import pytest

import debias

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_pep440():
    from packaging.version import Version

    assert str(Version(debias.__version__)) == debias.__version__


def test_packaging_reads_the_version_from_the_package():
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml",
                                        reason="setuptools resolves the dynamic version in pyproject.toml")
    project = pyprojecttoml.read_configuration(ROOT / "pyproject.toml", expand=True)["project"]
    assert project["name"] == "debias" and project["version"] == debias.__version__
