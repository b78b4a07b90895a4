"""The compile cache and overlays (compiler/cache.py, load's overlay): a compile through the cache,
or with a file's text given as an overlay, gives exactly what a fresh compile of those texts on
disk gives (diagnostics, revision, rules), and only changed files are parsed again."""

from __future__ import annotations

import shutil
from pathlib import Path

from charter.api import check
from charter.compiler.cache import CompileCache
from charter.compiler.pipeline import CompileResult

ROOT = Path(__file__).parents[2]


def _summary(result: CompileResult) -> tuple[object, ...]:
    policy = result.policy
    rules = None
    if policy is not None:
        rules = [(r.id, r.effect, r.reason, [c.text for c in r.conditions]) for r in policy.rules]
    return (
        [d.to_dict() for d in result.diagnostics],
        policy.revision if policy else None,
        rules,
        sorted(result.sources),
    )


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


def test_cached_recompiles_equal_fresh_compiles_after_each_edit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    pol = _copy(tmp_path)
    cache = CompileCache()
    edits = [
        ("gates.charter", "args.amount > 10000.0", "args.amount > 20000.0"),
        ("spend.charter", "limit 50 USD per day", "limit 60 USD per day"),
        ("gates.charter", "approvers treasury", "approvers treasurie"),  # an error
        ("gates.charter", "approvers treasurie", "approvers treasury"),  # and fixed again
        ("org.charter", "policy acme", "policy acme {"),  # a syntax error
    ]
    assert _summary(check([pol], cache=cache)) == _summary(check([pol]))
    for name, old, new in edits:
        f = pol / name
        f.write_text(f.read_text().replace(old, new, 1))
        misses = cache.misses
        assert _summary(check([pol], cache=cache)) == _summary(check([pol])), (name, new)
        assert cache.misses == misses + 1, "only the edited file is parsed again"


def test_overlay_text_is_compiled_instead_of_the_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    pol = _copy(tmp_path)
    gates = pol / "gates.charter"
    edited = gates.read_text().replace("approvers treasury", "approvers nobody", 1)
    via_overlay = check([pol], overlay={gates.resolve(): edited})
    gates.write_text(edited)
    on_disk = check([pol])
    assert _summary(via_overlay) == _summary(on_disk)
    assert [d.code.value for d in via_overlay.errors] == ["E201"]


def test_an_unsaved_new_file_in_the_directory_is_part_of_the_policy(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    pol = _copy(tmp_path)
    new = (pol / "extra.charter").resolve()
    text = 'policy extra\n\nforbid no-kb-write { action call kb.write  reason "no" }\n'
    result = check([pol], overlay={new: text})
    assert "policies/extra.charter" in result.sources
    assert result.policy is not None
    assert "no-kb-write" in {r.id for r in result.policy.rules}


def test_overlay_limits_hold(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    f = (tmp_path / "big.charter").resolve()
    huge = "# x\n" * (2 * 1024 * 1024)
    result = check([f], overlay={f: huge})
    assert [d.code.value for d in result.errors] == ["E003"]
    lone = check([f], overlay={f: "policy p\n# \ud800\n"})
    assert [d.code.value for d in lone.errors] == ["E002"]
