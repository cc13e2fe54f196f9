"""Scenario files: the pydantic model, the YAML loader with precise errors, the JSON Schema.

A scenario (Contract 7 in `docs/architecture.md`) says what workload a client runs, which
faults hit it on one timeline, and the bar it must meet. Loading validates everything and
reports every problem as ``<file>: <field path>: expected <what>, got <value>``.

    python -m comfy_chaos.harness.scenario --schema > scenarios/scenario.schema.json
    python -m comfy_chaos.harness.scenario scenarios/*.yaml          # validate files
"""
from __future__ import annotations

import json
import math
import random
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from comfy_chaos.fake_comfy.faults.spec import FaultSpec
from comfy_chaos.fake_comfy.profiles import DEFAULT_VERSION, VERSION_NAMES
from comfy_chaos.fake_comfy.timescale import TimeScale
from comfy_chaos.harness import workflows
from comfy_chaos.harness.chaos import Chaos, expand
from comfy_chaos.harness.timing import RunTimes

SCHEMA_ID = "https://comfy-chaos.invalid/scenario.schema.json"

# Bounds on what a scenario may ask for: a file that asks for more is refused with a
# clear error (exit 3) instead of exhausting the machine or never ending.
MAX_FILE_BYTES = 1024 * 1024  # a scenario file
MAX_YAML_NODES = 100_000  # YAML nodes after expanding aliases (an alias bomb expands exponentially)
MAX_YAML_DEPTH = 64  # nesting of mappings and sequences
MAX_TASKS = 20_000
MAX_CLIENTS = 1_000
MAX_FAULTS = 1_000
MAX_SECONDS = 86_400.0  # deadline, grace, intervals, fault times: one day (scenario seconds)
MIN_TIME_SCALE = 0.01  # below this, timers expire faster than the event loop can serve them
MAX_TIME_SCALE = 10.0


class YamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans, so `on:` (the
    fault trigger key) and `yes`/`no`/`off` stay strings instead of becoming True/False."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def yaml_load(text: str) -> Any:
    """Parse YAML text with `YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _check_workflow_ref(value: Any) -> Any:
    if isinstance(value, str):
        if value not in workflows.WORKFLOW_NAMES:
            raise ValueError(
                f"expected a workflow name ({', '.join(workflows.WORKFLOW_NAMES)}) "
                f"or an inline API-format workflow, got {_show(value)}"
            )
        return value
    if isinstance(value, dict):
        why = workflows.check_api_format(value)
        if why is not None:
            raise ValueError(f"expected an inline API-format workflow: {why}")
        return value
    raise ValueError(
        f"expected a workflow name ({', '.join(workflows.WORKFLOW_NAMES)}) "
        f"or an inline API-format workflow (a mapping), got {_show(value)}"
    )


WorkflowRef = Annotated[
    str | dict[str, Any],
    BeforeValidator(_check_workflow_ref),
    Field(
        description="A workflow name from harness.workflows or an inline API-format workflow",
        json_schema_extra={"anyOf": [{"enum": list(workflows.WORKFLOW_NAMES)}, {"type": "object"}]},
    ),
]


def _version_text(value: Any) -> Any:
    """`comfyui_version: 0.33` is a YAML number: take it as the text it was written as."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)




class MixEntry(_Model):
    workflow: WorkflowRef
    weight: float = Field(1.0, gt=0, description="Relative share of tasks using this workflow")


class Submit(_Model):
    pattern: Literal["burst", "interval"] = Field("burst", description="burst: all tasks due at start")
    interval: float | None = Field(
        None, ge=0, le=MAX_SECONDS, description="Seconds (scaled) between task i and i+1; required for pattern: interval"
    )

    @model_validator(mode="after")
    def _interval_needed(self) -> Submit:
        if self.pattern == "interval" and self.interval is None:
            raise ValueError("expected interval (seconds) with pattern: interval, got nothing")
        return self


class Workload(_Model):
    tasks: int = Field(10, ge=1, le=MAX_TASKS, description="Number of tasks; ids t0..t<N-1>")
    workflow: WorkflowRef = "basic"
    mix: list[MixEntry] | None = Field(None, min_length=1, description="Weighted workflow mix (overrides workflow)")
    submit: Submit = Submit()


