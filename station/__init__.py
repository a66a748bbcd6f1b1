"""Enrollment station core: enrollment model, sealed packets, encrypted queue, keys, audit.

Qt-free by rule: nothing under ``station/`` imports Qt. The kiosk (``kiosk_ui``)
and the sync agent (``sync``) are clients of this package.
"""

__version__ = "0.1.0"
