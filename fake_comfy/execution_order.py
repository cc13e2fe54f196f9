"""The order ComfyUI runs a prompt's nodes in (comfy_execution/graph.py `ExecutionList`).

Computed up front: durations never change it, only the graph and which nodes are cached.
Output nodes (and cached ones, which replay their UI) are staged in `outputs` order, their
uncached inputs depth-first; of the ready nodes an output goes first, then one feeding an
output, then one two steps from an output, else the first staged.
"""
from __future__ import annotations

from typing import Any

from comfy_chaos.fake_comfy.nodes import NodeClass
from comfy_chaos.fake_comfy.validation import is_link


class _Schedule:
    """Staging state of ComfyUI's ExecutionList."""

    def __init__(self, prompt: dict[str, Any], classes: dict[str, NodeClass], cached: set[str]) -> None:
        self.prompt = prompt
        self.classes = classes
        self.cached = cached
        self.pending: dict[str, None] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, None]] = {}

    def _is_output(self, node_id: str) -> bool:
        return self.classes[self.prompt[node_id]["class_type"]].output_node

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, str]] = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = None
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            for value in self.prompt[unique_id].get("inputs", {}).values():
                if is_link(value) and value[0] in self.prompt:
                    if value[0] not in self.cached:
                        stack.append(value[0])
                    links.append((value[0], unique_id))
        for source, target in links:
            if source not in self.cached:
                self.add_node(source)
                if target not in self.blocking[source]:
                    self.blocking[source][target] = None
                    self.block_count[target] += 1

    def _pick(self, ready: list[str]) -> str:
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            if any(self._is_output(b2) for b in self.blocking[node_id] for b2 in self.blocking[b]):
                return node_id
        return ready[0]

    def order(self, outputs: list[str]) -> list[str]:
        for output in outputs:
            self.add_node(output)
        order: list[str] = []
        while self.pending:
            ready = [n for n in self.pending if self.block_count[n] == 0]
            node_id = self._pick(ready)
            order.append(node_id)
            del self.pending[node_id]
            for target in self.blocking.pop(node_id):
                self.block_count[target] -= 1
        return order


def execution_order(prompt: dict[str, Any], classes: dict[str, NodeClass], cached: set[str], outputs: list[str]) -> list[str]:
    """Node ids in the order they run (cached output nodes included: they replay `executed`)."""
    return _Schedule(prompt, classes, cached).order(outputs)
