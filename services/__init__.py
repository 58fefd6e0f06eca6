"""The three keyledger services: keys, notifier and calllog."""
