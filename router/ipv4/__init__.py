"""router.ipv4.input."""
