-- The station registry and the fleet views (ops at 10,000 stations): where each station stands
-- (district, tehsil, union council, label), registration and retirement, and the latest heartbeat's
-- numbers in columns, so the ops views are SQL over one row per station (sync/central/fleet_sql.py).
-- ingest_days counts packets and bytes per UTC day, written in the same transaction as each packet.
ALTER TABLE stations ADD COLUMN created_at REAL;
ALTER TABLE stations ADD COLUMN district TEXT;
ALTER TABLE stations ADD COLUMN tehsil TEXT;
ALTER TABLE stations ADD COLUMN union_council TEXT;
ALTER TABLE stations ADD COLUMN label TEXT;
ALTER TABLE stations ADD COLUMN registered_at REAL;
ALTER TABLE stations ADD COLUMN moved_at REAL;
ALTER TABLE stations ADD COLUMN retired_at REAL;
ALTER TABLE stations ADD COLUMN retire_reason TEXT;
ALTER TABLE stations ADD COLUMN cert_not_after REAL;
ALTER TABLE stations ADD COLUMN revoked_at REAL;
ALTER TABLE stations ADD COLUMN heartbeat_at REAL;
ALTER TABLE stations ADD COLUMN pending INTEGER;
ALTER TABLE stations ADD COLUMN oldest_pending_age_s REAL;
ALTER TABLE stations ADD COLUMN disk_free_bytes INTEGER;
ALTER TABLE stations ADD COLUMN scanner TEXT;
ALTER TABLE stations ADD COLUMN camera TEXT;
ALTER TABLE stations ADD COLUMN clock_skew_s REAL;
ALTER TABLE stations ADD COLUMN version TEXT;
ALTER TABLE stations ADD COLUMN packets_stored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stations ADD COLUMN last_packet_at REAL;
UPDATE stations SET created_at = last_seen WHERE created_at IS NULL;
UPDATE stations SET packets_stored = (SELECT count(*) FROM packets p WHERE p.station_id = stations.station_id);
CREATE TABLE ingest_days (day TEXT PRIMARY KEY, packets INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT INTO ingest_days (day, packets, bytes)
    SELECT substr(received_at, 1, 10), count(*), coalesce(sum(size), 0) FROM packets GROUP BY substr(received_at, 1, 10);
CREATE INDEX stations_district ON stations(district);
CREATE INDEX alerts_station_kind ON alerts(station_id, kind);
