"""Knowledge (dataset) API methods of `DifyClient`, using the dataset key."""

from __future__ import annotations

from typing import Any


class KnowledgeMixin:
    """Knowledge API (dataset key). Extended by the knowledge-base work."""

    async def list_documents(
        self, dataset_id: str, *, page: int = 1, limit: int = 20, keyword: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "limit": limit}
        if keyword:
            params["keyword"] = keyword
        return await self._json(  # type: ignore[attr-defined]
            "GET", f"datasets/{dataset_id}/documents", key="dataset", params=params, retry=True
        )
