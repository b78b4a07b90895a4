"""The pipeline's import rules: lark only in the syntax package, CEL and RE2 libraries only in the
CEL package, the engine never imports the parser or the compiler (checked on every import
statement run at module import time or inside functions; imports under ``TYPE_CHECKING`` do not
count)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "charter"


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _importers(prefix: str) -> list[str]:
    return sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(m == prefix or m.startswith(prefix + ".") for m in _runtime_imports(p))
    )


def test_only_the_syntax_package_imports_lark() -> None:
    assert [p for p in _importers("lark") if not p.startswith("syntax/")] == []


def test_only_the_cel_package_imports_cel_and_regex_libraries() -> None:
    for library in ("celpy", "cel_expr_python", "re2"):
        assert [p for p in _importers(library) if not p.startswith("cel/")] == [], library


def test_the_engine_never_imports_the_parser_or_the_compiler() -> None:
    both = _importers("charter.syntax") + _importers("charter.compiler")
    assert {p for p in both if p.startswith("engine/")} == set()


def _tree(rel: str) -> ast.Module:
    return ast.parse((SRC / rel).read_text(), rel)


def test_the_engine_imports_neither_testing_nor_telemetry_nor_the_sidecar() -> None:
    """Coverage, OpenTelemetry and the sidecar observe or call the engine; it never reaches for them."""
    outward = _importers("charter.testing") + _importers("charter.telemetry") + _importers("charter.server")
    assert {p for p in outward if p.startswith("engine/")} == set()


def test_a_decision_is_built_in_one_place() -> None:
    """engine/finish.py's DecisionBuilder makes every Decision the engine returns."""
    builders = []
    for path in sorted((SRC / "engine").glob("*.py")):
        for node in ast.walk(_tree(f"engine/{path.name}")):
            if isinstance(node, ast.Call):
                text = ast.unparse(node.func)
                args = [ast.unparse(a) for a in node.args]
                if text == "Decision" or (text in ("_new", "object.__new__") and args == ["Decision"]):
                    builders.append(path.name)
    assert set(builders) == {"finish.py"}, builders


#: Exceptions that never leave the module that raises them (control flow of a fast path or a parser).
INTERNAL_EXCEPTIONS = {
    "_Fallback",
    "_NoFast",
    "NoFastPath",
    "ParseFailure",
    "SyntaxProblem",
    "StepFailure",
    "ApiError",
    "InlineTooLarge",  # charter.cel.api turns it into a CelCompileError (E304)
    "BadURL",  # charter.cel.urls turns it into an EvalError (url()) or false (isURL())
    "Refused",  # the inbox's HTML answer with a status, like ApiError for the JSON API
}


def test_every_error_charter_raises_derives_from_charter_error() -> None:
    import importlib

    import charter

    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            if isinstance(node, ast.ClassDef) and node.name not in INTERNAL_EXCEPTIONS:
                bases = {ast.unparse(b) for b in node.bases}
                if bases & {"Exception", "ValueError", "KeyError", "RuntimeError", "LookupError"} or any(
                    b.endswith("Error") for b in bases
                ):
                    module = "charter." + ".".join(rel.with_suffix("").parts)
                    cls = getattr(importlib.import_module(module.removesuffix(".__init__")), node.name)
                    found.append(cls)
                    assert issubclass(cls, charter.Error), (
                        f"{module}.{node.name} does not derive from charter.Error"
                    )
    assert len(found) >= 10


#: Library state set on purpose (none since charter's CEL replaced cel-python's parser).
LIBRARY_STATE: set[str] = set()


def test_nothing_patches_a_class_or_a_module() -> None:
    """Observation goes through engine observers: no module assigns to a class or module of another."""
    patched = []
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text(), rel)
        own = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                if not isinstance(t, ast.Attribute) or not isinstance(t.value, ast.Name):
                    continue
                name = t.value.id
                if (name[:1].isupper() and name not in own) or name.endswith(("_mod", "_module")):
                    patched.append(f"{rel}: {ast.unparse(t)}")
    assert set(patched) <= LIBRARY_STATE, patched


def test_only_the_language_server_imports_pygls_and_lsprotocol() -> None:
    both = _importers("pygls") + _importers("lsprotocol")
    assert [p for p in both if not p.startswith("lsp/")] == []


def test_the_editing_layer_is_free_of_lsp_and_the_graphs_of_the_parser() -> None:
    """charter.editing answers in charter's own terms (no LSP types); charter.graph draws compiled
    policies and trace records, never parse trees; the engine imports neither."""
    assert [p for p in _importers("charter.lsp") if p.startswith("editing/")] == []
    graph_parser = _importers("charter.syntax") + _importers("charter.compiler") + _importers("lark")
    assert [p for p in graph_parser if p.startswith("graph/")] == []
    both = _importers("charter.editing") + _importers("charter.graph")
    assert [p for p in both if p.startswith(("engine/", "syntax/", "compiler/", "cel/"))] == []


