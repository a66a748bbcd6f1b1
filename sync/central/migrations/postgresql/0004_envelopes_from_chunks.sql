-- Finalise without writing the envelope a second time (issue 12): the chunks a station uploaded
-- ARE the stored envelope. Every upload gets an id; chunks are keyed by it, not by (station,
-- packet), so they outlive their upload row; an envelope row either holds its bytes (data) or names
-- the upload whose chunks hold them (upload_id). A restarted upload (another size from offset 0)
-- gets a fresh id, so the chunks of one id only ever grow, and once complete never change.
ALTER TABLE uploads ADD COLUMN upload_id bigserial;
ALTER TABLE uploads ADD CONSTRAINT uploads_upload_id_key UNIQUE (upload_id);

ALTER TABLE upload_chunks ADD COLUMN upload_id bigint;
UPDATE upload_chunks c SET upload_id = u.upload_id
    FROM uploads u WHERE u.station_id = c.station_id AND u.packet_id = c.packet_id;
ALTER TABLE upload_chunks DROP CONSTRAINT upload_chunks_station_id_packet_id_fkey;
ALTER TABLE upload_chunks DROP CONSTRAINT upload_chunks_pkey;
ALTER TABLE upload_chunks DROP COLUMN station_id, DROP COLUMN packet_id;
ALTER TABLE upload_chunks ALTER COLUMN upload_id SET NOT NULL;
ALTER TABLE upload_chunks ADD PRIMARY KEY (upload_id, "offset");

ALTER TABLE envelopes ALTER COLUMN data DROP NOT NULL;
ALTER TABLE envelopes ADD COLUMN upload_id bigint;
ALTER TABLE envelopes ADD CONSTRAINT envelopes_bytes_or_chunks CHECK ((data IS NULL) <> (upload_id IS NULL));
