"""The scenario corpus: load and check tests/scenarios/<world>/*.yaml, and work out provenance.

A scenario is a run of an assistant: the user's task (the trusted intent, known before anything
untrusted is read), then tool calls in order, each with its arguments, where every argument
value came from (the user, an earlier call's result, or the model itself), and the result the
tool returns. An attack is a task whose run reads untrusted content carrying an injection, after
which the hijacked agent makes calls of its own, some of them harmful. The format is described
in tests/scenarios/README.md; everything here is plain data, independent of charter's engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ArgType",
    "Corpus",
    "Expect",
    "Scenario",
    "ScenarioError",
    "Step",
    "Tool",
    "World",
    "load_corpus",
    "provenance",
]

#: sources an argument value may come from besides an earlier step
USER = "user"  # the user's task, as typed
AGENT = "agent"  # chosen by the model with no data behind it (a folder name, a limit)
SPECIAL = frozenset({USER, AGENT})


def source_step(src: str) -> str:
    """The step a source names: ``ev`` and ``ev.participants`` (a field of its result) are ``ev``."""
    return src.split(".", 1)[0]


def source_field(src: str) -> str | None:
    """The result field a source names (``participants`` in ``ev.participants``), if any."""
    return src.split(".", 1)[1] if "." in src else None


#: labels that spread from a call's arguments to its result: a lookup whose query came from
#: untrusted content returns something untrusted content chose (integrity taint)
TAINT = frozenset({"untrusted"})

SCALARS = ("string", "int", "double", "bool")
VERDICTS = ("blocked", "gate", "through")
GOALS = ("exfiltrate", "pay", "forward", "delete", "invite", "persist", "phish", "tamper", "book", "cancel")


class ScenarioError(ValueError):
    """A scenario file that does not follow the format (names the file and the item)."""


@dataclass(frozen=True)
class ArgType:
    """A declared argument type: a scalar, or a list of one."""

    scalar: str
    is_list: bool = False

    @classmethod
    def parse(cls, text: str) -> ArgType:
        """``string``, ``double``, ``list of string``..."""
        words = str(text).split()
        if len(words) == 3 and words[:2] == ["list", "of"] and words[2] in SCALARS:
            return cls(words[2], True)
        if len(words) == 1 and words[0] in SCALARS:
            return cls(words[0])
        raise ScenarioError(f"unknown argument type {text!r} (use {', '.join(SCALARS)} or 'list of T')")

    def accepts(self, value: Any) -> bool:
        """Whether a scripted value has this type."""
        if self.is_list:
            return isinstance(value, list) and all(ArgType(self.scalar).accepts(v) for v in value)
        if self.scalar == "string":
            return isinstance(value, str)
        if self.scalar == "bool":
            return isinstance(value, bool)
        if self.scalar == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def __str__(self) -> str:
        return f"list of {self.scalar}" if self.is_list else self.scalar


@dataclass(frozen=True)
class Tool:
    """A tool of the assistant: its environment, typed arguments and the labels of its results."""

    name: str
    env: str
    args: Mapping[str, ArgType]
    labels: frozenset[str]


@dataclass(frozen=True)
class World:
    """The user, the people and accounts the assistant knows, the attackers, and the tools."""

    user: Mapping[str, str]
    org_domain: str
    colleagues: Mapping[str, str]
    contacts: Mapping[str, str]
    payees: Mapping[str, str]
    attackers: Mapping[str, Sequence[str]]
    envs: Mapping[str, str]
    tools: Mapping[str, Tool]


#: per element sources for a list argument, one tuple of sources for a scalar one
Sources = tuple[str, ...] | tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Step:
    """One tool call of a run."""

    id: str
    call: str
    args: Mapping[str, Any]
    sources: Mapping[str, Sources]
    result: Any = None
    labels: frozenset[str] | None = None  # overrides the tool's result labels
    injected: bool = False  # the hijacked agent made this call (ground truth, never sent)
    harmful: bool = False  # the attacker's goal (ground truth, never sent)
    injection: str | None = None  # the injected text this step's result carries


@dataclass(frozen=True)
class Expect:
    """What a policy set is expected to do with a scenario (checked for the sets that run)."""

    approvals: int = 0  # approval gates met by the legitimate steps
    blocked: int = 0  # legitimate steps denied or halted (a task the policy broke)
    verdict: str | None = None  # attacks: blocked (no human), gate (a human had to say no), through
    why: str = ""  # what makes it so (the after-claims say which feature)


@dataclass(frozen=True)
class Scenario:
    """A task, or an attack riding on a task, as one run of steps."""

    id: str
    env: str
    kind: str  # task | attack
    prompt: str
    grants: tuple[Mapping[str, Any], ...]
    steps: tuple[Step, ...]
    expect: Mapping[str, Expect]
    goal: str | None = None  # attacks: what the attacker wants
    task: str | None = None  # attacks: the task it rides on
    note: str = ""

    @property
    def attack(self) -> bool:
        """True for an attack."""
        return self.kind == "attack"

    @property
    def harmful(self) -> tuple[Step, ...]:
        """The steps that achieve the attacker's goal."""
        return tuple(s for s in self.steps if s.harmful)


