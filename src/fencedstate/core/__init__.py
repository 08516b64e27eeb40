"""What every backend builds on, below the public API.

``backend`` (the protocol a backend implements), ``rules`` (the pure commit checks every backend
runs), ``remote`` (the commit loop of the server-backed stores), ``values`` (what a value must be),
``keys`` (key grammar), ``args`` (argument checks), ``clock`` (leases' clock), ``backoff`` (the one
retry pause).
"""
