-- Whether the usage page's activity log has a provider/model column for calls billed in credits
-- (the operator's display choice; the API still returns every call's model). BYOM and BYOK orgs pay
-- their provider themselves, so their log always has it.
ALTER TABLE orgs ADD COLUMN activity_shows_model boolean NOT NULL DEFAULT true;
