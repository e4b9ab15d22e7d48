"""The fix for a store fault, by the words of its cause (DESIGN "The state store, as people rent it")."""

from __future__ import annotations

from handler.order.store import StoreUnavailable

_FIXES = (
    ("authentication", "check the password (in the URL or IM_STATE_STORE_PASSWORD; TencentDB custom accounts: "
                       "account@password) and the user"),
    ("no permission", "grant the command or action it names to the user (Redis ACL, ElastiCache RBAC) or to the "
                      "function's role (dynamodb:UpdateItem on the table)"),
    ("no such table", "create the table: partition key pk (String), no sort key, TTL attribute expires_at "
                      "(docs/deploy.md), or fix the name in IM_STATE_STORE=dynamodb:TABLE"),
    ("no such database", "use a database the server has (/0 to /15; only /0 in cluster mode)"),
    ("too old", "use Redis 4.0 or newer (or Valkey)"),
    ("eviction", "set maxmemory-policy to noeviction (ElastiCache: a custom parameter group; TencentDB: the "
                 "console's parameter settings), or IM_STATE_STORE_EVICTION=accept to take the risk knowingly"),
    ("cluster", "give the cluster's configuration endpoint (or any node) in IM_STATE_STORE"),
    ("tls", "rediss:// only for a server that speaks TLS (ElastiCache with in-transit encryption, Serverless); "
            "redis:// otherwise"),
    ("out of memory", "give the Redis more memory, or free it of other keys"),
    ("read-only", "point IM_STATE_STORE at the primary (a failover may be in progress: try again)"),
    ("throttled", "use on-demand capacity (PAY_PER_REQUEST) or raise the table's write capacity"),
    ("refused", "check the host and port, and that this machine (or the function's VPC and security group) may "
                "reach it"),
    ("timed out", "check the host and port, and that this machine (or the function's VPC and security group) may "
                  "reach it"),
    ("region", "set AWS_REGION"),
)
_DYNAMODB_AUTH = "check the AWS credentials (the function's role; locally AWS_PROFILE or the AWS_* variables)"
_SAID = ("noeviction", "or newer needed")  # causes that carry their own fix (the Redis home's refusals)
SAID = "the one the message gives"
DEFAULT = "see docs/state-store.md for what the store must be"


def store_fix(exc: StoreUnavailable) -> str:
    cause = exc.cause.lower()
    if any(words in cause for words in _SAID):
        return SAID  # not the same sentence twice on one line
    if "authentication" in cause and exc.store.startswith("dynamodb:"):
        return _DYNAMODB_AUTH
    return next((fix for words, fix in _FIXES if words in cause), DEFAULT)
