-- A hold is renewed for its TTL by every increment: a stream that keeps reporting usage is alive,
-- however long it runs. Its TTL is expires_at - COALESCE(renewed_at, created_at).
ALTER TABLE authorizations ADD COLUMN renewed_at timestamptz;
