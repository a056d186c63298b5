"""router.engine.api."""
