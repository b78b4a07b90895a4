"""Versioned wire types of the sidecar (API v1) and the OpenAPI document built from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.json_schema import models_json_schema

from charter.engine.decision import BoundaryModel, DecisionModel, FailureModel, RuleHitModel
from charter.engine.request import Request
from charter.enums import Outcome

#: The wire API version; paths are prefixed /v1.
API_VERSION = "v1"
#: Bumped whenever a wire type changes shape (the OpenAPI snapshot test catches unbumped changes).
WIRE_SCHEMA_VERSION = 1
MAX_NOTE = 4096


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettleRequest(_Strict):
    """What an action really did, reported after it ran."""

    decision_id: str = Field(min_length=1, max_length=256)
    actual_cost: dict[str, float] | float | None = Field(
        default=None, description="Actual cost per unit, or one number in the first unit"
    )
    outcome: str = Field(default="success", max_length=64, description="success, failure, ...")
    labels: list[str] = Field(default_factory=list, max_length=256)
    result: dict[str, Any] | None = Field(
        default=None,
        description="The call's result: the fields its tool declares ('result NAME: TYPE') are kept "
        "in the run's history for 'where' clauses (secret ones never in the trace)",
    )


class BeginRunRequest(_Strict):
    """Declare a run's grants and first labels before it does anything (POST /v1/runs)."""

    run: str = Field(min_length=1, max_length=256, description="Run id (checked as context.run is)")
    actor: str = Field(
        default="", max_length=256, description="The run's actor (an identifier; empty: any actor of the run)"
    )
    grants: list[dict[str, Any]] = Field(
        default_factory=list, max_length=64, description='Grant instances: {"kind": KIND, PARAM: VALUE, ...}'
    )
    labels: list[str] = Field(default_factory=list, max_length=256)


class NarrowRunRequest(_Strict):
    """Revoke grants, or leave them at most N more uses (POST /v1/runs/{run}/narrow); never widens."""

    revoke: list[str] = Field(default_factory=list, max_length=64)
    uses: dict[str, StrictInt] = Field(
        default_factory=dict, description="grant id -> most further uses (>= 0)"
    )


class GrantModel(BaseModel):
    """One grant instance of a run."""

    id: str
    kind: str
    uses_left: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class RunModel(BaseModel):
    """A run's grants after begin or narrow."""

    run: str
    actor: str
    grants: list[GrantModel]
    revision: str


class GrantProblemModel(BaseModel):
    """Why a grant was refused (G101 unknown-grant-kind ... G105 run-started)."""

    code: str
    name: str
    message: str
    index: int | None = None
    help: str | None = None


class GrantErrorBody(BaseModel):
    """A refused begin_run (409 run-started, 422 grants the policy refuses): nothing was stored."""

    error: str
    code: str
    field: str | None = None
    diagnostics: list[GrantProblemModel]
    refused: list[int]


class RunImportBody(_Strict):
    """Calls that already happened, to seed a run's history (docs/semantics.md 8.3)."""

    actor: str = Field(min_length=1, max_length=256, description="The agent that made the calls")
    events: list[dict[str, Any]] = Field(
        max_length=10_000,
        description="call_id, kind, target, args, provenance, result, labels, outcome, at (epoch s, "
        "within the run's retention of 7 days and at most 300 s ahead of the sidecar's clock), redacted",
    )
    charge: bool = Field(default=False, description="Count budgets and rates (not supported yet: 400)")


class RunImportModel(BaseModel):
    """What an import did."""

    run: str
    imported: int
    skipped: int
    sha256: str


class RunExportModel(BaseModel):
    """A run's steps, labels and history (the last entries kept in detail), importable elsewhere."""

    run: str
    steps: int
    labels: list[str]
    events: list[dict[str, Any]] = Field(
        description="call_id, kind, target, at, args, labels, outcome, result; redacted: the fields "
        "the policy marks secret, left out (e.g. result.pin)"
    )


class StopModel(BaseModel):
    """An emergency stop."""

    scope: str
    value: str
    reason: str
    by: str
    at: float
    source: str = "operator"


class SettlementModel(BaseModel):
    """What settling did: spend committed, checks fired, stops set."""

    decision_id: str
    committed: bool
    result: str
    checks: list[RuleHitModel]
    outcome: Outcome | None = None
    labels: list[str]
    stops: list[StopModel]
    boundaries: list[BoundaryModel]
    failures: list[FailureModel]


class NoteBody(_Strict):
    """A note left with an approval or denial (who acts comes from the bearer token)."""

    note: str = Field(default="", max_length=MAX_NOTE)


