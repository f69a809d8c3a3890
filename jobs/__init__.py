"""meetreg's producer side: sources of registration requests, enqueueing, schedule and CLI."""
