"""The audit service: tool-call records, activity, heartbeats, rollups and alerts."""
