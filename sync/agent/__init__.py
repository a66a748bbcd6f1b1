"""The station's sync agent: provisioning, resumable exactly-once upload, heartbeats, renewal.

It runs as its own process (``station sync run``) beside the kiosk, reads the sealed queue from the
encrypted store, and talks to the central office over mutual TLS. It never opens a packet (it has no
HPKE private key) and logs codes and packet ids, never personal data.
"""
