"""The My Number card layer: APDUs, status words and files, over any transport."""
