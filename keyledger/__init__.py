"""keyledger: event-sourced API-key lifecycle on NATS JetStream."""
