SELECT j.reference, l.id AS location_id, j.title, j.url, l.city, l.state, l.postal_code,
       l.country, j.category, j.job_type, j.salary, j.description, j.posted_at,
       c.name AS company
FROM jobs j
JOIN companies c ON c.id = j.company_id
JOIN locations l ON l.job_id = j.id
WHERE j.site = 'justjobs' AND j.is_active = TRUE
ORDER BY j.id, l.id
