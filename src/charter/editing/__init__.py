"""What an editor asks of a policy: symbols, completion, hover, quick fixes, tokens (no LSP types).

The language server (charter.lsp) is a thin shell over this package: positions here are 1-based
lines and columns counted in code points, as in every charter Span; the shell converts them to the
client's UTF-16 (or other) positions.
"""

from charter.editing.project import Project, ProjectCompile
from charter.editing.symbols import Occurrence, SymbolIndex, SymbolKind

__all__ = ["Occurrence", "Project", "ProjectCompile", "SymbolIndex", "SymbolKind"]
