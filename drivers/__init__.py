"""Hardware library for the enrollment station: fingerprint scanners, cameras, simulators.

Qt-free and independent of the rest of the project. Devices are opened by URL
(``drivers.url.open_device``); see ``drivers/base.py`` for the interfaces.
"""
