"""AWS Signature Version 4 for local mode's object store: pure signing/verification and a WSGI middleware.

moto's S3 server accepts any signature. :class:`S3AuthMiddleware`, in front of it, authenticates every
request as S3 does, by header (``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...``) or by presigned query (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``,
``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature``), against known :class:`Grant` s; it then
authorizes the request against the signer's grant. A presigned URL authorizes exactly the method and
key it was signed for (both are in the signature), within its signer's grant. Refusals are S3's XML
errors (``AccessDenied``, ``SignatureDoesNotMatch``, ``InvalidAccessKeyId``, ...), which S3 clients parse.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit
from xml.sax.saxutils import escape

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW_S = 15 * 60  # S3's RequestTimeTooSkewed window
MAX_EXPIRES_S = 7 * 24 * 3600  # the longest a presigned URL may live
PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                  "X-Amz-SignedHeaders", "X-Amz-Signature")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SPACES = re.compile(r"\s+")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DRAIN_LIMIT = 64 << 20  # how much of a refused request's body is read (and dropped)


class S3AuthError(Exception):
    """A refusal, as S3 words it: an error ``code``, a message and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers: ``path`` decoded (as the server routes it), ``query`` raw, header names lower-case."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Verified:
    """Who signed, how, and the request's decoded query less the presigned-auth parameters."""

    access_key: str
    presigned: bool
    payload_hash: str  # the x-amz-content-sha256 the body must match (or UNSIGNED-PAYLOAD / STREAMING-...)
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Grant:
    """A credential and what it may do: key prefixes (in the store's bucket) to read, write and list."""

    access_key: str
    secret_key: str = field(repr=False)
    read_prefixes: tuple[str, ...] = ()
    write_prefixes: tuple[str, ...] = ()
    list_prefixes: tuple[str, ...] = ()
    admin: bool = False  # everything: every bucket, bucket creation, moto's own API (reset)

    def __post_init__(self) -> None:
        for name in ("read_prefixes", "write_prefixes", "list_prefixes"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))

    def may(self, action: str, key: str) -> bool:
        """Whether this grant may ``read``, ``write`` or ``list`` below ``key`` (a ``*`` segment in a prefix
        stands for any one non-empty key segment: ``uploads/default/*/alice/``)."""
        prefixes = {"read": self.read_prefixes, "write": self.write_prefixes, "list": self.list_prefixes}[action]
        return self.admin or any(_below(key, *prefix.partition("*")) for prefix in prefixes)


def _below(key: str, head: str, star: str, tail: str) -> bool:
    segment = key[len(head):].split("/", 1)[0] if key.startswith(head) else ""
    return key.startswith(head + tail) if not star else bool(segment) and key[len(head + segment):].startswith(tail)


# --- SigV4, pure -----------------------------------------------------------------------------------

def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The decoded ``(name, value)`` pairs of a raw query string, in order (``+`` is a space, as servers read it)."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((quote(name, safe=""), quote(value, safe="")) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_request(method: str, path: str, pairs: Iterable[tuple[str, str]], headers: Mapping[str, str],
                      signed_headers: Iterable[str], payload_hash: str) -> str:
    names = list(signed_headers)
    lines = [f"{name}:{_SPACES.sub(' ', headers.get(name, '')).strip()}" for name in names]
    return "\n".join([method, quote(path, safe="/") or "/", canonical_query(pairs), *lines, "",
                      ";".join(names), payload_hash])


def scope(date: str, region: str, service: str = "s3") -> str:
    return f"{date[:8]}/{region}/{service}/aws4_request"


