"""`charter completion SHELL`: print the shell completion script (click's, for bash, zsh or fish)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

#: The shells click completes, and the line that loads the script in each (docs/cli.md).
SHELLS = {
    "bash": 'eval "$(charter completion bash)"  # in ~/.bashrc',
    "zsh": 'eval "$(charter completion zsh)"  # in ~/.zshrc',
    "fish": "charter completion fish > ~/.config/fish/completions/charter.fish",
}

#: The environment variable click reads when the completion script asks for candidates.
COMPLETE_VAR = "_CHARTER_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(sorted(SHELLS)))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish) to standard output.

    Load it with: eval "$(charter completion bash)" (bash, in ~/.bashrc), eval "$(charter
    completion zsh)" (zsh, in ~/.zshrc), or charter completion fish >
    ~/.config/fish/completions/charter.fish. Commands, options and choices complete.
    """
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    if cls is None:  # click ships all three; a click without one is not a version we support
        raise click.UsageError(f"click has no completion for {shell}")
    click.echo(cls(root, {}, "charter", COMPLETE_VAR).source())
