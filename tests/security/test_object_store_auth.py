"""Local mode's object store authenticates like S3: SigV4 on every request, and per-credential grants.

Played as an attacker on loopback against a running :class:`ObjectStore`: unsigned requests, a wrong
secret, a participant's credential reaching for the private prefix or another participant's upload,
presigned URLs edited, reused for another method, or expired. Then the SigV4 functions themselves,
against AWS's published examples, botocore's signer and single-byte changes.
"""

from __future__ import annotations

import http.client
import io
import re
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import minio
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from podium_operator.local import s3auth
from podium_operator.local.objectstore import Grant, ObjectStore

ALICE = "uploads/default/pg/alice/"
BOB = "uploads/default/pg/bob/"
CAROL = "uploads/default/pg/carol/"
PRIVATE = "podium-private/default/pg/scores/1.json"


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    alice = Grant("alice", "alice-secret", read_prefixes=(ALICE,), write_prefixes=(ALICE,))
    with ObjectStore(grants=[alice]) as s:
        s.add_grant(Grant("carol", "carol-secret", read_prefixes=(CAROL,), list_prefixes=(f"s3://podium/{CAROL}",)))
        admin = s.minio_client()
        for key, data in ((PRIVATE, b"private"), (f"{BOB}model.bin", b"bob"), (f"{ALICE}model.bin", b"alice"),
                          (f"{CAROL}a.csv", b"carol")):
            admin.put_object(s.bucket, key, io.BytesIO(data), len(data))
        yield s


def client(store: ObjectStore, access_key: str, secret_key: str) -> minio.Minio:
    return minio.Minio(store.endpoint.removeprefix("http://"), access_key=access_key, secret_key=secret_key,
                       region=store.region, secure=False)


def send(store: ObjectStore, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, str]:
    """Send exactly this request line and these headers; the status and the S3 error code (or the body)."""
    return _request(store.endpoint.removeprefix("http://"), method, target, headers, body)


def _request(netloc: str, method: str, target: str, headers: dict[str, str] | None,
             body: bytes | None) -> tuple[int, str]:
    host, port = netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        connection.close()
    code = re.search(r"<Code>(.*?)</Code>", text)
    return response.status, code.group(1) if code else text


def code_of(error: pytest.ExceptionInfo[S3Error]) -> str:
    return error.value.code or ""


def admin_has(store: ObjectStore, key: str) -> bool:
    try:
        store.minio_client().stat_object(store.bucket, key)
    except S3Error:
        return False
    return True


# --- Unsigned and wrongly signed requests ----------------------------------------------------------

@pytest.mark.parametrize(("method", "target"), [
    ("GET", f"/podium/{PRIVATE}"), ("HEAD", f"/podium/{PRIVATE}"), ("PUT", "/podium/planted.txt"),
    ("GET", "/podium?list-type=2"), ("GET", "/podium"), ("GET", "/"), ("DELETE", f"/podium/{BOB}model.bin"),
    ("PUT", "/new-bucket"), ("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json"),
])
def test_unsigned_requests_are_refused(store: ObjectStore, method: str, target: str) -> None:
    status, code = send(store, method, target, body=b"x" if method == "PUT" else None)
    assert status == 403
    assert method == "HEAD" or code == "AccessDenied"
    assert not admin_has(store, "planted.txt") and admin_has(store, PRIVATE) and admin_has(store, f"{BOB}model.bin")


def test_a_wrong_secret_or_an_unknown_key_is_refused(store: ObjectStore) -> None:
    for access_key, secret, expected in ((store.access_key, "guess", "SignatureDoesNotMatch"),
                                         ("alice", store.secret_key, "SignatureDoesNotMatch"),
                                         ("mallory", "anything", "InvalidAccessKeyId")):
        forged = client(store, access_key, secret)
        with pytest.raises(S3Error) as got:
            forged.get_object(store.bucket, PRIVATE)
        assert code_of(got) == expected
        with pytest.raises(S3Error) as put:
            forged.put_object(store.bucket, "planted.txt", io.BytesIO(b"x"), 1)
        assert code_of(put) == expected
        with pytest.raises(S3Error):
            list(forged.list_objects(store.bucket, recursive=True))
    assert not admin_has(store, "planted.txt")


