"""The thin HTTP API of vwe-pool."""