class Expect(_Model):
    """The pass bar; the defaults are the goals (everything reported exactly once, correctly)."""

    completeness: float = Field(1.0, ge=0, le=1, description="Min share of server-completed tasks reported")
    lost: int = Field(0, ge=0)
    phantom: int = Field(0, ge=0)
    duplicate: int = Field(0, ge=0, description="Max tasks reported more than once")
    duplicate_execution: int = Field(0, ge=0)
    wrong_outcome: int = Field(0, ge=0)
    wrong_outputs: int = Field(0, ge=0)
    indeterminate: int = Field(0, ge=0)
    contradictory: int = Field(0, ge=0)
    hang: bool = Field(False, description="true: a hang is allowed")
    crash: bool = Field(False, description="true: a crash is allowed")
    p95_latency: float | None = Field(
        None, ge=0, description="Max report latency p95 in scenario seconds (time scaling undone); null = no bar"
    )
    # Slow-burn bars (docs/scoring.md "Slow-burn bars"): relative to the client's own control
    # run, never below the absolute floor. null = the scorer's default (harness.judgement.SLOW_DEFAULTS).
    latency_floor: float | None = Field(None, ge=0, description="Latency p95/max bar never below this (scenario s)")
    latency_factor: float | None = Field(None, ge=1, description="Latency may be this many times the control's")
    latency_slack: float | None = Field(
        None, ge=0, description="Scenario s over the control's latency, plus fault windows and recovery time"
    )
    http_per_task: float | None = Field(None, ge=0, description="Requests per task floor of the request bar")
    http_factor: float | None = Field(None, ge=1, description="Requests per task and peak rate vs the control")
    poll_rate: float | None = Field(None, ge=0, description="Requests per scenario s always allowed over the run")
    peak_rps: float | None = Field(None, ge=0, description="Peak requests per scenario s per client, floor")
    cpu_per_wall: float | None = Field(None, ge=0, description="CPU s per wall s floor of the CPU bar")
    cpu_margin: float | None = Field(None, ge=0, description="CPU s per wall s allowed over the control's")
    reconnects: int | None = Field(None, ge=0, description="Reconnects allowed over the control's; null = derived")


class Scenario(_Model):
    name: str = Field("", description="Defaults to the file stem")
    description: str = ""
    seed: int = 0
    time_scale: float = Field(
        0.1, ge=MIN_TIME_SCALE, le=MAX_TIME_SCALE, description="Multiplies every duration; --time-scale overrides"
    )
    tags: list[str] = Field(default_factory=list, description="'slow' → pytest marker slow")
    clients: int = Field(1, ge=1, le=MAX_CLIENTS, description="Client instances; task i goes to client i % clients")
    workload: Workload = Workload()
    faults: list[FaultSpec] = Field(
        default_factory=list, max_length=MAX_FAULTS, description="The fault schedule (server faults and toxics)"
    )
    chaos: Chaos | None = Field(
        None, description="Random faults generated from the seed (harness.chaos), run after `faults`"
    )
    comfyui_version: Annotated[Literal[VERSION_NAMES] | None, BeforeValidator(_version_text)] = Field(  # type: ignore[valid-type]
        None,
        description=f"The ComfyUI version the fake server imitates (fake_comfy.profiles); null = the newest "
        f"({DEFAULT_VERSION}); --comfyui-version overrides",
    )
    deadline: float = Field(60, gt=0, le=MAX_SECONDS, description="Seconds (scaled) from start until judgement")
    grace: float = Field(
        5, ge=0, le=MAX_SECONDS, description="Seconds (scaled) after the last fault before judgement is allowed"
    )
    expect: Expect = Expect()

    _source: str | None = PrivateAttr(None)

    @field_validator("faults")
    @classmethod
    def _finite_fault_times(cls, faults: list[FaultSpec]) -> list[FaultSpec]:
        for index, spec in enumerate(faults):
            for name, value in (("when.at", spec.when.at), ("duration", spec.duration)):
                if value is not None and not (math.isfinite(value) and value <= MAX_SECONDS):
                    raise ValueError(f"faults[{index}].{name}: expected a finite number <= {MAX_SECONDS:g}, got {value}")
        return faults

    @model_validator(mode="after")
    def _last_task_due_before_deadline(self) -> Scenario:
        submit = self.workload.submit
        if submit.pattern == "interval" and submit.interval:
            last = (self.workload.tasks - 1) * submit.interval
            if last >= self.deadline:
                raise ValueError(
                    f"workload.submit.interval: the last task (t{self.workload.tasks - 1}) would be due at "
                    f"{last:g} s, not before the deadline ({self.deadline:g} s)"
                )
        return self

    @property
    def source(self) -> str | None:
        """The file this scenario was loaded from, as given to `load_scenario`."""
        return self._source

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for the RunRecord; carries `source` (not a scenario field)."""
        data = self.model_dump(mode="json")
        # Fault specs as written: a full dump of a Trigger does not validate again (its
        # defaults count as given filters).
        data["faults"] = [f.model_dump(mode="json", exclude_unset=True) for f in self.faults]
        data["source"] = self._source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Inverse of `to_dict`."""
        data = dict(data)
        source = data.pop("source", None)
        scenario = cls.model_validate(data)
        scenario._source = source
        return scenario

    @property
    def profile_version(self) -> str:
        """The protocol profile this scenario runs against (`comfyui_version`, else the default)."""
        return self.comfyui_version or DEFAULT_VERSION

    def fault_schedule(self) -> list[FaultSpec]:
        """The faults a run applies: `faults`, then the `chaos` faults expanded from the seed."""
        if self.chaos is None:
            return list(self.faults)
        return [*self.faults, *expand(self.chaos, seed=self.seed, tasks=self.workload.tasks)]

    def due_times(self) -> list[float]:
        """When each task is due, in scenario seconds after start (index = task index)."""
        submit = self.workload.submit
        interval = submit.interval if submit.pattern == "interval" and submit.interval else None
        return [i * interval if interval else 0.0 for i in range(self.workload.tasks)]

    def plan(self) -> list[PlannedTask]:
        """The tasks of this scenario: ids, workflows (seed-varied), clients and due times."""
        rng = random.Random(f"mix:{self.seed}")
        mix = self.workload.mix
        planned = []
        for i, due in enumerate(self.due_times()):
            ref = rng.choices([m.workflow for m in mix], weights=[m.weight for m in mix])[0] if mix else self.workload.workflow
            planned.append(
                PlannedTask(
                    task_id=f"t{i}",
                    index=i,
                    client_index=i % self.clients,
                    workflow_name=ref if isinstance(ref, str) else "inline",
                    workflow=workflows.build(ref, seed=self.seed, index=i),
                    due=due,
                )
            )
        return planned

    def scaled(self, scale: TimeScale | float) -> RunTimes:
        """This scenario's times in real seconds at `scale` (computed once when a run starts)."""
        return RunTimes.of(
            TimeScale.of(scale), deadline=self.deadline, grace=self.grace, due=self.due_times(),
            specs=self.fault_schedule(),
        )


