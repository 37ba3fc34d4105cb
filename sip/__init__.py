"""The SIP protocol: parse and serialize messages and URIs. Standard library only, no Django."""

import hotpath

hotpath.install()  # before any module of this package loads: see hotpath/__init__.py
