"""Provenance in requests (issue 18 phase B step 4): call_id, provenance, labels(), sources()."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import charter
from charter.cel import compile_condition
from charter.cel.types import CelType
from charter.engine.engine import Engine
from charter.engine.provenance import Entry, ProvenanceTable, Source
from charter.engine.validate import validate_request
from charter.enums import Outcome
from charter.errors import RequestError

ROOT = Path(__file__).resolve().parents[2]
TO = ["ruth@ledgerly.example", "mark@exfil.example"]
REQUEST: dict[str, Any] = {
    "actor": {"id": "a"},
    "action": {
        "target": "mail.send",
        "call_id": "r1:send",
        "args": {"to": TO, "attachments": ["f-310"], "subject": "Q3 numbers"},
        "provenance": {
            "to": [{"sources": [{"call": "r1:ruth", "field": "email"}]}, {"sources": [{"from": "agent"}]}],
            "attachments": [{"sources": [{"call": "r1:file", "field": "id"}]}],
            "subject": {"sources": [{"from": "user"}], "labels": ["typed"]},
        },
    },
}


def test_the_design_request_validates_and_keeps_its_provenance() -> None:
    r = validate_request(REQUEST)
    assert r.call_id == "r1:send"
    to = r.provenance["to"]
    assert isinstance(to, tuple) and to[0] == Entry((), (Source("call", "r1:ruth", "email"),))
    assert r.provenance["subject"] == Entry(("typed",), (Source("user"),))
    again = validate_request(r.to_dict())
    assert again.provenance == r.provenance and again.call_id == r.call_id
    assert again.digest() == r.digest()


def test_provenance_is_part_of_the_digest_and_absence_keeps_old_digests() -> None:
    bare = {"actor": {"id": "a"}, "action": {"target": "mail.send", "args": {"to": TO}}}
    with_prov = {
        "actor": {"id": "a"},
        "action": {"target": "mail.send", "args": {"to": TO}, "provenance": {"to": [{}, {}]}},
    }
    other = {
        "actor": {"id": "a"},
        "action": {"target": "mail.send", "args": {"to": TO}, "provenance": {"to": [{}, {"labels": ["x"]}]}},
    }
    assert "provenance" not in validate_request(bare).to_dict()["action"]
    assert validate_request(with_prov).digest() != validate_request(other).digest()


def test_labels_per_element_list_and_whole_argument() -> None:
    args = {"to": list(TO), "cc": ["chen@ledgerly.example"], "subject": "Q3 numbers"}
    prov: dict[str, Entry | tuple[Entry, ...]] = {
        "to": (Entry(("trusted",), (Source("user"),)), Entry((), (Source("agent"),))),
        "subject": Entry((), (Source("call", "r1:x"),)),
    }
    t = ProvenanceTable(args, prov, {"to": ("mail",), "cc": ("untrusted", "unknown")}, "planned")
    assert t.labels(args["to"][0]) == ["mail", "trusted", "user"]
    assert t.labels(args["to"][1]) == ["mail", "planned"]
    assert t.labels(args["to"]) == ["mail"]  # a list has the labels all its elements share
    assert t.labels(args["cc"][0]) == ["untrusted"]  # whole-argument labels, reserved ones dropped
    assert t.labels(args["subject"]) == ["unknown"]  # a call not in the history
    assert t.labels("".join(["ruth@", "ledgerly.example"])) == []  # an equal text, another value
    src = t.sources(args["subject"])
    assert src == [
        {"kind": "call", "call": "r1:x", "tool": "", "field": "", "labels": ["unknown"], "inputs": []}
    ]
    assert t.sources(args["cc"][0]) is None
    assert len(t.sources(args["to"]) or []) == 2


def test_cel_without_provenance_data_is_closed() -> None:
    assert compile_condition("labels(x) == []", {"x": CelType.DYN}).evaluate({"x": "ab"}) is True
    assert (
        compile_condition("sources(x)[0].kind == 'unknown'", {"x": CelType.DYN}).evaluate({"x": "ab"}) is True
    )


POLICY = """
tool mail.send { arg to: list of string  arg attachments: list of string  arg subject: string }
permit typed-recipients {
  action call mail.send
  when args.to.all(r, "user" in labels(r)) && sources(args.subject).exists(s, s.kind == "user")
  reason "Recipients and subject the user typed."
}
"""


def test_an_engine_reads_labels_and_sources_per_element() -> None:
    engine = Engine(charter.loads(POLICY))
    user = {"sources": [{"from": "user"}]}
    ok = {
        "target": "mail.send",
        "args": {"to": TO, "subject": "hi"},
        "provenance": {"to": [user, user], "subject": user},
    }
    assert engine.decide({"actor": {"id": "a"}, "action": ok}).outcome is Outcome.ALLOW
    bad = {**ok, "provenance": {"to": [user, {"sources": [{"from": "agent"}]}], "subject": user}}
    assert engine.decide({"actor": {"id": "a"}, "action": bad}).outcome is Outcome.DENY


def test_the_after_policys_provenance_conditions_compile() -> None:
    """The after policy's named conditions on labels() and sources() compile and decide alone."""
    draft = (ROOT / "examples/assistant/after/assistant.charter").read_text()
    found = {
        m.group(1): m.group(0) for m in re.finditer(r"^condition (\w+)\(.*?(?=\n\n|\n#)", draft, re.S | re.M)
    }
    wanted = ["typed", "secret", "asked", "from_origin", "typed_or_from"]
    assert all("labels(" in found[n] or "sources(" in found[n] or n == "asked" for n in wanted)
    found["typed"] += '\ncondition vouched(v: any) = labels(v).size() > 0 && labels(v).all(l, l in ["user"])'
    policy = (
        "\n".join(found[n] for n in wanted)
        + """
tool mail.send { arg to: list of string  arg subject: string }
permit checked {
  action call mail.send
  when args.to.all(r, vouched(r) && !secret(r)) && typed(args.subject)
  when args.to.all(r, !from_origin(r, ["contacts.search"]) && typed_or_from(r, ["contacts.search"]))
  reason "Uses every provenance condition of the after draft."
}
"""
    )
    engine = Engine(charter.loads(policy))
    user = {"sources": [{"from": "user"}]}
    ok = {
        "target": "mail.send",
        "args": {"to": TO, "subject": "hi"},
        "provenance": {"to": [user, user], "subject": user},
    }
    assert engine.decide({"actor": {"id": "a"}, "action": ok}).outcome is Outcome.ALLOW
    bad = {
        **ok,
        "provenance": {"to": [user, {"labels": ["private"], "sources": [{"from": "user"}]}], "subject": user},
    }
    assert engine.decide({"actor": {"id": "a"}, "action": bad}).outcome is Outcome.DENY


