"""DynamoDB for the state store: moto in server mode, serialized, with the table DESIGN describes.

moto does not lock a conditional write against a concurrent one; DynamoDB does. Serving one request
at a time gives the same guarantee, so tests that race processes on one item see what AWS would do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from tests.fakes.moto_server import DUMMY_ENV, MotoServer

TABLE = "timpush-state"


@dataclass
class MotoDynamo:
    server: MotoServer
    table: str = TABLE

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to use the store: the variable, boto3's endpoint override, dummy keys."""
        return {**DUMMY_ENV, "IM_STATE_STORE": f"dynamodb:{self.table}",
                "AWS_ENDPOINT_URL_DYNAMODB": self.server.endpoint}

    def client(self) -> Any:
        return boto3.client("dynamodb", endpoint_url=self.server.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106

    def create_table(self) -> None:
        dynamo = self.client()
        dynamo.create_table(TableName=self.table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        dynamo.update_time_to_live(TableName=self.table, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})

    def item(self, pk: str) -> dict[str, Any]:
        return dict(self.client().get_item(TableName=self.table, Key={"pk": {"S": pk}}).get("Item", {}))

    def reset(self) -> None:
        self.server.reset()
        self.create_table()


@contextmanager
def moto_dynamodb() -> Iterator[MotoDynamo]:
    server = MotoServer(threaded=False)
    server.start()
    try:
        running = MotoDynamo(server)
        running.reset()  # moto's backends live in the process: another module's table may still be there
        yield running
    finally:
        server.stop()
