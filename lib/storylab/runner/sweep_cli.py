"""Sweep and status subcommands (registered into `storylab.cli`)."""
