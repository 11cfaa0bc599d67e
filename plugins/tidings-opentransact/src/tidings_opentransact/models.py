"""attrs records for everything the OpenTransact Activities API returns, and the cursor.

JSON keys with hyphens (``created-at``, ``current-page``) are mapped with
:func:`tidings.rename_fields`; unknown keys are tolerated (the whole record stays
in ``Event.raw``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from tidings import converter, rename_fields

__all__ = [
    "Activity",
    "ActivityAttributes",
    "ActivityCursor",
    "ActivityList",
    "ActivityRelationships",
    "ErrorDocument",
    "ErrorObject",
    "PageLinks",
    "PageMeta",
    "Relationship",
    "ResourceIdentifier",
]


@attrs.frozen(slots=True)
class ResourceIdentifier:
    """A JSON:API resource identifier: ``{"type": "profiles", "id": "..."}``."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}/{self.id}"


@attrs.frozen(slots=True)
class Relationship:
    """A JSON:API relationship: ``{"data": {type, id}}`` (``data`` may be null)."""

    data: ResourceIdentifier | None = None


@attrs.frozen(slots=True)
class ActivityAttributes:
    """What happened: the action and the subject before, after, and the difference.

    ``created_at`` is optional here because the seed's list example omits it; an
    activity without it cannot be positioned, so ``parse_event`` refuses it.
    """

    action: str
    previous: dict[str, Any] = attrs.field(factory=dict)
    current: dict[str, Any] = attrs.field(factory=dict)
    diff: dict[str, Any] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(slots=True)
class ActivityRelationships:
    profile: Relationship | None = None
    author: Relationship | None = None
    application: Relationship | None = None
    subject: Relationship | None = None


@attrs.frozen(slots=True)
class Activity:
    """One activity (``type: "activities"``): a change to one object of the system."""

    id: str
    attributes: ActivityAttributes
    type: str = "activities"
    relationships: ActivityRelationships = attrs.field(factory=ActivityRelationships)

    @property
    def subject(self) -> ResourceIdentifier | None:
        rel = self.relationships.subject
        return rel.data if rel is not None else None


@attrs.frozen(slots=True)
class PageMeta:
    """``meta`` of a list page: ``{current-page, page-count, count}``."""

    current_page: int | None = None
    page_count: int | None = None
    count: int | None = None


@attrs.frozen(slots=True)
class PageLinks:
    """``links`` of a list page (each present where applicable). Never followed: see the docs page."""

    self_: str | None = None
    first: str | None = None
    next: str | None = None
    prev: str | None = None
    last: str | None = None


@attrs.frozen(slots=True)
class ActivityList:
    """A page of ``GET /activities``: ``{data: [...], meta, links}``."""

    data: list[Activity]
    meta: PageMeta | None = None
    links: PageLinks | None = None


@attrs.frozen(slots=True)
class ErrorObject:
    """One JSON:API error: ``{status, title, detail, code}`` (``source`` where given)."""

    status: str | None = None
    title: str | None = None
    detail: str | None = None
    code: str | None = None
    source: dict[str, Any] | None = None


@attrs.frozen(slots=True)
class ErrorDocument:
    """An error response: ``{"errors": [...]}``."""

    errors: list[ErrorObject]


@attrs.frozen(slots=True)
class ActivityCursor:
    """Where the feed is.

    :ivar newest: the greatest ``created-at`` delivered: the saved position.
    :ivar start: the ``filter[created-between][start]`` of the poll in progress; it stays
        fixed while the poll pages through every page (None: from the beginning).
    :ivar page: the ``page[number]`` to fetch next within that poll (from 1).
    :ivar count: ``meta.count`` on the poll's first page; a greater count on its last page
        means activities were created meanwhile, and a new poll starts at once.
    """

    newest: datetime | None = None
    start: datetime | None = None
    page: int = 1
    count: int | None = None


def _text(value: Any) -> str | None:
    """``status`` and ``code`` arrive as strings or numbers: keep them as text."""
    return None if value is None else str(value)


def _structure_error(data: Any, _: type) -> ErrorObject:
    if not isinstance(data, dict):
        raise TypeError(f"an error object must be a JSON object, got {type(data).__name__}")
    source = data.get("source")
    return ErrorObject(
        status=_text(data.get("status")),
        title=_text(data.get("title")),
        detail=_text(data.get("detail")),
        code=_text(data.get("code")),
        source=source if isinstance(source, dict) else None,
    )


rename_fields(ActivityAttributes, {"created_at": "created-at", "updated_at": "updated-at"})
rename_fields(PageMeta, {"current_page": "current-page", "page_count": "page-count"})
rename_fields(PageLinks, {"self_": "self"})
converter.register_structure_hook(ErrorObject, _structure_error)
