-- The testing phase (2.8 runs the default testing scripts after
-- commissioning) and the power monitor's bookkeeping (2.8 queries nodes
-- never queried or last queried more than 5 minutes ago).
ALTER TABLE machines ADD COLUMN testing_status INTEGER NOT NULL DEFAULT -1;
ALTER TABLE machines ADD COLUMN power_state_queried TIMESTAMPTZ;
