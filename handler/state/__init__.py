"""The fleet's shared state: the homes of the task order's store (``handler.order.store`` says what one must do)
and of the app's send slots (``rate``). A task store keeps, per task (SDKAppID + TaskID), the order key
(``Stamp.key``) of the change last applied to each ordered field and a short lease, so that two modifications of
one task never run at once anywhere in the fleet. ``homes`` chooses one by ``IM_STATE_STORE``, of three with the
same behaviour: DynamoDB (``IM_STATE_STORE=dynamodb:TABLE``), Redis or Valkey
(``redis://[[USER]:PASSWORD@]HOST:PORT[/DB]``, ``rediss://`` with TLS; a cluster node's URL for a cluster:
docs/state-store.md) and this process's memory (laptop, tests).
This module imports nothing heavy: boto3 or redis-py comes only with the store that needs it.
"""

from __future__ import annotations

WORKER_AHEAD = 2.0  # seconds ahead of now a queue worker may reserve in the fleet's rate budget: room for
# eight busy workers' slots (8 x 0.21 s), so they book at their first write instead of polling for a place
CALLER_AHEAD = 3.0  # ... and a waiting caller (HTTP): it queues behind at most WORKER_AHEAD of backlog
