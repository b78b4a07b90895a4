"""The request as a policy sees it: resolved actor and target, effective signals, run history, activation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.cel.grants import GRANTS
from charter.cel.limits import DECISION_COST, Budget
from charter.cel.provenance import PROVENANCE
from charter.engine.policy import AgentInfo, CompiledPolicy, ToolInfo
from charter.engine.provenance import CallLookup, ProvenanceTable
from charter.engine.validate import ValidRequest
from charter.enums import ActionKind, Scope

__all__ = [
    "ROOTS",
    "Activation",
    "RunView",
    "View",
    "build_view",
    "effective_signals",
    "root_bits",
    "scope_values",
    "stop_keys",
]


@dataclass(slots=True)
class RunView:
    """The run history a decision sees: step count, provenance labels, last step/time of each mark."""

    steps: int = 0
    labels: frozenset[str] = frozenset()
    marks: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    #: the run's grant instances (charter.state.types.GrantRecord), lowest id first
    grants: tuple[Any, ...] = ()
    #: what ``granted()`` reads (charter.engine.grants.GrantTable; None: no grants)
    table: Any = None
    #: the run's entries in detail, read on first use by a ``where`` clause (engine/history.py);
    #: None when the policy keeps no history detail
    detail: Any = None


#: The roots of the activation conditions read, each with its bit (see :func:`root_bits`).
ROOTS: Mapping[str, int] = {
    "args": 1,
    "actor": 2,
    "context": 4,
    "tool": 8,
    "action": 16,
    "cost": 32,
    "signals": 64,
    "run": 128,
}


def root_bits(references: frozenset[str]) -> int:
    """The roots a set of condition references reads, as bits; -1 when one is not a root."""
    bits = 0
    for ref in references:
        bit = ROOTS.get(ref.split(".", 1)[0])
        if bit is None:
            return -1
        bits |= bit
    return bits


_new = object.__new__
_EMPTY_ROLES: frozenset[str] = frozenset()


class View:
    """A validated request resolved against one policy: the actor (declared agents are
    authoritative), the target tool, arguments typed by the tool, effective signals, the run's
    history (when the policy reads it) and the CEL activation (built on first use).

    Built by :func:`build_view` only; one per decision.
    """

    __slots__ = (
        "_activation",
        "actor_id",
        "ancestors",
        "args",
        "attributes",
        "calls",
        "declared",
        "kind",
        "labels",
        "now",
        "req",
        "roles",
        "run",
        "signals",
        "target",
        "target_roles",
        "tool",
    )

    req: ValidRequest
    actor_id: str
    roles: frozenset[str]
    ancestors: tuple[str, ...]
    attributes: Mapping[str, Any]
    #: the declared agent whose precomputed activation is this view's ``actor`` root: the request
    #: adds nothing to its attributes and has no delegation chain or human (else None)
    declared: AgentInfo | None
    kind: ActionKind
    target: str
    tool: ToolInfo | None
    args: Mapping[str, Any]
    #: every provenance label of the arguments
    labels: frozenset[str]
    target_roles: frozenset[str]
    signals: tuple[Mapping[str, Any], ...]
    now: float
    run: RunView | None
    #: the facts of the run's earlier calls, for provenance sources that name one (None: no run)
    calls: CallLookup | None
    _activation: dict[str, Any] | None

    @property
    def chain(self) -> tuple[str, ...]:
        """The delegation chain that led to this request, oldest first."""
        return self.req.chain

    @property
    def cost(self) -> Mapping[str, float]:
        """The request's estimated cost per unit."""
        return self.req.cost

    def selection_key(self) -> tuple[Any, ...]:
        """What selects the rules and boundaries covering this request: exactly the arguments of
        :meth:`select`, so it keys every memo of a selection (rule plans, stateful boundaries).
        ``Engine._decide`` builds the same tuple inline (a call less per decision)."""
        return (
            self.kind._value_,
            self.target,
            self.actor_id,
            self.roles,
            self.ancestors,
            self.req.workflow,
            self.target_roles,
        )

    def select(self, index: Any) -> Any:
        """The items of a compiled index (rules, budgets, rates...) whose selector covers this request."""
        return index.select(
            self.kind,
            self.target,
            self.actor_id,
            self.roles,
            self.ancestors,
            self.req.workflow,
            self.target_roles,
        )

    def copy(self) -> View:
        """A shallow copy without the cached activation."""
        v: View = _new(View)
        for name in View.__slots__:
            setattr(v, name, getattr(self, name))
        v._activation = None
        return v

    def activation(self) -> Activation:
        """The CEL activation; each root is built on first use (most conditions read two or three)."""
        act = self._activation
        if act.__class__ is not Activation:
            plain = act
            act = self._activation = Activation() if plain is None else Activation(plain)
            act.view = self
        return act

    def tool_root(self) -> Mapping[str, Any]:
        """The ``tool`` root of conditions (an undeclared target reads as a tool with no tags)."""
        tool = self.tool
        return tool.activation if tool is not None else _unknown_tool(self.target)

    def full_activation(self) -> dict[str, Any]:
        """A plain dict with every root built (to extend with more names)."""
        act = self.activation()
        out = {name: act[name] for name in ROOTS}
        out[PROVENANCE] = act.get(PROVENANCE)
        return out

    def root(self, name: str) -> Any:
        """Build one root of the activation."""
        if name == "args":
            return self.args
        if name == "actor":
            return self.actor_dict()
        if name == "context":
            return self.context_dict()
        if name == "action":
            return {
                "kind": self.kind._value_,
                "target": self.target,
                "args": self.args,
                "labels": sorted(self.labels) if self.labels else [],
                "arg_labels": self._arg_labels(),
            }
        if name == "tool":
            return self.tool_root()
        if name == "cost":
            return self.req.cost
        if name == "signals":
            return list(self.signals)
        if name == "run":
            run = self.run
            if run is None:
                return {"steps": 0, "labels": [], "grants": []}
            grants = [{**g.params, "id": g.id, "kind": g.kind, "uses_left": g.uses_left} for g in run.grants]
            return {"steps": run.steps, "labels": sorted(run.labels), "grants": grants}
        if name == PROVENANCE:
            return self.provenance_table()
        if name == GRANTS:
            run = self.run
            return run.table if run is not None else None
        if name == "history":
            from charter.engine.history import history_root  # (history imports this module)

            return history_root(self.run)
        raise KeyError(name)

    def provenance_table(self) -> ProvenanceTable | None:
        """What ``labels(x)`` and ``sources(x)`` read (None: no argument has provenance or labels).

        ``agent`` sources are ``planned`` only when the run's labels are known and hold no
        ``untrusted`` (the planner chose the value before reading untrusted content), else ``unknown``.
        """
        req = self.req
        if not req.provenance and not req.labels:
            return None
        run = self.run
        agent = "planned" if run is not None and "untrusted" not in run.labels else "unknown"
        return ProvenanceTable(self.args, req.provenance, req.labels, agent, self.calls)

    def _arg_labels(self) -> dict[str, list[str]]:
        """Labels per argument: every argument the tool declares (none: []), then any other labelled."""
        tool = self.tool
        out: dict[str, list[str]] = {a: [] for a in tool.args} if tool is not None else {}
        for k, v in self.req.labels.items():
            out[k] = list(v)
        return out

    def actor_dict(self) -> Mapping[str, Any]:
        """The ``actor`` root of conditions."""
        if self.declared is not None:
            return self.declared.activation
        req = self.req
        actor = dict(self.attributes)
        actor["id"] = self.actor_id
        actor["roles"] = sorted(self.roles)
        actor["chain"] = list(req.chain)
        actor["depth"] = len(req.chain)
        actor["human"] = req.human or ""
        return actor

    def context_dict(self) -> dict[str, Any]:
        """The ``context`` root of conditions (missing ids read as empty strings)."""
        req = self.req
        context = {
            "workflow": req.workflow or "",
            "run": req.run or "",
            "tenant": req.tenant or "",
            "env": req.env or "",
            "time": req.time,
        }
        if req.context_extra:
            context.update(req.context_extra)
        return context


