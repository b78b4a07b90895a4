"""Graphs as text: Mermaid flowcharts (render on GitHub and in the docs) and Graphviz DOT, and DOT
to SVG through Graphviz's `dot` when it is installed (Debian: apt-get install graphviz)."""

from __future__ import annotations

import shutil
import subprocess

from charter.errors import Error
from charter.graph.model import Graph, Node, Shape, Tone

#: Fill and stroke colours per tone (the same in both formats).
COLOURS = {
    Tone.NEUTRAL: ("#f5f5f5", "#616161"),
    Tone.ALLOW: ("#e8f5e9", "#2e7d32"),
    Tone.APPROVAL: ("#fff8e1", "#f9a825"),
    Tone.ESCALATE: ("#fff3e0", "#ef6c00"),
    Tone.DENY: ("#ffebee", "#c62828"),
    Tone.HALT: ("#f3e5f5", "#6a1b9a"),
    Tone.LIMIT: ("#e3f2fd", "#1565c0"),
    Tone.PERSON: ("#ede7f6", "#4527a0"),
}


class GraphError(Error):
    """A picture could not be drawn (Graphviz missing or failing)."""


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


_MERMAID_SHAPE = {
    Shape.BOX: ("[", "]"),
    Shape.ROUND: ("(", ")"),
    Shape.STADIUM: ("([", "])"),
    Shape.DIAMOND: ("{", "}"),
    Shape.NOTE: ("[/", "/]"),
}


def mermaid(graph: Graph) -> str:
    """A Mermaid flowchart."""
    out = ["---", f"title: {graph.title}", "---", f"flowchart {graph.direction}"]

    def node(n: Node, indent: str) -> str:
        left, right = _MERMAID_SHAPE[n.shape]
        return f"{indent}{n.id}{left}{_mermaid_label(n.label)}{right}"

    for cluster, label in graph.clusters.items():
        members = [n for n in graph.nodes if n.cluster == cluster]
        if not members:
            continue
        out.append(f"  subgraph {cluster}[{_mermaid_label(label)}]")
        out.extend(node(n, "    ") for n in members)
        out.append("  end")
    out.extend(node(n, "  ") for n in graph.nodes if n.cluster not in graph.clusters)
    for e in graph.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f"|{_mermaid_label(e.label)}|" if e.label else ""
        out.append(f"  {e.source} {arrow}{label} {e.target}")
    tones = sorted({n.tone for n in graph.nodes}, key=lambda t: t.value)
    for t in tones:
        fill, stroke = COLOURS[t]
        out.append(f"  classDef {t.value} fill:{fill},stroke:{stroke},color:#212121")
    for t in tones:
        ids = ",".join(n.id for n in graph.nodes if n.tone is t)
        out.append(f"  class {ids} {t.value}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPE = {
    Shape.BOX: 'shape=box, style="rounded,filled"',
    Shape.ROUND: 'shape=ellipse, style="filled"',
    Shape.STADIUM: 'shape=box, style="rounded,filled,bold"',
    Shape.DIAMOND: 'shape=diamond, style="filled"',
    Shape.NOTE: 'shape=note, style="filled"',
}


def dot(graph: Graph) -> str:
    """A Graphviz digraph."""
    out = [
        "digraph charter {",
        f"  graph [rankdir={graph.direction}, label={_dot_text(graph.title)}, labelloc=t,"
        " fontname=Helvetica];",
        "  node [fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]

    def node(n: Node, indent: str) -> str:
        fill, stroke = COLOURS[n.tone]
        return (
            f"{indent}{n.id} [label={_dot_text(n.label)}, {_DOT_SHAPE[n.shape]}, "
            f'fillcolor="{fill}", color="{stroke}"];'
        )

    for cluster, label in graph.clusters.items():
        members = [n for n in graph.nodes if n.cluster == cluster]
        if not members:
            continue
        out.append(f"  subgraph cluster_{cluster} {{")
        out.append(f'    label={_dot_text(label)}; style=dashed; color="#9e9e9e";')
        out.extend(node(n, "    ") for n in members)
        out.append("  }")
    out.extend(node(n, "  ") for n in graph.nodes if n.cluster not in graph.clusters)
    for e in graph.edges:
        attrs = [f"label={_dot_text(e.label)}"] if e.label else []
        if e.dashed:
            attrs.append("style=dashed")
        out.append(f"  {e.source} -> {e.target}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def svg(dot_text: str, timeout_s: float = 60.0) -> str:
    """SVG drawn by Graphviz from DOT text; GraphError when `dot` is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError(
            "Graphviz's 'dot' is not installed: install it (apt-get install graphviz) or use --format dot"
        )
    try:
        run = subprocess.run(
            [exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphError(f"dot failed: {exc}") from None
    if run.returncode != 0:
        raise GraphError(f"dot failed: {run.stderr.strip()[:500]}")
    return run.stdout
