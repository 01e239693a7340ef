"""An example dojoflow plugin: an agent (``knn``), a sandbox backend (``counting-local``) and a metric
(``median_absolute_error``), each registered by an entry point in ``pyproject.toml``."""
