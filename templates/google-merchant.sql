SELECT p.sku AS id, p.title, p.description, p.link, p.image_link, p.price, p.currency,
       p.availability, p.item_condition,
       (SELECT json_group_array(json_object('url', i.url))
          FROM (SELECT url FROM images WHERE product_id = p.id ORDER BY pos LIMIT 10) AS i) AS images
FROM products p
ORDER BY p.id
