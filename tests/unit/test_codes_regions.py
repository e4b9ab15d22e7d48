"""The class table of DESIGN, the regional domains, and scrubbing of signed URLs."""

from __future__ import annotations

import pytest

from handler.im import client
from handler.im.codes import ErrorClass, classify
from handler.im.regions import REGION_DOMAINS, base_url

CLASS_TABLE = {
    ErrorClass.INVALID: [90104, 60002, 60003, 60009, 60012, 60015, 90001, 90020, 90099],
    ErrorClass.TOO_LATE: [90106, 90107, 90110],
    ErrorClass.RETRYABLE: [90105, 91000, 90024, 90051, 60007, 60008, 60011, 60013, 60014, 60018, 60019,
                           70169, 70500, -1, -2, -4, -5],
    ErrorClass.AUTH: [70001, 70052, 60004, 60005, 60006, 60010, 60016, 60017, 60020, 60021, 70002, 70003,
                      70009, 70013, 70014, 70016, 70020, 70050, 70051, 70403, 90009, 90045],
    ErrorClass.UNKNOWN: [60022, 70107, 80001, 12345, 90100, 90108],
}


@pytest.mark.parametrize(
    ("code", "expected"), [(c, cls) for cls, cs in CLASS_TABLE.items() for c in cs], ids=str
)
def test_every_documented_code_has_its_class(code: int, expected: ErrorClass) -> None:
    assert classify(code) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(502, ErrorClass.RETRYABLE), (503, ErrorClass.RETRYABLE), (429, ErrorClass.RETRYABLE),
     (404, ErrorClass.UNKNOWN), (400, ErrorClass.UNKNOWN), (None, ErrorClass.UNKNOWN)],
)
def test_http_status_decides_minus_three(status: int | None, expected: ErrorClass) -> None:
    assert classify(-3, status) is expected


@pytest.mark.parametrize(
    ("region", "url"),
    [("china", "https://console.tim.qq.com"), ("singapore", "https://adminapisgp.im.qcloud.com"),
     ("seoul", "https://adminapikr.im.qcloud.com"), ("tokyo", "https://adminapijpn.im.qcloud.com"),
     ("frankfurt", "https://adminapiger.im.qcloud.com"), ("mumbai", "https://adminapiind.im.qcloud.com"),
     ("silicon-valley", "https://adminapiusa.im.qcloud.com"), ("jakarta", "https://adminapiidn.im.qcloud.com"),
     ("riyadh", "https://adminapiksa.im.qcloud.com")],
)
def test_region_domains(region: str, url: str) -> None:
    assert base_url(region) == url


def test_all_regions_of_design_are_known() -> None:
    assert len(REGION_DOMAINS) == 9


def test_endpoint_override_and_unknown_region() -> None:
    assert base_url("china", "http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="mars"):
        base_url("mars")


def test_scrub_removes_usersig_and_given_secrets() -> None:
    text = ("HTTPConnectionPool(host='x', port=1): Max retries exceeded with url: "
            "/v4/timpush/modify_sched_task?usersig=eJw1jV*abc-_&identifier=administrator key=SECRETKEY")
    clean = client.scrub(text, "SECRETKEY")
    assert "eJw1jV" not in clean
    assert "SECRETKEY" not in clean
    assert "usersig=<redacted>&identifier=administrator" in clean
