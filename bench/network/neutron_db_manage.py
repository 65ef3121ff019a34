"""`neutron-db-manage` for a PostgreSQL database: Neutron's own command, with one fix.

Neutron 29.0.0's migration d553edeb540f ("tag case sensitive", 2025.2 expand) runs MySQL's
`ALTER TABLE tags CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` on every backend and
only tolerates MySQL's "Unknown collation" error, so `upgrade heads` stops there on PostgreSQL
(a syntax error). PostgreSQL compares text case-sensitively already, which is what the
migration is for, so on PostgreSQL those two statements are skipped and everything else is
Neutron's unchanged. Run with the Neutron virtualenv's python, with neutron-db-manage's
arguments.
"""
import sys

from alembic.operations import Operations

_execute = Operations.execute


def _execute_skipping_mysql_charset(self, sqltext, *args, **kwargs):
    if (isinstance(sqltext, str) and "utf8mb4" in sqltext
            and self.get_bind().dialect.name == "postgresql"):
        return None
    return _execute(self, sqltext, *args, **kwargs)


Operations.execute = _execute_skipping_mysql_charset

from neutron.db.migration.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