def test_sigv2_and_a_stale_signed_request_are_refused(store: ObjectStore) -> None:
    sigv2 = f"/podium/{PRIVATE}?AWSAccessKeyId={store.access_key}&Signature=x&Expires=9999999999"
    assert send(store, "GET", sigv2) == (403, "AccessDenied")
    url = f"{store.endpoint}/podium/{PRIVATE}"
    stale = s3auth.sign_headers("GET", url, store.access_key, store.secret_key, region=store.region,
                                now=time.time() - 3600)
    assert send(store, "GET", f"/podium/{PRIVATE}", stale) == (403, "RequestTimeTooSkewed")


def test_a_signed_request_replayed_with_another_body_or_unsigned_headers_is_refused(store: ObjectStore) -> None:
    url = f"{store.endpoint}/podium/{ALICE}replayed.txt"
    signed = s3auth.sign_headers("PUT", url, "alice", "alice-secret", region=store.region, payload=b"mine")
    assert send(store, "PUT", f"/podium/{ALICE}replayed.txt", signed, b"evil")[1] == "XAmzContentSHA256Mismatch"
    copy = {**signed, "x-amz-copy-source": f"/podium/{PRIVATE}"}
    assert send(store, "PUT", f"/podium/{ALICE}replayed.txt", copy, b"mine") == (403, "AccessDenied")
    assert send(store, "PUT", f"/podium/{ALICE}replayed.txt", signed, b"mine")[0] == 200


# --- A participant's credential ------------------------------------------------------------------

def test_a_participant_cannot_read_the_private_prefix_or_another_upload(store: ObjectStore) -> None:
    alice = client(store, "alice", "alice-secret")
    for key in (PRIVATE, f"{BOB}model.bin", "holdouts/iris/labels.csv"):
        with pytest.raises(S3Error) as got:
            alice.get_object(store.bucket, key)
        assert code_of(got) == "AccessDenied"
        with pytest.raises(S3Error):
            alice.stat_object(store.bucket, key)
        with pytest.raises(S3Error) as put:
            alice.put_object(store.bucket, key, io.BytesIO(b"evil"), 4)
        assert code_of(put) == "AccessDenied"
        with pytest.raises(S3Error):
            alice.remove_object(store.bucket, key)
    assert store.minio_client().get_object(store.bucket, PRIVATE).read() == b"private"


def test_a_participant_cannot_list_copy_bulk_delete_or_create_buckets(store: ObjectStore) -> None:
    alice = client(store, "alice", "alice-secret")
    for prefix in ("", ALICE, "podium-private/"):
        with pytest.raises(S3Error) as listed:
            list(alice.list_objects(store.bucket, prefix=prefix, recursive=True))
        assert code_of(listed) == "AccessDenied"
    with pytest.raises(S3Error):
        alice.list_buckets()
    with pytest.raises(S3Error):
        alice.copy_object(store.bucket, f"{ALICE}stolen.json", CopySource(store.bucket, PRIVATE))
    with pytest.raises(S3Error):
        list(alice.remove_objects(store.bucket, [DeleteObject(PRIVATE), DeleteObject(f"{BOB}model.bin")]))
    with pytest.raises(S3Error):
        alice.make_bucket("alice-bucket")
    assert admin_has(store, PRIVATE) and admin_has(store, f"{BOB}model.bin")
    assert not admin_has(store, f"{ALICE}stolen.json") and not store.minio_client().bucket_exists("alice-bucket")


def test_a_participant_cannot_escape_its_prefix_by_path_tricks(store: ObjectStore) -> None:
    admin = store.minio_client()
    if not admin.bucket_exists("elsewhere"):
        admin.make_bucket("elsewhere")
    admin.put_object("elsewhere", f"podium/{ALICE}x", io.BytesIO(b"not alice's"), 11)
    here = store.endpoint.removeprefix("http://")
    tricks = {
        "dot-dot": (f"/podium/{ALICE}../bob/model.bin", here),
        # moto would read the bucket from this Host ("elsewhere") and the whole path as the key
        "virtual-host": (f"/podium/{ALICE}x", f"elsewhere.s3.amazonaws.com:{here.rsplit(':', 1)[1]}"),
        "other-bucket": (f"/elsewhere/podium/{ALICE}x", here),
    }
    for name, (target, host) in tricks.items():
        signed = s3auth.sign_headers("GET", f"http://{host}{target}", "alice", "alice-secret", region=store.region)
        assert send(store, "GET", target, signed)[0] == 403, name
    reset = s3auth.sign_headers("POST", f"{store.endpoint}/moto-api/reset", "alice", "alice-secret",
                                region=store.region)
    assert send(store, "POST", "/moto-api/reset", reset) == (403, "AccessDenied")
    assert admin_has(store, PRIVATE)


