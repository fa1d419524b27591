"""Capacity governance while selling (A2, A4, A5, A10, C5)."""

# Loading the package registers the red-line hook on the order path (load_models imports our models).
from tuangou.governance import service as _service  # noqa: F401
