"""Central office: ingest server, PKI operations, ops views and the back office."""
