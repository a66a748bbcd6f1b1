"""The root of the sync package's errors: the agent's, central's, the PKI's and the receipts'.

:class:`SyncError` is what every error of ``sync`` derives from. Each carries a dotted ``code``
(safe to log: never PII) and a ``message`` that says what happened and what to do; the ``station``
and ``central`` commands print them as ``error [code]: message`` and exit 1. The subtrees:

- ``sync.agent.client.AgentError``: the station's agent (network, refusals, provisioning);
- ``sync.central.home.CentralError``: the central office (storage, registry, export, policy...);
- ``sync.pki.ca.PKIError``: the CA, certificates and CSRs;
- ``sync.common.receipt.ReceiptError``: a receipt that does not verify.

The whole tree is in ``docs/errors.md``. Qt-free and station-free: central uses it alone.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every sync error: a dotted ``code`` and a ``message`` a person can act on."""

    code: str = "sync.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message
