"""The test kit shared by tests/ and bench/: the stack, a running Samsyn and its callers,
fictional children, waiting, a webhook receiver."""

from tests.kit.fictional import child, luhn_check
from tests.kit.samsyn import (
    Org,
    Samsyn,
    Shared,
    audit_for,
    shared_and_read,
    start_samsyn,
    start_worker,
)
from tests.kit.stack import (
    REPO,
    STACK_ENV,
    Opa,
    PrivateServices,
    drop_postgres_database,
    free_port,
    new_postgres_database,
    opa_binary,
    stack_env,
    stop_process,
)
from tests.kit.topics import read_to_end
from tests.kit.waiting import answers, eventually
from tests.kit.webhooks import Push, WebhookReceiver, signature_valid

__all__ = [
    "REPO",
    "STACK_ENV",
    "Opa",
    "Org",
    "PrivateServices",
    "Push",
    "Samsyn",
    "Shared",
    "WebhookReceiver",
    "answers",
    "audit_for",
    "child",
    "drop_postgres_database",
    "eventually",
    "free_port",
    "luhn_check",
    "new_postgres_database",
    "opa_binary",
    "read_to_end",
    "shared_and_read",
    "signature_valid",
    "stack_env",
    "start_samsyn",
    "start_worker",
    "stop_process",
]
