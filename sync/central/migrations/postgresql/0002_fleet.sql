-- The station registry and the fleet views (ops at 10,000 stations): where each station stands
-- (district, tehsil, union council, label), registration and retirement, and the latest heartbeat's
-- numbers in columns, so the ops views are SQL over one row per station (sync/central/fleet_sql.py).
-- ingest_days counts packets and bytes per UTC day, written in the same transaction as each packet.
ALTER TABLE stations
    ADD COLUMN created_at double precision,
    ADD COLUMN district text,
    ADD COLUMN tehsil text,
    ADD COLUMN union_council text,
    ADD COLUMN label text,
    ADD COLUMN registered_at double precision,
    ADD COLUMN moved_at double precision,
    ADD COLUMN retired_at double precision,
    ADD COLUMN retire_reason text,
    ADD COLUMN cert_not_after double precision,
    ADD COLUMN revoked_at double precision,
    ADD COLUMN heartbeat_at double precision,
    ADD COLUMN pending bigint,
    ADD COLUMN oldest_pending_age_s double precision,
    ADD COLUMN disk_free_bytes bigint,
    ADD COLUMN scanner text,
    ADD COLUMN camera text,
    ADD COLUMN clock_skew_s double precision,
    ADD COLUMN version text,
    ADD COLUMN packets_stored bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_packet_at double precision;
UPDATE stations SET created_at = last_seen WHERE created_at IS NULL;
UPDATE stations SET packets_stored = (SELECT count(*) FROM packet_keys p WHERE p.station_id = stations.station_id);
-- Sharded by station (16 rows a day): concurrent commits on several nodes do not queue on one row.
CREATE TABLE ingest_days (
    day     text     NOT NULL,
    shard   smallint NOT NULL,
    packets bigint   NOT NULL,
    bytes   bigint   NOT NULL,
    PRIMARY KEY (day, shard)
);
INSERT INTO ingest_days (day, shard, packets, bytes)
    SELECT substr(received_at, 1, 10), 0, count(*), coalesce(sum(size), 0) FROM packets
    GROUP BY substr(received_at, 1, 10);
CREATE INDEX stations_district ON stations (district);
CREATE INDEX alerts_station_kind ON alerts (station_id, kind);
