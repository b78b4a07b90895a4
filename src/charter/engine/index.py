"""Rule index: buckets by action kind and target, then actor, with a bounded memo per request shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from charter.engine.policy import Selector
from charter.enums import ActionKind


class Selectable(Protocol):
    """Anything with a selector (rules, budgets, rates, tripwires, result checks)."""

    @property
    def selector(self) -> Selector: ...


T = TypeVar("T", bound=Selectable)

#: Memo entries kept before the memo is cleared (bounds memory under many distinct agents).
MEMO_LIMIT = 100_000


def actor_matches(sel: Selector, actor_id: str, roles: frozenset[str], ancestors: Sequence[str]) -> bool:
    """Whether a selector's actor part covers this actor (sub-agents match their ancestors' rules)."""
    if sel.subject_agent is not None and sel.subject_agent != actor_id and sel.subject_agent not in ancestors:
        return False
    if sel.actor_any:
        return True
    if sel.actor_agents and (actor_id in sel.actor_agents or any(a in sel.actor_agents for a in ancestors)):
        return True
    return bool(sel.actor_roles and not sel.actor_roles.isdisjoint(roles))


def target_matches(sel: Selector, kind: ActionKind, target: str, target_roles: frozenset[str]) -> bool:
    """Whether a selector's action part covers this action."""
    if sel.kind is not None and sel.kind is not kind:
        return False
    t = sel.target
    if t.any:
        return True
    if target in t.names:
        return True
    return bool(t.roles and not t.roles.isdisjoint(target_roles))


def _agents_only(sel: Selector) -> bool:
    """A selector that names agents and nothing else about the actor (per-agent grants)."""
    return bool(
        sel.actor_agents
        and not sel.actor_any
        and not sel.actor_roles
        and sel.subject_agent is None
        and sel.subject_workflow is None
    )


class _Bucket(Generic[T]):
    """The items of one (action kind, target): per-agent grants by agent, the rest in a list."""

    __slots__ = ("agents", "rest")

    def __init__(self) -> None:
        self.agents: dict[str, list[T]] = {}
        self.rest: list[T] = []


class Index(Generic[T]):
    """Selects the items whose selector covers a request; cost stays flat as policies grow
    (thousands of per-agent grants on one tool cost one lookup per agent, not a scan)."""

    def __init__(self, items: Iterable[T], order_key: object = None):
        self.items: tuple[T, ...] = tuple(items)
        self._by_target: dict[tuple[ActionKind, str], _Bucket[T]] = {}
        self._by_kind: dict[ActionKind, list[T]] = {}
        self._any: list[T] = []
        for item in self.items:
            sel = item.selector
            if sel.kind is None:
                self._any.append(item)
            elif sel.target.any or sel.target.roles:
                self._by_kind.setdefault(sel.kind, []).append(item)
            else:
                for name in sel.target.names:
                    bucket = self._by_target.get((sel.kind, name))
                    if bucket is None:
                        bucket = self._by_target[(sel.kind, name)] = _Bucket()
                    if _agents_only(sel):
                        for agent in sel.actor_agents:
                            bucket.agents.setdefault(agent, []).append(item)
                    else:
                        bucket.rest.append(item)
        self._memo: dict[tuple[object, ...], tuple[T, ...]] = {}
        self._key = order_key

    def select(
        self,
        kind: ActionKind,
        target: str,
        actor_id: str,
        roles: frozenset[str],
        ancestors: tuple[str, ...],
        workflow: str | None,
        target_roles: frozenset[str] = frozenset(),
    ) -> tuple[T, ...]:
        """Items covering (actor, action, target), in a fixed order."""
        # enum members hash in Python code; their plain string value hashes in C
        key = (kind._value_, target, actor_id, roles, ancestors, workflow, target_roles)
        found = self._memo.get(key)
        if found is not None:
            return found
        bucket = self._by_target.get((kind, target))
        out: list[T] = []
        pool: Sequence[T] = ()
        if bucket is not None:
            pool = bucket.rest
            if bucket.agents:
                # INVARIANT: an agents-only selector covers exactly the actor and its ancestors
                seen: set[int] = set()
                for agent in (actor_id, *ancestors):
                    for item in bucket.agents.get(agent, ()):
                        if id(item) not in seen:
                            seen.add(id(item))
                            out.append(item)
        out += [
            item
            for group in (pool, self._by_kind.get(kind, ()), self._any)
            for item in group
            if actor_matches(item.selector, actor_id, roles, ancestors)
            and target_matches(item.selector, kind, target, target_roles)
            and (item.selector.subject_workflow is None or item.selector.subject_workflow == workflow)
        ]
        if self._key is not None:
            out.sort(key=self._key)  # type: ignore[arg-type]
        result = tuple(out)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = result
        return result
