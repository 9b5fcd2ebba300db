"""Documents in Azure Cosmos DB (NoSQL API): a container per collection.

URL: cosmos://ACCOUNT_HOST[:port]/DATABASE[?verify=false][&tls=false]
  cosmos://myacct.documents.azure.com/package        Azure, https on 443
  cosmos://localhost:8081/package?verify=false       the emulator's self-signed certificate
  cosmos://localhost:8081/package?tls=false          the Linux (vNext) emulator over http

Credential: the account key from COSMOS_KEY, or from the file COSMOS_KEY_FILE names (a Key
Vault CSI mount); otherwise Entra ID through DefaultAzureCredential (AKS workload identity).
With Entra ID, Cosmos refuses to create databases and containers from the data plane, so
there the infrastructure creates them and `connect` only checks that they exist.

Partition keys, and why:
  package          /id  Every read and write is by package id: point reads (1 RU) and
                        writes in one logical partition each, spread evenly over all of them.
  dronescheduler   /id  Drones and assignments alike are read and written by id; the few
                        lookups by another field are rare queries that may fan out.
  delivery         on Redis in production (hot, short-lived state); /id if it runs here.
A field becomes the partition key only when most reads filter on it; `find` on any other
field is a cross-partition query, which is right for rare lookups and wrong for hot ones.

Every path is indexed (the Cosmos default), so `Collection.indexed` needs nothing here.
A body's own "id" must equal the document id; it is not returned in the body, like
Cosmos' system fields.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from azure.identity.aio import DefaultAzureCredential

from chassis import jsoncodec
from chassis.documents import (
    JSON,
    NAME,
    Collection,
    ConcurrencyConflict,
    Document,
    DocumentExists,
    DocumentNotFound,
)
from chassis.startup import connect_retrying

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 30.0
SYSTEM_FIELDS = frozenset({"id", "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn"})
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503})


@dataclass(frozen=True)
class CosmosAccount:
    endpoint: str
    database: str
    verify: bool = True


def _flag(query: dict[str, list[str]], name: str) -> bool:
    value = query.get(name, ["true"])[-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


def parse_cosmos_url(url: str) -> CosmosAccount:
    parts = urlsplit(url)
    if parts.scheme != "cosmos" or not parts.hostname:
        raise ValueError(f"not a cosmos://ACCOUNT_HOST/DATABASE URL: {url!r}")
    if "@" in parts.netloc:
        raise ValueError("put the Cosmos key in COSMOS_KEY or COSMOS_KEY_FILE, not in the URL")
    database = parts.path.strip("/")
    if not database or "/" in database:
        raise ValueError(f"name exactly one database in the path of {url!r}")
    query = parse_qs(parts.query)
    unknown = set(query) - {"verify", "tls"}
    if unknown:
        raise ValueError(f"unknown Cosmos URL options {sorted(unknown)} in {url!r}")
    scheme = "https" if _flag(query, "tls") else "http"
    return CosmosAccount(f"{scheme}://{parts.netloc}/", database, verify=_flag(query, "verify"))


def account_key(environ: Mapping[str, str]) -> str | None:
    """The account key if one is configured; None means authenticate with Entra ID."""
    if environ.get("COSMOS_KEY"):
        return environ["COSMOS_KEY"]
    path = environ.get("COSMOS_KEY_FILE")
    if not path:
        return None
    key = Path(path).read_text().strip()
    if not key:
        raise ValueError(f"COSMOS_KEY_FILE {path} is empty")
    return key


def cosmos_credential(environ: Mapping[str, str]) -> str | AsyncTokenCredential:
    key = account_key(environ)
    return key if key is not None else DefaultAzureCredential()


def document_from_item(item: Mapping[str, Any]) -> Document:
    body = {k: v for k, v in item.items() if k not in SYSTEM_FIELDS}
    return Document(item["id"], body, item["_etag"])


def item_from_document(id: str, body: JSON) -> JSON:
    if "id" in body and body["id"] != id:
        raise ValueError(f"body id {body['id']!r} differs from document id {id!r}")
    jsoncodec.dumps(body)  # refuses what every store refuses (an integer beyond 64 bits)
    return {**body, "id": id}


def _not_ready(error: BaseException) -> bool:
    if isinstance(error, CosmosHttpResponseError):
        return error.status_code in _TRANSIENT_STATUS
    return isinstance(error, ServiceRequestError | ServiceResponseError | OSError | TimeoutError)


class CosmosDocumentStore:
    def __init__(
        self,
        client: CosmosClient,
        credential: str | AsyncTokenCredential,
        database: DatabaseProxy,
        container: ContainerProxy,
        collection: Collection,
    ) -> None:
        self._client = client
        self._credential = credential
        self._database = database
        self._container = container
        self._partition_key = collection.partition_key

    @classmethod
    async def connect(cls, url: str, collection: Collection) -> CosmosDocumentStore:
        account = parse_cosmos_url(url)
        credential = cosmos_credential(os.environ)

        try:
            async for attempt in connect_retrying(
                f"Cosmos DB at {account.endpoint}",
                retry_on=_not_ready,
                within=CONNECT_TIMEOUT_SECONDS,
            ):
                with attempt:
                    client = CosmosClient(
                        account.endpoint, credential, connection_verify=account.verify
                    )
                    try:
                        # Entering reads the account (regions, consistency): network I/O.
                        await client.__aenter__()
                        database, container = await _open_container(client, account, collection)
                    except BaseException:
                        await client.close()
                        raise
        except BaseException:
            if not isinstance(credential, str):
                await credential.close()
            raise
        return cls(client, credential, database, container, collection)

    def _key_of(self, id: str, body: JSON) -> Any:
        return id if self._partition_key == "id" else body.get(self._partition_key)

    async def _read(self, id: str) -> JSON | None:
        if self._partition_key == "id":
            try:
                return await self._container.read_item(item=id, partition_key=id)
            except CosmosResourceNotFoundError:
                return None
        # Partitioned by another field: the id alone cannot address the document.
        query = "SELECT * FROM c WHERE c.id = @id"
        items = self._container.query_items(query, parameters=[{"name": "@id", "value": id}])
        async for item in items:
            return item
        return None

    async def get(self, id: str) -> Document | None:
        item = await self._read(id)
        return None if item is None else document_from_item(item)

    async def create(self, id: str, body: JSON) -> Document:
        try:
            item = await self._container.create_item(body=item_from_document(id, body))
        except CosmosResourceExistsError as e:
            raise DocumentExists(id) from e
        return document_from_item(item)

    async def create_many(self, items: Sequence[tuple[str, JSON]]) -> list[Document | None]:
        # The partition key is the id here, and a transactional batch is one partition's:
        # the creates go concurrently instead (each one request unit bill, as alone).
        for id, body in items:  # what cannot be stored refuses the batch before any write
            item_from_document(id, body)

        async def one(id: str, body: JSON) -> Document | None:
            try:
                return await self.create(id, body)
            except DocumentExists:
                return None

        return list(await asyncio.gather(*(one(id, body) for id, body in items)))

    async def replace(self, id: str, body: JSON, *, etag: str) -> Document:
        try:
            item = await self._container.replace_item(
                item=id,
                body=item_from_document(id, body),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except CosmosResourceNotFoundError as e:
            raise DocumentNotFound(id) from e
        except CosmosAccessConditionFailedError as e:
            raise ConcurrencyConflict(id) from e
        return document_from_item(item)

    async def upsert(self, id: str, body: JSON) -> Document:
        item = await self._container.upsert_item(body=item_from_document(id, body))
        return document_from_item(item)

    async def delete(self, id: str, *, etag: str | None = None) -> bool:
        if self._partition_key == "id":
            key: Any = id
        else:
            item = await self._read(id)
            if item is None:
                return False
            key = self._key_of(id, item)
        condition = None if etag is None else MatchConditions.IfNotModified
        try:
            await self._container.delete_item(
                item=id, partition_key=key, etag=etag, match_condition=condition
            )
        except CosmosResourceNotFoundError:
            return False
        except CosmosAccessConditionFailedError as e:
            raise ConcurrencyConflict(id) from e
        return True

    async def find(self, **where: str | int | bool) -> list[Document]:
        clauses: list[str] = []
        parameters: list[dict[str, object]] = []
        for n, (f, value) in enumerate(where.items()):
            if not NAME.match(f):
                raise ValueError(f"not a valid field name: {f!r}")
            # Bracket notation: a field named like a keyword (value, order) stays a field.
            clauses.append(f'c["{f}"] = @p{n}')
            parameters.append({"name": f"@p{n}", "value": value})
        query = "SELECT * FROM c"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        if self._partition_key in where:
            items = self._container.query_items(
                query, parameters=parameters, partition_key=where[self._partition_key]
            )
        else:
            items = self._container.query_items(query, parameters=parameters)
        return [document_from_item(item) async for item in items]

    async def versions(self) -> dict[str, str]:
        items = self._container.query_items("SELECT c.id, c._etag FROM c")
        return {item["id"]: item["_etag"] async for item in items}

    async def ping(self) -> None:
        await self._container.read()

    async def drop(self) -> None:
        await self._database.delete_container(self._container.id)

    async def close(self) -> None:
        await self._client.close()
        if not isinstance(self._credential, str):
            await self._credential.close()


async def _open_container(
    client: CosmosClient, account: CosmosAccount, collection: Collection
) -> tuple[DatabaseProxy, ContainerProxy]:
    database = client.get_database_client(account.database)
    container = database.get_container_client(collection.name)
    try:
        await container.read()
        return database, container
    except CosmosResourceNotFoundError:
        pass
    try:
        database = await client.create_database_if_not_exists(id=account.database)
        container = await database.create_container_if_not_exists(
            id=collection.name, partition_key=PartitionKey(path=f"/{collection.partition_key}")
        )
    except CosmosHttpResponseError as e:
        if e.status_code == 403:
            raise PermissionError(
                f"container {collection.name!r} does not exist in {account.database!r} and this "
                "identity may not create it (Entra ID data-plane roles cannot): create it with "
                "the infrastructure, or connect with the account key"
            ) from e
        raise
    return database, container
