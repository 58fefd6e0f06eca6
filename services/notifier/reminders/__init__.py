"""The reminder machinery: plan due milestones into claims, deliver them, publish ReminderSent."""