def test_people_facing_shells_stay_outside_the_core() -> None:
    """Notifications and the inbox are shells over the public API: the engine, the approvals
    lifecycle and the state layer never import them, and notifications never import the server."""
    shells = _importers("charter.notify") + _importers("charter.server")
    core = ("engine/", "approvals/", "state/", "compiler/", "syntax/", "cel/")
    assert {p for p in shells if p.startswith(core)} == set()
    assert [p for p in _importers("charter.server") if p.startswith("notify/")] == []
    assert [p for p in _importers("charter.engine") if p.startswith("notify/")] == []


def test_export_is_an_observer_and_the_engine_never_imports_it() -> None:
    """Decision-log export hooks in as an engine observer: the engine, compiler and syntax never import
    charter.export, and the export package imports neither the parser, the compiler nor the sidecar."""
    assert {
        p for p in _importers("charter.export") if p.split("/")[0] in ("engine", "compiler", "syntax")
    } == set()
    inward = _importers("charter.syntax") + _importers("charter.compiler") + _importers("charter.server")
    assert {p for p in inward if p.startswith("export/")} == set()
    assert {p for p in _importers("lark") + _importers("opentelemetry") if p.startswith("export/")} <= {
        "export/sinks.py"
    }


def test_optional_packages_are_imported_only_behind_missing_extra() -> None:
    """A module that imports an extra's package at import time does it inside try/except ImportError
    (charter.extras.missing_extra names the extra), so the core install imports cleanly."""
    optional = ("redis", "psycopg", "hiredis", "starlette", "uvicorn", "pygls", "lsprotocol", "rich", "httpx")
    offenders = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        guarded = {
            id(n)
            for node in tree.body
            if isinstance(node, ast.Try)
            and any("ImportError" in ast.unparse(h.type) for h in node.handlers if h.type is not None)
            for child in node.body
            for n in ast.walk(child)
        }
        for node in tree.body:  # module level only: function-level imports run on use
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in guarded:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] in optional for n in names):
                    offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


#: Readers of policy files and of untrusted documents: each goes through charter.files (paths
#: confined, regular files, bounded) and charter.documents (size, depth, no YAML aliases), never
#: opening, reading or YAML-loading a file itself (issue 15, items 5 and 6).
_CONFINED_READERS = (
    "compiler/load.py",
    "compiler/cache.py",
    "cli/fmt.py",
    "cli/eval.py",
    "testing/loader.py",
    "server/auth.py",
    "editing/project.py",
)


def test_policy_and_document_readers_read_through_one_mechanism() -> None:
    banned = ("read_text", "read_bytes", "safe_load", "open", "load")
    found = []
    for rel in _CONFINED_READERS:
        for node in ast.walk(_tree(rel)):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
                if name in banned and owner not in ("", "self") and owner not in ("cache",):
                    found.append(f"{rel}: {ast.unparse(func)}")
                elif name == "open" and owner == "":
                    found.append(f"{rel}: open()")
    assert found == []


def test_frameworks_are_imported_only_by_the_integrations() -> None:
    """The MCP SDK and the agent frameworks are optional: only charter/integrations reaches for them,
    and nothing outside it imports an integration at module import time except the CLI's commands."""
    for library in ("mcp", "mcp_types", "ag2", "crewai", "langgraph", "agents"):
        assert [p for p in _importers(library) if not p.startswith("integrations/")] == [], library
    users = {p for p in _importers("charter.integrations") if not p.startswith("integrations/")}
    assert users <= {"cli/main.py"}, users
    assert not {p for p in users if p.startswith(("engine/", "compiler/", "syntax/"))}


def test_only_the_analysis_package_imports_the_smt_solver() -> None:
    """z3 is an optional extra: only charter/analysis imports it (the CLI loads analysis lazily)."""
    assert [p for p in _importers("z3") if not p.startswith("analysis/")] == []


def test_the_engine_and_the_compiler_never_import_the_analysis() -> None:
    """The analysis reads compiled policies and replays through the engine; nothing depends back."""
    found = _importers("charter.analysis")
    assert {p for p in found if p.startswith(("engine/", "compiler/", "cel/", "syntax/"))} == set()
    assert {p for p in found if not p.startswith("analysis/")} <= {"cli/prove.py"}


def test_the_analysis_never_imports_the_parser() -> None:
    """It encodes the checked CEL AST and the compiled policy, never the policy text."""
    assert {p for p in _importers("charter.syntax") if p.startswith("analysis/")} == set()