@dataclass(frozen=True)
class PlannedTask:
    """One task of a scenario; `due` is in scenario seconds (`Scenario.scaled` gives it in real seconds)."""

    task_id: str
    index: int
    client_index: int
    workflow_name: str
    workflow: dict[str, Any]
    due: float


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; raise `ScenarioError` naming file and field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, [f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    scenario = parse_scenario(text, source=source)
    return scenario


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Validate YAML text as a scenario; `source` names it in errors; name defaults to its stem."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(source, [f"file too large: {len(text)} characters, at most {MAX_FILE_BYTES}"])
    try:
        _check_yaml_size(yaml.compose(text, Loader=YamlLoader))
        data = yaml_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ScenarioError(source, [f"{where}YAML syntax error: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [f"YAML error: {exc}"]) from None
    except _TooBig as exc:
        raise ScenarioError(source, [str(exc)]) from None
    except RecursionError:  # PyYAML's composer recurses once per level
        raise ScenarioError(source, [f"YAML nested too deeply: more than {MAX_YAML_DEPTH} levels"]) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, [f"expected a mapping of scenario fields at the top level, got {_show(data)}"])
    if "name" not in data:
        data["name"] = Path(source).stem
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        root = yaml.compose(text, Loader=YamlLoader)
        problems = []
        for err in exc.errors():
            line = _line_of(root, tuple(err["loc"]))
            problems.append(_describe(err) + (f" (line {line})" if line else ""))
        raise ScenarioError(source, problems) from None
    scenario._source = source
    return scenario


class _TooBig(Exception):
    """The YAML document is too large once aliases are expanded, too deep, or recursive."""


def _check_yaml_size(root: yaml.Node | None) -> None:
    """Refuse an alias bomb (a few hundred bytes that expand to billions of nodes), a
    recursive alias and deep nesting, before anything walks the expanded document."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    # Post-order walk without recursion; a node reached again through an alias counts again.
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, expanded = stack.pop()
        children = _children(node)
        if expanded:
            on_path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_YAML_NODES:
                raise _TooBig(f"YAML too large: more than {MAX_YAML_NODES} nodes once aliases are expanded "
                              f"(line {node.start_mark.line + 1})")
            continue
        if id(node) in sizes:
            continue
        if depth > MAX_YAML_DEPTH:
            raise _TooBig(f"YAML nested too deeply: more than {MAX_YAML_DEPTH} levels (line {node.start_mark.line + 1})")
        if id(node) in on_path:
            raise _TooBig(f"YAML alias refers to itself (line {node.start_mark.line + 1})")
        on_path.add(id(node))
        stack.append((node, depth, True))
        for child in children:
            if id(child) in on_path:
                raise _TooBig(f"YAML alias refers to itself (line {child.start_mark.line + 1})")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_scenarios(root: str | Path) -> list[Scenario]:
    """All `*.yaml` scenarios under `root` (a directory) or the one file `root`, sorted by path."""
    root = Path(root)
    paths = [root] if root.is_file() else sorted(root.rglob("*.yaml"))
    return [load_scenario(p) for p in paths]


def json_schema() -> dict[str, Any]:
    """The JSON Schema for scenario files (for editors), generated from `Scenario`."""
    schema = Scenario.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """`json_schema()` as the exact text committed in `scenarios/scenario.schema.json`."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# --- error formatting -------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    elif isinstance(value, str):
        text = json.dumps(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _walk(loc: tuple[Any, ...]) -> tuple[str, Any]:
    """Turn a pydantic `loc` into `faults[2].probability` and find the field's FieldInfo."""
    path = ""
    field = None
    candidates: list[type[BaseModel]] = [Scenario]
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        owner = next((m for m in candidates if part in m.model_fields), None)
        if owner is not None:
            field = owner.model_fields[part]
            candidates = _models_in(field.annotation)
        elif len(candidates) > 1 or "[" in part:
            continue  # a union member tag, not a field
        else:
            field = None
            candidates = []
        path += f".{part}" if path else part
    return path or "(top level)", field


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic `loc` (or of the closest existing parent).
    A mapping key's own line, not its value's: `expect:` above a block mapping is where
    the field is named (a misspelt key was reported one line late)."""
    if node is None or not loc:
        return None
    key_line: int | None = None  # the line of the key that led to `node`
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if pair is None:
                return node.start_mark.line + 1
            key_line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            key_line, node = None, node.value[part]
        elif not isinstance(part, int):
            continue  # a union member tag in the loc, not a key
        else:
            break
    return key_line if key_line is not None else node.start_mark.line + 1


def _num(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _bounds(field: Any, integer: bool) -> str:
    lo: Any = None  # the bound's value, of whatever type the field's metadata holds
    hi: Any = None
    lo_open = hi_open = False
    for meta in getattr(field, "metadata", []):
        if isinstance(meta, annotated_types.Ge):
            lo = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            lo, lo_open = meta.gt, True
        elif isinstance(meta, annotated_types.Le):
            hi = meta.le
        elif isinstance(meta, annotated_types.Lt):
            hi, hi_open = meta.lt, True
    kind = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        return f"{kind} in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f"{kind} {'<' if hi_open else '<='} {_num(hi)}"
    return kind


def _is_int_field(field: Any) -> bool:
    annotation = getattr(field, "annotation", None)
    return annotation is int or (
        typing.get_origin(annotation) in (Union, types.UnionType) and int in typing.get_args(annotation)
    )


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}


def _describe(err: Mapping[str, Any]) -> str:
    path, field = _walk(tuple(err["loc"]))
    kind = err["type"]
    got = _show(err.get("input"))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"{path}: expected a value (required), got nothing"
    if kind == "extra_forbidden":
        return f"{path}: unexpected field, got {got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{path}: expected {_bounds(field, _is_int_field(field))}, got {got}"
    if kind in ("too_short", "too_long"):
        return f"{path}: expected {err['msg'][0].lower()}{err['msg'][1:]}, got {got}"
    if kind in ("literal_error", "enum"):
        return f"{path}: expected {ctx.get('expected', 'one of the allowed values')}, got {got}"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", err["msg"]))
        if not err["loc"] or message.startswith(f"{path}["):
            return message  # a check across fields names its own field path
        if "got " in message or isinstance(err.get("input"), (dict, list)):
            return f"{path}: {message}"
        return f"{path}: {message}, got {got}"
    if kind in _EXPECTED:
        return f"{path}: expected {_EXPECTED[kind]}, got {got}"
    return f"{path}: {err['msg']}, got {got}"


def main(argv: list[str] | None = None) -> int:
    """`--schema` prints the JSON Schema; otherwise validate the given files (exit 3 on errors)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--schema"]:
        sys.stdout.write(schema_text())
        return 0
    if not argv or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m comfy_chaos.harness.scenario --schema | FILE...\n")
        return 3
    status = 0
    for name in argv:
        try:
            load_scenario(name)
        except ScenarioError as exc:
            sys.stderr.write(f"{exc}\n")
            status = 3
    return status


if __name__ == "__main__":
    sys.exit(main())
