"""config.yaml's YAML, read with bounds: nesting depth and alias expansion are checked while
the node graph is composed, before a single Python object is built, and a key given twice is
an error, not "the last one wins"."""

from __future__ import annotations

import yaml

from edgecam.bounds import show
from edgecam.errors import ConfigError

MAX_DEPTH = 20              # nesting of sections and lists (config.yaml has 2)
MAX_NODES = 20000           # values in the document, with every alias expanded


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with nesting depth and alias expansion bounded while the node
    graph is composed, before a single Python object is built: a "billion laughs" file
    is refused after reading it once, in milliseconds."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict = {}      # id(node) -> values under it, aliases expanded

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(self.peek_event().anchor)
            if target is not None and id(target) not in self._sizes:
                raise _TooBig("refers to itself through an alias")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooBig(f"nests deeper than {MAX_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = self._sizes.get(id(node))
        if size is None:
            size = 1 + self._children_size(node)
            self._sizes[id(node)] = size
        if size > MAX_NODES:
            raise _TooBig(f"expands to more than {MAX_NODES} values (aliases expanded)")
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key, _ in node.value:  # a key given twice is a mistake, not "the last one wins"
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    raise _TooBig(f"gives key {show(key.value)} twice (line {key.start_mark.line + 1})")
                seen.add(key.value)
        return super().construct_mapping(node, deep)

    def _children_size(self, node) -> int:
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            return 0
        return sum(self._sizes[id(c)] for c in children)


class _TooBig(Exception):
    pass


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ ] and { } outside quotes and comments: PyYAML's scanner slows
    down quadratically with it, so a deep file is refused before the scanner sees it."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    quote = None
    comment = False
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def load_yaml(text: str, shown: str):
    """The YAML document ``text`` (a config file named ``shown``), bounded; ConfigError else."""
    if _flow_depth(text) > MAX_DEPTH:
        raise ConfigError(f"config file {shown} is refused: it nests deeper than {MAX_DEPTH} levels")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _TooBig as exc:
        raise ConfigError(f"config file {shown} is refused: it {exc}") from None  # bounds, twice-given keys
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {shown} is not valid YAML{where}") from None
    finally:
        loader.dispose()
