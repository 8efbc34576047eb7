"""Thin Discord adapters around core/. One extension per capability."""
