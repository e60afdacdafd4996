"""`list_location`: local folders (nesting, ignored names, symlinks, limits) and Azure on Azurite; every
listed path is the one `StorageLocation.relative` gives for that file's URL."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from core.errors import InvalidState
from core.schedule.listing import ignored, list_location
from core.schedule.urls import StorageLocation, parse_location

MTIME_NS = 1_700_000_000_123_456_789  # listed as 1_700_000_000_123 ms


def write(path: Path, data: bytes = b"x", *, mtime_ns: int = MTIME_NS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def local(folder: Path) -> StorageLocation:
    return parse_location(folder.as_uri() + "/")


# ------------------------------------------------------------------------------------------ ignore rules


@pytest.mark.parametrize(
    ("path", "skipped"),
    [
        ("a.csv", False),
        ("sub/deep/a.csv", False),
        ("_SUCCESS", False),
        ("part-0000.parquet", False),
        ("tmp/a.csv", False),
        (".hidden", True),
        (".git/config", True),
        ("sub/.staging/a.csv", True),
        ("~$report.xlsx", True),
        ("a.csv.tmp", True),
        ("a.csv.TMP", True),
        ("download.part", True),
        ("a.csv._COPYING_", True),
    ],
)
def test_ignored(path: str, skipped: bool) -> None:
    assert ignored(path) is skipped


# ------------------------------------------------------------------------------------------------- local


def test_nested_files_with_size_and_modified_ms(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.csv", b"12345")
    write(tmp_path / "in" / "sub" / "deep" / "b.json", b"{}", mtime_ns=2_000_000_999_999)
    (tmp_path / "in" / "empty").mkdir()
    write(tmp_path / "inbox" / "not-under-in.csv")
    assert list_location(local(tmp_path / "in")) == [
        ("a.csv", 5, 1_700_000_000_123),
        ("sub/deep/b.json", 2, 2_000_000),
    ]


def test_hidden_and_temporary_files_are_not_listed(tmp_path: Path) -> None:
    for name in [
        ".hidden",
        ".git/config",
        "sub/.staging/a.csv",
        "~$lock.docx",
        "a.tmp",
        "b.PART",
        "c._COPYING_",
    ]:
        write(tmp_path / name)
    write(tmp_path / "_SUCCESS")
    write(tmp_path / "sub" / "kept.csv")
    assert [path for path, _, _ in list_location(local(tmp_path))] == ["_SUCCESS", "sub/kept.csv"]


def test_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_location(local(tmp_path / "not" / "yet")) == []


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    write(tmp_path / "in")
    with pytest.raises(InvalidState, match=r"file://.*/in/ is a file; a file-arrival URL names a folder"):
        list_location(local(tmp_path / "in"))


def test_more_files_than_the_limit(tmp_path: Path) -> None:
    for name in ["a", "b", "sub/c"]:
        write(tmp_path / name)
    assert len(list_location(local(tmp_path), limit=3)) == 3
    with pytest.raises(
        InvalidState, match=r"file://.* has more than 2 files; .* at most 2 files per location"
    ):
        list_location(local(tmp_path), limit=2)


def test_ignored_files_do_not_count_toward_the_limit(tmp_path: Path) -> None:
    write(tmp_path / "a")
    write(tmp_path / "a.tmp")
    write(tmp_path / ".b")
    assert len(list_location(local(tmp_path), limit=1)) == 1


@pytest.mark.parametrize("name", ["a.csv", "with space.csv", "ünï cødé.txt", "sub dir/x+y=z&w.csv"])
def test_paths_equal_relative_of_the_file_url_and_of_the_absolute_path(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "in box"
    file = write(folder / name)
    location = local(folder)
    [(path, _, _)] = list_location(location)
    assert path == location.relative(file.as_uri()) == location.relative(str(file)) == name


def test_a_percent_sign_in_a_local_name(tmp_path: Path) -> None:
    file = write(tmp_path / "100%25.csv")
    location = local(tmp_path)
    [(path, _, _)] = list_location(location)
    assert path == location.relative(file.as_uri()) == location.relative(str(file)) == "100%25.csv"


def test_symlinks_to_files_are_followed_but_not_into_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    target = write(outside / "target.csv", b"123456789", mtime_ns=3_000_000_000)
    write(outside / "nested" / "far.csv")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "link.csv").symlink_to(target)
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "broken.csv").symlink_to(tmp_path / "missing.csv")
    assert list_location(local(folder)) == [("link.csv", 9, 3_000)]


def test_a_symlinked_location_is_listed(tmp_path: Path) -> None:
    write(tmp_path / "real" / "a.csv")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    location = local(tmp_path / "alias")
    assert [p for p, _, _ in list_location(location)] == ["a.csv"]
    assert location.relative(str(tmp_path / "alias" / "a.csv")) == "a.csv"


def test_local_listing_does_not_import_the_azure_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from core.schedule.listing import list_location\n"
        "from core.schedule.urls import parse_location\n"
        f"list_location(parse_location({(tmp_path.as_uri() + '/')!r}))\n"
        "assert not [m for m in sys.modules if m.startswith('azure')], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])


# ------------------------------------------------------------------------------------------------- azure

FAKE_KEY = "a2V5"  # base64 of "key"; never sent anywhere


def test_azure_without_a_connection_string() -> None:
    location = parse_location("abfss://landing@acct.dfs.core.windows.net/raw/")
    with pytest.raises(
        InvalidState,
        match=r"^https://acct.blob.core.windows.net/landing/raw/ cannot be listed: Floe has no Azure Storage "
        r"connection string; configure one for account 'acct'$",
    ):
        list_location(location)


def test_azure_account_other_than_the_connection_strings() -> None:
    location = parse_location("https://other.blob.core.windows.net/landing/raw/")
    conn = f"AccountName=acct;AccountKey={FAKE_KEY};EndpointSuffix=core.windows.net"
    with pytest.raises(
        InvalidState,
        match=r"^https://other.blob.core.windows.net/landing/raw/ cannot be listed: it is in storage account "
        r"'other', but Floe's connection string is for account 'acct'; Floe lists only the account its "
        r"connection string reaches$",
    ):
        list_location(location, azure_connection_string=conn)


def _blob_base(connection_string: str) -> str:
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    return fields["BlobEndpoint"]  # http://127.0.0.1:<port>/devstoreaccount1


@pytest.fixture
def container(azurite: str) -> Iterator[str]:
    from azure.storage.blob import ContainerClient

    from core.store.azure._common import API_VERSION

    name = f"landing{secrets.token_hex(4)}"
    client = ContainerClient.from_connection_string(azurite, name, api_version=API_VERSION)
    client.create_container()
    try:
        yield name
    finally:
        client.delete_container()
        client.close()


def _upload(connection_string: str, container: str, blobs: dict[str, bytes], **kwargs: object) -> None:
    from azure.storage.blob import ContainerClient

    from core.store.azure._common import API_VERSION

    with ContainerClient.from_connection_string(
        connection_string, container, api_version=API_VERSION
    ) as client:
        for name, data in blobs.items():
            client.upload_blob(name, data, **kwargs)


@pytest.mark.azurite
def test_azure_listing_on_azurite(azurite: str, container: str) -> None:
    _upload(
        azurite,
        container,
        {
            "raw/a.csv": b"12345",
            "raw/sub/deep/b.json": b"{}",
            "raw/with space/ünï.csv": b"u",
            "raw/sub/": b"",  # a folder marker
            "raw/.hidden": b"h",
            "raw/c.csv.tmp": b"t",
            "raw/_SUCCESS": b"",
            "rawer/not-under.csv": b"n",
            "other/x.csv": b"o",
        },
    )
    _upload(azurite, container, {"raw/hns-dir": b""}, metadata={"hdi_isfolder": "true"})
    base = _blob_base(azurite)
    location = parse_location(f"{base}/{container}/raw/")
    assert location.account == "devstoreaccount1"

    listing = list_location(location, azure_connection_string=azurite)

    assert [(path, size) for path, size, _ in listing] == [
        ("_SUCCESS", 0),
        ("a.csv", 5),
        ("sub/deep/b.json", 2),
        ("with space/ünï.csv", 1),
    ]
    for path, _, modified_ms in listing:
        assert location.relative(f"{base}/{container}/raw/{quote(path)}") == path
        assert modified_ms > 1_700_000_000_000
    whole = list_location(parse_location(f"{base}/{container}/"), azure_connection_string=azurite)
    assert [path for path, _, _ in whole] == [
        "other/x.csv",
        "raw/_SUCCESS",
        "raw/a.csv",
        "raw/sub/deep/b.json",
        "raw/with space/ünï.csv",
        "rawer/not-under.csv",
    ]


@pytest.mark.azurite
def test_azure_limit_and_missing_container(azurite: str, container: str) -> None:
    _upload(azurite, container, {"in/a": b"a", "in/b": b"b", "in/c": b"c"})
    base = _blob_base(azurite)
    location = parse_location(f"{base}/{container}/in/")
    assert len(list_location(location, azure_connection_string=azurite, limit=3)) == 3
    with pytest.raises(InvalidState, match=rf"^{base}/{container}/in/ has more than 2 files; "):
        list_location(location, azure_connection_string=azurite, limit=2)
    missing = parse_location(f"{base}/nosuch{secrets.token_hex(4)}/in/")
    assert list_location(missing, azure_connection_string=azurite) == []


@pytest.mark.azurite
def test_azure_client_is_built_once_per_connection_and_container(azurite: str, container: str) -> None:
    from core.schedule import listing

    location = parse_location(f"{_blob_base(azurite)}/{container}/in/")
    list_location(location, azure_connection_string=azurite)
    before = listing._container_client.cache_info()
    list_location(location, azure_connection_string=azurite)
    after = listing._container_client.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
