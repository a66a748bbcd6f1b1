"""Cameras: the V4L2 driver through OpenCV, a simulated camera, and enumeration from sysfs.

Open one by URL through ``drivers.url.open_device`` (``camera:///dev/video0?...``,
``sim://camera?source=...``); every camera streams on its own thread and readers see only the
latest frame (``drivers.camera.slot.FrameSlot``).
"""