def signature(secret_key: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    to_sign = "\n".join([ALGORITHM, amz_date, scope(amz_date, region, service), sha256_hex(canonical)])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def amz_date(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime(_AMZ_DATE)


def sign_headers(method: str, url: str, access_key: str, secret_key: str, *, region: str,
                 headers: Mapping[str, str] | None = None, payload: bytes = b"",
                 now: float | None = None) -> dict[str, str]:
    """The headers that sign ``method url`` (with ``headers``, all signed, and ``payload``) by header auth."""
    parts = urlsplit(url)
    date = amz_date(time.time() if now is None else now)
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    signed.update({"host": parts.netloc, "x-amz-date": date, "x-amz-content-sha256": sha256_hex(payload)})
    names = sorted(signed)
    canonical = canonical_request(method, unquote(parts.path), query_pairs(parts.query), signed, names,
                                  signed["x-amz-content-sha256"])
    credential = f"{access_key}/{scope(date, region)}"
    signed["authorization"] = (f"{ALGORITHM} Credential={credential}, SignedHeaders={';'.join(names)}, "
                               f"Signature={signature(secret_key, date, region, 's3', canonical)}")
    return signed


def presign_url(method: str, url: str, access_key: str, secret_key: str, *, region: str, expires: int,
                now: float | None = None) -> str:
    """``url`` with presigned query auth for ``method`` (only ``host`` signed), valid ``expires`` seconds."""
    parts = urlsplit(url)
    date = amz_date(time.time() if now is None else now)
    auth = [("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", f"{access_key}/{scope(date, region)}"),
            ("X-Amz-Date", date), ("X-Amz-Expires", str(expires)), ("X-Amz-SignedHeaders", "host")]
    pairs = query_pairs(parts.query) + auth
    canonical = canonical_request(method, unquote(parts.path), pairs, {"host": parts.netloc}, ["host"],
                                  UNSIGNED_PAYLOAD)
    pairs.append(("X-Amz-Signature", signature(secret_key, date, region, "s3", canonical)))
    query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)
    return parts._replace(query=query).geturl()


def verify(request: SignedRequest, secret_for: Callable[[str], str | None], *, region: str,
           now: float) -> Verified:
    """Check ``request``'s SigV4 signature (header or presigned) and time; raise :class:`S3AuthError` if it fails."""
    pairs = query_pairs(request.query)
    params = {name: value for name, value in pairs}
    authorization = request.headers.get("authorization")
    presigned = any(name in params for name in PRESIGN_PARAMS)
    if authorization and presigned:
        raise S3AuthError("InvalidArgument", "Only one auth mechanism allowed", 400)
    if authorization:
        fields = _authorization_fields(authorization)
        algorithm, credential = fields["algorithm"], fields["Credential"]
        names, given, date = fields["SignedHeaders"], fields["Signature"], request.headers.get("x-amz-date", "")
        payload_hash = request.headers.get("x-amz-content-sha256", "")
        if not payload_hash:
            raise S3AuthError("InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400)
        signed_pairs = pairs
    elif presigned:
        if sorted(name for name, _ in pairs if name in PRESIGN_PARAMS) != sorted(PRESIGN_PARAMS):
            raise S3AuthError("AuthorizationQueryParametersError",
                              "Query-string authentication requires each X-Amz-* parameter exactly once", 400)
        algorithm, credential, date = params["X-Amz-Algorithm"], params["X-Amz-Credential"], params["X-Amz-Date"]
        names, given = params["X-Amz-SignedHeaders"], params["X-Amz-Signature"]
        payload_hash = params.get("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD)
        signed_pairs = [pair for pair in pairs if pair[0] != "X-Amz-Signature"]
    else:
        raise S3AuthError("AccessDenied", "Anonymous access is forbidden: sign the request (AWS SigV4)")
    if algorithm != ALGORITHM:
        raise S3AuthError("AccessDenied", f"Unsupported signing algorithm {algorithm!r}; use {ALGORITHM}")
    access_key, signed_names = _check_scope(credential, names, date, region)
    unsigned = sorted(name for name in request.headers if name.startswith("x-amz-") and name not in signed_names)
    if unsigned:
        raise S3AuthError("AccessDenied", f"These x-amz-* headers are not signed: {', '.join(unsigned)}")
    _check_time(date, params.get("X-Amz-Expires") if presigned else None, now)
    secret = secret_for(access_key)
    if secret is None:
        raise S3AuthError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    canonical = canonical_request(request.method, request.path, signed_pairs, request.headers, signed_names,
                                  payload_hash)
    if not hmac.compare_digest(signature(secret, date, region, "s3", canonical).encode(), given.encode()):
        raise S3AuthError("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                          "signature you provided. Check your key and signing method.")
    rest = tuple(pair for pair in pairs if pair[0] not in PRESIGN_PARAMS)
    return Verified(access_key, presigned, payload_hash, rest)


def _authorization_fields(header: str) -> dict[str, str]:
    algorithm, _, rest = header.strip().partition(" ")
    fields = {name: value for name, _, value in (item.strip().partition("=") for item in rest.split(","))}
    fields["algorithm"] = algorithm
    if not all(fields.get(name) for name in ("Credential", "SignedHeaders", "Signature")):
        raise S3AuthError("AuthorizationHeaderMalformed",
                          "The authorization header needs Credential, SignedHeaders and Signature", 400)
    return fields


def _check_scope(credential: str, names: str, date: str, region: str) -> tuple[str, list[str]]:
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise S3AuthError("AuthorizationHeaderMalformed", f"Malformed credential {credential!r}", 400)
    access_key, day, signed_region, service, _ = parts
    if signed_region != region:
        raise S3AuthError("AuthorizationHeaderMalformed",
                          f"The region {signed_region!r} is wrong; expecting {region!r}", 400)
    if service != "s3":
        raise S3AuthError("AccessDenied", f"Credential scope service must be 's3', not {service!r}")
    if not date.startswith(day) or len(day) != 8:
        raise S3AuthError("AccessDenied", "The credential's date does not match the request's date")
    signed_names = names.split(";")
    if "host" not in signed_names or any(name != name.lower() or not name for name in signed_names):
        raise S3AuthError("AccessDenied", "SignedHeaders must be lower-case and include host")
    return access_key, signed_names


def _check_time(date: str, expires: str | None, now: float) -> None:
    try:
        signed_at = datetime.strptime(date, _AMZ_DATE).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise S3AuthError("AccessDenied", f"X-Amz-Date {date!r} is not like 20250101T000000Z") from None
    if expires is None:
        if abs(now - signed_at) > MAX_SKEW_S:
            raise S3AuthError("RequestTimeTooSkewed",
                              "The difference between the request time and the server's time is too large.")
        return
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES_S:
        raise S3AuthError("AuthorizationQueryParametersError",
                          f"X-Amz-Expires must be between 1 and {MAX_EXPIRES_S} seconds", 400)
    if signed_at - now > MAX_SKEW_S:
        raise S3AuthError("AccessDenied", "Request is not valid yet")
    if now > signed_at + int(expires):
        raise S3AuthError("AccessDenied", "Request has expired")


# --- Authorization ---------------------------------------------------------------------------------

_LIST_PARAMS = {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
                "fetch-owner", "encoding-type", "marker"}
_OBJECT_PARAMS = {"GET": {"versionId", "partNumber"}, "HEAD": {"versionId", "partNumber"},
                  "PUT": {"partNumber", "uploadId"}, "POST": {"uploads", "uploadId"}, "DELETE": {"uploadId"}}


def authorize(grant: Grant, bucket: str, request: SignedRequest, params: Iterable[tuple[str, str]]) -> None:
    """Raise ``AccessDenied`` unless ``grant`` allows ``request`` (with its decoded query ``params``)."""
    if grant.admin:
        return
    names = {name for name, _ in params}
    target, _, key = request.path.lstrip("/").partition("/")
    denied = S3AuthError("AccessDenied", "Access Denied")
    if target != bucket or key and not _plain(key):
        raise denied
    if not key:  # the bucket itself: its existence, its region, and listing below granted prefixes
        if request.method == "HEAD" and not names or request.method == "GET" and names == {"location"}:
            return
        prefix = dict(params).get("prefix", "")
        if request.method == "GET" and names <= _LIST_PARAMS and grant.may("list", prefix):
            return
        raise denied
    if not names <= _OBJECT_PARAMS.get(request.method, set()) | {n for n in names if n.startswith("response-")}:
        raise denied
    action = "read" if request.method in ("GET", "HEAD") else "write"
    source = request.headers.get("x-amz-copy-source")
    if source is not None:  # a copy reads its source: that must be readable too
        source_bucket, _, source_key = unquote(source.partition("?")[0]).lstrip("/").partition("/")
        if (action != "write" or source_bucket != bucket or not source_key or not _plain(source_key)
                or not grant.may("read", source_key)):
            raise denied
    if not grant.may(action, key):
        raise denied


def _plain(key: str) -> bool:
    """No ``.`` or ``..`` segment that a client or proxy could normalise into another key."""
    return not any(segment in (".", "..") for segment in key.split("/"))


def path_style_host(host: str) -> bool:
    """Whether moto reads the bucket from the path for this ``Host`` (an IP, or a name with no dot)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name.startswith("[") and name.endswith("]"):
        return "." not in name
    return bool(re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}|[A-Za-z0-9-]+", name))


# --- WSGI ------------------------------------------------------------------------------------------

class S3AuthMiddleware:
    """Authenticate and authorize every request before ``app`` (moto's S3 app) sees it."""

    def __init__(self, app: Callable[..., Any], *, bucket: str, region: str, grants: Iterable[Grant] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self._app, self._bucket, self._region, self._clock = app, bucket, region, clock
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        for grant in grants:
            self.add_grant(grant)

    def add_grant(self, grant: Grant) -> None:
        with self._lock:
            self._grants = {**self._grants, grant.access_key: grant}  # replaced whole: readers need no lock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            request = request_from_environ(environ)
            path = request.path
            if not path_style_host(request.headers.get("host", "")):
                raise S3AuthError("AccessDenied", "Use path-style requests to this endpoint's address")
            grants = self._grants
            verified = verify(request, lambda key: grants[key].secret_key if key in grants else None,
                              region=self._region, now=self._clock())
            authorize(grants[verified.access_key], self._bucket, request, verified.params)
            if _HEX64.match(verified.payload_hash):
                _check_body(environ, verified.payload_hash)
        except S3AuthError as error:
            with contextlib.suppress(OSError, ValueError):  # so that the client reads the error, not a reset
                _read_body(environ, _DRAIN_LIMIT)
            return _error_response(error, path, method, start_response)
        return self._app(environ, start_response)


def request_from_environ(environ: Mapping[str, Any]) -> SignedRequest:
    """The request as the server routes it: ``PATH_INFO`` (decoded, UTF-8), the raw query and the headers."""
    try:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise S3AuthError("InvalidURI", "The path is not UTF-8", 400) from None
    original = environ.get("moto.preserved_header_names") or {}  # x-amz-meta-* names with underscores
    headers = {str(original.get(key, key[5:].replace("_", "-"))).lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.lower().replace("_", "-")] = str(environ[key])
    return SignedRequest(environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""), headers)


def _read_body(environ: dict[str, Any], limit: int | None = None) -> bytes:
    """The body (up to ``limit`` bytes): ``CONTENT_LENGTH`` bytes, or up to the last chunk of a chunked one."""
    length = str(environ.get("CONTENT_LENGTH") or "")
    if not length.isdigit() and not environ.get("wsgi.input_terminated"):
        return b""
    wanted = int(length) if length.isdigit() else -1
    if limit is not None:
        wanted = limit if wanted < 0 else min(wanted, limit)
    return bytes(environ["wsgi.input"].read(wanted))


def _check_body(environ: dict[str, Any], payload_hash: str) -> None:
    body = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    if sha256_hex(body) != payload_hash:
        raise S3AuthError("XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.", 400)


def _error_response(error: S3AuthError, resource: str, method: str,
                    start_response: Callable[..., Any]) -> list[bytes]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(error.code)}</Code>'
            f"<Message>{escape(error.message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>").encode()
    body = b"" if method == "HEAD" else body
    reason = {400: "Bad Request", 403: "Forbidden"}.get(error.status, "Error")
    start_response(f"{error.status} {reason}", [("Content-Type", "application/xml"), ("x-amz-request-id", request_id),
                                                 ("Content-Length", str(len(body)))])
    return [body]
