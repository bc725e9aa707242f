"""Interfaces: the command line, the studio and the public server."""
