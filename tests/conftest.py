pytest_plugins = [
    "tests.plugins.nats",
    "tests.plugins.db",
    "tests.plugins.keys",
    "tests.plugins.smtp",
    "tests.plugins.notifier",
    "tests.plugins.calllog",
    "tests.plugins.cli",
    "tests.plugins.permissions",
    "tests.plugins.console",
]
