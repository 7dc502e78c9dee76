-- Runs once, when the database volume is first created.
CREATE TABLE IF NOT EXISTS visits (
    id         bigserial PRIMARY KEY,
    visited_at timestamptz NOT NULL DEFAULT now()
);
