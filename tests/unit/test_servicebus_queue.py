"""The Service Bus adapter's pure parts: its URL, the choice of credential, replayed ids.

Everything that talks to Service Bus is in the contract suite (set TEST_SERVICEBUS_URL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chassis.queue.servicebus import (
    CONNECTION_STRING_ENV,
    CONNECTION_STRING_FILE_ENV,
    REPLAY_OF_PROPERTY,
    ServiceBusTarget,
    application_properties,
    connection_string_from_env,
    logical_message_id,
)

CONNECTION_STRING = (
    "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
)


def test_the_url_names_the_namespace_and_the_queue() -> None:
    target = ServiceBusTarget.parse("servicebus://drones.servicebus.windows.net/deliveryrequests")
    assert target == ServiceBusTarget("drones.servicebus.windows.net", "deliveryrequests")


def test_a_trailing_slash_is_accepted() -> None:
    assert ServiceBusTarget.parse("servicebus://ns.servicebus.windows.net/q/").queue == "q"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://ns.servicebus.windows.net/q",  # another scheme
        "servicebus://ns.servicebus.windows.net",  # no queue
        "servicebus://ns.servicebus.windows.net/",  # empty queue
        "servicebus:///q",  # no namespace
        "servicebus://ns.servicebus.windows.net/topic/subscriptions/s",  # not a queue
    ],
)
def test_a_url_without_exactly_a_namespace_and_a_queue_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="servicebus://"):
        ServiceBusTarget.parse(url)


def test_without_a_connection_string_entra_id_is_used() -> None:
    assert connection_string_from_env({}) is None
    assert connection_string_from_env({CONNECTION_STRING_ENV: "  "}) is None


def test_a_connection_string_in_the_environment_is_used() -> None:
    env = {CONNECTION_STRING_ENV: f" {CONNECTION_STRING}\n"}
    assert connection_string_from_env(env) == CONNECTION_STRING


def test_a_connection_string_in_a_mounted_file_is_used(tmp_path: Path) -> None:
    secret = tmp_path / "servicebus-connection-string"
    secret.write_text(CONNECTION_STRING + "\n")  # mounted secrets often end with a newline
    env = {CONNECTION_STRING_FILE_ENV: str(secret)}
    assert connection_string_from_env(env) == CONNECTION_STRING


def test_a_missing_or_empty_file_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unreadable"):
        connection_string_from_env({CONNECTION_STRING_FILE_ENV: str(tmp_path / "absent")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        connection_string_from_env({CONNECTION_STRING_FILE_ENV: str(empty)})


def test_both_a_connection_string_and_a_file_is_ambiguous(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(CONNECTION_STRING)
    env = {CONNECTION_STRING_ENV: CONNECTION_STRING, CONNECTION_STRING_FILE_ENV: str(secret)}
    with pytest.raises(ValueError, match="not both"):
        connection_string_from_env(env)


def test_a_replayed_message_keeps_the_id_the_application_knows() -> None:
    assert logical_message_id("broker-id", {}) == "broker-id"
    assert logical_message_id("new-broker-id", {REPLAY_OF_PROPERTY: "original"}) == "original"
    assert logical_message_id(None, {}) == ""


def test_broker_and_replay_properties_are_not_application_properties() -> None:
    properties = {
        "operation": "delivery",
        REPLAY_OF_PROPERTY: "original",
        "DeadLetterReason": "MaxDeliveryCountExceeded",
        "DeadLetterErrorDescription": "Message could not be consumed after 3 delivery attempts.",
    }
    assert application_properties(properties) == {"operation": "delivery"}
