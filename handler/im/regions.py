"""IM REST domains by data centre (API.md §2.2). The SDKAppID only works in the region it was created in."""

from __future__ import annotations

REGION_DOMAINS: dict[str, str] = {
    "china": "console.tim.qq.com",
    "singapore": "adminapisgp.im.qcloud.com",
    "seoul": "adminapikr.im.qcloud.com",
    "tokyo": "adminapijpn.im.qcloud.com",
    "frankfurt": "adminapiger.im.qcloud.com",
    "mumbai": "adminapiind.im.qcloud.com",
    "silicon-valley": "adminapiusa.im.qcloud.com",
    "jakarta": "adminapiidn.im.qcloud.com",
    "riyadh": "adminapiksa.im.qcloud.com",
}


def base_url(region: str, endpoint: str | None = None) -> str:
    """``https://<domain>`` for the region, or the ``IM_ENDPOINT`` override without a trailing slash."""
    if endpoint:
        return endpoint.rstrip("/")
    try:
        return f"https://{REGION_DOMAINS[region]}"
    except KeyError:
        raise ValueError(f"unknown region {region!r}; one of {', '.join(REGION_DOMAINS)}") from None
