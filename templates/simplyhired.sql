SELECT j.id, j.reference, j.title, j.url, j.city, j.state, j.postal_code,
       j.country, j.category, j.job_type, j.salary, j.description,
       j.posted_at, c.name AS company, c.url AS company_url
FROM jobs j JOIN companies c ON c.id = j.company_id
WHERE j.site = 'justjobs' AND j.is_active = TRUE
ORDER BY j.id
