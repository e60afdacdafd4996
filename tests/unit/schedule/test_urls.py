"""Trigger URLs: the supported forms, their normalisation, matching, and the refusals."""

from __future__ import annotations

import pytest

from core.errors import InvalidParameterValue
from core.schedule.urls import StorageLocation, matches, parse_location

ACCOUNT_BLOB = "https://acct.blob.core.windows.net"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///data/in/", StorageLocation("local", None, None, "file:///data/in/", "/data/in/")),
        ("file:///data/in", StorageLocation("local", None, None, "file:///data/in/", "/data/in/")),
        (
            "file://localhost/data//./in/",
            StorageLocation("local", None, None, "file:///data/in/", "/data/in/"),
        ),
        ("file:///", StorageLocation("local", None, None, "file:///", "/")),
        ("file:///my%20data/", StorageLocation("local", None, None, "file:///my data/", "/my data/")),
        (
            "abfss://Landing@Acct.dfs.core.windows.net/raw/orders/",
            StorageLocation(
                "azure", "acct", "landing", "azure://acct/landing/raw/orders/", "raw/orders/", ACCOUNT_BLOB
            ),
        ),
        (
            "abfss://landing@acct.dfs.core.windows.net/",
            StorageLocation("azure", "acct", "landing", "azure://acct/landing/", "", ACCOUNT_BLOB),
        ),
        (
            "https://acct.blob.core.windows.net/landing/raw/orders",
            StorageLocation(
                "azure", "acct", "landing", "azure://acct/landing/raw/orders/", "raw/orders/", ACCOUNT_BLOB
            ),
        ),
        (
            "https://acct.dfs.core.windows.net/landing/raw/",
            StorageLocation("azure", "acct", "landing", "azure://acct/landing/raw/", "raw/", ACCOUNT_BLOB),
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/landing/raw/",
            StorageLocation(
                "azure",
                "devstoreaccount1",
                "landing",
                "azure://devstoreaccount1/landing/raw/",
                "raw/",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
        ),
        (
            "http://azurite:10000/devstoreaccount1/landing",
            StorageLocation(
                "azure",
                "devstoreaccount1",
                "landing",
                "azure://devstoreaccount1/landing/",
                "",
                "http://azurite:10000/devstoreaccount1",
            ),
        ),
    ],
)
def test_parse_location(url: str, expected: StorageLocation) -> None:
    assert parse_location(url) == expected


SUPPORTED = r"must use a supported storage URL: file:///<absolute folder>/ \(local\), abfss://"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket/path/", rf"^url {SUPPORTED}.*; got 's3://bucket/path/'\.$"),
        ("dbfs:/mnt/landing/", rf"^url {SUPPORTED}.*; got 'dbfs:/mnt/landing/'\.$"),
        ("gs://bucket/path/", rf"^url {SUPPORTED}"),
        ("wasbs://c@acct.blob.core.windows.net/p/", rf"^url {SUPPORTED}"),
        ("/data/in/", rf"^url {SUPPORTED}"),
        ("data/in/", rf"^url {SUPPORTED}"),
        ("https://example.com/container/path/", rf"^url {SUPPORTED}"),
        ("http://acct.blob.core.windows.net/c/p/", rf"^url {SUPPORTED}"),
        ("", r"^url must be a non-empty URL: file:///"),
        (42, r"^url must be a non-empty URL: .*; got 42\.$"),
        ("file://otherhost/data/", r"^url must be a file:/// URL of an absolute folder on this host"),
        ("file:data/in", r"^url must be a file:/// URL of an absolute folder on this host"),
        (
            "abfss://acct.dfs.core.windows.net/p/",
            r"^url must be abfss://<container>@<account>\.dfs\.core\.windows\.net",
        ),
        ("abfss://c@acct.blob.core.windows.net/p/", r"^url must be abfss://<container>@<account>"),
        ("https://acct.blob.core.windows.net/", r"^url must name an Azure storage account and container"),
        ("file:///data/../etc/", r"^url must not contain '\.\.' segments; got 'file:///data/\.\./etc/'\.$"),
    ],
)
def test_parse_location_refuses(url: object, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        parse_location(url)


def test_the_field_is_named() -> None:
    with pytest.raises(InvalidParameterValue, match=r"^settings\.trigger\.file_arrival\.url must use"):
        parse_location("s3://b/p/", field="settings.trigger.file_arrival.url")


@pytest.mark.parametrize(
    ("location", "candidate", "relative"),
    [
        ("file:///data/in/", "/data/in/a.csv", "a.csv"),
        ("file:///data/in/", "file:///data/in/sub/a.csv", "sub/a.csv"),
        ("file:///data/in", "/data/inbox/a.csv", None),  # a folder: `in/` never matches `inbox/`
        ("file:///data/in/", "/data/in/", None),  # the folder itself is not a file
        ("file:///data/in/", "/data/other/a.csv", None),
        ("file:///data/in/", "/data/in/../x.csv", None),
        (
            "abfss://landing@acct.dfs.core.windows.net/raw/",
            "https://acct.blob.core.windows.net/landing/raw/a.json",
            "a.json",
        ),
        (
            "abfss://landing@acct.dfs.core.windows.net/raw/",
            "https://acct.dfs.core.windows.net/landing/raw/a.json",
            "a.json",
        ),
        (
            "https://acct.blob.core.windows.net/landing/raw/",
            "https://ACCT.blob.core.windows.net/Landing/raw/a%20b.json",
            "a b.json",
        ),
        (
            "https://acct.blob.core.windows.net/landing/raw/",
            "https://acct.blob.core.windows.net/landing/Raw/a.json",
            None,
        ),
        (
            "https://acct.blob.core.windows.net/landing/raw/",
            "https://other.blob.core.windows.net/landing/raw/a.json",
            None,
        ),
        (
            "https://acct.blob.core.windows.net/landing/raw/",
            "https://acct.blob.core.windows.net/archive/raw/a.json",
            None,
        ),
        (
            "https://acct.blob.core.windows.net/landing/",
            "https://acct.blob.core.windows.net/landing/x/y/z.parquet",
            "x/y/z.parquet",
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/landing/raw/",
            "http://127.0.0.1:10000/devstoreaccount1/landing/raw/a",
            "a",
        ),
        ("file:///data/in/", "https://acct.blob.core.windows.net/data/in/a.csv", None),
        ("file:///data/in/", "not a url", None),
        ("file:///data/in/", "s3://bucket/data/in/a.csv", None),
    ],
)
def test_matches(location: str, candidate: str, relative: str | None) -> None:
    loc = parse_location(location)
    assert loc.relative(candidate) == relative
    assert matches(loc, candidate) is (relative is not None)
