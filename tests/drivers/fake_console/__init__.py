"""A stand-in for services.console in the `keyledger up` tests: the same command line."""
