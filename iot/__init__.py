"""The bus (topics, payloads, transports, broker) and device adapters."""
