"""`charter lsp`: run the language server over stdio (editors start it; see docs/editors.md)."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, default=True, help="Talk LSP over stdin/stdout (the default).")
@click.option(
    "--debounce-ms",
    type=click.FloatRange(0, 10_000),
    default=None,
    help="Wait this long after an edit before compiling (default 50).",
)
def lsp_cmd(stdio: bool, debounce_ms: float | None) -> None:
    """Run the language server: diagnostics as you type, hover, go to definition, references,
    completion, formatting, quick fixes and semantic tokens for *.charter files.

    Needs the `lsp` extra (pip install 'charter[lsp]').
    """
    try:
        from charter.lsp.server import main
    except ImportError as exc:  # pragma: no cover - the dev extra has pygls
        raise click.ClickException(
            f"the language server needs pygls: pip install 'charter[lsp]' ({exc})"
        ) from None
    main(debounce_ms)
