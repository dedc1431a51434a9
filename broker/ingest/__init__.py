"""``POST /v1/events``: validated CloudEvents made durable in Kafka."""
