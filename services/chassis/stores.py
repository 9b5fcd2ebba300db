"""Opening a service's document collections at start-up, and handing them to routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request

from chassis.documents import Collection, DocumentStore, connect_document_store
from chassis.documents.metered import MeteredStore


def open_collections(
    url: str, *collections: Collection
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Resources for create_service_app: each collection on app.state.stores[name]."""

    @asynccontextmanager
    async def resources(app: FastAPI) -> AsyncIterator[None]:
        app.state.stores = {}
        try:
            for c in collections:
                # The adapter waits for its server itself (chassis/startup.py), bounded.
                store = await connect_document_store(url, c)
                app.state.stores[c.name] = MeteredStore(store, c.name)
            yield
        finally:
            for store in app.state.stores.values():
                await store.close()

    return resources


def collection_dependency(
    collection: Collection,
) -> Callable[[Request], Awaitable[DocumentStore]]:
    # async, though it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop on every request.
    async def get_store(request: Request) -> DocumentStore:
        store: DocumentStore = request.app.state.stores[collection.name]
        return store

    return get_store
