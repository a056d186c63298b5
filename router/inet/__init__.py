"""router.inet.domain."""
