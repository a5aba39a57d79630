"""Operations: logs, request statistics, alerts and the monitoring history,
housekeeping (maintenance) and warming the cache ahead of use."""
