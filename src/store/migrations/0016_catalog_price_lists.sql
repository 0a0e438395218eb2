-- A catalog model's prices form an ordered list (genai-prices: the last entry whose condition holds
-- wins), so a peak window listed after an off-peak rate gated on a start date overrides it. Each
-- catalog row records which list it belongs to (list_from: when that list took effect) and its place
-- in it. Operator rows are single prices and carry neither.
ALTER TABLE provider_prices ADD COLUMN list_from timestamptz;
ALTER TABLE provider_prices ADD COLUMN list_position integer;

-- Rows loaded before this migration: one list per catalog version and model, in load order.
UPDATE provider_prices p
   SET list_from = s.list_from, list_position = s.list_position
  FROM (SELECT id,
               min(valid_from) OVER (PARTITION BY catalog_version_id, provider, model) AS list_from,
               (row_number() OVER (PARTITION BY catalog_version_id, provider, model ORDER BY id) - 1)::integer
                 AS list_position
          FROM provider_prices
         WHERE origin = 'catalog') s
 WHERE s.id = p.id;

ALTER TABLE provider_prices ADD CONSTRAINT provider_prices_list_placed
  CHECK ((origin = 'catalog') = (list_from IS NOT NULL AND list_position IS NOT NULL));
