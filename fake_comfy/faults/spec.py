"""The fault schedule model (Contract 3): `FaultSpec`, `Trigger`, `Target`, `FaultSchedule`.

Pure pydantic v2, no aiohttp: the harness embeds `list[FaultSpec]` in its scenario model.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from comfy_chaos.fake_comfy.faults.kinds import KINDS, Params

TriggerOn = Literal[
    "message", "frame", "node_start", "task_start", "task_complete", "connect", "reconnect"
]

# Filters each event trigger accepts besides `nth`.
TRIGGER_FILTERS: dict[str, frozenset[str]] = {
    "message": frozenset({"type", "task", "client"}),
    "frame": frozenset({"client"}),
    "node_start": frozenset({"task", "client", "node", "node_index"}),
    "task_start": frozenset({"task", "client"}),
    "task_complete": frozenset({"task", "client"}),
    "connect": frozenset({"client"}),
    "reconnect": frozenset({"client"}),
}
_ALL_FILTERS = frozenset({"type", "task", "client", "node", "node_index", "nth"})


class FaultConfigError(ValueError):
    """A fault schedule that cannot run: names the fault (index, kind), the field and what was expected."""


class Trigger(BaseModel):
    """When a fault fires: `at` seconds (scaled) after start, or `on` the Nth matching event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float | None = Field(default=None, ge=0, description="seconds after start (scaled)")
    on: TriggerOn | None = Field(default=None, description="event trigger")
    type: str | list[str] | None = Field(
        default=None,
        description="message type(s) (on: message); 'executing:null' is the final executing, "
        "'final' the prompt's last frames (execution_success/error/interrupted and executing:null)",
    )
    task: str | None = Field(default=None, description="task id (Contract 1 tag)")
    client: str | None = Field(default=None, description="client id (sid); * and ? wildcards")
    node: str | None = Field(default=None, description="node id (on: node_start)")
    node_index: int | None = Field(default=None, ge=0, description="0-based executed node (on: node_start)")
    nth: int = Field(default=1, ge=1, description="the Nth matching event, 1-based")

    @model_validator(mode="after")
    def _one_trigger(self) -> Trigger:
        given = {name for name in self.model_fields_set if getattr(self, name) is not None}
        if (self.at is None) == (self.on is None):
            raise ValueError("expected exactly one of 'at' (seconds) or 'on' (event name)")
        filters = given & _ALL_FILTERS
        if self.at is not None:
            if filters:
                raise ValueError(f"'at' takes no event filters, got {sorted(filters)}")
            return self
        assert self.on is not None
        allowed = TRIGGER_FILTERS[self.on] | {"nth"}
        if extra := filters - allowed:
            raise ValueError(
                f"'on: {self.on}' does not take {sorted(extra)}; it takes {sorted(allowed)}"
            )
        if self.node is not None and self.node_index is not None:
            raise ValueError("give 'node' or 'node_index', not both")
        return self

    @property
    def types(self) -> tuple[str, ...] | None:
        if self.type is None:
            return None
        return (self.type,) if isinstance(self.type, str) else tuple(self.type)


class Target(BaseModel):
    """Which frames/requests an active fault affects (defaults depend on the trigger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | list[str] | None = Field(
        default=None, description="message type(s); 'executing:null' and 'final' as in the trigger"
    )
    task: str | None = None
    client: str | None = None

    @property
    def types(self) -> tuple[str, ...] | None:
        if self.type is None:
            return None
        return (self.type,) if isinstance(self.type, str) else tuple(self.type)


class ToxicSpec(BaseModel):
    """A Toxiproxy toxic (docs/toxiproxy-spec.md), for `kind: toxic`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1)
    stream: Literal["upstream", "downstream"] = "downstream"
    attributes: dict[str, Any] = Field(default_factory=dict)
    toxicity: float = Field(default=1.0, ge=0, le=1)
    name: str | None = None


class FaultSpec(BaseModel):
    """One schedule entry; the same shape in scenario YAML and `--faults FILE`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="fault kind (fake_comfy.faults.KINDS) or 'toxic'")
    when: Trigger = Field(default_factory=lambda: Trigger(at=0.0))
    probability: float = Field(default=1.0, ge=0, le=1)
    count: int | None = Field(
        default=1,
        ge=1,
        description="frames/requests/connections affected; null = all while active. "
        "Default 1, or null when a duration is given.",
    )
    duration: float | None = Field(default=None, gt=0, description="seconds (scaled) active")
    until_met: bool | None = Field(
        default=None,
        description="keep the fault open after its count/duration until every client has met it "
        "(each client that has not, once), bounded by the heal; clients it never met are logged "
        "with reached: false. Default: true for HTTP route faults, false otherwise",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    target: Target | None = None
    toxic: ToxicSpec | None = None
    description: str | None = None

    _parsed: Params = PrivateAttr()

    @model_validator(mode="after")
    def _check_kind(self) -> FaultSpec:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if (self.kind == "toxic") != (self.toxic is not None):
            raise ValueError(
                "kind 'toxic' needs a 'toxic:' block" if self.kind == "toxic"
                else f"'toxic:' is only for kind 'toxic', not {self.kind!r}"
            )
        try:
            self._parsed = kind.params.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(f"kind {self.kind!r}: " + _describe(exc, prefix="params")) from None
        return self

    @property
    def parsed_params(self) -> Any:
        """The params validated into the kind's model."""
        return self._parsed

    @property
    def effective_count(self) -> int | None:
        """`count`, except that a duration without an explicit count means 'all while active'."""
        if "count" not in self.model_fields_set and self.duration is not None:
            return None
        return self.count

    @property
    def category(self) -> str:
        return KINDS[self.kind].category


class FaultSchedule(BaseModel):
    """An ordered list of faults; the index of a spec is its identity (RNG stream, ledger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[FaultSpec] = Field(default_factory=list)

    @classmethod
    def of(cls, specs: Iterable[FaultSpec | Mapping[str, Any]], source: str | None = None) -> FaultSchedule:
        """Build and validate a schedule; bad input raises `FaultConfigError` naming the fault."""
        raw = [s.model_dump(exclude_unset=True) if isinstance(s, FaultSpec) else s for s in specs]
        try:
            return cls.model_validate({"faults": raw})
        except ValidationError as exc:
            raise FaultConfigError(_describe_schedule(exc, raw, source)) from None


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        suffix = "" if error["type"] in ("missing", "value_error") else f" (got {got!r})"
        parts.append(f"{loc}: {message}{suffix}" if loc else f"{message}{suffix}")
    return "; ".join(parts)


def _describe_schedule(exc: ValidationError, raw: list[Any], source: str | None) -> str:
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "faults" and isinstance(loc[1], int):
            index = loc[1]
            entry = raw[index] if index < len(raw) else None
            kind = entry.get("kind") if isinstance(entry, Mapping) else None
            where = f"fault #{index} (kind={kind!r})"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc)
        message = error["msg"].removeprefix("Value error, ")
        got = "" if error["type"] in ("missing", "value_error") else f" (got {error.get('input')!r})"
        text = f"{where}: {field}: {message}{got}" if field else f"{where}: {message}{got}"
        lines.append(text.lstrip(": "))
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(lines)
