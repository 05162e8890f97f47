"""database_url(): a Django DATABASES alias (a plain dict) as sqlfeed's --db string.

The password never goes into the URL: it is returned in an environment dict
(PGPASSWORD for PostgreSQL, MYSQL_PWD for MySQL/MariaDB) for the caller to
put into os.environ (or a subprocess's env) before rendering. Django itself
is not needed."""

_ENGINES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.postgresql_psycopg2": "postgresql",
    "django.contrib.gis.db.backends.postgis": "postgresql",
    "django.db.backends.mysql": "mysql",
    "django.contrib.gis.db.backends.mysql": "mysql",
}
_PASSWORD_VAR = {"postgresql": "PGPASSWORD", "mysql": "MYSQL_PWD"}


def database_url(alias):
    """Returns (db, env): `db` for sqlfeed.render(db=...) or `sqlfeed render --db`,
    `env` the variables to set ({} when there is no password).

    >>> database_url({"ENGINE": "django.db.backends.postgresql", "NAME": "jobs",
    ...               "USER": "feed", "PASSWORD": "s3cret", "HOST": "db", "PORT": 5432})
    ('postgresql://feed@db:5432/jobs', {'PGPASSWORD': 's3cret'})
    """
    from urllib.parse import quote  # here, not at every `import sqlfeed` (__init__.py)

    engine = alias.get("ENGINE", "")
    kind = _ENGINES.get(engine)
    if kind is None:
        raise ValueError("unsupported Django ENGINE %r (sqlite3, postgresql, mysql)" % engine)
    name = str(alias.get("NAME") or "")
    if kind == "sqlite":
        if not name:
            raise ValueError("a sqlite3 alias needs NAME (the file)")
        return name, {}
    if not name:
        raise ValueError("alias has no NAME (the database)")
    user = str(alias.get("USER") or "")
    host = str(alias.get("HOST") or "")
    port = alias.get("PORT")
    netloc = ""
    if user:
        netloc = quote(user, safe="") + "@"
    if host.startswith("/"):
        hostpart = ""  # a Unix socket directory: passed as ?host=
    else:
        hostpart = "[%s]" % host if ":" in host else quote(host, safe="")
    netloc += hostpart
    if port not in (None, ""):
        netloc += ":%d" % int(port)
    url = "%s://%s/%s" % (kind, netloc, quote(name, safe=""))
    if host.startswith("/"):
        url += "?host=" + quote(host, safe="/")
    env = {}
    password = alias.get("PASSWORD")
    if password:
        env[_PASSWORD_VAR[kind]] = str(password)
    return url, env
