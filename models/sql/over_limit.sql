-- Whether each customer's exposure (the open items summed) is above its credit limit at
-- the snapshot {day} (days since 1970-01-01): TRUE, FALSE, or NULL without a limit. The
-- customer rows grouped by id and limit, so that a customer row twice in a snapshot
-- still gets its items twice. One snapshot per query: its files are sorted by customer,
-- so the open items are summed as they stream (at 1 M customers, the three snapshots of
-- a 92-day window in one query held 0.8 GB in its hash tables).
SELECT c.customer_id, coalesce(sum(o.exposure), 0) > c.credit_limit AS over
FROM customers c
LEFT JOIN (
    SELECT customer_id, sum(open_amount) AS exposure
    FROM open_items
    WHERE CAST(snapshot_date AS INT) = {day}
    GROUP BY customer_id
) o ON o.customer_id = c.customer_id
WHERE CAST(c.snapshot_date AS INT) = {day}
GROUP BY c.customer_id, c.credit_limit
