"""One conformance suite per port, run against every adapter through the `storage` fixture."""
