"""One JSON form for typed results that reads back exactly: arrays keep dtype and shape, numpy
scalars their type, registered dataclasses their class.

:func:`encode` turns a value into plain JSON data and raises ``TypeError`` on anything it cannot
represent (nothing is silently dropped); :func:`decode` reverses it. :func:`same` compares two
values the way a round trip must preserve them (types, dtypes, shapes, NaN equal to NaN).

Only classes registered with :func:`serialisable` are rebuilt, by name; nothing is imported or
unpickled from the data, so a workspace file can name no other code.

>>> from dataclasses import dataclass
>>> @serialisable
... @dataclass(frozen=True)
... class Point:
...     xy: np.ndarray
>>> p = Point(np.array([1.5, float("nan")], dtype=np.float32))
>>> same(decode(json.loads(json.dumps(encode(p)))), p)
True
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, TypeVar

import numpy as np

__all__ = ["decode", "dumps", "encode", "loads", "same", "serialisable"]

_ARRAY, _SCALAR, _CLASS, _TUPLE = "__ndarray__", "__npscalar__", "__dataclass__", "__tuple__"
_TAGS = {_ARRAY, _SCALAR, _CLASS, _TUPLE}
_CLASSES: dict[str, type] = {}

T = TypeVar("T", bound=type)


def serialisable(cls: T) -> T:
    """Register a dataclass so that :func:`decode` can rebuild it (by its class name)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    have = _CLASSES.get(cls.__name__)
    if have is not None and have.__qualname__ != cls.__qualname__:
        raise TypeError(f"two serialisable classes named {cls.__name__}")
    _CLASSES[cls.__name__] = cls
    return cls


def encode(value: Any, where: str = "value") -> Any:
    """``value`` as JSON data (dicts with str keys, lists, str, int, float, bool, None)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            items = value.ravel().tolist()
            bad = [type(v).__name__ for v in items if not isinstance(v, (str, type(None)))]
            if bad:
                raise TypeError(
                    f"{where}: object array holds {bad[0]}; only str or None are stored"
                )
        return {_ARRAY: value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return {_SCALAR: value.dtype.str, "value": value.item()}
    if isinstance(value, tuple):
        return {_TUPLE: [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is {type(k).__name__}; keys must be str")
            if k in _TAGS:
                raise TypeError(f"{where}: key {k!r} is reserved")
            out[k] = encode(v, f"{where}[{k!r}]")
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _CLASSES.get(name) is not type(value):
            raise TypeError(f"{where}: {name} is not registered with @serialisable")
        fields = {
            f.name: encode(getattr(value, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(value)
        }
        return {_CLASS: name, "fields": fields}
    raise TypeError(f"{where}: cannot store {type(value).__name__} as JSON")


def decode(data: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if _ARRAY in data:
        dtype = np.dtype(data[_ARRAY])
        flat = np.array(data["data"], dtype=dtype)
        return flat.reshape(data["shape"])
    if _SCALAR in data:
        return np.dtype(data[_SCALAR]).type(data["value"])
    if _TUPLE in data:
        return tuple(decode(v) for v in data[_TUPLE])
    if _CLASS in data:
        cls = _CLASSES.get(data[_CLASS])
        if cls is None:
            raise ValueError(f"unknown stored type {data[_CLASS]!r}")
        return cls(**{k: decode(v) for k, v in data["fields"].items()})
    return {k: decode(v) for k, v in data.items()}


def dumps(value: Any) -> str:
    return json.dumps(encode(value))


def loads(text: str) -> Any:
    return decode(json.loads(text))


def same(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` have the same types, dtypes, shapes and values (NaN == NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float | np.floating):
        return bool(a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)
