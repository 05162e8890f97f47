SELECT j.reference, j.title, j.url, j.category, j.description, j.posted_at,
       c.name AS company
FROM jobs j JOIN companies c ON c.id = j.company_id
WHERE j.site = 'justjobs' AND j.is_active = TRUE
ORDER BY j.posted_at DESC, j.id DESC
LIMIT 100
