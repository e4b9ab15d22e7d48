"""A moto server on a free loopback port, for SQS over real HTTP.

``moto_sqs()`` starts it and yields a ``MotoSqs`` with the endpoint, the environment that points
boto3 at it (``env``) and a client; use it from a module- or session-scoped fixture, and
``reset()`` between tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@dataclass
class MotoSqs:
    endpoint: str
    env: dict[str, str]
    client: Any = field(repr=False)

    def reset(self) -> None:
        """Forget every queue (moto's own reset API)."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=5).raise_for_status()

    def create_queue(self, name: str, **attributes: str) -> str:
        if name.endswith(".fifo"):
            attributes.setdefault("FifoQueue", "true")
        return str(self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    def drain(self, url: str, attribute_names: tuple[str, ...] = ("All",)) -> list[dict[str, Any]]:
        """Every message now in the queue (received and deleted)."""
        out: list[dict[str, Any]] = []
        while True:
            answer = self.client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30,
                MessageAttributeNames=["All"], MessageSystemAttributeNames=list(attribute_names),
            )
            messages = answer.get("Messages", [])
            if not messages:
                return out
            out += messages
            self.client.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                       for i, m in enumerate(messages)])

    def count(self, url: str) -> int:
        """Visible plus in-flight messages."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return sum(int(v) for v in attributes.values())


def free_port() -> int:
    """A loopback port nothing listens on (for a sink that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_sqs() -> Iterator[MotoSqs]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        client = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client("sqs", endpoint_url=endpoint)
        yield MotoSqs(endpoint, env, client)
    finally:
        server.stop()
        if server._server is not None:  # stop() leaves the socket bound; close it so the port is free
            server._server.server_close()
