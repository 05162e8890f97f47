"""Settings of the sqlfeed example project: just enough for its management
command (feeds/management/commands/render_feed.py).

DATABASES["default"] is the SQLite file FEEDS_DB names (required). With
FEEDS_PG_NAME set there is also a "replica" alias, a PostgreSQL server
(FEEDS_PG_HOST, FEEDS_PG_PORT, FEEDS_PG_USER, FEEDS_PG_PASSWORD), as a site
would render its feeds from a read replica."""
import os

from django.core.exceptions import ImproperlyConfigured

try:
    _db = os.environ["FEEDS_DB"]
except KeyError:
    raise ImproperlyConfigured("set FEEDS_DB to the SQLite database file "
                               "(e.g. one made by `sqlfeed demo-db -o jobs.db`)") from None

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = []
INSTALLED_APPS = ["feeds"]
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _db,
    },
}
if os.environ.get("FEEDS_PG_NAME"):
    DATABASES["replica"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["FEEDS_PG_NAME"],
        "USER": os.environ.get("FEEDS_PG_USER", ""),
        "PASSWORD": os.environ.get("FEEDS_PG_PASSWORD", ""),
        "HOST": os.environ.get("FEEDS_PG_HOST", ""),
        "PORT": os.environ.get("FEEDS_PG_PORT", ""),
    }
