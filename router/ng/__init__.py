"""router.ng."""
