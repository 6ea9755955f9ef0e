"""Agent-based model of the pre-expiry harvest of retail futures traders without delivery rights."""

__version__ = "0.1.0"
