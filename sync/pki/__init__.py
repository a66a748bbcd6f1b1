"""Private PKI on ``cryptography``: CA, enrollment tokens, issuance from CSRs, CRLs."""
