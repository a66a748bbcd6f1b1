-- The policy loop (issue 14): policy versions as set at central, which operators may work at which
-- station (the roster travels with the policy), and what became of each packet downstream.
CREATE TABLE policies (
    version INTEGER PRIMARY KEY, document TEXT NOT NULL, set_at REAL NOT NULL, set_by TEXT NOT NULL);
CREATE TABLE roster (
    station_id TEXT NOT NULL, operator_id TEXT NOT NULL, state TEXT NOT NULL, seq INTEGER NOT NULL,
    changed_at REAL NOT NULL, PRIMARY KEY (station_id, operator_id));
CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, packet_id TEXT NOT NULL, station_id TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, note TEXT NOT NULL, decided_at TEXT NOT NULL,
    decided_by TEXT NOT NULL, UNIQUE (station_id, packet_id));
CREATE INDEX outcomes_station ON outcomes(station_id, seq);
