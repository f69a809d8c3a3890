"""The `meetreg` command line."""
