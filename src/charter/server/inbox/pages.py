"""The inbox's pages as functions from plain data to Html (no I/O here; routes.py gathers the data).

Every dynamic value goes through html.t/esc/join; regions marked ``data-live`` are swapped in place
by inbox.js when the store changes, keyed by ``data-version`` so a form being typed in stays put.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from charter.approvals.identity import channel_label
from charter.server.inbox.html import Html, ago, duration, iso, join, num, t, when

PREFIX = "/ui"
#: Messages shown after a successful form post (the redirect names one of these keys: nothing the
#: client sends is ever reflected into the page).
DONE = {
    "approve": "Your approval is recorded.",
    "deny": "Your denial is recorded.",
    "allow": "You allowed the escalated action.",
    "refuse": "You denied the escalated action.",
    "stop": "The stop is in force on every replica.",
    "resume": "Your resume request is recorded.",
    "signed-out": "You are signed out.",
}
APPROVAL_TABS = ("pending", "approved", "denied", "expired", "redeemed", "all")
ESCALATION_TABS = ("open", "allowed", "denied", "fallback", "redeemed", "all")
SCOPES = ("global", "workflow", "agent", "tool", "run", "role", "tenant")


_PLAIN = re.compile(r"[A-Za-z0-9._~-]+")


def url(*parts: str, **query: str | None) -> str:
    """A path under /ui with each part percent-encoded (ids come from the store: never trust them)."""
    path = PREFIX + "".join(
        "/" + (p if _PLAIN.fullmatch(p) and p.strip(".") else quote(p, safe="")) for p in parts
    )
    q = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items() if v)
    return path + (f"?{q}" if q else "")


@dataclass
class Viewer:
    """Who is looking, what they may do, and the CSRF token their forms carry."""

    name: str
    roles: frozenset[str]
    csrf: str
    may: Mapping[str, bool] = field(default_factory=dict)
    #: the store's change mark read before the page's data (inbox.js redraws when it moves)
    mark: str = ""


def version(*parts: Any) -> str:
    """A short digest of what a live region shows (inbox.js swaps it only when this changes)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _badge(status: Any) -> Html:
    return t('<span class="badge badge-{s}">{s}</span>', s=str(status))


def _who(entry: Mapping[str, Any]) -> Html:
    label = channel_label(entry.get("via"))
    return t(
        '<strong>{by}</strong>{via} <time datetime="{iso}">{at}</time>{note}',
        by=entry.get("by") or "charter",
        via=t(' <span class="via">{v}</span>', v=label) if label else Html(""),
        iso=iso(entry.get("at")),
        at=when(entry.get("at")),
        note=t(' <q class="note">{n}</q>', n=entry["note"]) if entry.get("note") else Html(""),
    )


def _name(entry: Mapping[str, Any]) -> Html:
    """A person and their channel, without the time (for lines that already show it)."""
    label = channel_label(entry.get("via"))
    return t(
        "<strong>{by}</strong>{via}",
        by=entry.get("by") or "charter",
        via=t(' <span class="via">{v}</span>', v=label) if label else Html(""),
    )


def _args_summary(args: Any, limit: int = 90) -> str:
    if not isinstance(args, Mapping) or not args:
        return ""
    text = json.dumps(args, default=str, ensure_ascii=False)[1:-1]  # one encoder call per row
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _csrf_field(v: Viewer) -> Html:
    return t('<input type="hidden" name="csrf" value="{c}">', c=v.csrf)


def _flash(done: str | None, error: str | None) -> Html:
    out = []
    if done in DONE:
        out.append(t('<p class="flash ok" role="status">{m}</p>', m=DONE[done]))
    if error:
        out.append(t('<p class="flash error" role="alert">{m}</p>', m=error))
    return join(out)


