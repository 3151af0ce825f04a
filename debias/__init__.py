"""debias: find and reduce social bias in text classifiers, from raw corpus to served model.

``__version__`` is the one place the version is written; pyproject.toml reads it from here.
"""

__version__ = "0.1.0"

# The notebook API, imported on first use (``import debias`` stays cheap):
#   debias.MetricFrame, debias.GroupResampler, debias.GroupReweighter   (debias.api)
#   debias.fairness_summary, debias.counterfactual_metrics, debias.bias_auc (debias.metrics)
#   debias.IdentityAnnotator, debias.load_lexicon                        (debias.identity)
#   debias.counterfactual_variants, debias.load_swaps                   (debias.identity.swaps)
_LAZY = {
    "MetricFrame": "debias.api", "GroupResampler": "debias.api", "GroupReweighter": "debias.api",
    "NAMED_METRICS": "debias.api",
    "fairness_summary": "debias.metrics", "counterfactual_metrics": "debias.metrics", "bias_auc": "debias.metrics",
    "group_metrics": "debias.metrics",
    "IdentityAnnotator": "debias.identity.annotate", "load_lexicon": "debias.identity.lexicon",
    "counterfactual_variants": "debias.identity.swaps", "load_swaps": "debias.identity.swaps",
    "load_config": "debias.config",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'debias' has no attribute {name!r}")
