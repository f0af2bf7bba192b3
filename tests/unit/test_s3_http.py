"""The emulator's S3 speaks HTTP as S3 does: ``Expect: 100-continue`` for any body size
(0 included), chunked and ``aws-chunked`` bodies, and checksums that are verified.

Each case is driven by botocore and by a raw socket against moto behind waitress
(``streamflow_local.moto_server``) on a spare port.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket

import boto3
import pytest

from streamflow_local.config import free_port
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Sha256Checksum
from botocore.httpsession import URLLib3Session

from streamflow_local.moto_server import MotoServer

BUCKET = "http-probe"
# moto does not check signatures, but refuses anonymous reads of private objects
AUTH = ("Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0")


@pytest.fixture(scope="module")
def port():
    from streamflow_local import moto_patches

    moto_patches.install()
    number = free_port()
    server = MotoServer("127.0.0.1", number)
    server.start()
    _s3(number).create_bucket(Bucket=BUCKET)
    yield number
    server.stop()


def _s3(port: int):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}, read_timeout=10, connect_timeout=5))


def _b64_sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class Raw:
    """One keep-alive connection; reads whole responses (interim 100s kept apart)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)  # a hang is a socket.timeout, i.e. a failure
            assert chunk, "connection closed before a response"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        return int(lines[0].split()[1]), headers

    def response(self) -> tuple[int, dict[str, str], bytes, list[int]]:
        interim = []
        status, headers = self._head()
        while 100 <= status < 200:
            interim.append(status)
            status, headers = self._head()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            chunk = self.sock.recv(1 << 20)
            assert chunk
            self.buffer += chunk
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body, interim

    def expect_continue(self) -> None:
        status, _ = self._head()
        assert status == 100

    def close(self) -> None:
        self.sock.close()


def _put_head(key: str, headers: dict[str, str]) -> bytes:
    lines = [f"PUT /{BUCKET}/{key} HTTP/1.1", "Host: 127.0.0.1", AUTH, "Expect: 100-continue",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- 0-byte bodies with Expect: 100-continue ---------------------------------------------------


def test_empty_put_with_expect_continue_is_answered_over_a_raw_socket(port):
    raw = Raw(port)
    raw.send(_put_head("empty/raw.csv", {"Content-Length": "0"}))
    status, _, _, interim = raw.response()
    assert status == 200 and interim == [100]  # the 100 asked for, then the answer, no body awaited
    raw.send(f"GET /{BUCKET}/empty/raw.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}\r\n\r\n".encode())  # same connection
    status, headers, body, _ = raw.response()
    assert status == 200 and body == b"" and headers["content-length"] == "0"
    raw.close()


def test_after_an_empty_put_the_next_put_on_the_connection_gets_its_100_and_its_answer(port):
    """What ``aws s3 cp --recursive`` does with an empty file among others: each PUT asks for
    ``100 Continue`` on one kept-alive connection. An answer without the 100 made the AWS
    CLI's botocore (1.43.62) wait 60 s on the next PUT."""
    raw = Raw(port)
    body = b"user_id\nu1\n"
    for key, sent in (("seq/empty.csv", b""), ("seq/next.csv", body), ("seq/empty-again.csv", b"")):
        raw.send(_put_head(key, {"Content-Length": str(len(sent))}))
        raw.expect_continue()  # asked for: before any answer, with or without a body to come
        raw.send(sent)
        status, headers, _, interim = raw.response()
        assert status == 200 and interim == [] and headers["etag"].strip('"') == hashlib.md5(sent).hexdigest()
    raw.close()
    assert _s3(port).get_object(Bucket=BUCKET, Key="seq/next.csv")["Body"].read() == body


def test_empty_put_with_expect_continue_through_botocore(port):
    s3 = _s3(port)
    sent = []
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))
    s3.put_object(Bucket=BUCKET, Key="empty/boto.csv", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="empty/boto-file.csv", Body=io.BytesIO(b""))
    assert all(headers.get("Expect") == b"100-continue" for headers in sent) and len(sent) == 2
    assert s3.head_object(Bucket=BUCKET, Key="empty/boto.csv")["ContentLength"] == 0
    assert s3.get_object(Bucket=BUCKET, Key="empty/boto-file.csv")["Body"].read() == b""


def test_a_body_is_still_sent_after_100_continue(port):
    raw = Raw(port)
    body = b"user_id,churn_label\nu1,True\n"
    raw.send(_put_head("small.csv", {"Content-Length": str(len(body))}))
    raw.expect_continue()  # the server asks for the body before answering
    raw.send(body)
    status, headers, _, _ = raw.response()
    assert status == 200 and headers["etag"].strip('"') == hashlib.md5(body).hexdigest()
    raw.close()


# --- chunked transfer encoding -----------------------------------------------------------------


def test_chunked_put_over_a_raw_socket(port):
    raw = Raw(port)
    raw.send(_put_head("chunked/raw.csv", {"Transfer-Encoding": "chunked"}))
    raw.expect_continue()
    raw.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    status, _, _, _ = raw.response()
    assert status == 200
    assert _s3(port).get_object(Bucket=BUCKET, Key="chunked/raw.csv")["Body"].read() == b"hello world"
    raw.close()


def test_chunked_put_through_botocore(port):
    body = [b"a" * 70_000, b"b" * 5, b"c" * 130_000]
    request = AWSRequest(method="PUT", url=f"http://127.0.0.1:{port}/{BUCKET}/chunked/boto.csv",
                         data=iter(body), headers={"Transfer-Encoding": "chunked", "Expect": "100-continue"})
    response = URLLib3Session().send(request.prepare())
    assert response.status_code == 200
    assert _s3(port).get_object(Bucket=BUCKET, Key="chunked/boto.csv")["Body"].read() == b"".join(body)


