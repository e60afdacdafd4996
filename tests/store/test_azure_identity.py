"""The Azure adapter signing in with Microsoft Entra ID: keyless connection strings, the settings that build
them, and real requests to an Azurite that takes bearer tokens (`azurite_oauth`, HTTPS, `--oauth basic`).

Azurite checks a token's issuer, audience and lifetime but not its signature, so `UnsignedTokens` is a real
TokenCredential that issues unsigned JWTs. Part of the conformance suite runs again on this connection.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from core.errors import InvalidParameterValue
from core.runtime.host import storage_from
from core.settings import Settings
from core.store import BatchOp, Entity, Storage, StoreError, open_storage
from core.store.azure._common import account_name
from core.store.azure._connect import default_credential, is_keyless, service_url
from tests.conformance import test_blobs as blobs_suite
from tests.conformance import test_queues as queues_suite
from tests.conformance import test_tables as tables_suite
from tests.fixtures.azurite import ACCOUNT, ACCOUNT_KEY, REPO, OAuthAzurite

TENANT = "72f988bf-0000-4000-8000-000000000001"
KEYED = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=example.net"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class UnsignedTokens:
    """A TokenCredential issuing unsigned JWTs for Azure Storage, valid `lifetime` seconds from now (a
    negative lifetime issues tokens that have already expired). Remembers the scopes it was asked for."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []
        self.issued: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{TENANT}/",
            "tid": TENANT,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + self.lifetime,
        }
        header = {"alg": "RS256", "typ": "JWT"}
        token = (
            ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims)) + "." + _b64url(b"x")
        )
        self.issued.append(token)
        return AccessToken(token, now + self.lifetime)


