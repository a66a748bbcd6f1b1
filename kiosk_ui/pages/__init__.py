"""The kiosk's screens; each renders state from ``station/`` and holds no rule of its own."""
