SELECT j.reference, j.title, j.url, j.category, j.description, j.posted_at
FROM jobs j
WHERE j.site = 'justjobs' AND j.is_active = TRUE
ORDER BY j.posted_at DESC, j.id DESC
LIMIT 100
