"""The core's cattrs converter: provider JSON into attrs records, cursors to and from JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from tidings._errors import ConfigurationError, ParseError

if TYPE_CHECKING:
    from tidings._models import Event

__all__ = ["converter", "parse_time", "rename_fields", "require", "structure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)
_EPOCH = re.compile(r"-?\d+(\.\d+)?")
_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


def parse_time(value: Any) -> datetime:
    """A timezone-aware UTC datetime from ISO-8601 text (``Z`` allowed) or epoch seconds (number or text).

    :raises ValueError: when the value is neither, or is out of the range of a datetime
        (``1e21`` epoch seconds, NaN).
    """
    try:
        if value.__class__ is str:
            try:
                dt = _fromisoformat(value)  # Python 3.11 reads "Z" and fractions of any length
            except ValueError:
                text = value.strip()
                if _EPOCH.fullmatch(text):
                    return datetime.fromtimestamp(float(text), tz=timezone.utc)  # epoch seconds sent as text
                if text.endswith("z"):
                    text = text[:-1] + "Z"
                dt = datetime.fromisoformat(text)
            if dt.tzinfo is _UTC:
                return dt
        elif isinstance(value, datetime):
            dt = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        else:
            raise ValueError(f"not a time: {value!r}")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc)
    except (OverflowError, OSError) as exc:  # epoch seconds out of range: the platform's own errors
        raise ValueError(f"not a time in range: {str(value)[:40]!r} ({exc})") from None


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with a ``Z``: the form providers expect in query strings."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def user_time(text: str) -> datetime:
    """Parse a time the user typed (``--after``), with a clear error."""
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigurationError(
            f"cannot read the time {text!r}: give ISO-8601 such as 2024-01-31T12:00:00Z, or epoch seconds"
        ) from None


converter.register_structure_hook(datetime, lambda v, _: parse_time(v))
converter.register_unstructure_hook(datetime, format_time)


def rename_fields(cls: type, renames: Mapping[str, str], conv: cattrs.Converter = converter) -> None:
    """Register hooks so ``cls`` reads and writes JSON keys that are not identifiers.

    :param renames: attribute name -> JSON key (``{"created_at": "created-at"}``).
    """
    overrides = {attr: override(rename=key) for attr, key in renames.items()}
    conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **overrides))  # type: ignore[arg-type]
    conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, **overrides))  # type: ignore[arg-type]


def structure(data: Any, cls: type[T], *, provider: str | None = None, record_id: str | None = None) -> T:
    """Structure ``data`` into ``cls``; failures become one :class:`ParseError` of ``path: message`` lines."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises ClassValidationError/ValueError/TypeError/KeyError
        if isinstance(exc, cattrs.BaseValidationError):
            lines = cattrs.transform_error(exc, path=cls.__name__)
            message = "; ".join(lines)
        else:
            message = f"{cls.__name__}: {exc!r}"
        raise ParseError(message, provider=provider, record_id=record_id) from exc


def structure_record(event: Event) -> Any:
    if event.record_type is None:
        return event.raw
    return structure(event.raw, event.record_type, provider=event.provider, record_id=event.id)


def require(record: Any, fields: Iterable[str], *, provider: str, id_field: str | None = None) -> None:
    """Check cheaply that ``record`` is an object holding ``fields``.

    :raises ParseError: naming the first missing field and the record's id.
    """
    if record.__class__ is not dict and not isinstance(record, Mapping):
        raise ParseError(f"expected a JSON object, got {type(record).__name__}", provider=provider)
    for name in fields:
        if name not in record or record[name] is None:
            rid = record.get(id_field) if id_field else None
            raise ParseError(
                f"missing required field {name!r}",
                provider=provider,
                record_id=str(rid) if rid is not None else None,
            )
