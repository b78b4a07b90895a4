"""The state store of ``charter eval`` and ``charter serve``: SQLite at ./.charter/state.db unless told."""

from __future__ import annotations

from pathlib import Path

import click

#: The default store (the README's single-machine default): a SQLite file under the working directory.
DEFAULT_STORE = "sqlite:///./.charter/state.db"
#: The environment variable that replaces the default (``--store`` still wins).
STORE_ENV = "CHARTER_STORE"
_RELATIVE = "sqlite:///./"

STORE_HELP = (
    "State store URL: sqlite:///./.charter/state.db (the default; relative to the working directory, "
    "created with its parents), sqlite:///abs/path.db, memory://, redis://..., postgresql://... "
    f"(or ${STORE_ENV})."
)


def store_option(fn: click.decorators.FC) -> click.decorators.FC:
    """The ``--store`` option, shared so both commands say the same."""
    return click.option(
        "--store",
        "store_url",
        default=DEFAULT_STORE,
        envvar=STORE_ENV,
        show_default=True,
        help=STORE_HELP,
    )(fn)


def resolve_store(url: str) -> str:
    """``sqlite:///./rel/path.db`` as an absolute SQLite URL, its directory created; other URLs as given."""
    if not url.startswith(_RELATIVE):
        return url
    path = (Path.cwd() / url[len(_RELATIVE) :]).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot create {path.parent} for the state store: {exc.strerror}") from None
    return f"sqlite://{path.as_posix()}"