class Activation(dict[str, Any]):
    """A CEL activation whose roots are built when a condition first reads them.

    INVARIANT: reads by key (the compiled fast path) and membership tests (the exact path) both
    see every root; a root, once built, is an ordinary entry.
    """

    __slots__ = ("_budget", "view")

    view: View

    @property
    def cel_budget(self) -> Budget:
        """The decision's CEL work, shared by its conditions (made when a condition first needs it)."""
        try:
            return self._budget
        except AttributeError:
            self._budget: Budget = Budget(DECISION_COST)
            return self._budget

    def __missing__(self, key: str) -> Any:
        value = self.view.root(key)
        self[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in ROOTS or dict.__contains__(self, key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override,unused-ignore]
        """Like dict.get, building the root if needed."""
        try:
            return self[key]
        except KeyError:
            return default


def _unknown_tool(target: str) -> dict[str, Any]:
    return {"name": target, "category": "", "tags": []}


def effective_signals(policy: CompiledPolicy, req: ValidRequest) -> tuple[Mapping[str, Any], ...]:
    """Signals rules can see: a concern is dropped when a higher-ranked source clears.

    INVARIANT: a clearing signal never suppresses a concern from a source of equal or higher
    rank, so "research says no issue" cannot outweigh risk or compliance when they outrank it.
    """
    if not req.signals:
        return ()
    ranks = policy.signal_source_rank
    kind_source = policy.signal_kind_source
    sigs = []
    for s in req.signals:
        source = kind_source.get(s["kind"], s["source"])
        sigs.append(
            {
                "source": source,
                "kind": s["kind"],
                "severity": s["severity"],
                "score": float(s["score"]),
                "note": s["note"],
                "rank": ranks.get(source, 0),
            }
        )
    clears = [s for s in sigs if s["kind"] in policy.signal_clears]
    if not clears:
        return tuple(sigs)
    top_clear = max(s["rank"] for s in clears)
    return tuple(s for s in sigs if s["kind"] in policy.signal_clears or s["rank"] >= top_clear)


def coerce(value: Any, typ: str) -> Any:
    """Coerce a JSON value to a declared type when it is lossless (e.g. 12000 -> 12000.0)."""
    if typ in ("double", "number") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_view(policy: CompiledPolicy, req: ValidRequest, now: float) -> View:
    """Resolve the actor (declared agents are authoritative) and the target, and build the view."""
    v: View = _new(View)
    v.req = req
    v.actor_id = aid = req.actor_id
    declared = policy.agents.get(aid)
    if declared is not None:
        v.roles = declared.roles
        v.ancestors = declared.ancestors
        dattrs = declared.attributes
        attrs = req.attributes
        if attrs and not dattrs.keys() >= attrs.keys():
            v.attributes = {**attrs, **dattrs}
            v.declared = None
        else:
            v.attributes = dattrs  # declared attributes win; the request adds nothing
            v.declared = declared if not req.chain and not req.human else None
    else:
        v.roles = frozenset(req.roles) if req.roles else _EMPTY_ROLES
        v.ancestors = ()
        v.attributes = req.attributes
        v.declared = None
    v.kind = kind = req.kind
    v.target = target = req.target
    v.target_roles = _EMPTY_ROLES
    if kind is ActionKind.CALL:
        v.tool = tool = policy.tools.get(target)
        args = req.args
        if tool is not None and tool.coerce and args:
            types = tool.args
            args = {k: coerce(x, types[k]) if k in types else x for k, x in args.items()}
        v.args = args
    else:
        v.tool = None
        v.args = req.args
        if kind is ActionKind.DELEGATE:
            delegate = policy.agents.get(target)
            if delegate is not None:
                v.target_roles = delegate.roles
    v.labels = frozenset(lab for labs in req.labels.values() for lab in labs) if req.labels else _EMPTY_ROLES
    v.signals = effective_signals(policy, req) if req.signals else ()
    v.now = now
    v.run = None
    v.calls = None
    v._activation = None
    return v


def scope_values(scope: Scope, view: View) -> list[str]:
    """The instance(s) of a scope a request falls in (a missing id counts as one shared '-')."""
    if scope is Scope.AGENT:  # the commonest scope of budgets and rates: tested first
        return [view.actor_id]
    if scope in (Scope.GLOBAL, Scope.ORG):
        return ["*"]
    req = view.req
    if scope is Scope.TENANT:
        return [req.tenant or "-"]
    if scope is Scope.WORKFLOW:
        return [req.workflow or "-"]
    if scope is Scope.RUN:
        return [req.run or "-"]
    if scope is Scope.TOOL:
        return [view.target]
    return sorted(view.roles) or ["-"]


def stop_keys(view: View) -> tuple[tuple[str, str], ...]:
    """Every stop that would cover this request: global, its agent (and ancestors), workflow..."""
    req = view.req
    keys: list[tuple[str, str]] = [("global", "*"), ("agent", view.actor_id)]
    if view.ancestors:
        keys.extend(("agent", a) for a in view.ancestors)
    if req.chain:
        keys.extend(("agent", a) for a in req.chain)
    if req.workflow:
        keys.append(("workflow", req.workflow))
    if req.run:
        keys.append(("run", req.run))
    if req.tenant:
        keys.append(("tenant", req.tenant))
    keys.append(("tool", view.target))
    keys.extend(("role", r) for r in sorted(view.roles))
    return tuple(keys)
