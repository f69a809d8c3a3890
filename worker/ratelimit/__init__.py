"""One rate limit for every worker on every machine, kept in Redis."""
