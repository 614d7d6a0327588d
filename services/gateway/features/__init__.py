"""What the gateway adds around calls: aggregation, progressive mode, tasks, parking, watches."""
