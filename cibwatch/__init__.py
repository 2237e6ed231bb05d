"""cibwatch: find, explain and report coordinated inauthentic behaviour.

Notebook use::

    import cibwatch
    ws = cibwatch.open("cibwatch.duckdb")
    ws.ingest("dataset/")
    ws.posts().to_pandas()
"""

from cibwatch.config import Config
from cibwatch.workspace import Workspace, open

__version__ = "0.1.0"
__all__ = ["Config", "Workspace", "open", "__version__"]
