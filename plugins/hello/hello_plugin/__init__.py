"""The hello plugin."""
