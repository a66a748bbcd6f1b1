"""``python -m station`` runs the ``station`` console command (an entry point, like the script)."""

from enrollment_station.cli import station_main

station_main()
