"""router.arp.protocol."""