class NoTokens:
    """A TokenCredential that cannot get a token, as DefaultAzureCredential off Azure without `az login`."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("secret-detail https://login.example/tenant: no credential worked")


def _open(azurite: OAuthAzurite, credential: Any, **options: Any) -> Storage:
    return open_storage(
        "azure",
        connection_string=azurite.keyless,
        prefix=f"i{secrets.token_hex(4)}",
        options={**azurite.options, **options},
        credential=credential,
    )


# ------------------------------------------------------------------------------- keyless connection strings


@pytest.mark.parametrize(
    ("connection_string", "keyless"),
    [
        ("BlobEndpoint=https://a.blob.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net", True),
        ("AccountName=acct;EndpointSuffix=core.windows.net", True),
        ("DefaultEndpointsProtocol=https;AccountName=acct", True),
        ("", True),
        (KEYED, False),
        ("BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=abc", False),
        ("UseDevelopmentStorage=true", False),
        ("usedevelopmentstorage=TRUE", False),
    ],
)
def test_a_connection_string_without_key_or_sas_is_keyless(connection_string: str, keyless: bool) -> None:
    assert is_keyless(connection_string) is keyless


@pytest.mark.parametrize(
    ("connection_string", "service", "url"),
    [
        ("AccountName=acct", "blob", "https://acct.blob.core.windows.net"),
        (
            "AccountName=acct;EndpointSuffix=core.usgovcloudapi.net",
            "queue",
            "https://acct.queue.core.usgovcloudapi.net",
        ),
        ("DefaultEndpointsProtocol=HTTPS;AccountName=acct", "table", "https://acct.table.core.windows.net"),
        ("TableEndpoint=https://x.example/acct/;AccountName=acct", "table", "https://x.example/acct"),
        (
            "TableEndpoint=https://x.example/acct;AccountName=acct",
            "blob",
            "https://acct.blob.core.windows.net",
        ),
        (" blobendpoint = https://127.0.0.1:10000/dev ", "blob", "https://127.0.0.1:10000/dev"),
    ],
)
def test_service_url_of_a_keyless_connection_string(connection_string: str, service: str, url: str) -> None:
    assert service_url(connection_string, service) == url


@pytest.mark.parametrize(
    ("connection_string", "message"),
    [
        ("", r"Entra ID, which needs the account's endpoints: it names no TableEndpoint and no AccountName"),
        ("BlobEndpoint=https://a.blob.core.windows.net", r"it names no TableEndpoint and no AccountName"),
        (
            "TableEndpoint=http://a.table.core.windows.net",
            r"tokens go over HTTPS only: its TableEndpoint is not",
        ),
        (
            "DefaultEndpointsProtocol=http;AccountName=a",
            r"HTTPS only: its DefaultEndpointsProtocol is not https",
        ),
    ],
)
def test_a_keyless_connection_string_must_name_https_endpoints(connection_string: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as failure:
        service_url(connection_string, "table")
    assert "a.table" not in str(failure.value) and "core.windows" not in str(failure.value)


def test_opening_a_keyless_connection_string_without_endpoints_fails_before_any_request() -> None:
    with pytest.raises(StoreError, match=r"no AccountKey or SharedAccessSignature, so Floe signs in with"):
        open_storage("azure", connection_string="BlobEndpoint=https://a.blob.core.windows.net")


@pytest.mark.parametrize(
    ("connection_string", "account"),
    [
        (
            "BlobEndpoint=https://prod.blob.core.windows.net/;QueueEndpoint=https://prod.queue.core.windows.net",
            "prod",
        ),
        ("QueueEndpoint=https://127.0.0.1:10001/devstoreaccount1", "devstoreaccount1"),
        ("TableEndpoint=https://localhost:10002/devstoreaccount1/", "devstoreaccount1"),
        ("AccountName=named;BlobEndpoint=https://other.blob.core.windows.net", "named"),
        ("EndpointSuffix=core.windows.net", "unknown"),
    ],
)
def test_account_name_of_a_keyless_connection_string(connection_string: str, account: str) -> None:
    assert account_name(connection_string) == account


def test_default_credential_is_one_per_process_and_client_id() -> None:
    system = default_credential()
    assert default_credential("") is system
    assert default_credential("11111111-2222-3333-4444-555555555555") is default_credential(
        "11111111-2222-3333-4444-555555555555"
    )
    assert default_credential("11111111-2222-3333-4444-555555555555") is not system
    assert type(system).__name__ == "DefaultAzureCredential"


def test_azure_identity_is_imported_only_for_a_keyless_connection_string() -> None:
    code = (
        "import sys\n"
        "from core.store import open_storage\n"
        f"open_storage('azure', connection_string={KEYED!r}).close()\n"
        "print('azure.identity' in sys.modules)\n"
        "open_storage('azure', connection_string='AccountName=acct').close()\n"
        "print('azure.identity' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


# ----------------------------------------------------------------------------------------------- settings


def test_settings_take_a_keyless_connection_and_the_identity_to_sign_in_as() -> None:
    settings = Settings.from_env(
        {
            "FLOE_STORAGE": "azure",
            "FLOE_AZURE_CONNECTION_STRING": "AccountName=prodstate",
            "FLOE_AZURE_CLIENT_ID": "0000aaaa-11bb-22cc-33dd-444444eeeeee",
        }
    )
    conn = settings.azure_connection_string
    assert is_keyless(conn)
    assert service_url(conn, "queue") == "https://prodstate.queue.core.windows.net"
    assert settings.azure_client_id == "0000aaaa-11bb-22cc-33dd-444444eeeeee"
    assert "azure_client_id='0000aaaa-11bb-22cc-33dd-444444eeeeee'" in repr(settings)
    assert "prodstate" not in repr(settings)  # the connection string stays masked, keyless or not


def test_azure_storage_without_any_connection_names_every_way_to_give_one() -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=r"FLOE_AZURE_CONNECTION_STRING or AzureWebJobsStorage: with a key, or without one "
        r"\(AccountName=<account>, or the account's BlobEndpoint, QueueEndpoint and TableEndpoint\)",
    ):
        Settings.from_env({"FLOE_STORAGE": "azure"})


# ------------------------------------------------------------------------------------------ on Azurite


@pytest.fixture
def tokens() -> UnsignedTokens:
    return UnsignedTokens()


@pytest.fixture
def storage(azurite_oauth: OAuthAzurite, tokens: UnsignedTokens) -> Iterator[Storage]:
    """Overrides the conformance suite's fixture: a store signed in with bearer tokens."""
    store = _open(azurite_oauth, tokens)
    try:
        yield store
    finally:
        store.close()


