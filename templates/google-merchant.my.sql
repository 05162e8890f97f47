SELECT p.sku AS id, p.title, p.description, p.link, p.image_link, p.price, p.currency,
       p.availability, p.item_condition,
       (SELECT JSON_ARRAYAGG(JSON_OBJECT('url', i.url) ORDER BY i.pos LIMIT 10)
          FROM images i WHERE i.product_id = p.id) AS images
FROM products p
ORDER BY p.id
