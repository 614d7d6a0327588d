"""`make bench`: tools/call and tools/list directly and through the gateway."""
