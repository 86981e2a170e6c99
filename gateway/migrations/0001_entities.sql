-- Entities of the reference gateway. Plain types so the same SQL runs on PostgreSQL and SQLite:
-- ids are 32-hex text, timestamps RFC 3339 text, JSON documents text.
CREATE TABLE gateways (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    url         TEXT NOT NULL,
    transport   TEXT NOT NULL,
    description TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    reachable   BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE tools (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT,
    description      TEXT,
    integration_type TEXT NOT NULL,
    request_type     TEXT NOT NULL,
    input_schema     TEXT NOT NULL,
    gateway_id       TEXT REFERENCES gateways (id) ON DELETE CASCADE,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    reachable        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX tools_gateway_id ON tools (gateway_id);

CREATE TABLE servers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE server_tools (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    tool_id   TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    PRIMARY KEY (server_id, tool_id)
);
CREATE INDEX server_tools_tool_id ON server_tools (tool_id);

CREATE TABLE prompts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    template    TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    gateway_id  TEXT REFERENCES gateways (id) ON DELETE CASCADE,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX prompts_gateway_id ON prompts (gateway_id);

CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    uri         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    content     TEXT NOT NULL,
    mime_type   TEXT,
    gateway_id  TEXT REFERENCES gateways (id) ON DELETE CASCADE,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX resources_gateway_id ON resources (gateway_id);
