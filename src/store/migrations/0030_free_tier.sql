-- Whether the org is on the host's free plan: its usage bar then shows the upgrade button at every
-- level of use, not only from 75 %. Orgs that existed before keep the bar they had.
ALTER TABLE orgs ADD COLUMN free_tier boolean NOT NULL DEFAULT false;
