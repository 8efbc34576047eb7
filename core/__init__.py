"""The Handoff domain. Nothing in this package imports discord."""
