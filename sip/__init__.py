"""The SIP protocol: parse and serialize messages and URIs. Standard library only, no Django."""