# ---- the frame ----------------------------------------------------------------------------------
def layout(
    title: str, body: Html, viewer: Viewer | None, section: str = "", counts: Mapping[str, int] | None = None
) -> Html:
    """The page frame: skip link, navigation by role, who is signed in, the live-status region."""
    nav = Html("")
    who = Html("")
    csrf = Html("")
    if viewer is not None:
        counts = counts or {}
        items = []
        for key, label, perm in (
            ("approvals", "Approvals", "read-humans"),
            ("escalations", "Escalations", "read-humans"),
            ("stops", "Stops", "read-stops"),
            ("runs", "Runs", "read"),
        ):
            if not viewer.may.get(perm):
                continue
            n = counts.get(key)
            items.append(
                t(
                    '<li><a href="{href}"{cur}>{label}{n}</a></li>',
                    href=url(key),
                    cur=Html(' aria-current="page"') if key == section else Html(""),
                    label=label,
                    n=t(' <span class="count" aria-label="{n} waiting">{n}</span>', n=n) if n else Html(""),
                )
            )
        nav = t('<nav aria-label="Sections"><ul>{items}</ul></nav>', items=join(items))
        who = t(
            '<div class="who">Signed in as <strong>{name}</strong> <span class="roles">({roles})</span>'
            '<form method="post" action="{out}">{csrf}<button type="submit" class="link">Sign out</button>'
            "</form></div>",
            name=viewer.name,
            roles=", ".join(sorted(viewer.roles)),
            out=url("logout"),
            csrf=_csrf_field(viewer),
        )
        csrf = t('<meta name="csrf-token" content="{c}">', c=viewer.csrf)
    return t(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} · charter inbox</title>{csrf}"
        '<link rel="stylesheet" href="{css}"><script src="{js}" defer></script></head>'
        '<body{live}><a class="skip" href="#main">Skip to content</a>'
        '<header><p class="brand"><a href="{home}">charter inbox</a></p>{nav}{who}</header>'
        '<main id="main" tabindex="-1">{body}</main>'
        '<div id="live-status" class="visually-hidden" role="status" aria-live="polite"></div>'
        "</body></html>",
        title=title,
        csrf=csrf,
        css=url("static", "inbox.css"),
        js=url("static", "inbox.js"),
        live=t(' data-events="{e}" data-mark="{m}"', e=url("events"), m=viewer.mark)
        if viewer is not None
        else Html(""),
        home=url(),
        nav=nav,
        who=who,
        body=body,
    )


def sign_in(error: str | None = None, done: str | None = None, note: str | None = None) -> Html:
    """The sign-in form: a token, as the sidecar's tokens file names it."""
    body = t(
        "<h1>Sign in</h1>{flash}{note}"
        '<form method="post" action="{action}" class="card narrow">'
        '<label for="token">Your token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" required '
        'aria-describedby="token-help" autofocus>'
        '<p id="token-help" class="help">The bearer token the sidecar\'s tokens file gives you. '
        "Your name and role come from it.</p>"
        '<button type="submit" class="primary">Sign in</button></form>',
        flash=_flash(done, error),
        note=t('<p class="flash error" role="alert">{n}</p>', n=note) if note else Html(""),
        action=url("login"),
    )
    return layout("Sign in", body, None)


def message_page(title: str, text: str, viewer: Viewer | None) -> Html:
    """A short page: 403, 404, or the inbox being unavailable."""
    return layout(title, t('<h1>{title}</h1><p role="alert">{text}</p>', title=title, text=text), viewer)


def _tabs(kind: str, current: str, tabs: Sequence[str]) -> Html:
    items = [
        t(
            '<li><a href="{href}"{cur}>{label}</a></li>',
            href=url(kind, status=s),
            cur=Html(' aria-current="true"') if s == current else Html(""),
            label=s,
        )
        for s in tabs
    ]
    return t('<nav aria-label="Filter by status" class="tabs"><ul>{i}</ul></nav>', i=join(items))


def _listing(
    title: str,
    noun: str,
    status: str,
    tabs: Sequence[str],
    headers: Sequence[str],
    widths: Sequence[str],
    rows: Sequence[Html],
    live_version: str,
) -> Html:
    """A list page's body: heading, status filter, and the table (a live region) or 'none'."""
    kind = title.lower()
    if rows:
        table = t(
            '<table class="list"><caption>{n} {noun}{s} ({status})</caption><colgroup>{cols}</colgroup>'
            "<thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>",
            n=len(rows),
            noun=noun,
            s="" if len(rows) == 1 else "s",
            status=status,
            cols=join(t('<col class="{c}">', c=w) if w else Html("<col>") for w in widths),
            heads=join(t('<th scope="col">{h}</th>', h=h) for h in headers),
            rows=join(rows),
        )
    else:
        table = t('<p class="empty">No {s} {noun}s.</p>', s=status if status != "all" else "", noun=noun)
    return t(
        '<h1>{title}</h1>{tabs}<div data-live="list" data-version="{v}">{table}</div>',
        title=title,
        tabs=_tabs(kind, status, tabs),
        v=live_version,
        table=table,
    )


# ---- approvals ------------------------------------------------------------------------------------
def _progress(doc: Mapping[str, Any]) -> tuple[int, int]:
    have = len(doc.get("approvals") or [])
    need = max((int(g.get("quorum", 1)) for g in doc.get("gates") or []), default=1)
    return have, need


