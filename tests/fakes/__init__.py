"""Loopback stand-ins for cloud services, reached over real HTTP by the real SDKs."""