@dataclass(frozen=True)
class Corpus:
    """A world and its scenarios, tasks first, in file order."""

    world: World
    scenarios: tuple[Scenario, ...]
    files: tuple[Path, ...] = field(default=())

    @property
    def tasks(self) -> tuple[Scenario, ...]:
        """The legitimate tasks."""
        return tuple(s for s in self.scenarios if not s.attack)

    @property
    def attacks(self) -> tuple[Scenario, ...]:
        """The prompt-injection attacks."""
        return tuple(s for s in self.scenarios if s.attack)

    def get(self, scenario_id: str) -> Scenario:
        """A scenario by id."""
        for s in self.scenarios:
            if s.id == scenario_id:
                return s
        raise KeyError(scenario_id)


# ---- loading ------------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None


def _world(path: Path) -> World:
    doc = _read(path)
    tools: dict[str, Tool] = {}
    envs: dict[str, str] = {}
    for env, spec in (doc.get("environments") or {}).items():
        envs[env] = str(spec.get("description", ""))
        for name, t in (spec.get("tools") or {}).items():
            if name in tools:
                raise ScenarioError(f"{path}: tool {name} declared twice")
            args = {a: ArgType.parse(ty) for a, ty in (t.get("args") or {}).items()}
            tools[name] = Tool(name, env, args, frozenset(t.get("labels") or ()))
    return World(
        user=dict(doc["user"]),
        org_domain=str(doc["org_domain"]),
        colleagues=dict(doc.get("colleagues") or {}),
        contacts=dict(doc.get("contacts") or {}),
        payees=dict(doc.get("payees") or {}),
        attackers={k: tuple(v) for k, v in (doc.get("attackers") or {}).items()},
        envs=envs,
        tools=tools,
    )


def _sources(raw: Any, arg: str, ty: ArgType, value: Any, where: str) -> Sources:
    """Sources of one argument: per element for a list, one tuple for a scalar."""

    def one(x: Any) -> tuple[str, ...]:
        xs = [x] if isinstance(x, str) else list(x)
        if not xs or not all(isinstance(s, str) and s for s in xs):
            raise ScenarioError(f"{where}: sources of {arg} must be names, got {x!r}")
        return tuple(xs)

    if raw is None:
        return tuple((AGENT,) for _ in value) if ty.is_list else (AGENT,)
    if ty.is_list:
        if not isinstance(raw, list) or len(raw) != len(value):
            raise ScenarioError(
                f"{where}: {arg} is a list of {len(value)}; give one source per element, got {raw!r}"
            )
        return tuple(one(x) for x in raw)
    return one(raw)


def _step(raw: Mapping[str, Any], world: World, where: str, injected: bool) -> Step:
    known = {"id", "call", "args", "from", "result", "labels", "harmful"}
    extra = set(raw) - known
    if extra:
        raise ScenarioError(f"{where}: unknown step field(s) {sorted(extra)} (use {sorted(known)})")
    sid = str(raw.get("id") or "")
    if sid and not sid.replace("-", "").replace("_", "").isalnum():
        raise ScenarioError(f"{where}: step id {sid!r} may hold only letters, digits, - and _")
    call = str(raw.get("call", ""))
    tool = world.tools.get(call)
    if tool is None:
        raise ScenarioError(f"{where}: unknown tool {call!r}")
    args = dict(raw.get("args") or {})
    froms = dict(raw.get("from") or {})
    for a, v in args.items():
        ty = tool.args.get(a)
        if ty is None:
            raise ScenarioError(f"{where}: {call} has no argument {a!r} (it has {sorted(tool.args)})")
        if not ty.accepts(v):
            raise ScenarioError(f"{where}: {call}.{a} is {ty}, got {v!r}")
    for a in froms:
        if a not in args:
            raise ScenarioError(f"{where}: 'from' names {a!r}, which is not an argument of this call")
    sources = {a: _sources(froms.get(a), a, tool.args[a], v, where) for a, v in args.items()}
    labels = raw.get("labels")
    if raw.get("harmful") and not injected:
        raise ScenarioError(f"{where}: only an attack's injected steps can be harmful")
    return Step(
        id=sid,
        call=call,
        args=args,
        sources=sources,
        result=raw.get("result"),
        labels=frozenset(labels) if labels is not None else None,
        injected=injected,
        harmful=bool(raw.get("harmful")),
    )


