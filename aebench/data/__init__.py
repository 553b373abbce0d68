"""Prepared identities: reading (:class:`Identity`), preparation from real clips, synthetic corpus."""

from aebench.data.identity import LABELS, Identity, IdentityError, list_identities

__all__ = ["Identity", "IdentityError", "LABELS", "list_identities"]
