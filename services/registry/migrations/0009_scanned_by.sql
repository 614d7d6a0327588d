-- Which registry replica stored a snapshot (the scan work queue spreads requests over replicas).
ALTER TABLE snapshots ADD COLUMN scanned_by text;
