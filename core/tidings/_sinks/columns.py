"""The typed columns a provider plugin adds to the event table.

A plugin declares them as data, beside its hooks, in the module (or object) it registers::

    from tidings import Column

    TABLE_COLUMNS = (Column("amount", "decimal", "amount.value"), Column("currency", "text", "amount.currency"))

Every table a watch of that provider writes to gets these columns (added when missing), filled
from each event's raw record. A plugin without the attribute adds none.
"""

from __future__ import annotations

from tidings._errors import PluginError
from tidings._plugins import providers
from tidings._sinks.schema import Column

__all__ = ["provider_columns"]


def provider_columns(provider: str) -> tuple[Column, ...]:
    """The columns the plugin of ``provider`` declares (none for a provider not installed)."""
    entry = providers().get(provider)
    if entry is None:
        return ()
    declared = getattr(entry.plugin, "TABLE_COLUMNS", ())
    columns = tuple(declared)
    if not all(isinstance(c, Column) for c in columns):
        raise PluginError(f"TABLE_COLUMNS of {provider!r} must hold tidings.Column records", provider=provider)
    names = [c.name for c in columns]
    if len(names) != len(set(names)):
        raise PluginError(f"TABLE_COLUMNS of {provider!r} names a column twice", provider=provider)
    return columns
