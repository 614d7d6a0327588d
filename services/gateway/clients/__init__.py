"""The gateway's side of its clients: sessions, the cross-replica relay, listen streams."""
