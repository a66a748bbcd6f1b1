-- The schema central's embedded SQLite backend had before versioned migrations (kept verbatim so an
-- existing central.db is recognised as version 1 and upgraded from there).
CREATE TABLE IF NOT EXISTS packets (
    packet_id TEXT PRIMARY KEY, station_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    received_at TEXT NOT NULL, receipt BLOB NOT NULL, cert_der BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS packets_station ON packets(station_id);
CREATE TABLE IF NOT EXISTS uploads (
    station_id TEXT NOT NULL, packet_id TEXT NOT NULL, size INTEGER NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (station_id, packet_id));
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY, last_seen REAL, heartbeat TEXT, audit_seq INTEGER, audit_head TEXT);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, station_id TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL, created_at REAL NOT NULL);
