"""MkDocs hooks for the docs site: the HTTP API page generated from docs/openapi.json at build time,
and nav entries for pages another change is still writing skipped until their file exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

#: Pages named in mkdocs.yml whose files may not exist yet (written in parallel by another change).
PENDING = {"security.md"}


def _prune(nav: list[Any], docs: Path) -> list[Any]:
    out: list[Any] = []
    for item in nav:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                out.append({title: _prune(value, docs)})
            elif value in PENDING and not (docs / value).exists():
                continue
            else:
                out.append(item)
        elif item in PENDING and not (docs / item).exists():
            continue
        else:
            out.append(item)
    return out


def on_config(config: Any) -> Any:
    """Leave out pending pages that do not exist yet (every other missing page stays an error)."""
    config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add http-api.md, written from the OpenAPI document the sidecar serves."""
    spec = json.loads((Path(config["docs_dir"]) / "openapi.json").read_text("utf-8"))
    files.append(File.generated(config, "http-api.md", content=http_api(spec)))
    return files


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return str(schema.get("type", "any"))


def http_api(spec: dict[str, Any]) -> str:
    """The HTTP API reference in Markdown: every path and method, then every schema."""
    info = spec.get("info", {})
    out = [
        "# HTTP API",
        "",
        f"The sidecar (`charter serve`, see [Sidecar](sidecar.md)) speaks this API: {info.get('title', '')} "
        f"{info.get('version', '')}, OpenAPI {spec.get('openapi', '')}. This page is generated from "
        "`docs/openapi.json` when the site is built; the running sidecar serves the same document at "
        "`/openapi.json`.",
        "",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            out += [f"## `{method.upper()} {path}`", ""]
            if op.get("summary") or op.get("description"):
                out += [op.get("summary") or op.get("description"), ""]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                out += [f"Request body: {_schema_name(body)}", ""]
            rows = []
            for code, resp in op.get("responses", {}).items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                shown = _schema_name(schema) if schema else ""
                rows.append(f"| {code} | {resp.get('description', '')} | {shown} |")
            if rows:
                out += ["| status | meaning | body |", "|---|---|---|", *rows, ""]
    out += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [schema["description"], ""]
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            out += ["| field | type | required |", "|---|---|---|"]
            for field, sub in props.items():
                out.append(f"| `{field}` | {_schema_name(sub)} | {'yes' if field in required else ''} |")
            out.append("")
        elif "enum" in schema:
            out += [_schema_name(schema), ""]
    return "\n".join(out) + "\n"
