"""HashGuard: hash-matching that stops re-uploads of non-consensual intimate imagery."""

__version__ = "0.1.0"