# --- aws-chunked content encoding (what SDKs stream, with a trailing checksum) -----------------


def _aws_chunked_headers(body: bytes, encoded_length: int, signed: bool) -> dict[str, str]:
    return {
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(body)),
        "Content-Length": str(encoded_length),
        **({} if signed else {"x-amz-trailer": "x-amz-checksum-sha256", "x-amz-sdk-checksum-algorithm": "SHA256"}),
    }


def test_aws_chunked_puts_over_a_raw_socket(port):
    body = b"0123456789" * 10_000
    unsigned = (b"%x\r\n" % 65536 + body[:65536] + b"\r\n" + b"%x\r\n" % (len(body) - 65536) + body[65536:]
                + b"\r\n0\r\nx-amz-checksum-sha256:" + _b64_sha256(body).encode() + b"\r\n\r\n")
    signature = b";chunk-signature=" + b"0" * 64
    signed = (b"%x" % len(body) + signature + b"\r\n" + body + b"\r\n0" + signature + b"\r\n\r\n")
    for key, encoded, is_signed in (("aws-chunked/unsigned.csv", unsigned, False),
                                    ("aws-chunked/signed.csv", signed, True)):
        raw = Raw(port)
        raw.send(_put_head(key, _aws_chunked_headers(body, len(encoded), is_signed)))
        raw.expect_continue()
        raw.send(encoded)
        status, _, reply, _ = raw.response()
        assert status == 200, reply
        raw.close()
        assert _s3(port).get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    stored = _s3(port).head_object(Bucket=BUCKET, Key="aws-chunked/unsigned.csv", ChecksumMode="ENABLED")
    assert stored["ChecksumSHA256"] == _b64_sha256(body)


def test_aws_chunked_put_encoded_by_botocore(port):
    body = b"churn," * 50_000
    encoded = AwsChunkedWrapper(io.BytesIO(body), checksum_cls=Sha256Checksum,
                                checksum_name="x-amz-checksum-sha256", chunk_size=65536).read()
    request = AWSRequest(method="PUT", url=f"http://127.0.0.1:{port}/{BUCKET}/aws-chunked/boto.csv", data=encoded,
                         headers={"Expect": "100-continue", **_aws_chunked_headers(body, len(encoded), False)})
    assert URLLib3Session().send(request.prepare()).status_code == 200
    s3 = _s3(port)
    assert s3.get_object(Bucket=BUCKET, Key="aws-chunked/boto.csv")["Body"].read() == body
    assert s3.head_object(Bucket=BUCKET, Key="aws-chunked/boto.csv",
                          ChecksumMode="ENABLED")["ChecksumSHA256"] == _b64_sha256(body)


# --- checksums are verified, as S3 does ---------------------------------------------------------


def test_a_checksum_that_does_not_match_the_bytes_is_refused(port):
    s3 = _s3(port)
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=BUCKET, Key="bad.csv", Body=b"abc", ChecksumSHA256=_b64_sha256(b"abd"))
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="bad.csv")
    s3.put_object(Bucket=BUCKET, Key="good.csv", Body=b"abc", ChecksumAlgorithm="SHA256")
    assert s3.head_object(Bucket=BUCKET, Key="good.csv", ChecksumMode="ENABLED")["ChecksumSHA256"] == _b64_sha256(b"abc")


def test_a_bad_aws_chunked_trailer_is_refused_over_a_raw_socket(port):
    body = b"x" * 1000
    encoded = (b"%x\r\n" % len(body) + body + b"\r\n0\r\nx-amz-checksum-sha256:" + _b64_sha256(b"y").encode()
               + b"\r\n\r\n")
    raw = Raw(port)
    raw.send(_put_head("aws-chunked/bad.csv", _aws_chunked_headers(body, len(encoded), False)))
    raw.expect_continue()
    raw.send(encoded)
    status, _, reply, _ = raw.response()
    assert status == 400 and b"BadDigest" in reply
    raw.close()


def test_a_folder_emptied_by_deletes_is_not_listed_in_a_versioned_bucket(port):
    """``aws s3 ls s3://bucket/checked/`` (a listing with a delimiter) listed a folder whose
    keys were all deleted: their delete markers are the newest versions. S3 lists none."""
    s3 = _s3(port)
    s3.create_bucket(Bucket="versioned-probe")
    s3.put_bucket_versioning(Bucket="versioned-probe", VersioningConfiguration={"Status": "Enabled"})
    for key in ("checked/m1/e1/users.parquet", "checked/m1/e1/labels.parquet", "checked/m2/e2/users.parquet",
                "months/m1/users.csv"):
        s3.put_object(Bucket="versioned-probe", Key=key, Body=b"x")
    s3.delete_objects(Bucket="versioned-probe", Delete={"Objects": [
        {"Key": "checked/m1/e1/users.parquet"}, {"Key": "checked/m1/e1/labels.parquet"}]})

    def prefixes(prefix: str) -> list[str]:
        listed = s3.list_objects_v2(Bucket="versioned-probe", Prefix=prefix, Delimiter="/")
        v1 = s3.list_objects(Bucket="versioned-probe", Prefix=prefix, Delimiter="/")
        assert listed.get("CommonPrefixes", []) == v1.get("CommonPrefixes", [])
        return [p["Prefix"] for p in listed.get("CommonPrefixes", [])]

    assert prefixes("checked/") == ["checked/m2/"]
    assert prefixes("") == ["checked/", "months/"]
    assert prefixes("checked/m1/") == []
    versions = s3.list_object_versions(Bucket="versioned-probe", Prefix="checked/m1/")
    assert len(versions["DeleteMarkers"]) == 2 and len(versions["Versions"]) == 2  # kept, as S3 keeps them
