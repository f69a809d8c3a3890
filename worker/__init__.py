"""meetreg's consumer side: the Celery app, its tasks, the Graph client and the outcome store."""