def approvals_list(
    docs: Sequence[Mapping[str, Any]], status: str, now: float, viewer: Viewer, counts: Mapping[str, int]
) -> Html:
    """The approvals table (one row per request, newest first)."""
    rows: list[Html] = []
    for d in docs:
        a = d.get("action") or {}
        have, need = _progress(d)
        rows.append(
            t(
                '<tr><td><a href="{href}">{id}</a></td><td>{kind} <code>{target}</code></td>'
                '<td>{agent}</td><td class="args">{args}</td><td>{group}</td>'
                "<td>{have} of {need}</td>"
                '<td><time datetime="{iso}">{opened}</time></td><td>{expires}</td><td>{status}</td></tr>',
                href=url("approvals", str(d.get("id"))),
                id=d.get("id"),
                kind=a.get("kind", "call"),
                target=a.get("target"),
                agent=a.get("agent"),
                args=_args_summary(a.get("args")),
                group=d.get("group"),
                need=need,
                have=have,
                iso=iso(d.get("created_at")),
                opened=ago(d.get("created_at"), now),
                expires=ago(d.get("expires_at"), now) if d.get("status") == "pending" else "-",
                status=_badge(d.get("status")),
            )
        )
    body = _listing(
        "Approvals",
        "approval request",
        status,
        APPROVAL_TABS,
        ("Request", "Action", "Agent", "Arguments", "Approvers", "Quorum", "Opened", "Expires", "Status"),
        ("c-id", "c-action", "c-agent", "", "c-group", "c-quorum", "c-time", "c-time", "c-status"),
        rows,
        version([(d.get("id"), d.get("status"), len(d.get("approvals") or [])) for d in docs]),
    )
    return layout("Approvals", body, viewer, "approvals", counts)


def _action_block(a: Mapping[str, Any], doc: Mapping[str, Any], delegation: Sequence[Any] = ()) -> Html:
    run = a.get("run")
    run_link = (
        t('<a href="{h}">{r}</a>', h=url("runs", str(run), agent=str(a.get("agent") or "")), r=run)
        if run
        else Html("-")
    )
    chain = list(delegation)
    return t(
        '<section aria-labelledby="h-action"><h2 id="h-action">The action</h2><dl class="facts">'
        "<dt>Kind</dt><dd>{kind}</dd><dt>Target</dt><dd><code>{target}</code></dd>"
        "<dt>Agent</dt><dd>{agent}</dd>{chain}{human}"
        "<dt>Workflow</dt><dd>{wf}</dd><dt>Run</dt><dd>{run}</dd>"
        "<dt>Decision</dt><dd>{decision}</dd></dl>"
        '<h3 id="h-args">Arguments</h3><pre class="args" aria-labelledby="h-args">{args}</pre></section>',
        kind=a.get("kind", "call"),
        target=a.get("target"),
        agent=a.get("agent"),
        chain=t("<dt>Delegated by</dt><dd>{c}</dd>", c=" → ".join(map(str, chain))) if chain else Html(""),
        human=t("<dt>Launched by</dt><dd>{h}</dd>", h=doc["human"]) if doc.get("human") else Html(""),
        wf=a.get("workflow") or "-",
        run=run_link,
        decision=t(
            '<a href="{h}">{d}</a>', h=url("decisions", str(doc.get("decision_id"))), d=doc.get("decision_id")
        )
        if doc.get("decision_id")
        else Html("-"),
        args=_pretty(a.get("args") or {}),
    )


def _context_block(context: Mapping[str, Any] | None) -> Html:
    """Budget and run context from the trace: the boundaries at decision time, the run so far."""
    if context is None:
        return t(
            '<section aria-labelledby="h-ctx"><h2 id="h-ctx">Budget and run context</h2>'
            "<p>This sidecar keeps no trace (start it with <code>--trace</code>) so the run's history "
            "is not shown.</p></section>"
        )
    lines = []
    for b in context.get("boundaries", []):
        if b.get("kind") == "budget" and b.get("limit") is not None:
            lines.append(
                t(
                    "<li>Budget <strong>{id}</strong> ({scope}): "
                    "{before} → {after} of {limit} {unit}{state}</li>",
                    id=b.get("id"),
                    scope=b.get("scope"),
                    before=num(b.get("before", b.get("used"))),
                    after=num(b.get("after")),
                    limit=num(b.get("limit")),
                    unit=b.get("unit") or "",
                    state="" if b.get("ok") else " (over the limit)",
                )
            )
        elif b.get("kind") in ("rate", "tripwire"):
            lines.append(
                t(
                    "<li>{kind} <strong>{id}</strong>: {used} of {limit} {detail}</li>",
                    kind=str(b.get("kind")).capitalize(),
                    id=b.get("id"),
                    used=num(b.get("used")),
                    limit=num(b.get("limit")),
                    detail=b.get("detail") or "",
                )
            )
    earlier = []
    for r in context.get("earlier", []):
        act = (r.get("request") or {}).get("action") or {}
        earlier.append(
            t(
                '<li><time datetime="{iso}">{at}</time> {badge} {kind} <code>{target}</code> '
                '<span class="args">{args}</span> <a href="{href}">explain</a></li>',
                iso=iso(r.get("at")),
                at=when(r.get("at")),
                badge=_badge(r.get("outcome")),
                kind=act.get("kind", "call"),
                target=act.get("target"),
                args=_args_summary(act.get("args"), 60),
                href=url("decisions", str(r.get("id"))),
            )
        )
    as_of = context.get("as_of")
    return t(
        '<section aria-labelledby="h-ctx"><h2 id="h-ctx">Budget and run context</h2>'
        "{budgets}<h3>Earlier in this run</h3>{earlier}</section>",
        budgets=t(
            '{note}<ul class="plain">{l}</ul>',
            note=t(
                '<p class="help">As the run\'s decision at <time datetime="{iso}">{at}</time> saw them '
                "(this action reserves nothing until it comes back approved):</p>",
                iso=iso(as_of.get("at")),
                at=when(as_of.get("at")),
            )
            if as_of
            else Html(""),
            l=join(lines),
        )
        if lines
        else t("<p>No budget or rate was checked for this action.</p>"),
        earlier=t('<ol class="plain timeline">{e}</ol>', e=join(earlier))
        if earlier
        else t("<p>Nothing before this action in the trace.</p>"),
    )


