"""The local runtime behind `floe serve`: workers, tick loop and HTTP server on one host."""
