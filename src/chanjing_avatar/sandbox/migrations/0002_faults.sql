-- Fault rules shared by every API replica (the admin API's): a rule fired by one counts for all.
CREATE TABLE sandbox_faults (
    id BIGSERIAL PRIMARY KEY,
    rule JSONB NOT NULL,  -- FaultRule.to_json(), with its whole sequence
    times INTEGER,  -- firings allowed (NULL: any), or the sequence's length
    fired INTEGER NOT NULL DEFAULT 0);
