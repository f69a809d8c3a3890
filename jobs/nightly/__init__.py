"""The nightly job: dropped files become batches, subscriptions are renewed."""
