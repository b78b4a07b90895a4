"""Run labels, one rule: what an allowed action adds to its run's labels, and how clauses read them.

docs/semantics.md 8.1: a run's labels are the labels of everything that entered the run -- every
settled result (labels given at settlement or by ``on result`` checks) and the arguments and
elements of every allowed call (``action.labels`` and the labels given in ``action.provenance``).
Each label is marked ``LABEL_MARK + label`` at the step and time of its latest arrival, whichever
way it came, so ``run.labels``, ``after labelled L``, ``after labelled L within ...`` and ``before
labelled L`` all see the same thing. Denied, halted and held actions add nothing.
"""

from __future__ import annotations

from charter.engine.view import RunView, View
from charter.state import LABEL_MARK

__all__ = ["entered_labels", "label_marks", "latest_arrival"]


def entered_labels(view: View) -> frozenset[str]:
    """The labels this action brings into its run if it is allowed: its argument labels and the
    labels its provenance entries give (per argument and per element).

    The labels the engine derives from sources (``user``, ``planned``, ``unknown``) are judgements
    about this request, not content, and do not join; an earlier call's result labels are already
    in the run when that call was settled in it.
    """
    prov = view.req.provenance
    if not prov:
        return view.labels
    out: set[str] | None = None  # made for the first entry with labels (most entries have none)
    for spec in prov.values():
        if spec.__class__ is tuple:
            for e in spec:
                if e.labels:
                    if out is None:
                        out = set(view.labels)
                    out.update(e.labels)
        elif spec.labels:  # type: ignore[union-attr]
            if out is None:
                out = set(view.labels)
            out.update(spec.labels)  # type: ignore[union-attr]
    if out is None:
        return view.labels
    return frozenset(out)


def label_marks(labels: frozenset[str]) -> frozenset[str]:
    """The run marks that record the arrival of ``labels``."""
    return frozenset(LABEL_MARK + lab for lab in labels)


def latest_arrival(run: RunView, labels: frozenset[str], legacy_mark: str = "") -> tuple[int, float] | None:
    """The (step, time) of the latest arrival of any of ``labels`` in the run; None if none arrived.

    ``legacy_mark``: the compiled mark of an ``after labelled`` clause, which runs recorded before
    labels had marks of their own still carry.
    """
    marks = run.marks
    best = marks.get(legacy_mark) if legacy_mark else None
    for lab in labels:
        seen = marks.get(LABEL_MARK + lab)
        if seen is not None and (best is None or seen > best):  # later step, then later time
            best = seen
    return best
