"""One factory for the identity tools: the lexicon, the annotator built on it and the counterfactual
swap table, built the same way wherever they are needed (preprocessing tasks, evaluation suites,
the service's replicas).

Each distinct (axes, folders) combination is built once per process and shared: a Ray worker that
runs many batches, or an evaluation that builds several suites, loads the YAML files once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import Lexicon, load_lexicon
from debias.identity.swaps import SwapTable, available_swap_axes, load_swaps

__all__ = ["IdentityTools", "annotator_for", "identity_tools", "lexicon_for", "swaps_for"]


@dataclass(frozen=True)
class IdentityTools:
    """What a stage needs to find and swap identity terms."""

    lexicon: Lexicon
    annotator: IdentityAnnotator
    swaps: SwapTable
    swap_axes: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def _lexicon(axes: tuple[str, ...], lexicon_dir: str | None) -> Lexicon:
    return load_lexicon(list(axes), lexicon_dir)


@functools.lru_cache(maxsize=8)
def _annotator(axes: tuple[str, ...], lexicon_dir: str | None) -> IdentityAnnotator:
    return IdentityAnnotator(_lexicon(axes, lexicon_dir))


@functools.lru_cache(maxsize=8)
def _swaps(axes: tuple[str, ...], swap_dir: str | None) -> SwapTable:
    return load_swaps(list(axes), swap_dir)


def lexicon_for(axes: Sequence[str], lexicon_dir: str | None = None) -> Lexicon:
    """The (shared) lexicon of ``axes`` read from ``lexicon_dir`` (None: the packaged lexicons)."""
    return _lexicon(tuple(axes), lexicon_dir)


def annotator_for(axes: Sequence[str], lexicon_dir: str | None = None) -> IdentityAnnotator:
    """The (shared) annotator over :func:`lexicon_for`'s lexicon."""
    return _annotator(tuple(axes), lexicon_dir)


def swaps_for(axes: Sequence[str], swap_dir: str | None = None) -> SwapTable:
    """The (shared) swap table of ``axes`` read from ``swap_dir`` (None: the packaged swap lists)."""
    return _swaps(tuple(axes), swap_dir)


def identity_tools(*, axes: Sequence[str], lexicon_dir: str | None = None,
                   swap_axes: Sequence[str] | None = None, swap_dir: str | None = None) -> IdentityTools:
    """The lexicon and annotator of ``axes`` and the swap table of ``swap_axes``.

    Parameters
    ----------
    axes : the annotated axes (``annotate.axes``).
    lexicon_dir : folder of ``<axis>.yaml`` lexicons (``annotate.lexicon_dir``); None: packaged.
    swap_axes : the axes to swap (``augment.axes``); None means every annotated axis that has a
        swap list in ``swap_dir`` (some axes, e.g. age, are detected but have no one-to-one swaps).
    swap_dir : folder of swap lists (``augment.swap_dir``); None: packaged.
    """
    axes = tuple(axes)
    if swap_axes is None:
        have = set(available_swap_axes(swap_dir))
        swap_axes = [a for a in axes if a in have]
    swap_axes = tuple(swap_axes)
    return IdentityTools(lexicon=_lexicon(axes, lexicon_dir), annotator=_annotator(axes, lexicon_dir),
                         swaps=_swaps(swap_axes, swap_dir), swap_axes=swap_axes)
