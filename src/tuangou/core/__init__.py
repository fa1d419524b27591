"""Shared kernel: configuration, storage, time, money, errors, auth, outbox, ledger, audit."""