def _gates_block(doc: Mapping[str, Any], reasons: Mapping[str, str]) -> Html:
    items = []
    for g in doc.get("gates") or []:
        items.append(
            t(
                "<li><strong>{rule}</strong>: {reason}<br>{q} of <strong>{group}</strong> ({members}); "
                "open for {exp}, then {timeout}; once granted, usable for {redeem}.{sod}</li>",
                rule=g.get("rule"),
                reason=reasons.get(str(g.get("rule")), "") or "(no reason given)",
                q=g.get("quorum", 1),
                group=g.get("group"),
                members=", ".join(map(str, g.get("members") or [])) or "any member",
                exp=duration(g.get("expires_in_s")),
                timeout=g.get("on_timeout", "deny"),
                redeem=duration(g.get("redeem_within_s") or doc.get("redeem_within_s") or 3600),
                sod=" Separation of duties: the requester may not approve."
                if g.get("separation_of_duties", True)
                else "",
            )
        )
    return t(
        '<section aria-labelledby="h-why"><h2 id="h-why">Why it needs approval</h2>'
        '<ul class="plain">{i}</ul></section>',
        i=join(items),
    )


def _answers_block(doc: Mapping[str, Any], now: float) -> Html:
    have, need = _progress(doc)
    given = [t("<li>{w}</li>", w=_who(a)) for a in doc.get("approvals") or []]
    denied = [t("<li>{w}</li>", w=_who(a)) for a in doc.get("denials") or []]
    excluded = [str(doc.get("requester"))] + [str(c) for c in doc.get("chain") or []]
    if doc.get("human"):
        excluded.append(str(doc["human"]))
    status = doc.get("status")
    state = {
        "pending": f"Waiting: {have} of {need}; expires {ago(doc.get('expires_at'), now)}.",
        "approved": f"Approved; usable until {when(doc.get('redeem_by'))}.",
        "redeemed": "Approved and used.",
        "denied": "Denied.",
        "expired": "Approved but not used in time." if doc.get("unused") else "Expired before quorum.",
    }.get(str(status), str(status))
    return t(
        '<section aria-labelledby="h-quorum" data-live="quorum" data-version="{v}">'
        '<h2 id="h-quorum">Quorum</h2><p class="status-line">{badge} {state}</p>'
        '<p><progress max="{need}" value="{have}" aria-label="{have} of {need} approvals"></progress> '
        "{have} of {need} approvals</p>"
        "<h3>Approved by</h3>{given}{denied}"
        '<p class="sod">Separation of duties: <strong>{excluded}</strong> cannot approve (requester, '
        "delegation chain, launching human).</p>"
        '<h3>History</h3><ol class="plain">{history}</ol></section>',
        v=version(status, have, len(doc.get("denials") or []), len(doc.get("history") or [])),
        badge=_badge(status),
        state=state,
        need=need,
        have=have,
        given=t('<ul class="plain">{g}</ul>', g=join(given)) if given else t("<p>Nobody yet.</p>"),
        denied=t('<h3>Denied by</h3><ul class="plain">{d}</ul>', d=join(denied)) if denied else Html(""),
        excluded=", ".join(dict.fromkeys(excluded)),
        history=join(t("<li>{e}: {w}</li>", e=h.get("event"), w=_who(h)) for h in doc.get("history") or []),
    )


