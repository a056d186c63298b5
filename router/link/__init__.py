"""router.link."""
