"""Specs from dicts and JSON strings: the protobuf JSON mapping, with the spellings people write, and errors that
name the field.

    to_message({"cosine_annealing": {"T_max": 20, "eta_min": 0.001}}, schedule_pb2.Schedule, "schedule")

On top of json_format, walking the message's descriptor (so every kind and field of the proto is covered, with no
list to keep in step):
- a plain number where a repeated number is expected is a one-element list (`"max_lr": 0.1` means one value for
  every group, as PyTorch and optax write it);
- a key matches a field by its proto name (`t_max`), its JSON name (`tMax`), or ignoring case and underscores, so
  PyTorch's, optax's and Keras' spellings (`T_max`, `T_0`, `T_mult`, `eta_min`) name our snake_case fields;
- an unknown key, a second member of a oneof, or a value of the wrong type raises SpecError naming the field path
  (`schedule.cosine_annealing.tmax`), the rule, the valid names in snake_case and, for a near miss, "did you mean".

Every mistake in a spec raises SpecError, which is an HpschedError (code INVALID_ARGUMENT, as the server would answer)
and a ValueError.
"""
from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import grpc
from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format
from google.protobuf.message import Message

from hpsched.errors import HpschedError

__all__ = ["SpecError", "to_message", "check_keys", "unknown_name"]


class SpecError(HpschedError, ValueError):
    """An invalid spec, found before anything was sent: `path` is the field path, `rule` what is wrong with it.

    code is INVALID_ARGUMENT, like the server's answer to an invalid spec; str() is "INVALID_ARGUMENT: path: rule".
    """

    def __init__(self, path: str, rule: str):
        self.path = path
        self.rule = rule
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, f"{path}: {rule}" if path else rule)


def _folded(name: str) -> str:
    return name.replace("_", "").lower()


def unknown_name(name: Any, valid: Iterable[str], what: str = "field") -> str:
    """The rule for an unknown key: "unknown field 'tmax'; did you mean t_max? (valid: t_max, eta_min)"."""
    valid = list(valid)
    folded = {_folded(v): v for v in valid}
    close = difflib.get_close_matches(_folded(str(name)), list(folded), n=1, cutoff=0.6)
    hint = f"; did you mean {folded[close[0]]}?" if close else ""
    return f"unknown {what} {str(name)!r}{hint} (valid: {', '.join(valid) or 'none'})"


def check_keys(spec: Mapping[str, Any], valid: Iterable[str], path: str, what: str = "key") -> None:
    """SpecError for the first key of `spec` that is not in `valid`."""
    valid = list(valid)
    for key in spec:
        if key not in valid:
            raise SpecError(_join(path, str(key)), unknown_name(key, valid, what))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_map(field: _descriptor.FieldDescriptor) -> bool:
    return (field.type == field.TYPE_MESSAGE and field.message_type.has_options
            and field.message_type.GetOptions().map_entry)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Fields:
    """A message's fields by every accepted spelling; folded spellings shared by two fields match neither."""

    def __init__(self, message: _descriptor.Descriptor):
        self.message = message
        self.by_name = dict(message.fields_by_name)
        self.by_json = {f.json_name: f for f in message.fields}
        folded: dict[str, Optional[_descriptor.FieldDescriptor]] = {}
        for f in message.fields:
            key = _folded(f.name)
            folded[key] = None if key in folded and folded[key] is not f else f
        self.by_folded = folded

    def find(self, key: str) -> Optional[_descriptor.FieldDescriptor]:
        return self.by_name.get(key) or self.by_json.get(key) or self.by_folded.get(_folded(key))

    def what(self) -> str:
        """"schedule kind" for a message that is one oneof (Schedule: every field is a kind), else "field"."""
        oneofs = self.message.oneofs
        if len(oneofs) == 1 and len(oneofs[0].fields) == len(self.message.fields):
            return "schedule kind" if oneofs[0].name == "kind" else oneofs[0].name
        return "field"


_FIELDS: dict[str, _Fields] = {}


def _fields(message: _descriptor.Descriptor) -> _Fields:
    found = _FIELDS.get(message.full_name)
    if found is None:
        found = _FIELDS[message.full_name] = _Fields(message)
    return found


def _normalize(spec: Mapping[Any, Any], message: _descriptor.Descriptor, path: str) -> dict[str, Any]:
    """`spec` with proto field names as keys and plain numbers as lists where a repeated number is expected."""
    fields = _fields(message)
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    oneof_member: dict[str, str] = {}
    for key, value in spec.items():
        if not isinstance(key, str):
            raise SpecError(path, f"keys must be strings, got {key!r}")
        field = fields.find(key)
        if field is None:
            raise SpecError(_join(path, key), unknown_name(key, [f.name for f in message.fields], fields.what()))
        where = _join(path, field.name)
        if field.name in given_as:
            raise SpecError(where, f"given twice, as {given_as[field.name]!r} and {key!r}")
        given_as[field.name] = key
        oneof = field.containing_oneof
        if oneof is not None and value is not None:
            if oneof.name in oneof_member:
                kind = "one kind" if fields.what() == "schedule kind" else f"one of {oneof.name}"
                raise SpecError(path or message.name, f"{kind} only, got {oneof_member[oneof.name]} and {field.name}")
            oneof_member[oneof.name] = field.name
        out[field.name] = _normalize_value(field, value, where)
    return out


