"""Reaching Redis: what REDIS_URL names, connections, eviction checks, a private server."""