def test_a_participant_reads_and_writes_its_own_prefix(store: ObjectStore) -> None:
    alice = client(store, "alice", "alice-secret")
    assert alice.get_object(store.bucket, f"{ALICE}model.bin").read() == b"alice"
    alice.put_object(store.bucket, f"{ALICE}preds.csv", io.BytesIO(b"y\n1\n"), 4)
    assert alice.stat_object(store.bucket, f"{ALICE}preds.csv").size == 4
    big = bytes(6 << 20)  # a multipart upload: initiate, parts, complete
    alice.put_object(store.bucket, f"{ALICE}big.bin", io.BytesIO(big), len(big), part_size=5 << 20)
    assert store.minio_client().stat_object(store.bucket, f"{ALICE}big.bin").size == len(big)
    alice.copy_object(store.bucket, f"{ALICE}copy.csv", CopySource(store.bucket, f"{ALICE}preds.csv"))
    alice.remove_object(store.bucket, f"{ALICE}copy.csv")
    assert alice.bucket_exists(store.bucket)


def test_a_list_grant_lists_only_below_its_prefix(store: ObjectStore) -> None:
    carol = client(store, "carol", "carol-secret")
    assert [o.object_name for o in carol.list_objects(store.bucket, prefix=CAROL, recursive=True)] == [f"{CAROL}a.csv"]
    with pytest.raises(S3Error):
        list(carol.list_objects(store.bucket, prefix="uploads/", recursive=True))
    with pytest.raises(S3Error):
        carol.put_object(store.bucket, f"{CAROL}b.csv", io.BytesIO(b"x"), 1)  # read and list, no write


# --- Presigned URLs --------------------------------------------------------------------------------

