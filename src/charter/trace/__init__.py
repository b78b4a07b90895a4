"""Decision trace: tamper-evident records of every decision and human intervention, and their reading."""

from charter.trace.log import TraceError, TraceLog
from charter.trace.verify import VerifyReport, verify_log, verify_rows

__all__ = ["TraceError", "TraceLog", "VerifyReport", "verify_log", "verify_rows"]
