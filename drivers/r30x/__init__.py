"""R30x/ZFM family (R305, R307, R503, AS608...) serial fingerprint modules: protocol, driver, simulator."""
