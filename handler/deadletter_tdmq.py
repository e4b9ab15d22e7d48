"""TDMQ for CMQ for dead letters: the ``tdmq-cmq:REGION/QUEUE`` sink, through the SDK's ``SendCmqMsg``.

The tdmq SDK module is imported here only, so a deployment that dead-letters elsewhere never loads it.
Credentials are the ones the SSM secret source uses: SCF's function role (``TENCENTCLOUD_SECRETID``,
``TENCENTCLOUD_SECRETKEY``, ``TENCENTCLOUD_SESSIONTOKEN``), else the SDK's standard chain.
``TENCENTCLOUD_TDMQ_ENDPOINT`` (``HOST:PORT`` or ``http(s)://HOST:PORT``) points the client elsewhere,
as boto3's ``AWS_ENDPOINT_URL_SQS`` does for the SQS sink. Each record is one message (the API sends
one at a time); every failure becomes a ``DeadLetterError`` naming the queue, a count and the SDK's
error code, never a body or a credential.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.tdmq.v20200217 import models, tdmq_client

from handler.deadletter import DeadLetterError, parse_tdmq_target
from handler.secret_sources import keep_values_out_of_logs
from handler.secret_sources.tencent_ssm import SDK_LOGGER, credentials, http_profile

ENDPOINT_VAR = "TENCENTCLOUD_TDMQ_ENDPOINT"


class TdmqCmqSink:
    """Dead letters as TDMQ-CMQ queue messages, the record as the message body."""

    def __init__(self, target: str, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        region, self._queue = parse_tdmq_target(target)
        self.name = f"tdmq-cmq:{target}"
        keep_values_out_of_logs(SDK_LOGGER)
        profile = ClientProfile(httpProfile=http_profile(env.get(ENDPOINT_VAR), ENDPOINT_VAR), language="en-US")
        self._client = tdmq_client.TdmqClient(credentials(env), region, profile)

    def write(self, records: list[dict[str, Any]]) -> None:
        for sent, doc in enumerate(records):
            request = models.SendCmqMsgRequest()
            request.QueueName = self._queue
            request.MsgContent = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
            try:
                answer = self._client.SendCmqMsg(request)
            except TencentCloudSDKException as exc:  # network, credentials, Response.Error alike
                raise DeadLetterError(self._unsent(records, sent, str(exc.code))) from None
            if not answer.Result:
                raise DeadLetterError(self._unsent(records, sent, "Result false"))

    def _unsent(self, records: list[dict[str, Any]], sent: int, reason: str) -> str:
        return f"{self.name}: {len(records) - sent} of {len(records)} dead letter(s) not sent ({reason})"
