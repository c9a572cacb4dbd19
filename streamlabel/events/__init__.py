"""Event payloads, the transactional outbox and the MQTT publisher; see the events issue. Not wired in yet."""
