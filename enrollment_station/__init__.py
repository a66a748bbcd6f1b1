"""The composition root: the one place that knows every part of the product.

``station/`` (the Qt-free core), ``drivers/``, ``sync/`` (agent and central) and ``kiosk_ui/`` never
import each other upwards; this package sits above all four and wires them into the console
commands (``station`` and ``central``, see :mod:`enrollment_station.cli`). The layering is checked by
``tests/test_architecture.py``.
"""
