# The launcher, part 4 of 5: the signature check of presigned requests.
import datetime
import hashlib
import hmac
import os

from urllib.parse import quote, unquote

# S3 checks the signature of a presigned request against the request actually sent: the
# signed headers' values (Content-Length among them when a part URL signs it), the path, the
# query, the expiry. moto accepts any presigned URL whatever its signature, so a part of the
# wrong length would pass here and fail on AWS. Verify the SigV4 query signature for real,
# with the credentials the runner gives us (FILESTORE_EMULATOR_CREDENTIALS, "id:secret"
# lines), and refuse as S3 does: 403 with S3's error body. Requests signed in the
# Authorization header (the SDK's own calls) pass as before.
_CREDENTIALS = dict(
    line.split(":", 1)
    for line in os.environ.get("FILESTORE_EMULATOR_CREDENTIALS", "").splitlines()
    if ":" in line
)
_UNRESERVED = "-_.~"


def _header(environ, name):
    if name == "content-length":
        value = environ.get("CONTENT_LENGTH")
    elif name == "content-type":
        value = environ.get("CONTENT_TYPE")
    else:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
    return " ".join((value or "").split())


def _hmac(key, message):
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _presign_refusal(environ):
    """None if the request carries no query signature or a valid one, else (code, message)."""
    query = environ.get("QUERY_STRING", "")
    # A CORS preflight carries the URL but is answered from the bucket's rules, unsigned.
    if "X-Amz-Signature=" not in query or environ["REQUEST_METHOD"] == "OPTIONS":
        return None
    pairs = []
    params = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        params[name] = value
        if name != "X-Amz-Signature":
            pairs.append((quote(name, safe=_UNRESERVED), quote(value, safe=_UNRESERVED)))
    try:
        credential = params["X-Amz-Credential"].split("/")
        access_key, scope = credential[0], "/".join(credential[1:])
        date = params["X-Amz-Date"]
        signed = params["X-Amz-SignedHeaders"].split(";")
        expires = int(params["X-Amz-Expires"])
        signature = params["X-Amz-Signature"]
        if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256" or len(credential) != 5:
            raise ValueError
        signed_at = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "Malformed query-string authentication."
    secret = _CREDENTIALS.get(access_key)
    if secret is None:
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist."
    signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
        return "AccessDenied", "Request has expired"
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path = quote(unquote(raw.split("?", 1)[0]), safe="/" + _UNRESERVED)
    payload = _header(environ, "x-amz-content-sha256") or "UNSIGNED-PAYLOAD"
    canonical = "\n".join([
        environ["REQUEST_METHOD"],
        path,
        "&".join(f"{k}={v}" for k, v in sorted(pairs)),
        "".join(f"{name}:{_header(environ, name)}\n" for name in signed),
        ";".join(signed),
        payload,
    ])  # fmt: skip
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()
    ])  # fmt: skip
    key = ("AWS4" + secret).encode()
    for step in credential[1:]:
        key = _hmac(key, step)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None
