"""A fake Tencent Cloud SSM (API 3.0, version 2019-09-23) on loopback, answered like the real service.

The transport, signature checks and request recording are ``FakeTencentApi``'s (tests/fakes/tencent_api.py).

    with FakeTencentSSM(credentials={"AKIDtest": "key"}) as ssm:
        ssm.put_secret("im-app-key", "v1", "the-key")
        ... HttpProfile(protocol="http", endpoint=ssm.host) ...
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.tencent_api import FakeTencentApi, Recorded, ServiceError

__all__ = ["FakeTencentSSM", "Recorded", "ServiceError"]


@dataclass
class _Version:
    version_id: str
    create_time: int
    string: str = ""
    binary: str = ""  # base64, as the API carries it


@dataclass
class _State:
    secrets: dict[str, list[_Version]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    clock: int = 1_700_000_000


class FakeTencentSSM(FakeTencentApi):
    SERVICE = "ssm"
    API_VERSION = "2019-09-23"

    def __init__(self, credentials: dict[str, str] | None = None, require_token: str | None = None) -> None:
        super().__init__(credentials, require_token)
        self._state = _State()

    def actions(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetSecretValue": self._get_secret_value, "ListSecretVersionIds": self._list_versions}

    # -- test controls ---------------------------------------------------------------------------
    def put_secret(self, name: str, version_id: str, value: str | bytes, create_time: int | None = None) -> None:
        """Add (or overwrite) a version; later puts are newer unless ``create_time`` says otherwise."""
        with self._lock:
            self._state.clock += 1
            when = self._state.clock if create_time is None else create_time
            version = _Version(version_id, when)
            if isinstance(value, bytes):
                version.binary = base64.b64encode(value).decode("ascii")
            else:
                version.string = value
            versions = [v for v in self._state.secrets.get(name, []) if v.version_id != version_id]
            self._state.secrets[name] = [*versions, version]

    def delete_secret(self, name: str) -> None:
        with self._lock:
            self._state.secrets.pop(name, None)

    def deny(self, name: str) -> None:
        """CAM refuses this secret to every caller."""
        with self._lock:
            self._state.denied.add(name)

    # -- the service -----------------------------------------------------------------------------
    def _versions(self, name: object) -> list[_Version]:
        if not isinstance(name, str) or not name:
            raise ServiceError("MissingParameter", "The request is missing a required parameter `SecretName`.")
        if name in self._state.denied:
            raise ServiceError("UnauthorizedOperation", "CAM signature/authentication error.")
        with self._lock:
            versions = self._state.secrets.get(name)
        if versions is None:
            raise ServiceError("ResourceNotFound", f"The secret `{name}` does not exist.")
        return versions

    def _get_secret_value(self, body: dict[str, Any]) -> dict[str, Any]:
        versions = self._versions(body.get("SecretName"))
        wanted = body.get("VersionId")
        if not wanted:
            raise ServiceError("MissingParameter", "The request is missing a required parameter `VersionId`.")
        for version in versions:
            if version.version_id == wanted:
                return {"SecretName": body["SecretName"], "VersionId": wanted,
                        "SecretString": version.string, "SecretBinary": version.binary}
        raise ServiceError("ResourceNotFound", f"The version `{wanted}` does not exist.")

    def _list_versions(self, body: dict[str, Any]) -> dict[str, Any]:
        versions = self._versions(body.get("SecretName"))
        return {"SecretName": body["SecretName"],
                "Versions": [{"VersionId": v.version_id, "CreateTime": v.create_time} for v in versions]}