@pytest.mark.azurite
def test_tables_through_a_keyless_connection(storage: Storage, tokens: UnsignedTokens) -> None:
    table = storage.tables.table("things")
    stored = table.insert(Entity("p", "r1", {"state": "PENDING", "id": 2**53 - 1}))
    assert table.get("p", "r1") == stored
    written = table.batch(
        [
            BatchOp.insert(Entity("p", "r2", {"n": 1})),
            BatchOp.replace(Entity("p", "r1", {"n": 2}, stored.etag)),
        ]
    )
    assert [e.row_key for e in written if e] == ["r2", "r1"]
    assert [e.properties for e in table.query("p").entities] == [{"n": 2}, {"n": 1}]
    assert tokens.scopes and all(
        scopes == ("https://storage.azure.com/.default",) for scopes in tokens.scopes
    )


@pytest.mark.azurite
def test_queues_through_a_keyless_connection(storage: Storage) -> None:
    queue = storage.queues.queue("work")
    queue.send("later", delay_seconds=3)
    queue.send("now")
    [message] = queue.receive(max_messages=32)
    assert message.body == "now"
    queue.delete(message)
    [message] = queue.receive(wait_seconds=8)
    assert message.body == "later"
    queue.delete(message)
    assert queue.approximate_count() == 0


@pytest.mark.azurite
def test_blobs_through_a_keyless_connection(storage: Storage) -> None:
    etag = storage.blobs.put("runs/1/output.json", b'{"ok": true}')
    blob = storage.blobs.get("runs/1/output.json")
    assert blob is not None and (blob.data, blob.etag) == (b'{"ok": true}', etag)


@pytest.mark.azurite
def test_a_connection_string_with_the_key_still_signs_with_the_key(azurite_oauth: OAuthAzurite) -> None:
    tokens = UnsignedTokens()
    store = open_storage(
        "azure", connection_string=azurite_oauth.keyed, options=azurite_oauth.options, credential=tokens
    )
    try:
        store.blobs.put("keyed", b"x")
        assert store.blobs.get("keyed") is not None
        assert tokens.scopes == []  # the credential is for keyless strings only
    finally:
        store.close()


@pytest.mark.azurite
def test_an_expired_token_is_a_clear_store_error(azurite_oauth: OAuthAzurite) -> None:
    expired = UnsignedTokens(lifetime=-600)
    store = _open(azurite_oauth, expired, retry_total=0)
    try:
        for attempt in (
            lambda: store.tables.table("things"),
            lambda: store.queues.queue("work"),
            lambda: store.blobs.get("x"),
        ):
            with pytest.raises(
                StoreError,
                match=r"failed: HTTP 403 AuthenticationFailed \(Azure Storage did "
                r"not accept the credential: a wrong key, or an expired or foreign token\)",
            ) as failure:
                attempt()
            text = str(failure.value)
            assert expired.issued and not any(token in text for token in expired.issued)
            assert "127.0.0.1" not in text and "https://" not in text and "Bearer" not in text
    finally:
        store.close()


@pytest.mark.azurite
def test_a_credential_without_a_token_says_how_to_sign_in(azurite_oauth: OAuthAzurite) -> None:
    store = _open(azurite_oauth, NoTokens(), retry_total=0)
    try:
        with pytest.raises(
            StoreError,
            match=r"creating table .* failed: ClientAuthenticationError, no Microsoft "
            r"Entra token: on Azure, check the app's managed identity .* `az login`",
        ) as failure:
            store.tables.table("things")
        assert "secret-detail" not in str(failure.value) and "login.example" not in str(failure.value)
    finally:
        store.close()


@pytest.mark.azurite
def test_reprs_show_the_account_never_a_token(storage: Storage, tokens: UnsignedTokens) -> None:
    storage.tables.table("things").insert(Entity("p", "r"))
    storage.queues.queue("work").send("m")
    storage.blobs.put("b", b"x")
    text = " ".join(
        repr(x)
        for x in (storage, storage.tables.table("things"), storage.queues.queue("work"), storage.blobs)
    )
    assert text.count(f"account={ACCOUNT!r}") >= 4
    assert tokens.issued and not any(token in text or token[:20] in text for token in tokens.issued)


