"""The registration protocol: a chunk of rows, each row from `queued` to a final state."""