def _answer_form(doc: Mapping[str, Any], viewer: Viewer, refusal: str | None) -> Html:
    status = doc.get("status")
    key = version(status, viewer.name)
    if status != "pending":
        inner = t("<p>This request is {s}; there is nothing to answer.</p>", s=status)
    elif not viewer.may.get("answer"):
        inner = t(
            '<p class="notice">Your role ({roles}) may read approval requests but not answer them.</p>',
            roles=", ".join(sorted(viewer.roles)),
        )
    else:
        aid = str(doc.get("id"))
        approve = (
            t(
                '<button type="submit" class="primary" formaction="{a}">Approve</button>',
                a=url("approvals", aid, "approve"),
            )
            if refusal is None
            else Html("")
        )
        inner = t(
            '{why}<form method="post" action="{deny}" class="card">{csrf}'
            '<label for="note">Note (optional)</label>'
            '<textarea id="note" name="note" rows="3" maxlength="4096" '
            'aria-describedby="note-help"></textarea>'
            '<p id="note-help" class="help">Recorded in the trace with your name.</p>'
            '<div class="buttons">{approve}<button type="submit" class="danger">Deny</button></div></form>',
            why=t('<p class="notice" role="note">{r}</p>', r=refusal) if refusal else Html(""),
            deny=url("approvals", aid, "deny"),
            csrf=_csrf_field(viewer),
            approve=approve,
        )
    return t(
        '<section aria-labelledby="h-answer" data-live="answer" data-version="{v}">'
        '<h2 id="h-answer">Your answer</h2>{inner}</section>',
        v=key,
        inner=inner,
    )


def approval_page(
    doc: Mapping[str, Any],
    reasons: Mapping[str, str],
    context: Mapping[str, Any] | None,
    viewer: Viewer,
    refusal: str | None,
    now: float,
    counts: Mapping[str, int],
    done: str | None = None,
    error: str | None = None,
) -> Html:
    """One approval request: the action, why, quorum and separation of duties, context, the form."""
    a = doc.get("action") or {}
    body = t(
        '<p class="crumbs"><a href="{back}">Approvals</a></p>'
        "<h1>Approval {id} {badge}</h1>{flash}"
        '<p class="lede">{kind} <code>{target}</code> by <strong>{agent}</strong>, '
        'opened <time datetime="{iso}">{opened}</time>.</p>'
        '<div class="grid"><div>{action}{why}{ctx}</div><div>{answers}{form}</div></div>',
        back=url("approvals"),
        id=doc.get("id"),
        badge=_badge(doc.get("status")),
        flash=_flash(done, error),
        kind=a.get("kind", "call"),
        target=a.get("target"),
        agent=a.get("agent"),
        iso=iso(doc.get("created_at")),
        opened=when(doc.get("created_at")),
        action=_action_block(a, doc, doc.get("chain") or ()),
        why=_gates_block(doc, reasons),
        ctx=_context_block(context),
        answers=_answers_block(doc, now),
        form=_answer_form(doc, viewer, refusal),
    )
    return layout(f"Approval {doc.get('id')}", body, viewer, "approvals", counts)


# ---- escalations ----------------------------------------------------------------------------------
def escalations_list(
    docs: Sequence[Mapping[str, Any]], status: str, now: float, viewer: Viewer, counts: Mapping[str, int]
) -> Html:
    """The escalations table."""
    rows = [
        t(
            '<tr><td><a href="{href}">{id}</a></td><td>{kind} <code>{target}</code></td><td>{agent}</td>'
            '<td>{severity}</td><td>{now_with}</td><td><time datetime="{iso}">{opened}</time></td>'
            "<td>{status}</td></tr>",
            href=url("escalations", str(d.get("id"))),
            id=d.get("id"),
            kind=(d.get("action") or {}).get("kind", "call"),
            target=(d.get("action") or {}).get("target"),
            agent=(d.get("action") or {}).get("agent"),
            severity=d.get("severity"),
            now_with=d.get("target") or d.get("outcome") or "-",
            iso=iso(d.get("created_at")),
            opened=ago(d.get("created_at"), now),
            status=_badge(d.get("status")),
        )
        for d in docs
    ]
    body = _listing(
        "Escalations",
        "escalation",
        status,
        ESCALATION_TABS,
        ("Escalation", "Action", "Agent", "Severity", "With", "Opened", "Status"),
        ("c-id", "c-action", "c-agent", "c-group", "c-group", "c-time", "c-status"),
        rows,
        version([(d.get("id"), d.get("status"), d.get("target")) for d in docs]),
    )
    return layout("Escalations", body, viewer, "escalations", counts)


