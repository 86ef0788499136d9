-- Scripts a user uploads through POST scripts/ (2.8 api/scripts.py);
-- script_type is 2.8's SCRIPT_TYPE (0 commissioning, 2 testing).
-- op=commission runs every commissioning one (2.8 scriptset.py
-- create_commissioning_script_set with no scripts named).
CREATE TABLE user_scripts (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    script_type INTEGER NOT NULL,
    script      BYTEA NOT NULL,
    created     TIMESTAMPTZ NOT NULL DEFAULT now()
);
