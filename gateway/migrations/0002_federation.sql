-- Federated tools: the name the upstream gives a tool, which a forwarded tools/call uses (the
-- gateway's own name for it carries the gateway's slug).
ALTER TABLE tools ADD COLUMN original_name TEXT;
