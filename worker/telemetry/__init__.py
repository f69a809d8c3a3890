"""What meetreg tells operators: logs and Prometheus metrics."""
