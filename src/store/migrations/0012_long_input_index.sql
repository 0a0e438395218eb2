-- Calls above 128 000 input tokens, where the catalog's long-context tiers begin (Gemini 128k,
-- Claude and Gemini 200k, GPT 272k, ...): the long-context recommendation reads only these rows of
-- the range. Few calls qualify, so ingest rarely touches this index.
CREATE INDEX events_long_input ON events (org_id, occurred_at) WHERE input_tokens > 128000;
