"""Deliver stage: mail, the send ledger, subscribers, tokens."""
