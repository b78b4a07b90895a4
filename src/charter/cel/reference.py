"""cel-python's own interpreter, wrapped as the reference evaluator over plain Python values."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import celpy

from charter.cel.types import CelError
from charter.cel.values import error_message, from_cel, to_cel

_LOCK = threading.Lock()
_ENV: celpy.Environment | None = None


def _env() -> celpy.Environment:
    global _ENV
    if _ENV is None:
        _ENV = celpy.Environment(runner_class=celpy.InterpretedRunner)
    return _ENV


def reference_evaluate(text: str, activation: Mapping[str, Any]) -> Any:
    """Evaluate `text` with cel-python's interpreter; plain Python result or CelError."""
    try:
        with _LOCK:
            env = _env()
            ast = env.compile(text)
        program = env.program(ast)
        result = program.evaluate({k: to_cel(v) for k, v in activation.items()})
    except celpy.CELParseError as ex:
        return CelError(f"syntax error: {ex.args[0] if ex.args else ex}")
    except Exception as ex:  # the reference may raise anything; it is an error value to us
        return CelError(error_message(ex))
    return from_cel(result)