@pytest.fixture
def asked(azurite_oauth: OAuthAzurite, tokens: UnsignedTokens, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The client ids Floe asks DefaultAzureCredential for, answered with `tokens`; the certificate is
    trusted through REQUESTS_CA_BUNDLE, as hosts pass no SDK options."""
    asked: list[str] = []

    def credential_for(client_id: str = "") -> UnsignedTokens:
        asked.append(client_id)
        return tokens

    monkeypatch.setattr("core.store.azure.default_credential", credential_for)
    monkeypatch.setattr("core.store.azure._connect.default_credential", credential_for)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azurite_oauth.certificate))
    return asked


@pytest.mark.azurite
def test_the_host_signs_in_as_the_configured_client_id(azurite_oauth: OAuthAzurite, asked: list[str]) -> None:
    """Settings -> storage_from -> DefaultAzureCredential(client id)."""
    settings = Settings(
        storage="azure",
        azure_connection_string=azurite_oauth.keyless,
        azure_client_id="0000aaaa-11bb-22cc-33dd-444444eeeeee",
        storage_prefix=f"h{secrets.token_hex(4)}",
    )
    store = storage_from(settings)
    try:
        assert asked == ["0000aaaa-11bb-22cc-33dd-444444eeeeee"]
        table = store.tables.table("jobs")
        table.insert(Entity("p", "r", {"v": 1}))
        assert table.get("p", "r") is not None
    finally:
        store.close()


@pytest.mark.azurite
def test_file_arrival_folders_are_listed_through_a_keyless_connection(
    azurite_oauth: OAuthAzurite, tokens: UnsignedTokens, asked: list[str]
) -> None:
    from core.schedule import listing
    from core.schedule.urls import parse_location

    listing._container_client.cache_clear()
    store = _open(azurite_oauth, tokens)
    try:
        store.blobs.put("landing/a.csv", b"a,b\n")
        blob_endpoint = azurite_oauth.keyless.split("BlobEndpoint=")[1].split(";")[0]
        container = store.blobs._container.container_name  # type: ignore[attr-defined]
        location = parse_location(f"{blob_endpoint}/{container}/landing/")
        found = listing.list_location(
            location, azure_connection_string=azurite_oauth.keyless, azure_client_id="the-client"
        )
    finally:
        store.close()
        listing._container_client.cache_clear()
    assert [(path, size) for path, size, _ in found] == [("a.csv", 4)]
    assert asked == ["the-client"]


# A representative part of the conformance suite, again on the keyless connection (its fixtures take the
# `storage` above). The class carries the mark so that the suite's own functions stay unmarked.
table = tables_suite.table
queue = queues_suite.queue
blobs = blobs_suite.blobs


@pytest.mark.azurite
class TestConformanceSignedInWithEntraID:
    test_insert_existing_raises_entity_exists = staticmethod(
        tables_suite.test_insert_existing_raises_entity_exists
    )
    test_replace_with_stale_etag = staticmethod(
        tables_suite.test_replace_with_stale_etag_raises_etag_mismatch
    )
    test_delete_missing_with_etag = staticmethod(
        tables_suite.test_delete_missing_with_etag_raises_entity_not_found
    )
    test_query_pages = staticmethod(tables_suite.test_query_pages_with_limit_and_continuation)
    test_batch_every_kind = staticmethod(tables_suite.test_batch_applies_every_kind_and_returns_new_etags)
    test_batch_is_all_or_nothing = staticmethod(tables_suite.test_batch_is_all_or_nothing)
    test_send_receive_delete = staticmethod(queues_suite.test_send_receive_delete)
    test_delay_hides_a_message = staticmethod(queues_suite.test_delay_seconds_hides_a_new_message)
    test_extend = staticmethod(queues_suite.test_extend_returns_a_new_receipt_and_invalidates_the_old)
    test_delete_twice = staticmethod(queues_suite.test_delete_twice_raises_receipt_expired)
    test_put_then_get = staticmethod(blobs_suite.test_put_then_get)
    test_ranged_get = staticmethod(blobs_suite.test_ranged_get)
    test_conditional_put = staticmethod(blobs_suite.test_conditional_put)
    test_append = staticmethod(blobs_suite.test_append_creates_then_appends_in_order)
    test_list_by_prefix = staticmethod(blobs_suite.test_list_by_prefix_in_path_order)
