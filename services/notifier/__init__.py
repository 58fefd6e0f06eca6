"""The notifier: rotation reminders by email and in the sidebar, each delivered once."""
