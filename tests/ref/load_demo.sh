#!/bin/bash
# load_demo.sh SQLITE_DB URL: copy a database made by `sqlfeed demo-db` into a PostgreSQL or
# MariaDB/MySQL database, replacing its tables: jobs and companies as load_dataset.sh loads
# them (text dates, as DATASET.md gives), then the child tables the built-in formats read
# (locations, products, images) with each server's own types: a price is numeric(10,2) /
# DECIMAL(10,2), updated_at timestamptz / DATETIME (UTC), so a feed of them shows that the
# formatters give the same text from every backend.
#   URL: postgresql://user[:password]@host:port/name   (needs psql)
#        mysql://user[:password]@host:port/name         (needs the mariadb or mysql client)
set -euo pipefail
db=${1:?usage: load_demo.sh SQLITE_DB URL}
url=${2:?usage: load_demo.sh SQLITE_DB URL}
here=$(cd "$(dirname "$0")" && pwd)
# No foreign keys: load_dataset.sh (here, or another suite's run on the same server) drops
# and remakes jobs. The child tables of an older load that had them go first.
case $url in
postgres://* | postgresql://*)
  psql -v ON_ERROR_STOP=1 -q "$url" -c "DROP TABLE IF EXISTS images, products, locations" ;;
esac
"$here/load_dataset.sh" "$db" "$url"

# The rows as the servers read them: a price with its two decimals (SQLite keeps 12.5 as a
# REAL), everything else as stored.
products="SELECT id, sku, title, description, printf('%.2f', price), currency, availability,
          item_condition, link, image_link, updated_at FROM products ORDER BY id"
locations="SELECT job_id, id, city, state, postal_code, country FROM locations ORDER BY id"
images="SELECT product_id, pos, url FROM images ORDER BY product_id, pos"

case $url in
postgres://* | postgresql://*)
  # The session's zone reads updated_at (no zone: UTC, the formatters' rule) as UTC.
  export PGTZ=UTC
  psql -v ON_ERROR_STOP=1 -q "$url" <<'SQL'
DROP TABLE IF EXISTS images;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS locations;
CREATE TABLE locations (
  job_id integer NOT NULL, id integer PRIMARY KEY, city text NOT NULL,
  state text, postal_code text, country text NOT NULL);
CREATE TABLE products (
  id integer PRIMARY KEY, sku text NOT NULL UNIQUE, title text NOT NULL,
  description text NOT NULL, price numeric(10,2) NOT NULL, currency text NOT NULL,
  availability text NOT NULL, item_condition text NOT NULL, link text NOT NULL,
  image_link text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE images (
  product_id integer NOT NULL, pos integer NOT NULL,
  url text NOT NULL, PRIMARY KEY (product_id, pos));
SQL
  for t in locations products images; do
    sqlite3 -csv "$db" "${!t}" |
      psql -v ON_ERROR_STOP=1 -q "$url" -c "\\copy $t FROM STDIN WITH (FORMAT csv)"
  done
  psql -v ON_ERROR_STOP=1 -q "$url" -c "CREATE INDEX locations_job ON locations(job_id, id)" \
    -c "ANALYZE"
  ;;
mysql://* | mariadb://*)
  rest=${url#*://}
  auth=${rest%@*} hostpart=${rest##*@}
  user=${auth%%:*} pass=
  [[ $auth == *:* ]] && pass=${auth#*:}
  user=$(printf '%b' "${user//%/\\x}") pass=$(printf '%b' "${pass//%/\\x}")
  name=${hostpart#*/} hostport=${hostpart%%/*}
  host=${hostport%%:*} port=3306
  [[ $hostport == *:* ]] && port=${hostport#*:}
  client=$(command -v mariadb || command -v mysql)
  my() { MYSQL_PWD=$pass "$client" --protocol=tcp -h "$host" -P "$port" -u "$user" \
           --default-character-set=utf8mb4 "$@"; }
  {
    echo "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');"
    echo "SET NAMES utf8mb4; SET time_zone = '+00:00'; SET foreign_key_checks = 0;"
    echo "DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS products; DROP TABLE IF EXISTS locations;"
    echo "CREATE TABLE locations (job_id INT NOT NULL, id INT PRIMARY KEY, city TEXT NOT NULL,"
    echo "  state TEXT, postal_code TEXT, country TEXT NOT NULL,"
    echo "  KEY locations_job (job_id, id)) ENGINE=InnoDB;"
    echo "CREATE TABLE products (id INT PRIMARY KEY, sku VARCHAR(64) NOT NULL UNIQUE,"
    echo "  title TEXT NOT NULL, description MEDIUMTEXT NOT NULL, price DECIMAL(10,2) NOT NULL,"
    echo "  currency VARCHAR(3) NOT NULL, availability VARCHAR(32) NOT NULL,"
    echo "  item_condition VARCHAR(32) NOT NULL, link TEXT NOT NULL, image_link TEXT NOT NULL,"
    echo "  updated_at DATETIME NOT NULL) ENGINE=InnoDB;"
    echo "CREATE TABLE images (product_id INT NOT NULL, pos INT NOT NULL, url TEXT NOT NULL,"
    echo "  PRIMARY KEY (product_id, pos)) ENGINE=InnoDB;"
    echo "START TRANSACTION;"
    sqlite3 "$db" ".mode insert locations" "$locations"
    sqlite3 "$db" ".mode insert products" "$products"
    sqlite3 "$db" ".mode insert images" "$images"
    echo "COMMIT; SET foreign_key_checks = 1; ANALYZE TABLE locations, products, images;"
  } | my "$name" >/dev/null
  ;;
*)
  echo "load_demo.sh: URL must start with postgresql:// or mysql://" >&2
  exit 2
  ;;
esac
