"""Builders and Auditors: the protocol, and the offline adapters (command, patch)."""
