"""Run an event generator to its end (no torch needed)."""

from __future__ import annotations

from collections.abc import Callable, Generator


def drive(generator: Generator, callback: Callable | None = None):
    """Run ``generator`` to its return value. After each yielded event ``callback(event)``
    is called; if it returns ``False`` the generator is sent ``True``, which cancels it."""
    message = None
    try:
        while True:
            event = generator.send(message)
            message = callback is not None and callback(event) is False
    except StopIteration as stop:
        return stop.value
