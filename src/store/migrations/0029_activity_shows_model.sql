-- Whether the usage page's activity log names the provider and model of calls billed in credits.
-- A host whose model choice is its own business turns it off; BYOM and BYOK orgs pay their
-- provider themselves, so their log always names it.
ALTER TABLE orgs ADD COLUMN activity_shows_model boolean NOT NULL DEFAULT true;
