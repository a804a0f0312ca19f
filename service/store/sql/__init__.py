"""The SQL both stores run, written once against a small `Dialect`; the backends
(service/store/sqlite.py, postgresql.py) supply connections and what truly differs."""
