"""debias: find and reduce social bias in text classifiers, from raw corpus to served model.

``__version__`` is the one place the version is written; pyproject.toml reads it from here.
"""

__version__ = "0.1.0"
