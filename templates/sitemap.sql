SELECT p.id, p.link AS loc, p.updated_at AS lastmod
FROM products p
ORDER BY p.id
