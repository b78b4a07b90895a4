"""Seeded generator of random but valid policy text, requests and initial state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

ROLES = ["r0", "r1", "r2", "r3"]
ARG_TYPES = {"amount": "double", "count": "int", "branch": "string", "flag": "bool"}
TAGS = ["tg0", "tg1", "tg2"]
CATS = ["cat0", "cat1"]
SOURCES = ["src0", "src1", "src2", "src3"]
WORKFLOWS = ["w1", "w2"]
BASE_TIME = "2025-01-15T{:02d}:{:02d}:{:02d}+00:00"
RUNS = ["ra", "rb"]
#: labels that enter runs (settlements, argument and provenance labels) and that clauses ask about
RUN_LABELS = ["untrusted", "x1", "trusted", "secret"]
#: result fields a tool may declare (`result NAME: TYPE`), kept in history at settlement
RESULT_TYPES = {"ref": "string", "size": "int"}

#: Optional features; each one is off by default only while it exposes a known engine bug.
ALL_FEATURES = frozenset(
    {
        "depth-selectors",  # delegation-depth tripwires with actor/action selectors or conditions
        "sequences",  # `before E` clauses with no run history (safe since main fixed `before`)
        "signal-errors",  # a `signal ... where` that errors next to a false `when`
        "boundary-errors",  # budget/rate conditions that can error at run time
        "rate-and-budget",  # rates and budgets over their limits together
        "depth-then-deny",  # a delegation-depth tripwire that denies
        "unsorted-ids",  # rule ids whose order differs from the order the engine collects them in
        "role-scope",  # budgets and rates counted per role (an actor may hold several)
        "named",  # named constants and named conditions (issue 18 step 1)
        "amount",  # budgets that count an amount from the arguments (issue 18 step 2)
        "provenance",  # labels()/sources() in conditions, action.provenance in requests (step 4)
        "runs",  # requests name one of RUNS: allowed actions become the run's history (`before`)
        "grants",  # grant kinds, runs begun with grants, granted()/run.grants in rules (step 3)
        "where",  # after/before call T where C over the run's history (step 6)
        "imports",  # runs seeded with imported calls (Engine.import_run) before any request (step 7)
        "windows",  # `after E within N steps` / `within D` (marks, labels and where searches)
        "labelled",  # `after/before labelled L1, L2` over the run's labels
        "settlements",  # allowed calls settled with labels and results; `where earlier.result.F`
        "run-labels",  # `run.labels` in conditions
        "grant-covers",  # grant `covers` that can fail (a division by a param that may be 0)
    }
)
SAFE_FEATURES: frozenset[str] = frozenset(
    {
        "sequences",
        "depth-then-deny",
        "unsorted-ids",
        "role-scope",
        "depth-selectors",
        "boundary-errors",
        "rate-and-budget",
        "signal-errors",
        "named",
        "amount",
        "provenance",
        "runs",
        "grants",
        "where",
        "imports",
        "windows",
        "labelled",
        "settlements",
        "run-labels",
        "grant-covers",
    }
)
FAIL_MODES = ["ignore", "deny", "halt", "escalate", "require approval"]
EXCEED = ["deny", "halt agent", "escalate", "require approval"]


@dataclass
class World:
    """The names one generated policy declares (requests are drawn from them)."""

    agents: dict[str, list[str]] = field(default_factory=dict)  # agent -> declared roles
    tools: dict[str, list[str]] = field(default_factory=dict)  # tool -> declared args
    results: dict[str, list[str]] = field(default_factory=dict)  # tool -> declared result fields
    tags: set[str] = field(default_factory=set)
    cats: set[str] = field(default_factory=set)
    signals: list[str] = field(default_factory=list)
    budgets: list[tuple[str, str]] = field(default_factory=list)  # (id, scope)
    grant_kinds: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # rule blocks (text)
    header: list[str] = field(default_factory=list)  # declarations (text)
    features: frozenset[str] = frozenset()  # what requests may use too

    def text(self) -> str:
        """The whole policy file."""
        return "\n".join(self.header) + "\n\n" + "\n\n".join(self.rules) + "\n"


class PolicyGen:
    """Draws one policy from a seeded RNG."""

    partial: set[str] = set()  # noqa: RUF012 - reset by args_of for each rule

    def __init__(self, rng: random.Random, features: frozenset[str] = SAFE_FEATURES):
        self.r = rng
        self.f = features
        self.w = World(features=features)
        self.n = 0

    def pick(self, xs: list[Any], k: int | None = None) -> Any:
        """One element, or ``k`` distinct ones (1..k when k is given)."""
        if k is None:
            return self.r.choice(xs)
        return self.r.sample(xs, self.r.randint(1, min(k, len(xs))))

    # ---- declarations ---------------------------------------------------------------------
    def declarations(self) -> None:
        """Units, roles, attributes, agents (some sub-agents), tools, signals, ranks."""
        r, w, h = self.r, self.w, self.w.header
        h += [
            "policy gen",
            "units USD, tokens",
            "roles " + ", ".join(ROLES),
            "attribute clearance: int",
            "attribute team: string",
            "context risk: int",
            "group approvers { members h1, h2 }",
            "escalation chain { to h1 for 1h  finally deny }",
        ]
        for i in range(r.randint(2, 4)):
            name, roles = f"a{i}", self.pick(ROLES, 2)
            body = ["role " + ", ".join(roles)]
            if i >= 2 and r.random() < 0.6:
                body.append(f"parent a{r.randrange(i)}")
            if r.random() < 0.7:
                body.append(f"clearance {r.randint(0, 4)}")
            if r.random() < 0.4:
                body.append(f'team "{r.choice(["core", "ops"])}"')
            w.agents[name] = roles
            h.append(f"agent {name} {{ " + "  ".join(body) + " }")
        for i in range(r.randint(2, 5)):
            name, body = f"t{i}", []
            if r.random() < 0.6:
                c = r.choice(CATS)
                w.cats.add(c)
                body.append(f"category {c}")
            if r.random() < 0.7:
                tags = self.pick(TAGS, 2)
                w.tags.update(tags)
                body.append("tags " + ", ".join(tags))
            args = self.pick(list(ARG_TYPES), 3) if r.random() < 0.8 else []
            body += [f"arg {a}: {ARG_TYPES[a]}" for a in args]
            w.tools[name] = args
            if "settlements" in self.f:
                results = [f for f in RESULT_TYPES if r.random() < 0.5]
                body += [f"result {f}: {RESULT_TYPES[f]}" for f in results]
                w.results[name] = results
            h.append(f"tool {name} {{ " + "  ".join(body) + " }")
        for i in range(r.randint(0, 3)):
            kind = f"k{i}"
            clears = "  clears" if r.random() < 0.35 else ""
            h.append(f"signal {kind} {{ from {r.choice(SOURCES)}{clears} }}")
            w.signals.append(kind)
        used = sorted({ln.split("from ")[1].split()[0] for ln in h if ln.startswith("signal")})
        if len(used) >= 2 and r.random() < 0.8:
            h.append("rank " + " > ".join(r.sample(used, len(used))))
        if "named" in self.f:
            h += [
                f"const lim = {r.randint(0, 5)}",
                "const cap: double = " + r.choice(["1.0", "10.0", "100.0"]),
                "const branches: set of string = " + r.choice(['["main"]', '["main", "release/1"]', "[]"]),
                "condition big(x: double) = x > cap",
                'condition known_branch(b: string) = b in branches || b.startsWith("rel")',
                "condition many(n: int) = n >= lim && big(double(n))",
            ]
        if "provenance" in self.f:
            h += [
                "condition vouched(v: any) = labels(v).size() > 0 && "
                'labels(v).all(l, l in ["user", "trusted"])',
                'condition from_user(v: any) = sources(v).all(s, s.kind == "user")',
            ]
        if "grants" in self.f:
            for i in range(r.randint(1, 2)):
                self.grant_kind(f"gk{i}")

    def grant_kind(self, name: str) -> None:
        """A grant kind: tools it may cover, typed params, `covers` that never fail (a tool set,
        a bound on how many arguments), `uses` from a param, a constant or none."""
        r, w = self.r, self.w
        act = (
            "action call any"
            if r.random() < 0.3
            else "action call " + ", ".join(self.pick(sorted(w.tools), 3))
        )
        body = [
            act,
            "param tools: set of string = []",
            "param most: int = 3",
            "param n: int = 2",
            "param d: int = 1",
        ]
        if r.random() < 0.6:
            body.append("covers tool.name in grant.tools")
        if r.random() < 0.4:
            body.append("covers args.size() <= grant.most")
        if "grant-covers" in self.f and r.random() < 0.5:
            # true (d = 1, 2), false (d = 3) or an error: division by zero (d = 0)
            body.append("covers 6 / grant.d > 2")
        body.append("bound grant.most >= 0 && grant.n >= 0")
        body.append(r.choice(["uses grant.n", "uses grant.n", f"uses {r.randint(1, 3)}", ""]))
        w.grant_kinds.append(name)
        w.header.append(f"grant {name} {{\n  " + "\n  ".join(b for b in body if b) + "\n}")

    # ---- conditions -----------------------------------------------------------------------
    def atom(self, args: list[str] | None) -> str:
        """One boolean condition; ``args`` is None when args is an open map."""
        r = self.r
        pool = [
            lambda: f"actor.clearance >= {r.randint(0, 4)}",
            lambda: f'actor.team == "{r.choice(["core", "ops"])}"',
            lambda: f'"{r.choice(ROLES)}" in actor.roles',
            lambda: f"actor.depth > {r.randint(0, 3)}",
            lambda: f"context.risk > {r.randint(0, 3)}",
            lambda: f'context.env == "{r.choice(["prod", "dev"])}"',
            lambda: f'context.workflow == "{r.choice(WORKFLOWS)}"',
            lambda: f"cost.USD > {r.choice(['0.5', '2.0'])}",
            lambda: f'tool.category == "{r.choice(CATS)}"',
            lambda: f'"{r.choice(TAGS)}" in tool.tags',
            lambda: "size(signals) > 0",
            lambda: f'action.kind == "{r.choice(["call", "delegate"])}"',
        ]
        names = [*list(ARG_TYPES), "missing"] if args is None else args
        named, prov = "named" in self.f, "provenance" in self.f
        if "run-labels" in self.f and r.random() < 0.06:  # §8.1 the run's labels, the whole set
            lab = r.choice(RUN_LABELS)
            return r.choice(
                [
                    f'"{lab}" in run.labels',
                    "run.labels.size() >= 2",
                    f'!("{lab}" in run.labels)',
                    f"run.steps >= {r.randint(1, 3)}",
                ]
            )
        if self.w.grant_kinds and r.random() < 0.08:  # run.grants: the run's instances (no use spent)
            return r.choice(
                [
                    f'run.grants.exists(g, g.kind == "{r.choice(self.w.grant_kinds)}")',
                    "run.grants.size() >= 2",
                ]
            )
        for a in names:
            typ = ARG_TYPES.get(a, "int")
            # an argument only some of the rule's tools declare must be guarded (E310)
            g = f"has(args.{a}) && " if a in self.partial else ""
            if typ == "double":
                pool.append(lambda a=a, g=g: f"{g}args.{a} > {r.choice(['1.0', '10.0', '100.0'])}")
                if named:
                    pool.append(lambda a=a, g=g: f"{g}big(args.{a})")
            elif typ == "int":
                pool.append(lambda a=a, g=g: f"{g}args.{a} >= {r.randint(0, 5)}")
                pool.append(lambda a=a, g=g: f"{g}10 / args.{a} > 2")
                if named:
                    pool.append(lambda a=a, g=g: f"{g}many(args.{a})")
                    pool.append(lambda a=a, g=g: f"{g}args.{a} >= lim")
            elif typ == "string":
                pool.append(lambda a=a, g=g: f'{g}args.{a} == "main"')
                pool.append(lambda a=a, g=g: f'{g}args.{a}.startsWith("rel")')
                if named:
                    pool.append(lambda a=a, g=g: f"{g}known_branch(args.{a})")
                    pool.append(lambda a=a, g=g: f"{g}args.{a} in branches")
            else:
                pool.append(lambda a=a, g=g: f"{g}args.{a}")
            if prov:
                pool.append(lambda a=a, g=g: f"{g}vouched(args.{a})")
                pool.append(lambda a=a, g=g: f"{g}from_user(args.{a})")
                pool.append(
                    lambda a=a, g=g: f'{g}"{r.choice(["x1", "unknown", "planned"])}" in labels(args.{a})'
                )
                pool.append(
                    lambda a=a, g=g: f'{g}sources(args.{a}).exists(s, s.kind == "call" && s.field == "id")'
                )
        text = r.choice(pool)()
        return f"({text})" if " && " in text else text

    def condition(self, args: list[str] | None) -> str:
        """An atom, a conjunction, a disjunction or a negation."""
        r = self.r
        x = r.random()
        if x < 0.6:
            return self.atom(args)
        if x < 0.75:
            return f"{self.atom(args)} && {self.atom(args)}"
        if x < 0.9:
            return f"{self.atom(args)} || {self.atom(args)}"
        return f"!({self.atom(args)})"

    def where(self, args: list[str] | None) -> str:
        """``after/before call T where C``: C relates the earlier call's arguments to this
        request's (an argument both declare, typed alike) or reads the earlier call alone."""
        r = self.r
        tool = r.choice(sorted(self.w.tools))
        common = sorted(set(self.w.tools[tool]) & set(args or ()) - self.partial)
        conds = ["earlier.args.size() >= 2", f'earlier.tool == "{tool}"']
        for f in self.w.results.get(tool, ()):  # settled result fields (an error until settled)
            if f == "ref":
                conds.append('earlier.result.ref == "main"')
                if "branch" in common:
                    conds.append("earlier.result.ref == args.branch")
            else:
                conds.append("earlier.result.size >= 2")
                if "count" in common:
                    conds.append("earlier.result.size == args.count")
        for a in common:
            conds.append(f"earlier.args.{a} == args.{a}")
            conds.append(f"earlier.args.{a} == args.{a}")
        for a in self.w.tools[tool]:
            conds.append(
                {
                    "amount": "earlier.args.amount > 10.0",
                    "count": "earlier.args.count >= 2",
                    "branch": 'earlier.args.branch == "main"',
                    "flag": "earlier.args.flag",
                }[a]
            )
        side = r.choice(["after", "before"])
        window = f" {self.window()}" if side == "after" and "windows" in self.f and r.random() < 0.4 else ""
        return f"{side} call {tool}{window} where {r.choice(conds)}"

    def window(self) -> str:
        """`within N steps` or `within D` (requests are one second apart)."""
        r = self.r
        return r.choice([f"within {r.randint(1, 4)} steps", f"within {r.choice(['3s', '10s', '1m'])}"])

    # ---- selectors ------------------------------------------------------------------------
    def actor(self) -> str | None:
        x = self.r.random()
        if x < 0.35:
            return None
        if x < 0.45:
            return "actor any"
        if x < 0.75:
            return "actor role " + ", ".join(self.pick(ROLES, 2))
        return "actor agent " + ", ".join(self.pick(sorted(self.w.agents), 2))

    def action(self) -> tuple[str | None, list[str] | None]:
        """An action clause and the argument names conditions may read (None: open map)."""
        r, w = self.r, self.w
        x = r.random()
        if x < 0.12:
            return None, None
        if x < 0.2:
            return "action any", None
        if x < 0.3:
            return r.choice(
                [
                    "action delegate",
                    "action delegate any",
                    "action delegate role " + r.choice(ROLES),
                    "action delegate " + r.choice(sorted(w.agents)),
                    "action model",
                    "action message any",
                ]
            ), None
        if x < 0.4:
            return "action call any", None
        if x < 0.5 and w.tags:
            tag = r.choice(sorted(w.tags))
            tagged = [t for t in w.tools if tag in self.tags_of(t)]
            return f"action call tagged {tag}", self.args_of(tagged)
        if x < 0.58 and w.cats:
            cat = r.choice(sorted(w.cats))
            return f"action call category {cat}", self.args_of(
                [t for t in w.tools if f"category {cat} " in self.decl(t) + " "]
            )
        tools = self.pick(sorted(w.tools), 3)
        return "action call " + ", ".join(tools), self.args_of(tools)

    def decl(self, tool: str) -> str:
        return next(line for line in self.w.header if line.startswith(f"tool {tool} "))

    def tags_of(self, tool: str) -> list[str]:
        d = self.decl(tool)
        return d.split("tags ")[1].split("  ")[0].split(", ") if "tags " in d else []

    def args_of(self, tools: list[str]) -> list[str] | None:
        """Names `args` has at compile time: the union, when every tool declares its arguments
        (``self.partial`` is then those only some of the tools declare)."""
        self.partial: set[str] = set()
        if not tools or any(not self.w.tools[t] for t in tools):
            return None
        names = sorted({a for t in tools for a in self.w.tools[t]})
        self.partial = {a for a in names if any(a not in self.w.tools[t] for t in tools)}
        return names

    def ident(self, prefix: str) -> str:
        """A rule id; unless "unsorted-ids", ids sort as rules < tripwires < budgets and rates."""
        if "unsorted-ids" in self.f:
            return f"{self.r.choice(['a', 'q', 'z'])}{prefix}-{self.n}"
        return f"{prefix}-{self.n:03d}"

    # ---- rules ----------------------------------------------------------------------------
    def rule(self) -> None:
        """A permit / forbid / halt / escalate / require-approval rule."""
        r, w = self.r, self.w
        self.n += 1
        kind = r.choices(["permit", "forbid", "halt", "escalate", "require approval"], [45, 20, 8, 12, 15])[0]
        rid = self.ident(kind.split()[-1][:4])
        body = []
        a = self.actor()
        if a:
            body.append(a)
        act, args = self.action()
        if act:
            body.append(act)
        if w.grant_kinds and r.random() < 0.2:
            if r.random() < 0.5:  # most grant rules permit (allowed decisions spend uses)
                kind, rid = "permit", self.ident("perm")
            # granted() as the rule's one condition, in an enforced rule: every decision that
            # reaches the rule asks it, so the kinds an allowed decision relied on (whose use it
            # spends) are those of the covering rules -- the same whatever order conditions run in
            body.append(r.choice(["when", "when", "unless"]) + f' granted("{r.choice(w.grant_kinds)}")')
            if r.random() < 0.3:
                body.append("on error " + r.choice(FAIL_MODES))
            if kind == "escalate":
                body.append("to chain")
            if kind == "require approval":
                body.append("approvers approvers")
            w.rules.append(f"{kind} {rid} {{\n  " + "\n  ".join(body) + "\n}")
            return
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            body.append(r.choice(["when", "when", "unless"]) + " " + self.condition(args))
        if w.signals and r.random() < 0.25:
            for k in self.pick(w.signals, 2):
                where = ""
                if r.random() < 0.5:
                    wheres = ["score >= 0.5", 'severity == "high"', "rank >= 1"]
                    if "signal-errors" in self.f:
                        wheres.append("100 / rank > 1")
                    where = " where " + r.choice(wheres)
                body.append(f"signal {k}{where}")
        if "sequences" in self.f and r.random() < 0.1:
            body.append(f"before call {r.choice(sorted(w.tools))}")
        if "windows" in self.f and r.random() < 0.1:
            body.append(f"after call {r.choice(sorted(w.tools))} {self.window()}")
        if "windows" in self.f and r.random() < 0.06:  # hand-offs: to named agents or by role
            side = r.choice(["after", "after", "before"])
            target = r.choice(["", " any", f" role {r.choice(ROLES)}", f" {r.choice(sorted(w.agents))}"])
            window = f" {self.window()}" if side == "after" and r.random() < 0.5 else ""
            where = " where earlier.agent == actor.id" if r.random() < 0.3 else ""
            body.append(f"{side} delegate{target}{window}{where}")
        if "labelled" in self.f and r.random() < 0.12:
            side = r.choice(["after", "after", "before"])
            window = (
                f" {self.window()}" if side == "after" and "windows" in self.f and r.random() < 0.5 else ""
            )
            body.append(f"{side} labelled {', '.join(self.pick(RUN_LABELS, 2))}{window}")
        if "where" in self.f and r.random() < 0.15:
            body.append(self.where(args))
        if r.random() < 0.12:
            body.append("mode shadow")
        if r.random() < 0.3:
            body.append("on error " + r.choice(FAIL_MODES))
        if kind == "halt" and r.random() < 0.4:
            body.append("stop " + r.choice(["agent", "agent", "tool", "role", "workflow"]))
        if kind == "escalate":
            body.append("to chain")
        if kind == "require approval":
            body.append("approvers approvers")
        w.rules.append(f"{kind} {rid} {{\n  " + "\n  ".join(body) + "\n}")

    def boundary(self) -> None:
        """A budget, a rate limit or a delegation-depth tripwire."""
        r, w = self.r, self.w
        self.n += 1
        x = r.random()
        body = []
        if x < 0.45:
            bid = self.ident("xbud")
            scope = r.choice(
                ["agent", "agent", "tool", "global", "workflow"]
                + (["role"] if "role-scope" in self.f else [])
            )
            unit = r.choice(["USD", "USD", "tokens"])
            body += [
                f"scope {scope}",
                f"limit {r.choice(['1', '2.5', '5', '10'])} {unit}" + r.choice(["", "", " per 1d"]),
            ]
            w.budgets.append((bid, scope))
            kind = "budget"
            payers = sorted(t for t, a in w.tools.items() if "amount" in a)
            if "amount" in self.f and payers and r.random() < 0.5:
                # counted from the arguments: a tool list that all declare `amount` (a negative
                # amount, a missing or mistyped argument are failures of the budget)
                body.append("action call " + ", ".join(self.pick(payers, 2)))
                body.append("amount " + r.choice(["args.amount", "args.amount * 2.0", "args.amount - 10.0"]))
        elif x < 0.75:
            bid, kind = self.ident("xrate"), "rate"
            scopes = ["agent", "tool", "global"] + (["role"] if "role-scope" in self.f else [])
            body += [f"scope {r.choice(scopes)}", f"limit {r.randint(1, 4)} per 1h"]
        else:
            bid, kind = self.ident("trip"), "tripwire"
            body.append(f"trigger delegation depth more than {r.randint(0, 3)}")
            then = r.choice(
                ["", "then escalate", "then halt agent", "then require approval"]
                + (["then deny"] if "depth-then-deny" in self.f else [])
            )
            if then:
                body.append(then)
        if kind != "tripwire" or "depth-selectors" in self.f:
            a = self.actor()
            if a:
                body.append(a)
            if r.random() < 0.4 and not any(b.startswith("amount ") for b in body):
                act, _ = self.action()
                if act:
                    body.append(act)
            if r.random() < 0.2:
                safe = ["actor.depth > 0", 'context.env == "prod"', "size(signals) == 0"]
                risky = ["context.risk > 1", "actor.clearance >= 2"]
                pool = safe + (risky if "boundary-errors" in self.f else [])
                body.append(r.choice(["when", "unless"]) + " " + r.choice(pool))
        if kind != "tripwire":
            if r.random() < 0.4:
                body.append("on exceed " + r.choice(EXCEED))
            if r.random() < 0.1:
                body.append("mode shadow")
        elif r.random() < 0.1 and "depth-selectors" in self.f:
            body.append("mode shadow")
        w.rules.append(f"{kind} {bid} {{\n  " + "\n  ".join(body) + "\n}")

    def policy(self) -> World:
        """The whole policy."""
        self.declarations()
        for _ in range(self.r.randint(3, 12)):
            self.rule()
        kinds = self.r.randint(0, 3)
        for _ in range(kinds):
            self.boundary()
        if "rate-and-budget" not in self.f:
            # a rate and a budget both over their limits on one request are read differently by
            # the engine (budgets unread once a rate is over); keep one kind per policy
            blocks = self.w.rules
            has_budget = any(b.startswith("budget") for b in blocks)
            if has_budget:
                self.w.rules = [b for b in blocks if not b.startswith("rate")]
        return self.w


