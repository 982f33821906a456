"""Pure, synchronous reception logic: events in, actions out, no I/O."""
