"""Code shared by the station agent and the central server: wire constants and receipts."""
