-- Central on PostgreSQL: packets partitioned by receipt day, envelopes and partial uploads in the
-- database (so every node sees the same), stations, alerts, enrollment tokens and certificates.

-- One row per stored packet, for uniqueness across all partitions: a packet finalised at once on
-- two nodes either side of midnight still has one row here, so it is stored once.
CREATE TABLE packet_keys (
    station_id   text NOT NULL,
    packet_id    text NOT NULL,
    received_day date NOT NULL,
    PRIMARY KEY (station_id, packet_id)
);
CREATE INDEX packet_keys_packet ON packet_keys (packet_id);
CREATE INDEX packet_keys_day ON packet_keys (received_day);

-- Native declarative partitioning by receipt day; central creates the partitions ahead
-- (packets_YYYYMMDD). The default partition only catches rows if that ever fell behind.
CREATE TABLE packets (
    station_id   text   NOT NULL,
    packet_id    text   NOT NULL,
    received_day date   NOT NULL,
    sha256       text   NOT NULL,
    size         bigint NOT NULL,
    received_at  text   NOT NULL,
    receipt      bytea  NOT NULL,
    cert_der     bytea  NOT NULL,
    PRIMARY KEY (station_id, packet_id, received_day)
) PARTITION BY RANGE (received_day);
CREATE TABLE packets_default PARTITION OF packets DEFAULT;

-- Envelopes are encrypted (incompressible): keep them out of line, uncompressed.
CREATE TABLE envelopes (
    sha256    text        PRIMARY KEY,
    data      bytea       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE envelopes ALTER COLUMN data SET STORAGE EXTERNAL;

-- Partial uploads: an upload begun on one node resumes on any other at the stored offset.
CREATE TABLE uploads (
    station_id text             NOT NULL,
    packet_id  text             NOT NULL,
    size       bigint           NOT NULL,
    received   bigint           NOT NULL DEFAULT 0,
    started_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (station_id, packet_id)
);
CREATE INDEX uploads_updated ON uploads (updated_at);
CREATE TABLE upload_chunks (
    station_id text   NOT NULL,
    packet_id  text   NOT NULL,
    "offset"   bigint NOT NULL,
    data       bytea  NOT NULL,
    PRIMARY KEY (station_id, packet_id, "offset"),
    FOREIGN KEY (station_id, packet_id) REFERENCES uploads (station_id, packet_id) ON DELETE CASCADE
);
ALTER TABLE upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE stations (
    station_id text PRIMARY KEY,
    last_seen  double precision,
    heartbeat  jsonb,
    audit_seq  bigint,
    audit_head text
);

CREATE TABLE alerts (
    id         bigserial        PRIMARY KEY,
    station_id text             NOT NULL,
    kind       text             NOT NULL,
    detail     text             NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX alerts_station ON alerts (station_id);

-- One-time enrollment tokens (SHA-256 only) and every certificate the CA issued: shared by all
-- nodes, so a token is spent once anywhere and a revocation reaches every node's CRL.
CREATE TABLE tokens (
    token_hash text             PRIMARY KEY,
    station_id text             NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    used_at    double precision
);
CREATE TABLE certificates (
    serial     text             PRIMARY KEY,
    subject    text             NOT NULL,
    not_before double precision NOT NULL,
    not_after  double precision NOT NULL,
    revoked_at double precision,
    der        bytea            NOT NULL
);
CREATE INDEX certificates_subject ON certificates (subject);
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;

-- Which central (CA) this database belongs to: every node of one central shares the CA, and a
-- node of another central is refused at start.
CREATE TABLE central_identity (
    id             integer     PRIMARY KEY CHECK (id = 1),
    central_id     text        NOT NULL,
    ca_fingerprint text        NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now()
);
