-- Packets are keyed by (station id, packet id): one station can no longer take another station's
-- packet id (issue 13, finding 4). Uploads record when they started (for expiry and ops views).
CREATE TABLE packets_v2 (
    station_id TEXT NOT NULL, packet_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    received_at TEXT NOT NULL, receipt BLOB NOT NULL, cert_der BLOB NOT NULL,
    PRIMARY KEY (station_id, packet_id));
INSERT INTO packets_v2 (station_id, packet_id, sha256, size, received_at, receipt, cert_der)
    SELECT station_id, packet_id, sha256, size, received_at, receipt, cert_der FROM packets;
DROP TABLE packets;
ALTER TABLE packets_v2 RENAME TO packets;
CREATE INDEX packets_packet ON packets(packet_id);
CREATE INDEX packets_received ON packets(received_at);
ALTER TABLE uploads ADD COLUMN started_at REAL;
UPDATE uploads SET started_at = updated_at;
CREATE INDEX alerts_station ON alerts(station_id);
