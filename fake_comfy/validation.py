"""Prompt validation with ComfyUI's semantics and error bodies (execution.py `validate_prompt`).

Plain code, no IO. Mirrors the real control flow closely because clients see its quirks:
errors are attached only to the nodes that have them, every failing node collected so far
gets each later failing output appended to `dependent_outputs`, and a link to a missing
node is reported under the *linked* node with the consumer's input name.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from comfy_chaos.fake_comfy.nodes import NodeClass


@dataclass(slots=True)
class Validation:
    ok: bool
    error: dict[str, Any] | None = None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def _error(kind: str, message: str, details: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _missing_node_type(node_id: str, node: Any, class_type: Any) -> dict[str, Any]:
    """ComfyUI 0.33's body for an unknown class (`class_type` given) or a missing one (None)."""
    meta = node.get("_meta") if isinstance(node, dict) else None
    title = meta.get("title") if isinstance(meta, dict) else None
    if class_type is None:
        message = f"Node '{title or f'ID #{node_id}'}' has no class_type. The workflow may be corrupted or a custom node is missing."
    else:
        title = title or class_type
        message = f"Node '{title}' not found. The custom node may not be installed."
    error = _error("missing_node_type", message, f"Node ID '#{node_id}'")
    error["extra_info"] = {"node_id": node_id, "class_type": class_type, "node_title": title}
    return error


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _types_match(received: str, expected: Any) -> bool:
    if not isinstance(expected, str):
        return False
    if received == "*" or expected == "*":
        return True
    return bool(set(received.split(",")) & set(expected.split(",")))


def _convert(input_type: Any, value: Any) -> Any:
    if input_type == "INT":
        return int(value)
    if input_type == "FLOAT":
        return float(value)
    if input_type == "STRING":
        return str(value)
    if input_type == "BOOLEAN":
        return bool(value)
    return value


def _value_error(type_: str, message: str, details: str, name: str, config: Any, value: Any) -> dict[str, Any]:
    """One input's error entry, shaped as ComfyUI's `validate_inputs` writes it."""
    return {
        "type": type_,
        "message": message,
        "details": details,
        "extra_info": {"input_name": name, "input_config": config, "received_value": value},
    }


class _Validator:
    def __init__(self, prompt: dict[str, Any], classes: dict[str, NodeClass]) -> None:
        self.prompt = prompt
        self.classes = classes
        self.validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}

    def validate_inputs(self, unique_id: str) -> tuple[bool, list[dict[str, Any]], str]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        node = self.prompt[unique_id]
        inputs = node.get("inputs", {})
        if not isinstance(inputs, dict):
            inputs = {}
        cls = self.classes[node["class_type"]]
        errors: list[dict[str, Any]] = []
        valid = True
        names = list(cls.info["input"].get("required", {})) + list(cls.info["input"].get("optional", {}))
        for x in names:
            category, info = cls.input_spec(x)  # type: ignore[misc]
            input_type, extra = info[0], info[1]
            if x not in inputs:
                if category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{x}",
                            "extra_info": {"input_name": x},
                        }
                    )
                continue
            val = inputs[x]
            if isinstance(val, list):
                if len(val) != 2:
                    message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
                    errors.append(_value_error("bad_linked_input", message, f"{x}", x, info, val))
                    continue
                o_id = val[0]
                o_class_type = self.prompt[o_id]["class_type"]  # KeyError for a missing node, as in ComfyUI
                received_type = self.classes[o_class_type].return_types[val[1]]
                if not _types_match(received_type, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_type": received_type,
                                "linked_node": val,
                            },
                        }
                    )
                    continue
                try:
                    r = self.validate_inputs(o_id)
                    if r[0] is False:
                        valid = False
                        continue
                except Exception as ex:  # noqa: BLE001 - reported to the client like ComfyUI does
                    valid = False
                    self.validated[o_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "exception_message": str(ex),
                                    "exception_type": type(ex).__name__,
                                    "traceback": traceback.format_tb(ex.__traceback__),
                                    "linked_node": val,
                                },
                            }
                        ],
                        o_id,
                    )
                    continue
                continue
            try:
                val = _convert(input_type, val)
            except Exception as ex:  # noqa: BLE001
                errors.append(
                    {
                        "type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{x}, {val}, {ex}",
                        "extra_info": {
                            "input_name": x,
                            "input_config": info,
                            "received_value": val,
                            "exception_message": str(ex),
                        },
                    }
                )
                continue
            if "min" in extra and val < extra["min"]:
                message = f"Value {val} smaller than min of {extra['min']}"
                errors.append(_value_error("value_smaller_than_min", message, f"{x}", x, info, val))
                continue
            if "max" in extra and val > extra["max"]:
                message = f"Value {val} bigger than max of {extra['max']}"
                errors.append(_value_error("value_bigger_than_max", message, f"{x}", x, info, val))
                continue
            if isinstance(input_type, list) and val not in input_type:
                details = f"{x}: '{val}' not in {input_type}"
                errors.append(_value_error("value_not_in_list", "Value not in list", details, x, info, val))
                continue
        result = (False, errors, unique_id) if errors or not valid else (True, [], unique_id)
        self.validated[unique_id] = result
        return result


def validate_prompt(
    prompt: Any,
    classes: dict[str, NodeClass],
    partial_targets: list[str] | None = None,
    missing_node_type: bool = False,
) -> Validation:
    """Validate an API-format prompt; `prompt` must already be known to be a dict.

    `missing_node_type` selects the error body of an unknown or missing class_type:
    ComfyUI >= 0.15.1 answers `missing_node_type` with `extra_info`, older ones `invalid_prompt`.
    """
    outputs: list[str] = []
    for x, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            if missing_node_type:
                return Validation(False, _missing_node_type(x, node, None))
            return Validation(
                False,
                _error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{x}'",
                ),
            )
        class_type = node["class_type"]
        cls = classes.get(class_type) if isinstance(class_type, str) else None
        if cls is None:
            if missing_node_type:
                return Validation(False, _missing_node_type(x, node, class_type))
            return Validation(
                False,
                _error("invalid_prompt", f"Cannot execute because node {class_type} does not exist.", f"Node ID '#{x}'"),
            )
        if cls.output_node and (partial_targets is None or x in partial_targets):
            outputs.append(x)
    if not outputs:
        return Validation(False, _error("prompt_no_outputs", "Prompt has no outputs", ""))

    validator = _Validator(prompt, classes)
    good: list[str] = []
    output_errors: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for o in outputs:
        try:
            valid, reasons, _ = validator.validate_inputs(o)
        except Exception as ex:  # noqa: BLE001
            valid = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {"exception_type": type(ex).__name__, "traceback": traceback.format_tb(ex.__traceback__)},
                }
            ]
            validator.validated[o] = (False, reasons, o)
        if valid is True:
            good.append(o)
            continue
        if reasons:
            output_errors.append((o, reasons))
        for node_id, (ok, node_reasons, _) in validator.validated.items():
            if ok is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                node_errors[node_id]["dependent_outputs"].append(o)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errors in output_errors for e in errors)
        return Validation(
            False, _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details), [], node_errors
        )
    return Validation(True, None, good, node_errors)


def coerce_inputs(node: dict[str, Any], cls: NodeClass) -> dict[str, Any]:
    """Literal inputs converted the way validation converted them (links left as is)."""
    out: dict[str, Any] = {}
    for name, value in node.get("inputs", {}).items():
        spec = cls.input_spec(name)
        if spec is None or is_link(value):
            out[name] = value
            continue
        try:
            out[name] = _convert(spec[1][0], value)
        except (TypeError, ValueError):
            out[name] = value
    return out