def fetch_url(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(url)
    return _request(parts.netloc, method, f"{parts.path}?{parts.query}", None, body)


def test_a_presigned_get_reads_exactly_its_object(store: ObjectStore) -> None:
    url = store.minio_client().presigned_get_object(store.bucket, f"{BOB}model.bin", expires=timedelta(minutes=5))
    assert fetch_url(url) == (200, "bob")
    assert fetch_url(url.replace(f"{BOB}model.bin", PRIVATE)) == (403, "SignatureDoesNotMatch")
    assert fetch_url(url.replace("bob/model.bin", "bob/model.bix")) == (403, "SignatureDoesNotMatch")
    assert fetch_url(url.replace("X-Amz-Expires=300", "X-Amz-Expires=604800")) == (403, "SignatureDoesNotMatch")
    assert fetch_url(url, "PUT", b"evil") == (403, "SignatureDoesNotMatch")
    assert fetch_url(url, "DELETE")[0] == 403 and fetch_url(url, "HEAD")[0] == 403
    assert store.minio_client().get_object(store.bucket, f"{BOB}model.bin").read() == b"bob"


def test_a_presigned_put_writes_exactly_its_object(store: ObjectStore) -> None:
    url = store.minio_client().presigned_put_object(store.bucket, f"{ALICE}upload.bin", expires=timedelta(minutes=5))
    assert fetch_url(url, "PUT", b"new")[0] == 200
    assert fetch_url(url.replace("upload.bin", "other.bin"), "PUT", b"new") == (403, "SignatureDoesNotMatch")
    assert fetch_url(url) == (403, "SignatureDoesNotMatch")  # a PUT URL does not read
    assert not admin_has(store, f"{ALICE}other.bin")


def test_an_expired_or_premature_presigned_url_is_refused(store: ObjectStore) -> None:
    admin = store.minio_client()
    now = datetime.now(UTC)
    expired = admin.presigned_get_object(store.bucket, f"{BOB}model.bin", expires=timedelta(seconds=60),
                                         request_date=now - timedelta(minutes=5))
    assert fetch_url(expired) == (403, "AccessDenied")
    future = admin.presigned_get_object(store.bucket, f"{BOB}model.bin", expires=timedelta(seconds=60),
                                        request_date=now + timedelta(hours=1))
    assert fetch_url(future) == (403, "AccessDenied")


def test_a_presigned_url_carries_its_signers_grant(store: ObjectStore) -> None:
    alice = client(store, "alice", "alice-secret")
    assert fetch_url(alice.presigned_get_object(store.bucket, f"{ALICE}model.bin")) == (200, "alice")
    assert fetch_url(alice.presigned_get_object(store.bucket, PRIVATE)) == (403, "AccessDenied")
    assert fetch_url(alice.presigned_put_object(store.bucket, f"{BOB}model.bin"), "PUT", b"evil") == (403, "AccessDenied")
    assert store.minio_client().get_object(store.bucket, f"{BOB}model.bin").read() == b"bob"


def test_the_admin_credential_works_as_before(store: ObjectStore) -> None:
    admin = store.minio_client()
    admin.make_bucket("scratch-admin")
    admin.put_object("scratch-admin", "x/y z.txt", io.BytesIO(b"1"), 1)
    assert [o.object_name for o in admin.list_objects("scratch-admin", recursive=True)] == ["x/y z.txt"]
    assert "scratch-admin" in {b.name for b in admin.list_buckets()}
    assert [o.object_name for o in admin.list_objects(store.bucket, prefix="podium-private/", recursive=True)] == [
        PRIVATE]
    admin.remove_object("scratch-admin", "x/y z.txt")
    admin.remove_bucket("scratch-admin")


# --- The SigV4 functions ---------------------------------------------------------------------------

AWS_KEY, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = datetime(2013, 5, 24, tzinfo=UTC).timestamp()
EMPTY = s3auth.sha256_hex(b"")


def test_the_aws_documentation_examples_verify() -> None:
    """S3's SigV4 examples (GET /test.txt with a Range header; the same object presigned for a day)."""
    headers = {"host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9", "x-amz-content-sha256": EMPTY,
               "x-amz-date": "20130524T000000Z"}
    canonical = s3auth.canonical_request("GET", "/test.txt", [], headers, sorted(headers), EMPTY)
    assert s3auth.signature(AWS_SECRET, "20130524T000000Z", "us-east-1", "s3", canonical) == (
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    url = s3auth.presign_url("GET", "https://examplebucket.s3.amazonaws.com/test.txt", AWS_KEY, AWS_SECRET,
                             region="us-east-1", expires=86400, now=AWS_NOW)
    assert url.endswith("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    parts = urllib.parse.urlsplit(url)
    request = s3auth.SignedRequest("GET", "/test.txt", parts.query, {"host": parts.netloc})
    verified = s3auth.verify(request, {AWS_KEY: AWS_SECRET}.get, region="us-east-1", now=AWS_NOW + 60)
    assert verified.access_key == AWS_KEY and verified.presigned
    with pytest.raises(s3auth.S3AuthError, match="expired"):
        s3auth.verify(request, {AWS_KEY: AWS_SECRET}.get, region="us-east-1", now=AWS_NOW + 86401)


segment = st.text(st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",)),
                  min_size=1, max_size=12)
word = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_categories=("Cs",)), min_size=1,
               max_size=10)
header_value = st.lists(st.text("abcXYZ019-_.:=+/", min_size=1, max_size=6), min_size=1, max_size=3).map(" ".join)
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


@st.composite
def signed_requests(draw: st.DrawFn) -> tuple[s3auth.SignedRequest, str]:
    """A request header-signed with the right secret, and which part of it to change by one character."""
    method = draw(st.sampled_from(METHODS))
    path = "/" + "/".join(draw(st.lists(segment, min_size=1, max_size=4)))
    params = draw(st.lists(st.tuples(word, st.text(max_size=8)), max_size=3, unique_by=lambda p: p[0]))
    meta = draw(st.dictionaries(st.sampled_from(["x-amz-meta-a", "x-amz-meta-b", "content-type"]), header_value))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    url = urllib.parse.urlunsplit(("http", "127.0.0.1:9000", urllib.parse.quote(path), query, ""))
    headers = s3auth.sign_headers(method, url, "k", "secret", region="us-east-1", headers=meta, now=1.7e9)
    part = draw(st.sampled_from(["method", "path", "query", "header", "signature"]))
    return s3auth.SignedRequest(method, path, query, headers), part


def _changed(text: str, index: int) -> str:
    index %= len(text)
    return text[:index] + ("b" if text[index] != "b" else "c") + text[index + 1:]


def _verify(request: s3auth.SignedRequest) -> s3auth.Verified:
    return s3auth.verify(request, {"k": "secret"}.get, region="us-east-1", now=1.7e9 + 5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signed_requests(), st.integers(min_value=0, max_value=1000))
def test_a_signed_request_verifies_and_any_one_change_fails(case: tuple[s3auth.SignedRequest, str],
                                                            index: int) -> None:
    request, part = case
    assert _verify(request).access_key == "k"
    headers = dict(request.headers)
    if part == "method":
        tampered = s3auth.SignedRequest(METHODS[(METHODS.index(request.method) + 1) % 5], request.path,
                                        request.query, headers)
    elif part == "path":
        tampered = s3auth.SignedRequest(request.method, _changed(request.path, index) if index % len(request.path)
                                        else request.path + "x", request.query, headers)
    elif part == "query":
        pairs = s3auth.query_pairs(request.query)
        if pairs:
            name, value = pairs[index % len(pairs)]
            pairs[index % len(pairs)] = (name, value + "x") if index % 2 else (_changed(name, index), value)
        else:
            pairs = [("x", "")]
        query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        tampered = s3auth.SignedRequest(request.method, request.path, query, headers)
    elif part == "header":
        name = sorted(n for n in headers if n != "authorization")[index % (len(headers) - 1)]
        headers[name] = _changed(headers[name], index)
        tampered = s3auth.SignedRequest(request.method, request.path, request.query, headers)
    else:
        signature = headers["authorization"].rsplit("=", 1)[1]
        headers["authorization"] = headers["authorization"][:-64] + _changed(signature, index)
        tampered = s3auth.SignedRequest(request.method, request.path, request.query, headers)
    with pytest.raises(s3auth.S3AuthError):
        _verify(tampered)


@settings(max_examples=60, deadline=None)
@given(st.lists(segment, min_size=1, max_size=3), st.sampled_from(["GET", "PUT"]), st.data())
def test_botocore_and_minio_signatures_verify(segments: list[str], method: str, data: st.DataObject) -> None:
    """Interop: what independent signers (botocore's header SigV4, minio's presigner) produce verifies."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key = "/".join(segments)
    assume(key.strip())  # minio's client refuses a blank object name before signing anything
    path = f"/bucket/{key}"
    url = f"http://127.0.0.1:9000{urllib.parse.quote(path)}"
    body = data.draw(st.binary(max_size=32)) if method == "PUT" else b""
    request = AWSRequest(method=method, url=url, data=body, headers={"x-amz-meta-note": "hi  there"})
    S3SigV4Auth(Credentials("k", "secret"), "s3", "us-east-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:9000"
    now = time.time()
    assert _verify_at(s3auth.SignedRequest(method, path, "", headers), now).access_key == "k"

    signer = minio.Minio("127.0.0.1:9000", access_key="k", secret_key="secret", region="us-east-1", secure=False)
    presigned = signer.get_presigned_url(method, "bucket", key, expires=timedelta(minutes=1))
    parts = urllib.parse.urlsplit(presigned)
    assert parts.path == urllib.parse.quote(path, safe="/~")  # what the server decodes is what was signed
    verified = _verify_at(s3auth.SignedRequest(method, path, parts.query, {"host": parts.netloc}), now)
    assert verified.presigned and verified.params == ()


def _verify_at(request: s3auth.SignedRequest, now: float) -> s3auth.Verified:
    return s3auth.verify(request, {"k": "secret"}.get, region="us-east-1", now=now)


def test_grants_match_prefixes_only() -> None:
    grant = Grant("a", "s", read_prefixes=ALICE, write_prefixes=[ALICE])  # one string is one prefix
    assert grant.read_prefixes == (ALICE,) and grant.write_prefixes == (ALICE,)
    assert grant.may("read", f"{ALICE}x") and not grant.may("read", "uploads/default/pg/alicex/y")
    assert not grant.may("list", ALICE) and Grant("root", "s", admin=True).may("write", PRIVATE)
    assert "s'" not in repr(Grant("a", "s"))  # the secret stays out of logs