def _expect(raw: Any, where: str, attack: bool) -> dict[str, Expect]:
    out = {}
    for policy_set, e in (raw or {}).items():
        e = dict(e or {})
        extra = set(e) - {"approvals", "blocked", "verdict", "why"}
        if extra:
            raise ScenarioError(f"{where}: unknown expectation(s) {sorted(extra)}")
        verdict = e.get("verdict")
        if attack and verdict not in VERDICTS:
            raise ScenarioError(f"{where}: {policy_set}.verdict must be one of {VERDICTS}")
        if not attack and verdict is not None:
            raise ScenarioError(f"{where}: a task has no verdict")
        out[str(policy_set)] = Expect(
            int(e.get("approvals", 0)), int(e.get("blocked", 0)), verdict, str(e.get("why", ""))
        )
    return out


_TASK_KEYS = {"id", "prompt", "grants", "steps", "note"}
_ATTACK_KEYS = {"id", "goal", "task", "inject_at", "injection", "steps", "resume", "note"}


def _keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = set(raw) - allowed
    if extra:
        raise ScenarioError(f"{where}: unknown field(s) {sorted(extra)} (use {sorted(allowed)})")


def _number(steps: list[Step], prefix: str) -> list[Step]:
    """Steps without an id get ``<prefix><n>``."""
    out = []
    for i, s in enumerate(steps, 1):
        out.append(s if s.id else Step(**{**s.__dict__, "id": f"{prefix}{i}"}))
    return out


def _check_refs(sc_id: str, steps: Sequence[Step]) -> None:
    seen: set[str] = set()
    for s in steps:
        if s.id in seen or s.id in SPECIAL:
            raise ScenarioError(f"{sc_id}: step id {s.id!r} used twice (or reserved)")
        for a, srcs in s.sources.items():
            flat = [x for el in srcs for x in ((el,) if isinstance(el, str) else el)]
            for src in flat:
                if src not in SPECIAL and source_step(src) not in seen:
                    raise ScenarioError(
                        f"{sc_id} step {s.id}: {a} comes from {src!r}, which is not an earlier step"
                    )
        seen.add(s.id)


def _scenarios(path: Path, world: World, tasks_by_id: dict[str, Scenario]) -> list[Scenario]:
    doc = _read(path)
    env = str(doc.get("environment", ""))
    if env not in world.envs:
        raise ScenarioError(f"{path}: unknown environment {env!r}")
    out: list[Scenario] = []
    for raw in doc.get("tasks") or []:
        sid = str(raw["id"])
        _keys(raw, _TASK_KEYS, f"{path} {sid}")
        steps = _number([_step(s, world, f"{path} {sid}", False) for s in raw.get("steps") or []], "s")
        if not steps:
            raise ScenarioError(f"{path} {sid}: a task needs steps")
        _check_refs(sid, steps)
        sc = Scenario(
            id=sid,
            env=env,
            kind="task",
            prompt=str(raw["prompt"]),
            grants=tuple(raw.get("grants") or ()),
            steps=tuple(steps),
            expect={},
            note=str(raw.get("note", "")),
        )
        tasks_by_id[sid] = sc
        out.append(sc)
    for raw in doc.get("attacks") or []:
        sid = str(raw["id"])
        where = f"{path} {sid}"
        _keys(raw, _ATTACK_KEYS, where)
        task = tasks_by_id.get(str(raw.get("task")))
        if task is None:
            raise ScenarioError(f"{where}: rides on unknown task {raw.get('task')!r}")
        goal = str(raw.get("goal"))
        if goal not in GOALS:
            raise ScenarioError(f"{where}: goal must be one of {GOALS}")
        at = str(raw.get("inject_at"))
        idx = next((i for i, s in enumerate(task.steps) if s.id == at), None)
        if idx is None:
            raise ScenarioError(f"{where}: inject_at {at!r} is not a step of {task.id}")
        carrier = task.steps[idx]
        labels = carrier.labels if carrier.labels is not None else world.tools[carrier.call].labels
        if "untrusted" not in labels:
            raise ScenarioError(f"{where}: the injection must arrive in an untrusted result ({carrier.call})")
        carrier = Step(**{**carrier.__dict__, "injection": str(raw.get("injection", ""))})
        injected = _number([_step(s, world, where, True) for s in raw.get("steps") or []], "x")
        if not any(s.harmful for s in injected):
            raise ScenarioError(f"{where}: an attack needs a harmful step")
        resume = raw.get("resume", True)
        rest = list(task.steps[idx + 1 :]) if resume else []
        steps = [*task.steps[:idx], carrier, *injected, *rest]
        _check_refs(sid, steps)
        out.append(
            Scenario(
                id=sid,
                env=env,
                kind="attack",
                prompt=task.prompt,
                grants=task.grants,
                steps=tuple(steps),
                expect={},
                goal=goal,
                task=task.id,
                note=str(raw.get("note", "")),
            )
        )
    return out


