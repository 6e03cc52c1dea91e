"""Safe YAML loading: size cap, standard tags only, unique keys, bounded aliases, line:col marks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import SpecError
from runner.project.files import MAX_BYTES, read_capped
from runner.project.yamldoc import KeyPath, Mark, YamlDoc

__all__ = [
    "MAX_BYTES",
    "MAX_NODES",
    "KeyPath",
    "Mark",
    "YamlDoc",
    "load_yaml",
    "parse_yaml",
    "read_capped",
]

# libyaml is ~10x faster; the pure-Python loader is a fallback for builds without it.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_NODES = 10_000
# The composer recurses once per nesting level; deep input would overflow the C stack.
MAX_DEPTH = 100

_T = "tag:yaml.org,2002:"
_MERGE = _T + "merge"
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_SCALAR_TAGS |= {_MERGE, _T + "value"}
_SEQUENCE_TAGS = {_T + "seq", _T + "omap", _T + "pairs"}
_MAPPING_TAGS = {_T + "map", _T + "set"}
# Only these tags turn into non-strings; timestamps and binary keep the author's text.
_TYPED = {_T + "int", _T + "float", _T + "bool"}
_CONSTRUCTOR = SafeConstructor()


def load_yaml(path: Path, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> YamlDoc:
    """Read and safely parse one YAML file; every problem is a SpecError naming the file."""
    return parse_yaml(read_capped(path, max_bytes), path.name, max_nodes=max_nodes)


def parse_yaml(data: bytes, name: str, *, max_nodes: int = MAX_NODES) -> YamlDoc:
    """Parse UTF-8 YAML ``data``; ``name`` is the file name used in messages."""
    text = _decode(data, name)
    try:
        _check_depth(text, name)
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_syntax_message(name, exc)) from exc
    except yaml.reader.ReaderError as exc:
        reason = str(exc).splitlines()[0]
        raise SpecError(f"{name}: {reason} (at character offset {exc.position})") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: {str(exc).splitlines()[0]}") from exc
    builder = _Builder(name, max_nodes)
    value = None if root is None else builder.build_root(root)
    return YamlDoc(name, value, builder.marks, builder.texts)


def _decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{name}: invalid UTF-8 at byte offset {exc.start}", hint="save the file as UTF-8"
        ) from exc
    return text.removeprefix("\ufeff")


def _check_depth(text: str, name: str) -> None:
    """Walk the (non-recursive) event stream first so deep nesting fails before composing."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"{name}:{_mark(event)}: nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _syntax_message(name: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem += f" ({exc.context})"
    return f"{name}:{_mark(mark)}: {problem}" if mark else f"{name}: {problem}"


def _mark(item: Any) -> Mark:
    """Convert a 0-based PyYAML mark (or an event/node carrying one) to a 1-based Mark."""
    start = getattr(item, "start_mark", item)
    return Mark(start.line + 1, start.column + 1)


class _Builder:
    """Turns a node graph into plain data; aliases are expanded only after a size check."""

    def __init__(self, name: str, max_nodes: int) -> None:
        self.name = name
        self.max_nodes = max_nodes
        self.marks: dict[KeyPath, Mark] = {(): Mark(1, 1)}
        self.texts: dict[KeyPath, str] = {}
        self._sizes: dict[int, int] = {}

    def fail(self, node: Node, problem: str) -> SpecError:
        return SpecError(f"{self.name}:{_mark(node)}: {problem}")

    def build_root(self, root: Node) -> Any:
        # Sizing the shared node graph first makes a billion-laughs document fail in microseconds.
        if self._expanded_size(root, set()) > self.max_nodes:
            raise SpecError(
                f"{self.name}: too many aliases/nodes (more than {self.max_nodes} "
                "after expanding aliases)"
            )
        return self.build(root, ())

    def _expanded_size(self, node: Node, active: set[int]) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            raise self.fail(node, "recursive alias")
        active.add(id(node))
        total = 1
        for child in _children(node):
            total = min(total + self._expanded_size(child, active), self.max_nodes + 1)
        active.discard(id(node))
        self._sizes[id(node)] = total
        return total

    def build(self, node: Node, path: KeyPath) -> Any:
        self._check_tag(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            return self._sequence(node, path)
        return self._mapping(cast(MappingNode, node), path)

    def _check_tag(self, node: Node) -> None:
        allowed = {ScalarNode: _SCALAR_TAGS, SequenceNode: _SEQUENCE_TAGS}.get(type(node))
        if node.tag not in (allowed if allowed is not None else _MAPPING_TAGS):
            raise self.fail(node, f"unsupported YAML tag '{node.tag.replace(_T, '!!')}'")

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        self.texts[path] = node.value
        if node.tag == _T + "null":
            return None
        if node.tag not in _TYPED:
            return node.value
        try:
            return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
        except (ValueError, yaml.YAMLError) as exc:
            raise self.fail(node, f"invalid {node.tag.replace(_T, '!!')} value") from exc

    def _sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.marks[(*path, index)] = _mark(item)
            items.append(self.build(item, (*path, index)))
        return items

    def _mapping(self, node: MappingNode, path: KeyPath) -> Any:
        result: dict[str, Any] = {}
        # Merged keys go in first so that the mapping's own keys override them (YAML merge rule).
        for source in reversed(list(self._merge_sources(node))):
            result.update(self.build(source, path))
        first: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self._key(key_node, first)
            self.marks[(*path, key)] = first[key]
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, key_node: Node, first: dict[str, Mark]) -> str:
        if not isinstance(key_node, ScalarNode):
            raise self.fail(key_node, "mapping keys must be plain scalars")
        self._check_tag(key_node)
        key = str(key_node.value)
        if key in first:
            raise self.fail(key_node, f"duplicate key '{key}' (first at {first[key]})")
        first[key] = _mark(key_node)
        return key

    def _merge_sources(self, node: MappingNode) -> Iterator[MappingNode]:
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise self.fail(source, "a merge key '<<' needs a mapping or list of mappings")
                yield source


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            yield key_node
            yield value_node
