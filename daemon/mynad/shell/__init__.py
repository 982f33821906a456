"""The imperative shell: drivers and workers around the pure core, all owned by one asyncio loop."""
