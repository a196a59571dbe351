"""Apache Atlas v2 REST emulator (standard library only). See CONTRACT.md for the behaviour it mirrors."""

from .server import AtlasEmulator

__all__ = ["AtlasEmulator"]
