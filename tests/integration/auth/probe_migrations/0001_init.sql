-- the probe service keeps nothing of its own
SELECT 1;
