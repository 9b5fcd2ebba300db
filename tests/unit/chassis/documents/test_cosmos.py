"""The parts of the Cosmos DB adapter that need no server: URLs, credentials, item shapes.

Its behaviour against Cosmos itself is the document contract, run when TEST_COSMOS_URL is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import DefaultAzureCredential

from chassis.documents.cosmos import (
    CosmosAccount,
    account_key,
    cosmos_credential,
    document_from_item,
    item_from_document,
    parse_cosmos_url,
)


def test_an_azure_account_url_is_https_on_the_account_host() -> None:
    assert parse_cosmos_url("cosmos://myacct.documents.azure.com/package") == CosmosAccount(
        endpoint="https://myacct.documents.azure.com/", database="package", verify=True
    )


def test_the_emulator_url_keeps_its_port_and_may_skip_certificate_checks() -> None:
    assert parse_cosmos_url("cosmos://localhost:8081/package?verify=false") == CosmosAccount(
        endpoint="https://localhost:8081/", database="package", verify=False
    )


def test_tls_false_selects_plain_http_for_the_linux_emulator() -> None:
    account = parse_cosmos_url("cosmos://localhost:8081/dronescheduler?tls=false")
    assert account.endpoint == "http://localhost:8081/"
    assert account.database == "dronescheduler"


@pytest.mark.parametrize(
    "url",
    [
        "https://myacct.documents.azure.com/package",  # not the cosmos scheme
        "cosmos://myacct.documents.azure.com",  # no database
        "cosmos://myacct.documents.azure.com/a/b",  # more than a database
        "cosmos://key@myacct.documents.azure.com/package",  # a secret in the URL
        "cosmos://localhost:8081/package?verfy=false",  # a misspelt option is not ignored
        "cosmos://localhost:8081/package?verify=no",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_cosmos_url(url)


def test_the_key_comes_from_cosmos_key() -> None:
    assert account_key({"COSMOS_KEY": "k1"}) == "k1"


def test_the_key_comes_from_the_mounted_file_without_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "cosmos-key"
    secret.write_text("k2\n")
    assert account_key({"COSMOS_KEY_FILE": str(secret)}) == "k2"


def test_cosmos_key_wins_over_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "cosmos-key"
    secret.write_text("from-file")
    assert account_key({"COSMOS_KEY": "from-env", "COSMOS_KEY_FILE": str(secret)}) == "from-env"


def test_an_empty_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    secret = tmp_path / "cosmos-key"
    secret.write_text("\n")
    with pytest.raises(ValueError):
        account_key({"COSMOS_KEY_FILE": str(secret)})


def test_a_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        account_key({"COSMOS_KEY_FILE": str(tmp_path / "absent")})


def test_no_key_means_entra_id() -> None:
    assert account_key({}) is None
    assert account_key({"COSMOS_KEY": ""}) is None


async def test_the_credential_is_the_key_when_one_is_set() -> None:
    assert cosmos_credential({"COSMOS_KEY": "k1"}) == "k1"


async def test_the_credential_is_default_azure_credential_without_a_key() -> None:
    credential = cosmos_credential({})
    try:
        assert isinstance(credential, DefaultAzureCredential)
    finally:
        if not isinstance(credential, str):
            await credential.close()


def test_system_fields_are_stripped_from_the_body_and_the_etag_kept() -> None:
    item = {
        "id": "p1",
        "size": "small",
        "weight": 2.5,
        "_rid": "abc==",
        "_self": "dbs/x/colls/y/docs/z/",
        "_etag": '"0000-1"',
        "_attachments": "attachments/",
        "_ts": 1767225600,
    }
    assert document_from_item(item).body == {"size": "small", "weight": 2.5}
    assert document_from_item(item).id == "p1"
    assert document_from_item(item).etag == '"0000-1"'


def test_an_item_carries_the_document_id() -> None:
    assert item_from_document("p1", {"size": "small"}) == {"size": "small", "id": "p1"}
    assert item_from_document("p1", {"id": "p1"}) == {"id": "p1"}


def test_a_body_whose_id_differs_from_the_document_id_is_refused() -> None:
    with pytest.raises(ValueError):
        item_from_document("p1", {"id": "p2"})


def test_an_item_with_an_integer_beyond_64_bits_is_refused_as_by_every_store() -> None:
    # Cosmos DB would keep it as a double, rounded: refused by name instead.
    with pytest.raises(ValueError, match="not storable"):
        item_from_document("p1", {"n": 2**64})
