"""charter.state: budgets, rate limits, run history, stops and records behind atomic operations."""

from charter.state.base import StateStore, open_store
from charter.state.types import (
    LABEL_MARK,
    MICRO,
    Batch,
    BatchResult,
    BudgetLine,
    CommitResult,
    EventOp,
    HitOp,
    HitResult,
    LineStatus,
    RecordOp,
    ReserveOp,
    ReserveResult,
    RunState,
    StopRecord,
    StoreError,
    StoreFault,
)

__all__ = [
    "LABEL_MARK",
    "MICRO",
    "Batch",
    "BatchResult",
    "BudgetLine",
    "CommitResult",
    "EventOp",
    "HitOp",
    "HitResult",
    "LineStatus",
    "RecordOp",
    "ReserveOp",
    "ReserveResult",
    "RunState",
    "StateStore",
    "StopRecord",
    "StoreError",
    "StoreFault",
    "open_store",
]