def _chain_block(doc: Mapping[str, Any], step: int | None) -> Html:
    items = []
    start = float(doc.get("created_at") or 0)
    for i, s in enumerate(doc.get("chain") or []):
        timeout = s.get("timeout_s")
        deadline = f", until {when(start + float(timeout))}" if timeout else ""
        items.append(
            t(
                "<li{cur}><strong>{target}</strong> — {span}{deadline}{now}</li>",
                cur=Html(' aria-current="step" class="current"')
                if i == step and doc.get("status") == "open"
                else Html(""),
                target=s.get("target"),
                span=f"for {duration(timeout)}" if timeout else "until answered",
                deadline=deadline,
                now=" (answering now)" if i == step and doc.get("status") == "open" else "",
            )
        )
        if timeout:
            start += float(timeout)
    return t(
        '<section aria-labelledby="h-chain"><h2 id="h-chain">Chain</h2><ol>{items}</ol>'
        "<p>If nobody answers: <strong>{fallback}</strong>.</p></section>",
        items=join(items),
        fallback=doc.get("fallback", "deny"),
    )


def escalation_page(
    doc: Mapping[str, Any],
    step: int | None,
    may_answer: bool,
    viewer: Viewer,
    now: float,
    counts: Mapping[str, int],
    done: str | None = None,
    error: str | None = None,
) -> Html:
    """One escalation: the action, signals side by side, reasons, chain with timeouts, the answer form."""
    a = doc.get("action") or {}
    signals = [
        t(
            "<tr><td>{src}</td><td>{kind}</td><td>{score}</td><td>{sev}</td></tr>",
            src=s.get("source"),
            kind=s.get("kind"),
            score=s.get("score", "-"),
            sev=s.get("severity", "-"),
        )
        for s in doc.get("signals") or []
    ]
    status = doc.get("status")
    if status != "open":
        form = t("<p>This escalation is {s}; there is nothing to answer.</p>", s=status)
    elif not viewer.may.get("answer"):
        form = t(
            '<p class="notice">Your role ({r}) may read escalations but not answer them.</p>',
            r=", ".join(sorted(viewer.roles)),
        )
    elif not may_answer:
        form = t(
            '<p class="notice">It is with <strong>{target}</strong> now; you are not in the chain from '
            "there up, so you cannot answer it.</p>",
            target=doc.get("target"),
        )
    else:
        eid = str(doc.get("id"))
        form = t(
            '<form method="post" action="{action}" class="card">{csrf}'
            '<label for="note">Note (optional)</label>'
            '<textarea id="note" name="note" rows="3" maxlength="4096">'
            '</textarea><div class="buttons">'
            '<button type="submit" name="verdict" value="allow" class="primary">Allow</button>'
            '<button type="submit" name="verdict" value="deny" class="danger">Deny</button></div></form>',
            action=url("escalations", eid, "answer"),
            csrf=_csrf_field(viewer),
        )
    answers = [t("<li>{v}: {w}</li>", v=x.get("verdict"), w=_who(x)) for x in doc.get("answers") or []]
    body = t(
        '<p class="crumbs"><a href="{back}">Escalations</a></p><h1>Escalation {id} {badge}</h1>{flash}'
        '<p class="lede">{kind} <code>{target}</code> by <strong>{agent}</strong>; severity {sev}.</p>'
        '<div class="grid"><div>{action}'
        '<section aria-labelledby="h-why"><h2 id="h-why">Why</h2><ul class="plain">{reasons}</ul>'
        "<h3>Signals side by side</h3>{signals}</section></div>"
        '<div><div data-live="chain" data-version="{v}">{chain}'
        '<section aria-labelledby="h-answers"><h2 id="h-answers">Answers</h2>{answers}'
        '<h3>History</h3><ol class="plain">{history}</ol></section></div>'
        '<section aria-labelledby="h-answer" data-live="answer" data-version="{fv}">'
        '<h2 id="h-answer">Your answer</h2>{form}</section>'
        "</div></div>",
        back=url("escalations"),
        id=doc.get("id"),
        badge=_badge(status),
        flash=_flash(done, error),
        kind=a.get("kind", "call"),
        target=a.get("target"),
        agent=a.get("agent"),
        sev=doc.get("severity"),
        action=_action_block(a, doc),
        reasons=join(t("<li>{r}</li>", r=r) for r in doc.get("reasons") or []),
        signals=t(
            '<table><thead><tr><th scope="col">Source</th><th scope="col">Kind</th>'
            '<th scope="col">Score</th><th scope="col">Severity</th></tr></thead><tbody>{s}</tbody></table>',
            s=join(signals),
        )
        if signals
        else t("<p>No signals.</p>"),
        v=version(status, doc.get("target"), len(doc.get("history") or [])),
        chain=_chain_block(doc, step),
        answers=t('<ul class="plain">{a}</ul>', a=join(answers)) if answers else t("<p>No answer yet.</p>"),
        history=join(t("<li>{e}: {w}</li>", e=h.get("event"), w=_who(h)) for h in doc.get("history") or []),
        fv=version(status, may_answer, viewer.name),
        form=form,
    )
    return layout(f"Escalation {doc.get('id')}", body, viewer, "escalations", counts)


