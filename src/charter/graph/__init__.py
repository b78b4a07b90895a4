"""Pictures of a policy: budgets, escalation chains, signal ranks, access, one decision's path."""

from charter.graph.model import VIEWS, Graph, decision
from charter.graph.render import GraphError, dot, mermaid, svg

__all__ = ["VIEWS", "Graph", "GraphError", "decision", "dot", "mermaid", "svg"]
