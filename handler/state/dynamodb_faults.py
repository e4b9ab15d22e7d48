"""DynamoDB's faults in words, split as DESIGN "The state store, as people rent it" splits them.

A configuration fault (``StoreMisconfigured``: no such table, no permission, authentication, no credentials
or region, a table whose key is not ``pk``) waits for a person; anything else is transient (throttled, a 5xx,
refused, dropped, timed out) and is tried again within the invocation (``handler.order.faults``). The error
codes are those of the DynamoDB developer guide's "Error handling with DynamoDB"; the cause never holds an
exception's class name, and botocore's messages are not copied (a URL's query could hold a signature).
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from handler.order.store import StoreMisconfigured, StoreUnavailable

AUTHENTICATION = "authentication failed (the AWS credentials are not valid)"
_MISCONFIGURED = {
    "ResourceNotFoundException": "no such table",
    "UnrecognizedClientException": AUTHENTICATION,
    "InvalidClientTokenId": AUTHENTICATION,
    "InvalidSignatureException": "authentication failed (the AWS secret key does not match)",
    "IncompleteSignatureException": "authentication failed (the request's signature is incomplete)",
    "MissingAuthenticationTokenException": "authentication failed (no AWS credentials were sent)",
    "ExpiredToken": "authentication failed (the AWS session token has expired)",
    "ExpiredTokenException": "authentication failed (the AWS session token has expired)",
    "ValidationException": "the table refused the item (its partition key must be pk, String, with no sort key)",
}
_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                        "LimitExceededException"})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


def fault(name: str, exc: ClientError | BotoCoreError) -> StoreUnavailable:
    """The store fault ``exc`` is, in words (``name``: ``dynamodb:TABLE``)."""
    if isinstance(exc, ClientError):
        return _answered(name, exc)
    return _unanswered(name, exc)


def _answered(name: str, exc: ClientError) -> StoreUnavailable:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _DENIED:
        return StoreMisconfigured(name, f"no permission (dynamodb:{exc.operation_name})")
    if code in _MISCONFIGURED:
        return StoreMisconfigured(name, _MISCONFIGURED[code])
    if code in _THROTTLED:
        return StoreUnavailable(name, "throttled")
    if status >= 500 or code in ("InternalServerError", "ServiceUnavailable", "InternalFailure"):
        return StoreUnavailable(name, f"server error (HTTP {status or 500})")
    return StoreUnavailable(name, f"refused (error code {code or 'none'}, HTTP {status or 'unknown'})")


def _unanswered(name: str, exc: BotoCoreError) -> StoreUnavailable:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreMisconfigured(name, "authentication failed (no AWS credentials: the function's role, "
                                        "AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    if isinstance(exc, NoRegionError):
        return StoreMisconfigured(name, "no AWS region (AWS_REGION)")
    if isinstance(exc, SSLError):
        return StoreMisconfigured(name, "TLS handshake failed")
    if isinstance(exc, ConnectTimeoutError):  # before EndpointConnectionError: botocore's is both
        return StoreUnavailable(name, "timed out (connecting)")
    if isinstance(exc, ReadTimeoutError):
        return StoreUnavailable(name, "timed out")
    if isinstance(exc, ProxyConnectionError):
        return StoreUnavailable(name, "connection refused (by the proxy)")
    if isinstance(exc, EndpointConnectionError):
        return StoreUnavailable(name, "connection refused")
    if isinstance(exc, ConnectionClosedError):
        return StoreUnavailable(name, "connection dropped")
    return StoreUnavailable(name, "no answer (the call failed before the server answered)")