# ---- stops ------------------------------------------------------------------------------------------
def stops_page(
    active: Sequence[Any],
    requests: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    set_by: Mapping[tuple[str, str], Mapping[str, Any]],
    log: Sequence[Mapping[str, Any]],
    need: int,
    viewer: Viewer,
    counts: Mapping[str, int],
    done: str | None = None,
    error: str | None = None,
) -> Html:
    """Active stops with their resume progress, the stop form, and the log."""
    can = bool(viewer.may.get("stop"))
    rows: list[Html] = []
    for s in active:
        asked = requests.get((s.scope, s.value), [])
        who = set_by.get((s.scope, s.value)) or {"by": s.by, "at": s.at}
        resume = Html("")
        if can:
            resume = t(
                '<form method="post" action="{a}" class="inline">{csrf}'
                '<input type="hidden" name="scope" value="{scope}">'
                '<input type="hidden" name="value" value="{value}">'
                '<label for="r-{n}" class="visually-hidden">Why resume {scope} {value}</label>'
                '<input id="r-{n}" name="reason" placeholder="why (optional)" maxlength="4096">'
                '<button type="submit">Ask to resume</button></form>',
                a=url("stops", "resume"),
                csrf=_csrf_field(viewer),
                scope=s.scope,
                value=s.value,
                n=len(rows),
            )
        rows.append(
            t(
                "<tr><td>{scope}</td><td><code>{value}</code></td><td>{reason}</td><td>{who}</td>"
                "<td>{progress}</td><td>{resume}</td></tr>",
                scope=s.scope,
                value=s.value,
                reason=s.reason,
                who=_who({**who, "note": ""}),
                progress=t(
                    "{have} of {need}{names}",
                    have=len(asked),
                    need=need,
                    names=t(": {n}", n=join((_who({**r, "note": ""}) for r in asked), ", "))
                    if asked
                    else Html(""),
                ),
                resume=resume,
            )
        )
    table = (
        t(
            '<table><caption>{n} active stop{s}</caption><thead><tr><th scope="col">Scope</th>'
            '<th scope="col">Value</th><th scope="col">Reason</th><th scope="col">Set by</th>'
            '<th scope="col">Resume requests</th><th scope="col">Resume</th>'
            "</tr></thead><tbody>{rows}</tbody></table>",
            n=len(rows),
            s="" if len(rows) == 1 else "s",
            rows=join(rows),
        )
        if rows
        else t('<p class="empty">Nothing is stopped.</p>')
    )
    form = Html("")
    if can:
        options = join(t('<option value="{s}">{s}</option>', s=s) for s in SCOPES)
        form = t(
            '<section aria-labelledby="h-stop"><h2 id="h-stop">Stop a scope</h2>'
            '<form method="post" action="{a}" class="card">{csrf}'
            '<label for="scope">Scope</label><select id="scope" name="scope">{options}</select>'
            '<label for="value">Which one</label><input id="value" name="value" maxlength="256" '
            'aria-describedby="value-help"><p id="value-help" class="help">The workflow, agent, tool… '
            "(leave empty for global).</p>"
            '<label for="reason">Reason</label><input id="reason" name="reason" required maxlength="4096">'
            '<button type="submit" class="danger">Stop</button></form>'
            '<p class="help">Resuming needs {need} different operators.</p></section>',
            a=url("stops"),
            csrf=_csrf_field(viewer),
            options=options,
            need=need,
        )
    else:
        form = t(
            '<p class="notice">Your role ({r}) may see stops but not set or resume them.</p>',
            r=", ".join(sorted(viewer.roles)),
        )
    entries = [
        t(
            "<li>"
            '<time datetime="{iso}">{at}</time> {event} {scope} <code>{value}</code> by {who}{reason}</li>',
            iso=iso(e.get("at")),
            at=when(e.get("at")),
            event=e.get("event"),
            scope=e.get("scope"),
            value=e.get("value"),
            who=_name(e) if not e.get("operators") else join((_name(p) for p in e["operators"]), ", "),
            reason=t(": {r}", r=e["reason"]) if e.get("reason") else Html(""),
        )
        for e in reversed(log[-50:])
    ]
    body = t(
        "<h1>Emergency stops</h1>{flash}"
        '<div data-live="stops" data-version="{v}">{table}</div>{form}'
        '<section aria-labelledby="h-log" data-live="log" data-version="{lv}"><h2 id="h-log">Log</h2>'
        '<ol class="plain">{entries}</ol></section>',
        flash=_flash(done, error),
        v=version([(s.scope, s.value, s.at) for s in active], {k: len(v) for k, v in requests.items()}),
        table=table,
        form=form,
        lv=version(len(log), log[-1].get("id") if log else None),
        entries=join(entries) if entries else t("<li>No stops yet.</li>"),
    )
    return layout("Stops", body, viewer, "stops", counts)


