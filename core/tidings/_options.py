"""Typed provider options: ``--param`` / ``params=`` values structured into what a provider declared.

A provider declares its options once, as :class:`tidings.Param` records in
``ProviderInfo.params``. When a :class:`tidings.Watch` is built, :func:`structure_options`
turns the given values (text from the command line, or Python values) into a frozen attrs
object with one attribute per option (``subject-id`` becomes ``subject_id``; a ``family.KEY``
option a dict), with cattrs, and refuses in one message every unknown key (with a
suggestion), missing required option and bad value (``cattrs.transform_error`` lines).
Hooks read it as ``ctx.options``; it is built once per watch.

A provider that declares no options gets its values as given (``ctx.options`` is None).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import cattrs

from tidings._errors import ConfigurationError
from tidings._models import Param, ProviderInfo

__all__ = ["attribute_name", "describe", "options_class", "structure_options"]

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
_FAMILY = ".KEY"

# settings of the watch itself, not of a provider: a --param of that name is a misplaced option
_CORE_OPTIONS = frozenset({
    "base_url", "token", "after", "page_size", "interval", "max_interval", "until_idle", "checkpoint", "name",
    "webhook_listen", "webhook_secret", "webhook_url", "sandbox", "backend",
})

_converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)


def _bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, not {value!r}")


_converter.register_structure_hook(bool, _bool)


def attribute_name(param: Param) -> str:
    """The attribute of ``ctx.options`` holding ``param`` (``subject-id`` -> ``subject_id``)."""
    name = param.name[: -len(_FAMILY)] if param.name.endswith(_FAMILY) else param.name
    return re.sub(r"\W", "_", name)


def _below_minimum(options: Any, params: Sequence[Param]) -> list[str]:
    """A line for each value under its option's ``minimum``."""
    problems = []
    for p in params:
        if p.minimum is None:
            continue
        value = getattr(options, attribute_name(p))
        for v in value if p.repeatable else (value,):
            if v is not None and not v >= p.minimum:
                problems.append(f"{p.name}: must be at least {p.minimum:g}, not {v!r}")
    return problems


def _field(param: Param) -> Any:
    if param.name.endswith(_FAMILY):
        return attrs.field(type=dict[str, str], factory=dict)
    if param.repeatable:
        default = tuple(param.default) if param.default is not None else ()
        return attrs.field(type=tuple[param.type, ...], default=default)  # type: ignore[name-defined]
    if param.required:
        return attrs.field(type=param.type)
    return attrs.field(type=param.type, default=param.default)


@functools.cache
def _class_for(provider: str, params: tuple[Param, ...]) -> type:
    # required options first: attrs wants no mandatory field after one with a default
    ordered = sorted(params, key=lambda p: not (p.required and not p.repeatable and not p.name.endswith(_FAMILY)))
    fields = {attribute_name(p): _field(p) for p in ordered}
    cls = attrs.make_class(f"{_camel(provider)}Options", fields, frozen=True, slots=True)
    cls.__doc__ = f"The options of provider {provider!r}, as the watch was given them."
    return cls


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"\W|_", name) if part)


def options_class(info: ProviderInfo) -> type | None:
    """The attrs class ``ctx.options`` is an instance of, or None when the provider declares no options."""
    if not info.params:
        return None
    return _class_for(info.name, tuple(info.params))


def _texts(value: Any) -> list[Any]:
    """A repeatable option's values: repeated keys and comma-separated text, blanks dropped."""
    values = value if isinstance(value, (list, tuple)) else [value]
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            out.extend(part.strip() for part in v.split(",") if part.strip())
        else:
            out.append(v)
    return out


def _choose(param: Param, value: Any, problems: list[str]) -> Any:
    """Text matching a choice without case becomes that choice (``all`` -> ``ALL``); another is a problem."""
    if not param.choices:
        return value
    for choice in param.choices:
        if choice == value or (isinstance(choice, str) and isinstance(value, str) and choice.lower() == value.lower()):
            return choice
    problems.append(f"{param.name}: must be one of {', '.join(map(str, param.choices))}, not {value!r}")
    return param.choices[0]