def request(rng: random.Random, w: World, i: int) -> dict[str, Any]:
    """A random request against a generated policy."""
    r = rng
    agents = sorted(w.agents)
    known = r.random() < 0.75
    actor: dict[str, Any] = {"id": r.choice(agents) if known else r.choice(["u1", "u2"])}
    if r.random() < 0.5:
        actor["roles"] = r.sample(ROLES, r.randint(0, 2))
    if r.random() < 0.5:
        actor["attributes"] = {"clearance": r.choice([0, 2, 4, "high"]), "team": r.choice(["core", "ops"])}
    if r.random() < 0.4:
        actor["chain"] = [r.choice([*agents, "u3"]) for _ in range(r.randint(1, 4))]
    kind = r.choices(["call", "delegate", "model", "message"], [80, 12, 4, 4])[0]
    if kind == "call":
        target = r.choice(sorted(w.tools)) if r.random() < 0.85 else "zz.unknown"
    elif kind == "delegate":
        target = r.choice([*agents, "u3"])
    else:
        target = r.choice(["gpt", "ops-channel"])
    args: dict[str, Any] = {}
    for a, typ in ARG_TYPES.items():
        if r.random() < 0.55:
            good = {
                "double": r.choice([0.5, 5.0, 50.0, 500.0, 20]),
                "int": r.randint(0, 6),
                "string": r.choice(["main", "release/1", "feature"]),
                "bool": r.random() < 0.5,
            }[typ]
            args[a] = good if r.random() < 0.9 else r.choice(["x", 3, 1.5, None, True])
    ctx: dict[str, Any] = {"time": BASE_TIME.format(12 + i // 3600, i // 60 % 60, i % 60)}
    if "runs" in w.features and r.random() < 0.6:
        ctx["run"] = r.choice(RUNS)
    if r.random() < 0.6:
        ctx["workflow"] = r.choice(WORKFLOWS)
    if r.random() < 0.5:
        ctx["env"] = r.choice(["prod", "dev"])
    if r.random() < 0.4:
        ctx["risk"] = r.randint(0, 4)
    req: dict[str, Any] = {
        "actor": actor,
        "action": {"kind": kind, "target": target, "args": args},
        "context": ctx,
    }
    if "provenance" in w.features and args and r.random() < 0.6:
        prov: dict[str, Any] = {}
        for a in r.sample(sorted(args), r.randint(1, len(args))):
            entry: dict[str, Any] = {}
            if r.random() < 0.8:
                entry["sources"] = [
                    r.choice(
                        [{"from": "user"}, {"from": "agent"}, {"call": "c1", "field": "id"}, {"call": "c2"}]
                    )
                    for _ in range(r.randint(1, 2))
                ]
            if r.random() < 0.4:
                entry["labels"] = r.sample(["trusted", "x1", "user", "untrusted"], r.randint(1, 2))
            prov[a] = entry
        req["action"]["provenance"] = prov
        req["action"]["call_id"] = f"c{i}"
        if r.random() < 0.3:
            a = r.choice(sorted(args))
            req["action"]["labels"] = {a: r.sample(["trusted", "x1", "planned"], r.randint(1, 2))}
    if r.random() < 0.7:
        units = r.sample(["USD", "tokens"], r.randint(1, 2))
        req["cost"] = {u: r.choice([0, 0.25, 0.5, 1, 2.5]) for u in units}
    if r.random() < 0.4:
        kinds = [*w.signals, "k.undeclared"]
        req["signals"] = [
            {
                "source": r.choice(SOURCES),
                "kind": r.choice(kinds),
                "severity": r.choice(["low", "high"]),
                "score": r.choice([0.1, 0.5, 0.9]),
            }
            for _ in range(r.randint(1, 3))
        ]
    return req


def initial_state(rng: random.Random, w: World) -> tuple[list[tuple[str, str]], list[tuple[str, str, float]]]:
    """Some stops and some budget used: ([(scope, value)], [(budget id, scope value, amount)])."""
    r = rng
    stops: list[tuple[str, str]] = []
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        stops.append(
            r.choice(
                [
                    ("agent", r.choice(sorted(w.agents))),
                    ("tool", r.choice(sorted(w.tools))),
                    ("role", r.choice(ROLES)),
                    ("workflow", r.choice(WORKFLOWS)),
                    ("global", "*"),
                    ("agent", "u3"),
                ]
            )
        )
    if ("global", "*") in stops and r.random() < 0.8:
        stops.remove(("global", "*"))
    used = []
    for bid, scope in w.budgets:
        if r.random() < 0.6:
            value = {
                "agent": r.choice(sorted(w.agents)),
                "tool": r.choice(sorted(w.tools)),
                "global": "*",
                "role": r.choice(ROLES),
                "workflow": r.choice(WORKFLOWS),
            }[scope]
            used.append((bid, value, r.choice([0.5, 1.0, 2.0, 4.5, 9.75])))
    return stops, used


class DrawRandom(random.Random):
    """A ``random.Random`` whose choices come from hypothesis, so failures shrink."""

    def __init__(self, draw: Any):
        super().__init__(0)
        self._draw = draw

    def random(self) -> float:
        from hypothesis import strategies as st

        return float(self._draw(st.floats(0.0, 1.0, exclude_max=True)))

    def randint(self, a: int, b: int) -> int:
        from hypothesis import strategies as st

        return int(self._draw(st.integers(a, b)))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        lo, hi = (0, start) if stop is None else (start, stop)
        return self.randint(lo, hi - 1)

    def choice(self, seq: Any) -> Any:
        return seq[self.randint(0, len(seq) - 1)]

    def sample(self, population: Any, k: int, *, counts: Any = None) -> list[Any]:  # type: ignore[override]
        pool = list(population)
        return [pool.pop(self.randint(0, len(pool) - 1)) for _ in range(k)]

    def choices(
        self,
        population: Any,
        weights: Any = None,
        *,
        cum_weights: Any = None,  # type: ignore[override]
        k: int = 1,
    ) -> list[Any]:
        return [self.choice(list(population)) for _ in range(k)]


def run_labels(rng: random.Random, w: World) -> list[str]:
    """The labels a run is begun with (they arrive at step 0: docs/semantics.md 8.1)."""
    if "labelled" not in w.features or rng.random() < 0.6:
        return []
    return rng.sample(RUN_LABELS, rng.randint(1, 2))


def run_grants(rng: random.Random, w: World) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """The runs begun before any request: (run, actor -- "" for any --, grants)."""
    r = rng
    out = []
    for run in RUNS:
        if not w.grant_kinds or r.random() < 0.2:
            continue
        actor = r.choice(["", *sorted(w.agents)])
        grants = [
            {
                "kind": r.choice(w.grant_kinds),
                "tools": r.sample(sorted(w.tools), r.randint(0, len(w.tools))),
                "most": r.randint(0, 4),
                "n": r.randint(0, 3),
                "d": r.randint(0, 3),  # 0: `covers 6 / grant.d > 2` errors
            }
            for _ in range(r.randint(1, 3))
        ]
        out.append((run, actor, grants))
    return out


def run_imports(rng: random.Random, w: World, now: float) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Calls that already happened, imported into runs before any request: (run, actor, events);
    arguments typed as the tool declares them."""
    r = rng
    if "imports" not in w.features:
        return []
    out = []
    for run in RUNS:
        if r.random() < 0.4:
            continue
        events = []
        for j in range(r.randint(1, 3)):
            tool = r.choice(sorted(w.tools))
            args = {
                a: {
                    "double": r.choice([0.5, 5.0, 50.0, 500.0]),
                    "int": r.randint(0, 6),
                    "string": r.choice(["main", "release/1", "feature"]),
                    "bool": r.random() < 0.5,
                }[ARG_TYPES[a]]
                for a in w.tools[tool]
                if r.random() < 0.7
            }
            ev: dict[str, Any] = {
                "call_id": f"{run}:imp{j}",
                "target": tool,
                "args": args,
                "at": now - 20 + j,
            }
            if "labelled" in w.features and r.random() < 0.4:
                ev["labels"] = r.sample(RUN_LABELS, r.randint(1, 2))
            if "settlements" in w.features and r.random() < 0.5:
                ev["result"] = {"ref": r.choice(["main", "feature"]), "size": r.choice([0, 2, 5])}
            events.append(ev)
        out.append((run, r.choice(sorted(w.agents)), events))
    return out


def settlement(rng: random.Random, w: World, req: dict[str, Any]) -> tuple[list[str], dict[str, Any]] | None:
    """How an allowed call of a run is settled (labels, result), or None: not settled. Calls the
    provenance requests name (c1, c2) are never settled (§9.2 call sources are not modelled)."""
    r = rng
    if "settlements" not in w.features or req["action"].get("call_id") in ("c1", "c2") or r.random() < 0.3:
        return None
    labels = r.sample(RUN_LABELS, r.randint(0, 2))
    result: dict[str, Any] = {}
    if r.random() < 0.8:
        result["ref"] = r.choice(["main", "release/1", "feature", 7])
    if r.random() < 0.8:
        result["size"] = r.choice([0, 2, 5, 3.0, 2.5, "x"])
    if r.random() < 0.2:
        result["extra"] = 1
    return labels, result
