"""Micro-benchmark: µs per evaluation of the anchor condition (charter vs lambda vs cel-python)."""

from __future__ import annotations

import timeit
from typing import Any

import celpy

from charter.cel import CelType, compile_condition
from charter.cel.types import DOUBLE, STRING
from charter.cel.values import to_cel

ANCHOR = (
    'request.amount > 100.0 && request.tool in ["wire_transfer", "pay_invoice"] && agent.role != "finance"'
)
ENV = {
    "request": CelType.OBJECT({"amount": DOUBLE, "tool": STRING}),
    "agent": CelType.OBJECT({"role": STRING}),
}
ACT: dict[str, Any] = {
    "request": {"amount": 500.0, "tool": "wire_transfer"},
    "agent": {"role": "ops"},
}


def per_call_us(f: Any, arg: Any, number: int) -> float:
    return min(timeit.repeat(lambda: f(arg), number=number, repeat=7)) / number * 1e6


def main() -> None:
    c = compile_condition(ANCHOR, ENV)

    def lam(a: Any) -> bool:
        r = a["request"]
        return bool(
            r["amount"] > 100.0
            and r["tool"] in ("wire_transfer", "pay_invoice")
            and a["agent"]["role"] != "finance"
        )

    env = celpy.Environment()
    prog = env.program(env.compile(ANCHOR))
    cel_act = {k: to_cel(v) for k, v in ACT.items()}
    assert c.fn(ACT) is True and lam(ACT) is True and bool(prog.evaluate(cel_act)) is True

    fn_us = per_call_us(c.fn, ACT, 200_000)
    lam_us = per_call_us(lam, ACT, 200_000)
    slow_us = per_call_us(c.evaluate, ACT, 5_000)
    cel_us = per_call_us(prog.evaluate, cel_act, 2_000)
    print(f"anchor: {ANCHOR}")
    print(f"charter fn (fast path)   : {fn_us:8.3f} us/eval  ({fn_us / lam_us:.2f}x lambda)")
    print(f"python lambda            : {lam_us:8.3f} us/eval")
    print(f"charter evaluate (exact) : {slow_us:8.3f} us/eval")
    print(f"cel-python interpreter   : {cel_us:8.3f} us/eval  ({cel_us / fn_us:.0f}x charter fn)")


if __name__ == "__main__":
    main()
