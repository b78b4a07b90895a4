"""Checks every example in the docs against the real `charter` command.

Run from the repository root:  .venv/bin/python docs/examples/check_docs.py docs/*.md

Directives are HTML comments placed just before a fenced code block:

  <!-- file: NAME -->        write the next block to NAME in the scratch directory (not checked)
  <!-- check -->            the next block is a policy: `charter check` must report no error
  <!-- check: preamble -->  the same, with docs/examples/preamble.charter put in front of it
  <!-- check: beside -->    the same, with docs/examples/preamble.charter checked as a second file
  <!-- check: expect=E303 --> `charter check` must report exactly these codes (comma separated;
                            warnings included); `name=x.charter` sets the file name
  <!-- run: ARGS -->        run `charter ARGS` from the repository root; the block itself (```text)
                            is the expected output
  <!-- sh -->               run the next block with bash in the scratch directory (the venv's bin
                            first on PATH; each line is a command, `set -e`); a ```text block after
                            it is the expected output
  <!-- sh: background -->   start the block with bash in the scratch directory and leave it running
                            until the document ends (then it is stopped); `wait-for: URL` first
                            waits until the URL answers
  <!-- python -->           run the next block with the venv's Python from the repository root; a
                            ```text block after it is the expected output
  <!-- port: N -->          the port N, in sh blocks, stands for a free port chosen for this run

A `check` or `run` block may be followed directly by a ```text block: the real output
(stdout, then stderr, then "exit N") must equal it, except for decision and approval ids, policy revisions and times.
A block with no directive is not checked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHARTER = str(ROOT / ".venv" / "bin" / "charter")
PREAMBLE = (ROOT / "docs" / "examples" / "preamble.charter").read_text("utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
DIRECTIVE = re.compile(r"<!--\s*(file|check|run|sh|python)\s*:?\s*(.*?)\s*-->\s*\n*$", re.S)
PORT = re.compile(r"<!--\s*port:\s*(\d+)\s*-->")
CODE = re.compile(r"^\S+:\d+:\d+: ([EW]\d{3}) ", re.M)


def normalise(text: str) -> str:
    text = re.sub(r"d-[0-9a-f]{12}-[0-9a-f]+", "d-<id>", text)
    # the policy revision is a hash of the example policies: it changes with every edit to them
    text = re.sub(r'(revision"?:? "?)[0-9a-f]{16}', r"\1<rev>", text)
    text = re.sub(r"(revision )[0-9a-f]{16}", r"\1<rev>", text)
    text = re.sub(r'"elapsed_us": [0-9.]+', '"elapsed_us": <t>', text)
    text = re.sub(r'"at": [0-9.]+', '"at": <t>', text)
    text = re.sub(r"ap-[0-9a-f]{16}", "ap-<id>", text)
    text = re.sub(r'"approval_expires_at": [0-9.]+', '"approval_expires_at": <t>', text)
    return text.rstrip()


def run(args: list[str], cwd: Path) -> str:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100")
    p = subprocess.run([CHARTER, *args], cwd=cwd, capture_output=True, text=True, env=env)
    out = p.stdout + p.stderr
    return out.rstrip("\n") + f"\nexit {p.returncode}"


def blocks(text: str) -> list[tuple[str, str, str]]:
    """(directive text before the block, language, body) for every fenced block."""
    out = []
    last = 0
    for m in FENCE.finditer(text):
        before = text[last : m.start()]
        out.append((before, m.group(1), m.group(2)))
        last = m.end()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shell(body: str, cwd: Path) -> str:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="100", PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    p = subprocess.run(["bash", "-e", "-c", body], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    out = p.stdout + p.stderr
    return out.rstrip("\n") + f"\nexit {p.returncode}"


def background(body: str, cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, NO_COLOR="1", PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}")
    return subprocess.Popen(["bash", "-c", "exec " + body.strip()], cwd=cwd, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"background process exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def check_doc(path: Path) -> int:
    raw = path.read_text("utf-8")
    items = blocks(raw)
    scratch = Path(tempfile.mkdtemp(prefix="charter-docs-"))
    ports = {m.group(1): str(free_port()) for m in PORT.finditer(raw)}
    running: list[subprocess.Popen[str]] = []
    try:
        return _check_items(path, items, scratch, ports, running)
    finally:
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


def _check_items(
    path: Path,
    items: list[tuple[str, str, str]],
    scratch: Path,
    ports: dict[str, str],
    running: list[subprocess.Popen[str]],
) -> int:
    failures = 0
    pending: tuple[str, str] | None = None  # (what, output) waiting for a ```text block
    n = 0
    for before, lang, body in items:
        d = DIRECTIVE.search(before)
        if pending is not None:
            what, got = pending
            pending = None
            if not d and lang == "text":
                if normalise(got) != normalise(body):
                    failures += 1
                    print(f"{path}: output differs for {what}\n--- documented\n{body}--- real\n{got}\n")
                continue
        if not d:
            continue
        kind, arg = d.group(1), d.group(2)
        if kind == "file":
            target = scratch / arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, "utf-8")
            continue
        n += 1
        if kind == "sh":
            for old, new in ports.items():
                body = body.replace(old, new)
            if arg.startswith("background"):
                proc = background(body, scratch)
                running.append(proc)
                url = arg.partition("wait-for:")[2].strip()
                for old, new in ports.items():
                    url = url.replace(old, new)
                if url:
                    wait_for(url, proc)
                continue
            got = shell(body, scratch)
            for old, new in ports.items():
                got = got.replace(new, old)
            pending = (f"shell block {n}", got)
            if not got.endswith("exit 0"):
                failures += 1
                print(f"{path}: shell block {n} failed\n{body}\n{got}\n")
            continue
        if kind == "python":
            p = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", body], cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
            got = (p.stdout + p.stderr).rstrip("\n") + f"\nexit {p.returncode}"
            pending = (f"python block {n}", got)
            if p.returncode != 0:
                failures += 1
                print(f"{path}: python block {n} failed\n{body}\n{got}\n")
            continue
        if kind == "run":
            got = run(shlex.split(arg), ROOT)
            if normalise(got) != normalise(body):
                failures += 1
                print(f"{path}: output differs for charter {arg}\n--- documented\n{body}--- real\n{got}\n")
            continue
        opts = dict(o.split("=", 1) if "=" in o else (o, "1") for o in arg.split())
        name = opts.get("name", "policy.charter")
        src = (PREAMBLE + "\n" + body) if "preamble" in opts else body
        (scratch / name).write_text(src, "utf-8")
        files = [name]
        if "beside" in opts:
            (scratch / "preamble.charter").write_text(PREAMBLE, "utf-8")
            files.append("preamble.charter")
        got = run(["check", *files], scratch)
        codes = sorted(set(CODE.findall(got)))
        want = sorted(set(opts["expect"].split(","))) if "expect" in opts else []
        errors = [c for c in codes if c.startswith("E")]
        ok = codes == want if want else not errors
        if not ok:
            failures += 1
            shown = body if len(body) < 1500 else body[:1500] + "..."
            print(f"{path}: example {n} gives {codes or 'no diagnostics'}, expected {want}\n{shown}\n{got}\n")
        pending = (f"example {n} ({name})", got)
    print(f"{path}: {n} examples checked, {failures} failed")
    return failures


def main() -> None:
    # `charter eval` keeps state in ./.charter/state.db by default: the examples each start fresh
    os.environ.setdefault("CHARTER_STORE", "memory://")
    docs = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "docs").glob("*.md"))
    total = sum(check_doc(p) for p in docs)
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
