"""A strict YAML loader for configuration files: no duplicate keys, bounded aliases.

``yaml.safe_load`` accepts a mapping with the same key twice (the last value wins silently)
and expands aliases without limit, so an "anchor bomb" (each level an alias list of the one
before) becomes a value with billions of leaves that later code walks or prints.
:func:`load_strict` refuses both before anything is constructed:

* a duplicate key is an error naming the key and both lines;
* the document may hold at most :data:`MAX_NODES` nodes once aliases are expanded (counted
  on the composed node graph, so the count itself is fast and small).

Error messages keep values short (:func:`short_repr`).
"""
from __future__ import annotations

from typing import Any, TextIO

import yaml

__all__ = ["StrictYAMLError", "MAX_NODES", "MAX_VALUE_CHARS", "MAX_MESSAGE_LINES",
           "load_strict", "short_repr", "truncate_lines", "check_files"]

#: Largest expanded node count of a configuration: config/paper.yaml has ~400 nodes, so this
#: leaves a factor of 250 for hand-written lists while a bomb stops at once.
MAX_NODES = 100_000
#: Longest value (characters) quoted in an error message.
MAX_VALUE_CHARS = 200


class StrictYAMLError(yaml.YAMLError):
    """Duplicate key or too many expanded aliases in a YAML document."""


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


#: Most lines (one per problem) of an error message.
MAX_MESSAGE_LINES = 20


def truncate_lines(text: str, limit: int = 4 * MAX_VALUE_CHARS,
                   max_lines: int = MAX_MESSAGE_LINES) -> str:
    """Cut each line of a message to ``limit`` characters and keep at most ``max_lines``."""
    lines = text.splitlines()
    out = [line if len(line) <= limit else f"{line[:limit]}... ({len(line)} characters)"
           for line in lines[:max_lines]]
    if len(lines) > max_lines:
        out.append(f"... and {len(lines) - max_lines} more lines")
    return "\n".join(out)


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """Nodes in ``node`` with every alias expanded (memoised per node; stops past ``limit``)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a node reached again while being counted: a recursive alias
    if isinstance(node, yaml.SequenceNode):
        total = 1
        for child in node.value:
            total += _expanded_size(child, memo, limit)
            if total > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        total = 1
        for k, v in node.value:
            total += _expanded_size(k, memo, limit) + _expanded_size(v, memo, limit)
            if total > limit:
                break
    else:
        total = 1
    memo[key] = total
    return total


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    first = seen[key].start_mark
                    raise StrictYAMLError(
                        f"duplicate key {short_repr(key)} at line {key_node.start_mark.line + 1}"
                        f" (first at line {first.line + 1}); YAML would silently keep the last "
                        "value. Remove one of them.")
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_strict(stream: str | bytes | TextIO, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, refusing duplicate keys and bombs.

    Parameters
    ----------
    stream : str, bytes or file
        The YAML text.
    max_nodes : int
        Largest number of nodes after alias expansion.

    Raises
    ------
    StrictYAMLError
        Naming the duplicate key and its lines, or the expanded size.
    yaml.YAMLError
        Any other YAML syntax error.
    """
    loader = _StrictLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, max_nodes)
        if size > max_nodes:
            raise StrictYAMLError(
                f"the document expands to more than {max_nodes} values through its aliases "
                "(*name references to &name anchors); a configuration is a few hundred. "
                "Write the values out or use fewer aliases.")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_files(paths) -> None:
    """Re-read YAML files with :func:`load_strict` (for configs another loader has read).

    Snakemake's ``--configfile`` loader keeps the last of duplicate keys and expands aliases
    without limit; the Snakefile calls this on ``workflow.configfiles`` before validating.

    Raises
    ------
    StrictYAMLError
        Naming the file, the duplicate key and its lines, or the expanded size.
    """
    for path in paths:
        with open(path) as fh:
            try:
                load_strict(fh)
            except StrictYAMLError as exc:
                raise StrictYAMLError(f"{path}: {exc}") from None