def test_a_check_cannot_give_a_reserved_label() -> None:
    from charter.compiler.pipeline import compile_text

    text = """
tool files.search { arg q: string }
on result picked {
  action call files.search
  then label planned, selector
  reason "Reserved labels are the engine's."
}
"""
    result = compile_text(text)
    codes = [(d.code.value, d.message) for d in result.diagnostics]
    assert ("E402", "the label 'planned' is reserved: only the engine gives it") in codes


def test_the_shortcut_for_common_entries_is_the_checker() -> None:
    """check_provenance takes the commonest entries (one source, nothing else) by a shortcut: it
    gives the entry the full checker gives, or leaves the entry to it (never accepts what the
    checker refuses)."""
    import itertools

    from charter.engine.provenance import _entry, _fast_entry

    calls: list[Any] = ["c-1", "", "x" * 256, "x" * 257, 7, None]
    fields: list[Any] = ["id", "a.b", "", ".a", "a.", "a..b", ".".join("a" * 16), ".".join("a" * 17), 3]
    sources: list[Any] = [{"from": "user"}, {"from": "agent"}, {"from": "model"}, {"from": 1}]
    sources += [{"call": c} for c in calls] + [{"call": c, "field": f} for c in calls for f in fields]
    sources += [{"field": "id"}, {"call": "c", "from": "user"}, {"call": "c", "field": "id", "x": 1}, "s"]
    shapes: list[Any] = [{"sources": [s]} for s in sources]
    shapes += [{"sources": [s], "labels": []} for s in sources[:3]]
    shapes += [{"sources": [s, t]} for s, t in itertools.product(sources[:3], repeat=2)]
    shapes += [{"sources": []}, {"sources": "x"}, {"labels": ["a"]}, {}, [], "x"]
    for shape in shapes * 2:  # the second pass meets the entries the first one kept
        fast = _fast_entry(shape)
        try:
            want = _entry(shape, "w")
        except RequestError:
            assert fast is None, shape
            continue
        assert fast is None or fast == want, shape
    assert _fast_entry({"sources": [{"call": "c-1", "field": "id"}]}) is not None