class AnswerBody(_Strict):
    """An escalation answer (who answers comes from the bearer token)."""

    verdict: Literal["allow", "deny"]
    note: str = Field(default="", max_length=MAX_NOTE)


class StopBody(_Strict):
    """Stop a scope now (who stops comes from the bearer token)."""

    scope: Literal["global", "workflow", "agent", "tool", "run", "role", "tenant"]
    value: str = Field(default="*", min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=MAX_NOTE)


class ResumeBody(_Strict):
    """Ask to resume a stopped scope (two distinct operators by default)."""

    scope: Literal["global", "workflow", "agent", "tool", "run", "role", "tenant"]
    value: str = Field(default="*", min_length=1, max_length=256)
    reason: str = Field(default="", max_length=MAX_NOTE)


class ResumeResult(BaseModel):
    """Where a resume stands."""

    scope: str
    value: str
    resumed: bool
    operators: list[str]
    have: int
    need: int


class Record(BaseModel):
    """An approval request or escalation record (see docs/humans.md for its fields)."""

    model_config = ConfigDict(extra="allow")

    id: str
    status: str


class RecordList(BaseModel):
    """A list of approval or escalation records, newest first."""

    items: list[Record]


class StopList(BaseModel):
    """Active stops."""

    items: list[StopModel]


class StopLogList(BaseModel):
    """Every stop and resume, oldest first: scope, value, who (``by``), through which channel
    (``via``), when and why (see docs/humans.md)."""

    items: list[dict[str, Any]]


class Explained(BaseModel):
    """A traced decision and its plain-language explanation."""

    record: dict[str, Any]
    explanation: list[str]


class ErrorBody(BaseModel):
    """Every error response: a message, a machine code and, for a malformed request, the field."""

    error: str
    code: str
    field: str | None = None


