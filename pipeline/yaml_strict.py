"""Strict YAML reading for configs and parameter tables: no silent ambiguity, no bombs.

PyYAML's ``safe_load`` already refuses tags that build Python objects; on top of it:

- a key given twice in one mapping is an error (``safe_load`` keeps the last one
  silently, so ``engine: fast`` then ``engine: exact`` would run exact unnoticed);
- aliases may not expand the document beyond :data:`MAX_EXPANDED_NODES` nodes (the
  "billion laughs" attack: nine anchors of nine aliases each are 10^9 strings once
  validated or serialised);
- the file must be UTF-8 (with or without a BOM), as the YAML spec says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lucr.errors import ConfigError, LucrError

#: Nodes a document may hold once its aliases are expanded (a run config has a few hundred).
MAX_EXPANDED_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and alias bombs."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {seen[key]} and line {line}): give each key once", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes of the document with every alias expanded (linear time: shared nodes are memoised)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once (PyYAML builds it as a cycle)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def load_yaml(path: str | Path, *, error: type[LucrError] = ConfigError, fix: str = "check the indentation and quoting of the file") -> Any:
    """Parse a YAML file strictly; every problem is raised as ``error`` naming the file and line."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded)", path=path,
            fix="save the file as UTF-8 (e.g. in Notepad: Save as -> Encoding: UTF-8)",
        ) from None
    loader = None
    try:
        loader = _StrictLoader(text)  # its reader refuses control characters already
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            raise error(
                f"its aliases expand to {size:,} YAML nodes (more than {MAX_EXPANDED_NODES:,}): refused as a likely alias bomb", path=path,
                fix="write the values out, or use fewer nested anchors (&) and aliases (*)",
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        if "\\t" in detail or "tab" in detail.lower():
            detail += " (YAML indents with spaces, never tabs)"
        raise error(f"not valid YAML: {detail}", path=path, fix=fix) from None
    finally:
        if loader is not None:
            loader.dispose()
