-- A counter bumped by every identity write, in the same transaction: processes that share the
-- database compare it with the value they loaded and reload when another process wrote.
CREATE TABLE identity_change_counter (id TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO identity_change_counter (id, value) VALUES ('data', 0);
