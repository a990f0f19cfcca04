"""JSON Patch (RFC 6902) applied to a copy of a spec: add, remove, replace, move, copy, test."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    pass


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"{pointer!r} is not a JSON pointer")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    node = doc
    for tok in tokens[:-1]:
        node = _child(node, tok)
    return node, tokens[-1]


def _child(node: Any, tok: str) -> Any:
    if isinstance(node, dict):
        if tok not in node:
            raise PatchError(f"no member {tok!r}")
        return node[tok]
    if isinstance(node, list):
        return node[_index(node, tok, len(node) - 1)]
    raise PatchError(f"cannot descend into {type(node).__name__} at {tok!r}")


def _index(node: list[Any], tok: str, last: int) -> int:
    if not tok.isdigit() or int(tok) > last:
        raise PatchError(f"bad array index {tok!r}")
    return int(tok)


def _get(doc: Any, pointer: Any) -> Any:
    node = doc
    for tok in _tokens(pointer):
        node = _child(node, tok)
    return node


def _remove(doc: Any, pointer: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"no member {last!r} to remove")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, len(parent) - 1))
    raise PatchError("cannot remove from a scalar")


def _add(doc: Any, pointer: Any, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(parent, last, len(parent)), value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def apply_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, list):
        raise PatchError("a JSON Patch is a list of operations")
    out = copy.deepcopy(doc)
    for i, op in enumerate(patch):
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(f"operation {i} needs op and path")
        kind = op.get("op")
        try:
            if kind == "add":
                out = _add(out, op["path"], copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(out, op["path"])
            elif kind == "replace":
                _get(out, op["path"])
                tokens = _tokens(op["path"])
                if tokens:
                    _remove(out, op["path"])
                out = _add(out, op["path"], copy.deepcopy(op["value"]))
            elif kind == "move":
                out = _add(out, op["path"], _remove(out, op["from"]))
            elif kind == "copy":
                out = _add(out, op["path"], copy.deepcopy(_get(out, op["from"])))
            elif kind == "test":
                if _get(out, op["path"]) != op["value"]:
                    raise PatchError(f"test failed at {op['path']}")
            else:
                raise PatchError(f"unknown op {kind!r}")
        except KeyError as exc:
            raise PatchError(f"operation {i} ({kind}) lacks {exc.args[0]!r}") from exc
        except PatchError as exc:
            raise PatchError(f"operation {i} ({kind} {op.get('path')}): {exc}") from exc
    return out
