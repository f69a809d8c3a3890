-- The final states as worker/models.py has them (RowState.is_final); a test holds the two
-- lists equal.
local FINAL_NAMES = {'created', 'already_enabled', 'skipped', 'failed', 'invalid', 'disabled',
                     'already_disabled', 'changed', 'registered', 'already_registered',
                     'canceled', 'already_canceled', 'published', 'already_published'}
