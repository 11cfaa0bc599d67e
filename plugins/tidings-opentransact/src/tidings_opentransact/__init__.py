"""tidings-opentransact: follow the OpenTransact Activities feed with tidings.

The provider is found through the ``tidings`` entry point ``opentransact``;
this package re-exports its records, errors and emulator for applications and tests.
"""

from __future__ import annotations

from tidings_opentransact.errors import (
    OpenTransactAuthenticationError,
    OpenTransactError,
    OpenTransactForbidden,
    OpenTransactInvalidParameter,
    OpenTransactNotFound,
)
from tidings_opentransact.models import (
    Activity,
    ActivityAttributes,
    ActivityCursor,
    ActivityList,
    ActivityRelationships,
    ErrorDocument,
    ErrorObject,
    PageLinks,
    PageMeta,
    Relationship,
    ResourceIdentifier,
)

__version__ = "0.1.0"

__all__ = [
    "Activity",
    "ActivityAttributes",
    "ActivityCursor",
    "ActivityList",
    "ActivityRelationships",
    "ErrorDocument",
    "ErrorObject",
    "OpenTransactAuthenticationError",
    "OpenTransactEmulator",
    "OpenTransactError",
    "OpenTransactForbidden",
    "OpenTransactInvalidParameter",
    "OpenTransactNotFound",
    "PageLinks",
    "PageMeta",
    "Relationship",
    "ResourceIdentifier",
    "__version__",
]


def __getattr__(name: str) -> object:
    if name == "OpenTransactEmulator":  # needs tidings[sandbox]: imported on first use
        from tidings_opentransact.emulator import OpenTransactEmulator

        return OpenTransactEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
