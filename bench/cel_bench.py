"""Micro-benchmark: µs per evaluation of charter.cel conditions (fast path, evaluator, a lambda),
and of matches() with a literal pattern (compiled when the condition is compiled)."""

from __future__ import annotations

import timeit
from typing import Any

from charter.cel import CelType, compile_condition
from charter.cel.types import DOUBLE, STRING

ANCHOR = (
    'request.amount > 100.0 && request.tool in ["wire_transfer", "pay_invoice"] && agent.role != "finance"'
)
ENV = {
    "request": CelType.OBJECT({"amount": DOUBLE, "tool": STRING, "payee": STRING}),
    "agent": CelType.OBJECT({"role": STRING}),
}
ACT: dict[str, Any] = {
    "request": {"amount": 500.0, "tool": "wire_transfer", "payee": "ACME-SUPPLIES"},
    "agent": {"role": "ops"},
}
CONDITIONS = {
    "anchor": ANCHOR,
    "matches (literal)": 'request.payee.matches("^[A-Z0-9-]+$")',
    "contains": 'request.payee.contains("SUPP")',
    "lowerAscii": 'request.payee.lowerAscii().startsWith("acme")',
    "exists over 3": '["a", "b", "ACME-SUPPLIES"].exists(p, p == request.payee)',
}


def per_call_us(f: Any, arg: Any, number: int) -> float:
    return min(timeit.repeat(lambda: f(arg), number=number, repeat=7)) / number * 1e6


def main() -> None:
    def lam(a: Any) -> bool:
        r = a["request"]
        return bool(
            r["amount"] > 100.0
            and r["tool"] in ("wire_transfer", "pay_invoice")
            and a["agent"]["role"] != "finance"
        )

    lam_us = per_call_us(lam, ACT, 200_000)
    print(f"python lambda (anchor)   : {lam_us:8.3f} us/eval")
    for name, text in CONDITIONS.items():
        c = compile_condition(text, ENV)
        assert c.fn(ACT) is True and c.evaluate(ACT) is True, name
        fast = c.fn is not c.evaluate
        fn_us = per_call_us(c.fn, ACT, 100_000)
        slow_us = per_call_us(c.evaluate, ACT, 20_000)
        path = "fast path" if fast else "evaluator"
        print(f"{name:18}: fn ({path}) {fn_us:7.3f} us, evaluator {slow_us:7.3f} us")


if __name__ == "__main__":
    main()