def _normalize_value(field: _descriptor.FieldDescriptor, value: Any, path: str) -> Any:
    if value is None or _is_map(field):
        return value
    is_message = field.type == field.TYPE_MESSAGE
    if field.label == field.LABEL_REPEATED:
        if not is_message:
            if not isinstance(value, (list, tuple)):
                value = [value]  # a plain value for a list: one value for every group
            for i, item in enumerate(value):
                _check_scalar(field, item, f"{path}[{i}]")
            return list(value)
        if isinstance(value, Mapping) or not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
            raise SpecError(path, f"expected a list of {field.message_type.name}, got {type(value).__name__}")
        return [_normalize_message(item, field.message_type, f"{path}[{i}]") for i, item in enumerate(value)]
    if is_message:
        return _normalize_message(value, field.message_type, path)
    _check_scalar(field, value, path)
    return value


_INTEGERS = {_descriptor.FieldDescriptor.TYPE_INT64, _descriptor.FieldDescriptor.TYPE_INT32,
             _descriptor.FieldDescriptor.TYPE_UINT64, _descriptor.FieldDescriptor.TYPE_UINT32,
             _descriptor.FieldDescriptor.TYPE_SINT64, _descriptor.FieldDescriptor.TYPE_SINT32,
             _descriptor.FieldDescriptor.TYPE_FIXED64, _descriptor.FieldDescriptor.TYPE_FIXED32,
             _descriptor.FieldDescriptor.TYPE_SFIXED64, _descriptor.FieldDescriptor.TYPE_SFIXED32}
_FLOATS = {_descriptor.FieldDescriptor.TYPE_DOUBLE, _descriptor.FieldDescriptor.TYPE_FLOAT}


def _check_scalar(field: _descriptor.FieldDescriptor, value: Any, path: str) -> None:
    """SpecError when `value` cannot be the scalar `field` (json_format's own message would not name the path).
    Strings are left to json_format where the JSON mapping allows them (numbers as strings, "Infinity")."""
    if field.type in _FLOATS:
        ok, expected = _is_number(value) or isinstance(value, str), "a number"
    elif field.type in _INTEGERS:
        ok = (_is_number(value) and float(value).is_integer()) or isinstance(value, str)
        expected = "an integer"
    elif field.type == field.TYPE_BOOL:
        ok, expected = isinstance(value, bool), "true or false"
    elif field.type == field.TYPE_STRING:
        ok, expected = isinstance(value, str), "a string"
    else:
        return
    if ok and isinstance(value, str) and field.type in _INTEGERS | _FLOATS:
        try:
            float(value)
        except ValueError:
            ok = value in ("NaN", "Infinity", "-Infinity") and field.type in _FLOATS
    if not ok:
        raise SpecError(path, f"expected {expected}, got {type(value).__name__} {value!r}")


def _normalize_message(value: Any, message: _descriptor.Descriptor, path: str) -> Any:
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != message.full_name:
            raise SpecError(path, f"expected a {message.name}, got a {value.DESCRIPTOR.name}")
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if message.full_name.startswith("google.protobuf."):
        return value  # well-known types have their own JSON forms (Timestamp: a string)
    if isinstance(value, (str, bytes)):  # a nested JSON string, e.g. a schedule read from a file
        try:
            value = json.loads(value)
        except ValueError as e:
            raise SpecError(path, f"not valid JSON: {e}") from None
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected a {message.name} (a dict), got {type(value).__name__} {value!r}")
    return _normalize(value, message, path)


def to_message(value: Any, message_type: type, path: str) -> Message:
    """A new message of `message_type` from a message of that type, a dict in the protobuf JSON mapping (with the
    forms above), or a JSON string of one. SpecError, naming the field path under `path`, for anything invalid."""
    if isinstance(value, message_type):
        out = message_type()
        out.CopyFrom(value)
        return out
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise SpecError(path, f"not valid JSON: {e}") from None
    if not isinstance(value, Mapping):
        raise SpecError(path, f"expected a {message_type.__name__} (a message, a dict or a JSON string), got "
                              f"{type(value).__name__}")
    normalized = _normalize(value, message_type.DESCRIPTOR, path)
    try:
        return json_format.ParseDict(normalized, message_type())
    except json_format.ParseError as e:
        raise SpecError(path, _parse_error(str(e))) from None


def _parse_error(message: str) -> str:
    """json_format's message, without its camelCase message paths (the field names in it are the proto's)."""
    return message.split(" at \"", 1)[0] if " at \"" in message else message