def _gather(info: ProviderInfo, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values by attribute name, and a line for each unknown key."""
    by_name = {p.name: p for p in info.params}
    families = {p.name[: -len(_FAMILY) + 1]: p for p in info.params if p.name.endswith(_FAMILY)}  # "metadata."
    given: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in params.items():
        param = by_name.get(key)
        if value is None:
            continue  # params={"limit": None}: not given
        if param is not None:
            if param.repeatable:
                given[attribute_name(param)] = [_choose(param, v, problems) for v in _texts(value)]
            elif isinstance(value, (list, tuple)) and len(value) > 1:
                problems.append(f"{key}: given {len(value)} times; it takes one value")
            else:
                one = value[0] if isinstance(value, (list, tuple)) and value else value
                given[attribute_name(param)] = _choose(param, one, problems)
            continue
        family = next((p for prefix, p in families.items() if key.startswith(prefix)), None)
        if family is not None and key[len(family.name) - len(_FAMILY) + 1 :]:
            last = value[-1] if isinstance(value, (list, tuple)) and value else value
            given.setdefault(attribute_name(family), {})[key.split(".", 1)[1]] = last
            continue
        close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if key.replace("-", "_") in _CORE_OPTIONS:
            hint = f" (a setting of tidings itself: use --{key.replace('_', '-')})"
        problems.append(f"{key}: not an option of this provider{hint}")
    return given, problems


def structure_options(info: ProviderInfo, params: Mapping[str, Any]) -> Any:
    """``params`` as the provider's options object (None if it declares none).

    :raises ConfigurationError: one message listing every unknown key, missing required option
        and bad value, each as ``--param KEY: what is wrong``.
    """
    cls = options_class(info)
    if cls is None:
        return None
    given, problems = _gather(info, params)
    names = {attribute_name(p): p.name for p in info.params}
    try:
        options: Any = _converter.structure(given, cls)
        problems.extend(_below_minimum(options, info.params))
    except cattrs.BaseValidationError as exc:
        for line in cattrs.transform_error(exc, path=""):
            message, _, where = line.rpartition(" @ ")
            field = where.lstrip(".").split(".")[0].split("[")[0]
            if message == "required field missing":
                message = "required: add --param " + names.get(field, field) + "=VALUE"
            elif field in given:
                message = f"{message}, not {given[field]!r}"
            problems.append(f"{names.get(field, field)}: {message}")
        options = None
    if problems:
        known = ", ".join(p.name for p in info.params)
        raise ConfigurationError(
            f"bad --param values: {'; '.join(problems)} (options: {known})", provider=info.name
        )
    return options


def describe(param: Param) -> dict[str, Any]:
    """A JSON-able description of one option (``tidings providers --json``, the docs)."""
    kind = getattr(param.type, "__name__", None) or str(param.type)
    return {
        "name": param.name,
        "type": kind,
        "required": param.required,
        "repeatable": param.repeatable,
        "default": list(param.default) if isinstance(param.default, (tuple, frozenset)) else param.default,
        "choices": None if param.choices is None else list(param.choices),
        "minimum": param.minimum,
        "work": param.work,
        "help": param.help,
    }


def option_table(params: Sequence[Param]) -> str:
    """The options as a Markdown table (each provider's docs page holds this, checked by a test)."""
    rows = ["| option | type | default | meaning |", "| --- | --- | --- | --- |"]
    for p in params:
        d = describe(p)
        kind = d["type"] + (", repeatable" if p.repeatable else "") + (", required" if p.required else "")
        if p.choices:
            kind = " \\| ".join(f"`{c}`" for c in p.choices)
        if p.minimum is not None:
            kind += f", at least {p.minimum:g}"
        default = "" if p.default in (None, ()) else f"`{','.join(map(str, p.default)) if p.repeatable else p.default}`"
        work = " *Work*: a saved position resumes only with the same value." if p.work else ""
        rows.append(f"| `{p.name}` | {kind} | {default} | {p.help.replace('|', chr(92) + '|')}{work} |")
    return "\n".join(rows) + "\n"
