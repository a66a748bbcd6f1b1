-- The policy loop (issue 14): policy versions as set at central, which operators may work at which
-- station (the roster travels with the policy), and what became of each packet downstream.
CREATE TABLE policies (
    version bigint           PRIMARY KEY,
    document text            NOT NULL,
    set_at  double precision NOT NULL,
    set_by  text             NOT NULL
);

CREATE SEQUENCE roster_seq;
CREATE TABLE roster (
    station_id  text             NOT NULL,
    operator_id text             NOT NULL,
    state       text             NOT NULL,
    seq         bigint           NOT NULL,
    changed_at  double precision NOT NULL,
    PRIMARY KEY (station_id, operator_id)
);

CREATE TABLE outcomes (
    seq        bigserial PRIMARY KEY,
    packet_id  text      NOT NULL,
    station_id text      NOT NULL,
    outcome    text      NOT NULL,
    reason     text      NOT NULL,
    note       text      NOT NULL,
    decided_at text      NOT NULL,
    decided_by text      NOT NULL,
    UNIQUE (station_id, packet_id)
);
CREATE INDEX outcomes_station ON outcomes (station_id, seq);
