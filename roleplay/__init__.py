"""roleplay: a spoken de-escalation trainer for angry phone callers."""

__version__ = "0.1.0"
