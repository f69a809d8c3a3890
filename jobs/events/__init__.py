"""The event-triggered producer: Graph change notifications become registrations."""
