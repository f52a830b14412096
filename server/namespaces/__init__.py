"""Socket.IO namespaces: each validates input, calls domain code and emits."""
