"""Where a saved position came from: the provider, the base URL and the work it follows.

A position only means something against the server it was read from: an offset
or a queue event id of one server skips or repeats events on another. So the
store records, per watch, the :class:`Origin` it was saved against (next to the
streams ``start`` returned), and a resume checks it:

- another provider under the same watch name: refused (use a new name);
- another base URL: refused, unless the caller says so (``rebase=True``,
  ``--rebase``), which records the new URL and resumes from the saved position;
- other work (the options a provider marks with ``Param(work=True)``, such as
  the request ids a tracker follows): refused (use a new name).

A watch saved before origins were recorded takes the origin of its next run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from tidings._errors import ConfigurationError, safe_url
from tidings._models import ProviderInfo
from tidings._store import CheckpointStore

__all__ = ["Origin", "OriginMismatch", "bind"]


class OriginMismatch(ConfigurationError):
    """A saved position belongs to another provider, server or piece of work than this run's."""


def _same_url(a: str, b: str) -> bool:
    ua, ub = httpx.URL(a), httpx.URL(b)
    return (ua.scheme, ua.host, ua.port, ua.path.rstrip("/")) == (ub.scheme, ub.host, ub.port, ub.path.rstrip("/"))


@attrs.frozen
class Origin:
    """The provider, base URL (secrets removed) and digest of the work-defining options of a watch."""

    provider: str
    base_url: str
    work: str

    @classmethod
    def of(cls, info: ProviderInfo, base_url: str, params: Mapping[str, Any]) -> Origin:
        work = [p.name for p in info.params if p.work]
        exact = set(work)
        families = tuple(n[: -len("KEY")] for n in work if n.endswith(".KEY"))  # metadata.KEY: every metadata.x
        chosen = {k: v for k, v in params.items() if k in exact or (families and k.startswith(families))}
        text = json.dumps(chosen, sort_keys=True, default=str)
        return cls(info.name, safe_url(base_url), hashlib.sha256(text.encode()).hexdigest()[:16])

    def to_json(self) -> dict[str, str]:
        return {"provider": self.provider, "base_url": self.base_url, "work": self.work}


async def bind(
    store: CheckpointStore, watch: str, saved: dict[str, Any] | None, origin: Origin, *, rebase: bool = False
) -> None:
    """Check a watch's saved streams against this run's origin; record it where none (or, rebased, another) was.

    :raises OriginMismatch: the saved position belongs elsewhere (the message names both and the way out).
    """
    if saved is not None and _differs(watch, saved, origin, rebase):
        await store.save_streams(watch, {**saved, "origin": origin.to_json()})


def _differs(watch: str, saved: dict[str, Any], origin: Origin, rebase: bool) -> bool:
    recorded = saved.get("origin")
    if not isinstance(recorded, Mapping):
        return True  # saved before origins were kept: adopt this run's
    provider = recorded.get("provider")
    if provider != origin.provider:
        raise OriginMismatch(
            f"watch {watch!r} holds a position of provider {provider!r}, not {origin.provider!r}: "
            "use another --name (name=)",
            provider=origin.provider,
        )
    if recorded.get("work") != origin.work:
        raise OriginMismatch(
            f"watch {watch!r} was saved for other work (its options that say what is followed differ): "
            "use another --name (name=) for this work",
            provider=origin.provider,
        )
    old = str(recorded.get("base_url"))
    if not _same_url(old, origin.base_url):
        if rebase:
            return True
        raise OriginMismatch(
            f"watch {watch!r} was saved against {old}, not {origin.base_url}: resume it there, "
            "pass --rebase (rebase=True) to carry the position over, or use another --name (name=)",
            provider=origin.provider,
        )
    return False