def _with_expectations(scenarios: list[Scenario], path: Path) -> list[Scenario]:
    """Attach ``expected.yaml``: every scenario needs an entry, and every entry a scenario."""
    doc = _read(path) if path.exists() else {}
    known = {s.id for s in scenarios}
    stray = sorted(set(doc) - known)
    if stray:
        raise ScenarioError(f"{path}: expectations for unknown scenarios {stray}")
    out = []
    for s in scenarios:
        if s.id not in doc:
            raise ScenarioError(f"{path}: no expectations for {s.id}")
        out.append(Scenario(**{**s.__dict__, "expect": _expect(doc[s.id], f"{path} {s.id}", s.attack)}))
    return out


SPECIAL_FILES = {"world.yaml", "expected.yaml"}


def load_corpus(directory: str | Path) -> Corpus:
    """Load ``world.yaml``, the scenarios of every other ``*.yaml`` of a directory (sorted by
    name) and their expectations (``expected.yaml``)."""
    directory = Path(directory)
    world = _world(directory / "world.yaml")
    files = sorted(p for p in directory.glob("*.yaml") if p.name not in SPECIAL_FILES)
    tasks: dict[str, Scenario] = {}
    scenarios: list[Scenario] = []
    for f in files:
        scenarios.extend(_scenarios(f, world, tasks))
    ids = [s.id for s in scenarios]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ScenarioError(f"{directory}: scenario ids used twice: {dup}")
    tasks_first = [s for s in scenarios if not s.attack] + [s for s in scenarios if s.attack]
    return Corpus(world, tuple(_with_expectations(tasks_first, directory / "expected.yaml")), tuple(files))


# ---- provenance -----------------------------------------------------------------------------

#: labels of one value: a set for a scalar, one set per element for a list
Labels = frozenset[str] | tuple[frozenset[str], ...]


@dataclass(frozen=True)
class Provenance:
    """What the orchestrator knows about one step: the labels of each argument (per element for
    lists), where each came from (step ids, ``user``, ``agent``), and its result's labels."""

    arg_labels: Mapping[str, Labels]
    arg_sources: Mapping[str, Sources]
    result_labels: frozenset[str]

    def flat(self, arg: str) -> frozenset[str]:
        """All labels of an argument (the union over a list's elements)."""
        labs = self.arg_labels[arg]
        if isinstance(labs, frozenset):
            return labs
        return frozenset().union(*labs) if labs else frozenset()


def provenance(world: World, steps: Iterable[Step]) -> dict[str, Provenance]:
    """Labels of every step's arguments and result, in run order.

    A value from the user is labelled ``user``; one the model chose with nothing behind it has no
    label; one from an earlier step carries that step's result labels. A result carries its
    tool's labels (or the step's), plus ``untrusted`` when an argument of the call was untrusted.
    """
    out: dict[str, Provenance] = {}

    def of(src: str) -> frozenset[str]:
        if src == USER:
            return frozenset({USER})
        if src == AGENT:
            return frozenset()
        return out[source_step(src)].result_labels

    for s in steps:
        arg_labels: dict[str, Labels] = {}
        for a, srcs in s.sources.items():
            if world.tools[s.call].args[a].is_list:
                arg_labels[a] = tuple(frozenset().union(*(of(x) for x in el)) for el in srcs)  # type: ignore[union-attr]
            else:
                arg_labels[a] = frozenset().union(*(of(x) for x in srcs))  # type: ignore[arg-type]
        base = s.labels if s.labels is not None else world.tools[s.call].labels
        tainted = any(TAINT & Provenance(arg_labels, {}, frozenset()).flat(a) for a in arg_labels)
        result = frozenset(base | TAINT) if tainted else frozenset(base)
        out[s.id] = Provenance(arg_labels, dict(s.sources), result)
    return out
