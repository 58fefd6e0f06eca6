"""In-memory stand-ins for the parts a service talks to, one module per service."""