class Health(BaseModel):
    """Liveness / readiness."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    revision: str | None = None
    reload_error: str | None = None


_MODELS: list[type[BaseModel]] = [
    Request,
    DecisionModel,
    SettleRequest,
    SettlementModel,
    BeginRunRequest,
    NarrowRunRequest,
    RunModel,
    GrantErrorBody,
    RunImportBody,
    RunImportModel,
    RunExportModel,
    NoteBody,
    AnswerBody,
    StopBody,
    ResumeBody,
    ResumeResult,
    Record,
    RecordList,
    StopModel,
    StopList,
    StopLogList,
    Explained,
    ErrorBody,
    Health,
]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_ERR = {
    "400": _json("ErrorBody", "Body is not JSON"),
    "401": _json("ErrorBody", "Missing or unknown bearer token"),
    "403": _json("ErrorBody", "The token's role may not do this"),
    "413": _json("ErrorBody", "Body too large"),
    "422": _json("ErrorBody", "Malformed request; `field` names the offending field"),
    "503": _json("ErrorBody", "Time limit exceeded or not ready"),
}


def _op(
    summary: str,
    role: str,
    ok: tuple[str, str],
    body: str | None = None,
    extra: dict[str, Any] | None = None,
    params: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Roles: {role}.",
        "operationId": summary.lower().replace(" ", "_").replace("'", ""),
        "security": [{"bearer": []}],
        "responses": {"200": _json(ok[0], ok[1]), **_ERR, **(extra or {})},
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 256},
            }
            for p in params
        ]
    return op


def _created(op: dict[str, Any]) -> dict[str, Any]:
    """An operation whose success is 201 Created."""
    op["responses"] = {"201": op["responses"].pop("200"), **op["responses"]}
    return op


def _open(summary: str, ok: str, content: str = "application/json") -> dict[str, Any]:
    schema = _ref(ok) if content == "application/json" else {"type": "string"}
    return {
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_"),
        "security": [],
        "responses": {
            "200": {"description": "OK", "content": {content: {"schema": schema}}},
            "503": _json("Health", "Not ready"),
        },
    }


def openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the sidecar (committed as docs/openapi.json)."""
    _, defs = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    not_found = {"404": _json("ErrorBody", "Unknown id")}
    #: the run routes' {run}: checked by the one rule for run ids (charter.engine.validate)
    bad_run = {"400": _json("ErrorBody", "Body is not JSON, or a run id the rule refuses (field: run)")}
    conflict = {"409": _json("ErrorBody", "Refused (already answered, expired, duplicate ...)")}
    v = f"/{API_VERSION}"
    paths: dict[str, Any] = {
        f"{v}/decide": {
            "post": _op(
                "Decide",
                "orchestrator, admin",
                ("DecisionModel", "The decision"),
                "Request",
                {
                    "429": _json(
                        "ErrorBody", "The caller already has a large request in flight; see Retry-After"
                    )
                },
            )
        },
        f"{v}/settle": {
            "post": _op(
                "Settle",
                "orchestrator, admin",
                ("SettlementModel", "The settlement"),
                "SettleRequest",
                not_found,
            )
        },
        f"{v}/runs": {
            "post": _created(
                _op(
                    "Begin run",
                    "orchestrator, admin",
                    ("RunModel", "The run's grants (201)"),
                    "BeginRunRequest",
                    {
                        "409": _json("GrantErrorBody", "run-started: the run has grants or a recorded step"),
                        "422": _json("GrantErrorBody", "Grants the policy refuses (nothing stored)"),
                    },
                )
            )
        },
        f"{v}/runs/{{run}}/narrow": {
            "post": _op(
                "Narrow run",
                "orchestrator, admin",
                ("RunModel", "The run's grants after"),
                "NarrowRunRequest",
                bad_run,
                ["run"],
            )
        },
        f"{v}/runs/{{run}}/history": {
            "post": _op(
                "Import run history",
                "orchestrator, admin",
                ("RunImportModel", "The import (all or nothing; call ids the run has are skipped)"),
                "RunImportBody",
                {
                    "400": _json(
                        "ErrorBody", "A malformed import (nothing written), or a run id the rule refuses"
                    )
                },
                params=["run"],
            )
        },
        f"{v}/runs/{{run}}": {
            "get": _op(
                "Export run",
                "orchestrator, admin",
                ("RunExportModel", "The run (secret fields named in an event's redacted, never given)"),
                None,
                {**bad_run, "404": _json("ErrorBody", "unknown-run: no step, grant or label of it here")},
                ["run"],
            )
        },
        f"{v}/decisions/{{decision_id}}": {
            "get": _op(
                "Explain decision",
                "orchestrator, approver, operator, admin",
                ("Explained", "The traced record and its explanation"),
                None,
                not_found,
                ["decision_id"],
            )
        },
        f"{v}/approvals": {
            "get": _op("List approvals", "orchestrator, approver, admin", ("RecordList", "Approval requests"))
        },
        f"{v}/approvals/{{approval_id}}": {
            "get": _op(
                "Get approval",
                "orchestrator, approver, admin",
                ("Record", "One approval request"),
                None,
                not_found,
                ["approval_id"],
            )
        },
        f"{v}/approvals/{{approval_id}}/approve": {
            "post": _op(
                "Approve",
                "approver, admin",
                ("Record", "The updated request"),
                "NoteBody",
                {**not_found, **conflict},
                ["approval_id"],
            )
        },
        f"{v}/approvals/{{approval_id}}/deny": {
            "post": _op(
                "Deny approval",
                "approver, admin",
                ("Record", "The updated request"),
                "NoteBody",
                {**not_found, **conflict},
                ["approval_id"],
            )
        },
        f"{v}/escalations": {
            "get": _op("List escalations", "orchestrator, approver, admin", ("RecordList", "Escalations"))
        },
        f"{v}/escalations/{{escalation_id}}": {
            "get": _op(
                "Get escalation",
                "orchestrator, approver, admin",
                ("Record", "One escalation"),
                None,
                not_found,
                ["escalation_id"],
            )
        },
        f"{v}/escalations/{{escalation_id}}/answer": {
            "post": _op(
                "Answer escalation",
                "approver, admin",
                ("Record", "The answered escalation"),
                "AnswerBody",
                {**not_found, **conflict},
                ["escalation_id"],
            )
        },
        f"{v}/stops": {
            "get": _op("List stops", "orchestrator, operator, admin", ("StopList", "Active stops")),
            "post": _op(
                "Stop",
                "operator, admin",
                ("StopModel", "The stop, effective for every replica"),
                "StopBody",
                conflict,
            ),
        },
        f"{v}/stops/resume": {
            "post": _op(
                "Resume", "operator, admin", ("ResumeResult", "Resume status"), "ResumeBody", conflict
            )
        },
        f"{v}/stops/log": {
            "get": _op("Stop log", "orchestrator, operator, admin", ("StopLogList", "Stops and resumes"))
        },
        "/livez": {"get": _open("Liveness", "Health")},
        "/readyz": {"get": _open("Readiness", "Health")},
        "/metrics": {"get": _open("Metrics", "", "text/plain")},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "charter sidecar",
            "version": version,
            "description": "Policy decisions over HTTP; see docs/sidecar.md.",
            "x-wire-schema-version": WIRE_SCHEMA_VERSION,
        },
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
