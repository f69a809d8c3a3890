"""The outcome store: what meetreg keeps in Redis about batches, rows and meetings."""
