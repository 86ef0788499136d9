-- Sim region state, first schema. Names follow MAAS 2.8's concepts; the
-- tables are the sim's own (MAAS's Django schema is far larger).

CREATE TABLE config (
    name  TEXT PRIMARY KEY,
    value JSONB NOT NULL
);

-- MAAS defaults as the chart's import job leaves them.
INSERT INTO config (name, value) VALUES
    ('maas_name', '"maas-e2e-sim"'),
    ('enlist_commissioning', 'false'),
    ('completed_intro', 'true'),
    ('network_discovery', '"disabled"'),
    ('default_osystem', '"ubuntu"'),
    ('default_distro_series', '"bionic"'),
    ('commissioning_distro_series', '"bionic"'),
    ('default_min_hwe_kernel', '""'),
    ('ntp_servers', '""'),
    ('upstream_dns', 'null'),
    ('http_proxy', 'null'),
    ('enable_http_proxy', 'true'),
    ('remote_syslog', 'null'),
    ('maas_auto_ipmi_user', '"maas"'),
    ('maas_auto_ipmi_user_privilege_level', '"ADMIN"'),
    ('max_node_commissioning_results', '10'),
    ('node_timeout', '30');

CREATE TABLE fabrics (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    class_type TEXT
);

CREATE TABLE vlans (
    id           BIGSERIAL PRIMARY KEY,
    fabric_id    BIGINT NOT NULL REFERENCES fabrics(id) ON DELETE CASCADE,
    vid          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    mtu          INTEGER NOT NULL DEFAULT 1500,
    dhcp_on      BOOLEAN NOT NULL DEFAULT FALSE,
    primary_rack TEXT,
    UNIQUE (fabric_id, vid)
);

-- MAAS's default fabric has id 0 (new ones count from 1).
INSERT INTO fabrics (id, name) VALUES (0, 'fabric-0');
INSERT INTO vlans (fabric_id, vid, name) SELECT id, 0, 'untagged' FROM fabrics WHERE name = 'fabric-0';

CREATE TABLE subnets (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    cidr        TEXT NOT NULL UNIQUE,
    vlan_id     BIGINT NOT NULL REFERENCES vlans(id),
    gateway_ip  TEXT,
    dns_servers JSONB NOT NULL DEFAULT '[]',
    managed     BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE ipranges (
    id        BIGSERIAL PRIMARY KEY,
    type      TEXT NOT NULL CHECK (type IN ('dynamic', 'reserved')),
    start_ip  TEXT NOT NULL,
    end_ip    TEXT NOT NULL,
    subnet_id BIGINT NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    comment   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE rack_controllers (
    id        BIGSERIAL PRIMARY KEY,
    system_id TEXT NOT NULL UNIQUE,
    hostname  TEXT NOT NULL UNIQUE,
    version   TEXT NOT NULL
);

CREATE TABLE machines (
    id               BIGSERIAL PRIMARY KEY,
    system_id        TEXT NOT NULL UNIQUE,
    hostname         TEXT NOT NULL UNIQUE,
    architecture     TEXT NOT NULL,
    status           INTEGER NOT NULL DEFAULT 0,
    status_message   TEXT,
    power_type       TEXT NOT NULL DEFAULT '',
    power_parameters JSONB NOT NULL DEFAULT '{}',
    power_state      TEXT NOT NULL DEFAULT 'unknown',
    cpu_count        INTEGER NOT NULL DEFAULT 0,
    cpu_model        TEXT,
    memory_mib       BIGINT NOT NULL DEFAULT 0,
    commissioning_status INTEGER NOT NULL DEFAULT 0,
    created          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE interfaces (
    id          BIGSERIAL PRIMARY KEY,
    machine_id  BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    mac_address TEXT NOT NULL UNIQUE,
    is_boot     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE block_devices (
    id         BIGSERIAL PRIMARY KEY,
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    UNIQUE (machine_id, name)
);

-- OAuth tokens: the admin's (machine_id NULL) and one per node.
CREATE TABLE tokens (
    id           BIGSERIAL PRIMARY KEY,
    consumer_key TEXT NOT NULL,
    token_key    TEXT NOT NULL UNIQUE,
    token_secret TEXT NOT NULL,
    username     TEXT NOT NULL,
    machine_id   BIGINT REFERENCES machines(id) ON DELETE CASCADE
);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    machine_id  BIGINT REFERENCES machines(id) ON DELETE CASCADE,
    -- The MAC the event was about when no machine had it (PXE of an unknown node).
    mac_address TEXT,
    event_type  TEXT NOT NULL,
    level       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    username    TEXT NOT NULL DEFAULT '',
    created     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_machine ON events (machine_id, id);

CREATE TABLE script_sets (
    id          BIGSERIAL PRIMARY KEY,
    machine_id  BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    result_type INTEGER NOT NULL,
    started     TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended       TIMESTAMPTZ,
    last_ping   TIMESTAMPTZ
);

CREATE TABLE script_results (
    id            BIGSERIAL PRIMARY KEY,
    script_set_id BIGINT NOT NULL REFERENCES script_sets(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    status        INTEGER NOT NULL DEFAULT 0,
    exit_status   INTEGER,
    output        BYTEA NOT NULL DEFAULT '',
    started       TIMESTAMPTZ,
    ended         TIMESTAMPTZ,
    UNIQUE (script_set_id, name)
);
