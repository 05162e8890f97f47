SELECT j.id, j.title, j.url, j.city, j.country, j.description, j.posted_at, j.salary,
       j.job_type, c.name AS company
FROM jobs j JOIN companies c ON c.id = j.company_id
WHERE j.site = 'justjobs' AND j.is_active = TRUE
ORDER BY j.id
