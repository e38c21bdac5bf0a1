"""The local sandbox: namespaces, a private filesystem view and a dropped user per container."""
