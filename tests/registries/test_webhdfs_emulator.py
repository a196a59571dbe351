"""Wire fidelity of the WebHDFS emulator: raw HTTP as Hadoop answers it (§4), and the ``hdfs`` client."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest
import requests
from hdfs import HdfsError, InsecureClient

from emulators.webhdfs import WebHdfsEmulator
from emulators.webhdfs.checksum import crc32c


@pytest.fixture
def nn(webhdfs: WebHdfsEmulator) -> str:
    return f"{webhdfs.url}/webhdfs/v1"


def _remote(res: requests.Response, status: int, exception: str) -> dict:
    assert res.status_code == status, res.text
    assert res.headers["Content-Type"] == "application/json"
    body = res.json()["RemoteException"]
    assert body["exception"] == exception and body["javaClassName"].endswith(exception.split("$")[-1])
    return body


def _create(nn: str, path: str, data, user: str = "dr.who", **params) -> requests.Response:
    step1 = requests.put(f"{nn}{path}", params={"op": "CREATE", "user.name": user, **params},
                         allow_redirects=False, timeout=5)
    assert step1.status_code == 307 and step1.content == b""
    return requests.put(step1.headers["Location"], data=data, timeout=5)


def test_two_step_create_with_307_and_201(webhdfs, nn):
    step1 = requests.put(f"{nn}/a/b.bin?op=CREATE&user.name=alice&permission=600", allow_redirects=False, timeout=5)
    assert step1.status_code == 307
    location = step1.headers["Location"]
    assert location.startswith(f"http://127.0.0.1:{webhdfs.datanode_port}/webhdfs/v1/a/b.bin?")
    assert "namenoderpcaddress=" in location and "user.name=alice" in location
    step2 = requests.put(location, data=b"hello", timeout=5)
    assert step2.status_code == 201 and step2.headers["Location"] == "hdfs://localhost:8020/a/b.bin"
    assert (webhdfs.namespace.root / "a" / "b.bin").read_bytes() == b"hello"
    status = requests.get(f"{nn}/a/b.bin?op=GETFILESTATUS", timeout=5).json()["FileStatus"]
    assert status | {"accessTime": 0, "modificationTime": 0, "fileId": 0} == {
        "accessTime": 0, "blockSize": 134217728, "childrenNum": 0, "fileId": 0, "group": "supergroup",
        "length": 5, "modificationTime": 0, "owner": "alice", "pathSuffix": "", "permission": "600",
        "replication": 3, "storagePolicy": 0, "type": "FILE"}


def test_noredirect_and_datanode_needs_namenode_address(webhdfs, nn):
    res = requests.put(f"{nn}/x?op=CREATE&noredirect=true", timeout=5)
    assert res.status_code == 200 and res.json()["Location"].startswith("http://127.0.0.1:")
    direct = f"http://127.0.0.1:{webhdfs.datanode_port}/webhdfs/v1/x?op=CREATE"
    assert _remote(requests.put(direct, data=b"x", timeout=5), 400,
                   "IllegalArgumentException")["message"] == "java.net.UnknownHostException: null"


def test_existence_is_checked_on_the_datanode(nn):
    assert _create(nn, "/f", b"one").status_code == 201
    _remote(_create(nn, "/f", b"two", user="mallory", overwrite="true"), 403, "AccessControlException")
    body = _remote(_create(nn, "/f", b"two"), 403, "FileAlreadyExistsException")
    assert body["message"] == "/f for client 127.0.0.1 already exists"
    assert _create(nn, "/f", b"three", overwrite="TRUE").status_code == 201  # booleans: case-insensitive
    assert requests.get(f"{nn}/f?op=OPEN", timeout=5).content == b"three"
    requests.put(f"{nn}/d?op=MKDIRS", timeout=5)
    _remote(_create(nn, "/d", b"x", overwrite="true"), 403, "FileAlreadyExistsException")
    _remote(_create(nn, "/f/child", b"x"), 403, "ParentNotDirectoryException")


def test_chunked_body_append_and_ranged_open(nn):
    assert _create(nn, "/c", (part for part in (b"abc", b"def", b"ghi"))).status_code == 201  # chunked
    step1 = requests.post(f"{nn}/c?op=APPEND", allow_redirects=False, timeout=5)
    assert step1.status_code == 307
    assert requests.post(step1.headers["Location"], data=b"JKL", timeout=5).status_code == 200
    assert requests.get(f"{nn}/c?op=OPEN", timeout=5).content == b"abcdefghiJKL"
    ranged = requests.get(f"{nn}/c?op=OPEN&offset=3&length=4", timeout=5)
    assert ranged.status_code == 200 and ranged.content == b"defg"
    assert ranged.history[0].status_code == 307
    assert ranged.headers["Content-Type"] == "application/octet-stream"


def test_errors_use_hadoop_names_and_status_codes(nn):
    assert _remote(requests.get(f"{nn}/nope?op=GETFILESTATUS", timeout=5), 404,
                   "FileNotFoundException")["message"] == "File does not exist: /nope"
    assert _remote(requests.get(f"{nn}/nope?op=LISTSTATUS", timeout=5), 404,
                   "FileNotFoundException")["message"] == "File /nope does not exist."
    assert _remote(requests.get(f"{nn}/nope?op=OPEN", allow_redirects=False, timeout=5), 404,
                   "FileNotFoundException")["message"] == "File /nope not found."
    bad_perm = _remote(requests.put(f"{nn}/p?op=MKDIRS&permission=493", timeout=5), 400, "IllegalArgumentException")
    assert '"permission"' in bad_perm["message"]
    assert "FROB is not a valid GET operation." in _remote(requests.get(f"{nn}/?op=FROB", timeout=5), 400,
                                                           "IllegalArgumentException")["message"]
    _remote(requests.get(f"{nn}/?op=MKDIRS", timeout=5), 400, "IllegalArgumentException")  # wrong method


def test_mkdirs_liststatus_rename_delete(nn):
    assert requests.put(f"{nn}/r/a/b?op=MKDIRS&permission=750", timeout=5).json() == {"boolean": True}
    assert requests.put(f"{nn}/r/a/b?op=MKDIRS", timeout=5).json() == {"boolean": True}  # already there
    _create(nn, "/r/file", b"data")
    _remote(requests.put(f"{nn}/r/file?op=MKDIRS", timeout=5), 403, "FileAlreadyExistsException")
    listing = requests.get(f"{nn}/r?op=LISTSTATUS", timeout=5).json()["FileStatuses"]["FileStatus"]
    assert [(s["pathSuffix"], s["type"]) for s in listing] == [("a", "DIRECTORY"), ("file", "FILE")]
    on_file = requests.get(f"{nn}/r/file?op=LISTSTATUS", timeout=5).json()["FileStatuses"]["FileStatus"]
    assert len(on_file) == 1 and on_file[0]["pathSuffix"] == ""

    def rename(src, dst):
        return requests.put(f"{nn}{src}?op=RENAME&destination={dst}", timeout=5).json()["boolean"]

    assert rename("/r/missing", "/r/x") is False  # false, not an error
    assert rename("/r/file", "/r/a/b") is True  # onto a folder: moved inside it
    _create(nn, "/r/other", b"o")
    assert rename("/r/other", "/r/a/b/file") is False  # destination exists
    assert rename("/r/other", "/r/no/parent") is False
    _remote(requests.put(f"{nn}/r/other?op=RENAME&destination=relative", timeout=5), 400, "IllegalArgumentException")

    _remote(requests.delete(f"{nn}/r/a?op=DELETE", timeout=5), 403, "PathIsNotEmptyDirectoryException")
    assert requests.delete(f"{nn}/r/a?op=DELETE&recursive=true", timeout=5).json() == {"boolean": True}
    assert requests.delete(f"{nn}/r/a?op=DELETE", timeout=5).json() == {"boolean": False}


def test_getfilechecksum_layout(nn):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    _create(nn, "/k", b"x" * 2000)
    res = requests.get(f"{nn}/k?op=GETFILECHECKSUM", timeout=5)
    assert res.history[0].status_code == 307
    checksum = res.json()["FileChecksum"]
    assert checksum["algorithm"] == "MD5-of-0MD5-of-512CRC32C" and checksum["length"] == 28
    raw = bytes.fromhex(checksum["bytes"])
    assert struct.unpack(">iq", raw[:12]) == (512, 0)
    # multi-block file: crcPerBlock = blockSize / bytesPerCRC
    _create(nn, "/k2", b"y" * 3000, blocksize="1024")
    multi = requests.get(f"{nn}/k2?op=GETFILECHECKSUM", timeout=5).json()["FileChecksum"]
    assert multi["algorithm"] == "MD5-of-2MD5-of-512CRC32C"


def test_users_home_and_permissions(webhdfs, nn):
    assert requests.get(f"{nn}/?op=GETHOMEDIRECTORY&user.name=bob", timeout=5).json() == {"Path": "/user/bob"}
    assert requests.get(f"{nn}/?op=GETHOMEDIRECTORY", timeout=5).json() == {"Path": "/user/dr.who"}
    requests.put(f"{nn}/private?op=MKDIRS&permission=700&user.name=alice", timeout=5)
    denied = _remote(requests.put(f"{nn}/private/x?op=MKDIRS&user.name=bob", timeout=5), 403,
                     "AccessControlException")
    assert "user=bob" in denied["message"] and 'inode="/private":alice:supergroup:drwx------' in denied["message"]
    assert requests.put(f"{nn}/private/x?op=MKDIRS&user.name=alice", timeout=5).json() == {"boolean": True}
    # the hdfs package trap (§4.6): status(strict=False) turns this 403 into None
    bob = InsecureClient(webhdfs.url, user="bob")
    assert bob.status("/private/x", strict=False) is None
    with pytest.raises(HdfsError) as info:
        bob.status("/private/x")
    assert info.value.exception == "AccessControlException"


def test_standby_answers_standby_exception(tmp_path):
    with WebHdfsEmulator(tmp_path, standby=True) as emu:
        body = _remote(requests.get(f"{emu.url}/webhdfs/v1/?op=GETFILESTATUS", timeout=5), 403, "StandbyException")
        assert "Operation category READ is not supported in state standby" in body["message"]


def test_failure_injection_keeps_partial_file(webhdfs, nn):
    webhdfs.inject_write_failure(after_bytes=10, exception="DSQuotaExceededException", message="quota exceeded")
    res = _create(nn, "/partial", b"0123456789abcdef")
    assert _remote(res, 403, "DSQuotaExceededException")["message"] == "quota exceeded"
    assert (webhdfs.namespace.root / "partial").read_bytes() == b"0123456789"
    webhdfs.clear_failures()
    assert _create(nn, "/ok", b"fine").status_code == 201


def test_hdfs_client_round_trip_and_ha(webhdfs, tmp_path):
    client = InsecureClient(webhdfs.url, user="carol", root="/home")
    client.write("d/one.txt", data=b"1" * 100, permission="640")
    with pytest.raises(HdfsError) as info:
        client.write("d/one.txt", data=b"again")
    assert info.value.exception == "FileAlreadyExistsException"
    client.write("d/two.txt", data=(b"2" * 10 for _ in range(5)))
    assert client.list("d") == ["one.txt", "two.txt"]
    with client.read("d/two.txt") as reader:
        assert reader.read() == b"2" * 50
    assert client.status("d/one.txt")["permission"] == "640"
    assert client.checksum("d/one.txt")["length"] == 28
    client.rename("d/two.txt", "d/three.txt")
    with pytest.raises(HdfsError, match="Unable to rename"):
        client.rename("d/missing", "d/x")
    assert client.delete("d", recursive=True) is True
    with WebHdfsEmulator(tmp_path / "sb", standby=True, namespace=webhdfs.namespace) as standby:
        ha = InsecureClient(f"{standby.url};{webhdfs.url}", user="carol")
        ha.makedirs("/ha")
        assert ha.status("/ha")["type"] == "DIRECTORY"
        assert standby.requests and all(r.startswith("namenode") for r in standby.requests)


def test_command_line_entry_point(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "emulators.webhdfs", "--host", "127.0.0.1", "--port", "0",
                             "--root", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("webhdfs emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        res = requests.put(f"{url}/webhdfs/v1/cli?op=MKDIRS&user.name=hdfs", timeout=5)  # the root is the superuser's
        assert json.loads(res.text) == {"boolean": True} and (tmp_path / "cli").is_dir()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_error_answers_match_real_hdfs(hdfs):
    """The answers the emulator got wrong before it met Hadoop 3.5, asked of both (see tests/hdfs_fixtures.py)."""
    nn = f"{hdfs.url}/webhdfs/v1"
    base = hdfs.fresh_folder(owner="hdfs", permission="777")
    user = {"user.name": "deployer"}
    assert _remote(requests.get(f"{nn}/?op=FROB", timeout=10), 400, "IllegalArgumentException")["message"] == (
        'Invalid value for webhdfs parameter "op": java.lang.IllegalArgumentException: '
        "FROB is not a valid GET operation.")
    assert _remote(requests.get(f"{nn}{base}/nope?op=OPEN", params=user, allow_redirects=False, timeout=10), 404,
                   "FileNotFoundException")["message"] == f"File {base}/nope not found."
    assert _remote(requests.put(f"{nn}{base}/p?op=MKDIRS&permission=493", params=user, timeout=10), 400,
                   "IllegalArgumentException")["message"] == (
        'Invalid value for webhdfs parameter "permission": java.lang.IllegalArgumentException: '
        'Failed to parse "493" as a radix-8 short integer.')
    assert _remote(requests.put(f"{nn}{base}/p?op=RENAME&destination=relative", params=user, timeout=10), 400,
                   "IllegalArgumentException")["message"].endswith('destination = "relative" is not an absolute path.')
    root = requests.get(f"{nn}/?op=GETFILESTATUS", timeout=10).json()["FileStatus"]
    assert (root["owner"], root["permission"]) == ("hdfs", "755")
    _remote(requests.put(f"{nn}/elsewhere?op=MKDIRS", params=user, timeout=10), 403, "AccessControlException")
    hdfs.write(f"{base}/file", b"x")
    for method, op in (("get", "GETFILESTATUS"), ("get", "LISTSTATUS"), ("delete", "DELETE")):
        body = _remote(getattr(requests, method)(f"{nn}{base}/file/below?op={op}", params=user, timeout=10), 403,
                       "AccessControlException")
        assert body["message"] == f"{base}/file (is not a directory)"
    assert _remote(requests.put(f"{nn}{base}/file/below?op=MKDIRS", params=user, timeout=10), 403,
                   "ParentNotDirectoryException")["message"] == f"{base}/file (is not a directory)"
