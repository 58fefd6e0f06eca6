"""The local runtime: `keyledger up`, its supervisor, and the nats-server it starts."""