# ---- runs and decisions -----------------------------------------------------------------------------
def runs_page(run: str | None, agent: str | None, viewer: Viewer, counts: Mapping[str, int]) -> Html:
    """The run finder (a run id, optionally the agent that ran it)."""
    body = t(
        "<h1>Runs</h1>"
        '<form method="get" action="{a}" class="card narrow"><label for="run">Run id</label>'
        '<input id="run" name="run" value="{run}" required maxlength="256">'
        '<label for="agent">Agent (optional, faster)</label>'
        '<input id="agent" name="agent" value="{agent}" maxlength="256">'
        '<button type="submit" class="primary">Show the timeline</button></form>',
        a=url("runs"),
        run=run or "",
        agent=agent or "",
    )
    return layout("Runs", body, viewer, "runs", counts)


def timeline_page(
    run: str,
    records: Sequence[Mapping[str, Any]],
    stories: Mapping[str, Sequence[str]],
    viewer: Viewer,
    counts: Mapping[str, int],
    traced: bool,
) -> Html:
    """A run's decisions, oldest first, each with its plain-words explanation."""
    items = []
    for r in records:
        act = (r.get("request") or {}).get("action") or {}
        lines = stories.get(str(r.get("id")), [])
        items.append(
            t(
                '<li class="event"><p>'
                '<time datetime="{iso}">{at}</time> {badge} {kind} <code>{target}</code> '
                'by {agent} <span class="args">{args}</span></p>'
                '<details><summary>Explain <span class="visually-hidden">decision {id}</span></summary>'
                '<ul class="plain explain">{lines}</ul><p>'
                '<a href="{href}">decision {id}</a></p></details></li>',
                iso=iso(r.get("at")),
                at=when(r.get("at")),
                badge=_badge(r.get("outcome")),
                kind=act.get("kind", "call"),
                target=act.get("target"),
                agent=r.get("agent"),
                args=_args_summary(act.get("args"), 60),
                id=r.get("id"),
                lines=join(t("<li>{x}</li>", x=x) for x in lines),
                href=url("decisions", str(r.get("id"))),
            )
        )
    if not traced:
        content = t("<p>This sidecar keeps no trace (start it with <code>--trace</code>).</p>")
    elif items:
        content = t(
            '<ol class="timeline" data-live="timeline" data-version="{v}">{i}</ol>',
            v=version(len(items)),
            i=join(items),
        )
    else:
        content = t("<p>No decisions of this run in the trace.</p>")
    body = t(
        '<p class="crumbs"><a href="{back}">Runs</a></p><h1>Run <code>{run}</code></h1>'
        '<p class="lede">{n} decision{s}, oldest first.</p>{content}',
        back=url("runs"),
        run=run,
        n=len(items),
        s="" if len(items) == 1 else "s",
        content=content,
    )
    return layout(f"Run {run}", body, viewer, "runs", counts)


def decision_page(
    rec: Mapping[str, Any], lines: Iterable[str], viewer: Viewer, counts: Mapping[str, int]
) -> Html:
    """One traced decision explained, with its request."""
    ctx = (rec.get("request") or {}).get("context") or {}
    run = ctx.get("run")
    body = t(
        "<h1>Decision <code>{id}</code> {badge}</h1>"
        '<section aria-labelledby="h-explain"><h2 id="h-explain">Explain</h2>'
        '<ul class="plain explain">{lines}</ul>'
        "{run}</section>"
        '<section aria-labelledby="h-req"><h2 id="h-req">Request</h2><pre class="args">{req}</pre></section>',
        id=rec.get("id"),
        badge=_badge(rec.get("outcome") or rec.get("kind")),
        lines=join(t("<li>{x}</li>", x=x) for x in lines),
        run=t(
            '<p><a href="{h}">The whole run</a></p>',
            h=url("runs", str(run), agent=str(rec.get("agent") or "")),
        )
        if run
        else Html(""),
        req=_pretty(rec.get("request") or rec.get("event") or {}),
    )
    return layout(f"Decision {rec.get('id')}", body, viewer, "runs", counts)
