"""The speed benchmark and the service load generator, with their documents as package data."""
