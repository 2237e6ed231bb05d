"""The `cibwatch` command: a thin Typer layer over the Python API. No logic lives here.

Errors a user can act on (`CibwatchError`) print one line and exit with code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cibwatch.config import Config, ConfigError
from cibwatch.errors import CibwatchError
from cibwatch.safety import terminal_safe

app = typer.Typer(
    help="Find, explain and report coordinated inauthentic behaviour.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="DuckDB workspace file.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file overriding defaults.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one default, e.g. --set graph.fdr=0.01."),
]
DEFAULT_WS = Path("cibwatch.duckdb")


def load_config(config: Path | None, overrides: list[str] | None) -> Config:
    cfg = Config.from_toml(config) if config else Config()
    return cfg.with_overrides(overrides or [])


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {terminal_safe(message)}")
    raise typer.Exit(2)


# --------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    dataset_dir: Annotated[Path, typer.Argument(help="Dataset folder (../shared/SCHEMA.md).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Force an input format instead of auto-detecting."),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Load a dataset folder into the workspace (idempotent; bad rows are quarantined)."""
    import cibwatch
    from cibwatch.ingest import print_summary

    with cibwatch.open(workspace) as ws:
        summary = ws.ingest(dataset_dir, format=format, progress=not quiet)
        print_summary(summary, console, workspace)


@app.command()
def quarantine(
    workspace: WorkspaceOpt = DEFAULT_WS,
    table: Annotated[str | None, typer.Option(help="Only rows of this table.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write every quarantined row to this CSV.")
    ] = None,
) -> None:
    """Show rows that broke the data contract, with file, row number and reason."""
    import cibwatch
    from cibwatch.ingest import quarantine_rows, write_quarantine_csv

    with cibwatch.open(workspace, read_only=True) as ws:
        if csv_out:
            n = write_quarantine_csv(ws, csv_out, table=table)
            console.print(f"{n} quarantined rows written to {csv_out}")
            return
        rows, total = quarantine_rows(ws, table=table, limit=limit)
    grid = Table(title=f"Quarantine: {total} rows")
    for col in ("table", "file", "row", "reason", "raw row"):
        grid.add_column(col, overflow="fold")
    for t, f, n, reason, raw in rows:
        grid.add_row(
            t, terminal_safe(f), str(n), terminal_safe(reason), terminal_safe(raw, 120)
        )
    console.print(grid)


# --------------------------------------------------------------------------- detect
@app.command()
def detect(
    dataset_dir: Annotated[
        Path | None, typer.Argument(help="Dataset folder to ingest first (optional).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder.")] = Path("results"),
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Find coordinated operations; write accounts.csv and operations.json to --out."""
    import cibwatch
    from cibwatch.ingest import print_summary

    cfg = load_config(config, set_)
    with cibwatch.open(workspace) as ws:
        if dataset_dir is not None:
            summary = ws.ingest(dataset_dir, progress=not quiet)
            if not quiet:
                print_summary(summary, console, workspace)
        with console.status("detecting", spinner="dots") if not quiet else _null():

            def say(stage: str) -> None:
                if not quiet:
                    console.log(f"stage: {stage}")

            result = ws.detect(out=out, config=cfg, progress=say)
    console.print(
        f"{result.flagged_assets} assets in {result.operations} operations flagged; "
        f"results in {out}/accounts.csv and {out}/operations.json"
    )


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main() -> None:
    """Console-script entry point: one-line errors, exit code 2, never a traceback."""
    try:
        app()
    except (CibwatchError, ConfigError) as exc:
        err_console.print(f"[bold red]error:[/] {terminal_safe(exc)}")
        sys.exit(2)


if __name__ == "__main__":
    main()
