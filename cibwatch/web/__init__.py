"""The analyst workbench: a FastAPI app (REST API + server-rendered pages) over a workspace.

`create_app(workspace_path, config)` builds it; `cibwatch serve` runs it under uvicorn.
"""

from cibwatch.web.app import create_app

__all__ = ["create_app"]
