"""The host protocol: framing, acknowledgement and the persistent outbox."""
