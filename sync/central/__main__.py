"""``python -m sync.central`` runs the ``central`` console command (an entry point, like the script)."""

from enrollment_station.cli import central_main

central_main()
