-- labsync: the KoSI-Lab domain schema (Dortmund, Wuppertal and partners).
--
-- Rules for tables that labsync replicates (the [sync] tables of the
-- config): exactly one TEXT primary key named in the table; no NOT NULL,
-- CHECK or foreign-key constraints on other columns, since changes from
-- several cities arrive in any order and a delete may null columns; new
-- columns are added at the end (ALTER TABLE ADD COLUMN). STRICT makes
-- SQLite refuse a value of the wrong type from any writer, so every
-- stored value fits its column on every node.
--
-- Run by labsyncd and `labsyncctl init`; every statement must be safe to
-- run again (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS labs (
    id          TEXT PRIMARY KEY,
    city        TEXT,           -- Dortmund, Wuppertal, ...
    name        TEXT,
    description TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS themes (
    id          TEXT PRIMARY KEY,
    title       TEXT,           -- demographic change, urban development, ...
    description TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS activities (
    id           TEXT PRIMARY KEY,
    lab_id       TEXT,          -- labs.id
    theme_id     TEXT,          -- themes.id
    kind         TEXT,          -- workshop, meeting, fair, ...
    title        TEXT,
    starts_at    TEXT,          -- ISO 8601
    ends_at      TEXT,
    location     TEXT,
    participants INTEGER,       -- head count, never names
    stakeholders TEXT,          -- citizens, administration, business, ...
    summary      TEXT,
    status       TEXT           -- planned, done, cancelled
) STRICT;

CREATE TABLE IF NOT EXISTS initiatives (
    id          TEXT PRIMARY KEY,
    lab_id      TEXT,
    theme_id    TEXT,
    title       TEXT,
    stage       TEXT,           -- idea, pilot, running, ended
    description TEXT,
    partners    TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS volunteer_offers (
    id             TEXT PRIMARY KEY,
    lab_id         TEXT,
    organisation   TEXT,
    title          TEXT,
    description    TEXT,
    hours_per_week REAL,
    starts_at      TEXT,
    status         TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS observations (
    id           TEXT PRIMARY KEY,
    activity_id  TEXT,          -- activities.id
    observer_org TEXT,          -- the research institute
    observed_at  TEXT,
    indicator    TEXT,
    value        REAL,
    note         TEXT
) STRICT;

-- Personal data: listed as `local` in the config, it never leaves the node.
CREATE TABLE IF NOT EXISTS participants (
    id                TEXT PRIMARY KEY,
    lab_id            TEXT,
    name              TEXT,
    email             TEXT,
    stakeholder_group TEXT,
    consent           INTEGER   -- 1 if consent to be contacted is on file
) STRICT;
