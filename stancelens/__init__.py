"""stancelens: who stands where in the news.

The code lives in the project's fixed top-level folders and is installed under this package:
``stancelens.model`` (model/), ``stancelens.training`` (training/), ``stancelens.serve`` (serve/)
and the label standard as data in ``stancelens.labels`` (labels/).
"""

__version__ = "0.1.0"
