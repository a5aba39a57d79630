"""Monitoring with history: sampled metrics, alert rules with warning and critical
levels, and the record of every change of an alert's level."""
