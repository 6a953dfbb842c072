-- What the credit policy needs of each customer at the snapshot {day} (days since
-- 1970-01-01): current limit, exposure (open balance), credit sales of the last 12 months
-- (t - 365, t], whole months of history; for the periodic review: the last review (an
-- optional column: NULL where the warehouse has none) and the largest promise broken in
-- the last {broken_days} days (promises.sql, {grace} days of grace). Since when the
-- exposure has been above the limit is over_limit.sql, one snapshot at a time. One row
-- per customer, by customer_id.
WITH {promises}
broken AS (
    SELECT customer_id,
           last_value(promise_day ORDER BY promise_amount, promise_day) AS broken_day,
           max(promise_amount) AS broken_amount
    FROM promise_outcomes
    WHERE broken AND promise_day > {day} - {broken_days}
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    c.snapshot_date,
    c.currency,
    c.credit_limit,
    CAST(coalesce(o.exposure, 0) AS DECIMAL(38, 2)) AS exposure,
    CAST(coalesce(s.sales, 0) AS DECIMAL(38, 2)) AS credit_sales_12m,
    CAST(floor(CAST(greatest({day} - CAST(c.customer_since AS INT), 0) AS DOUBLE) / 30.4375) AS INT) AS history_months,
    c.name,
    CAST(c.customer_since AS INT) AS since_day,
    CAST(c.last_credit_review AS INT) AS review_day,
    b.broken_day,
    CAST(b.broken_amount AS DECIMAL(38, 2)) AS broken_amount
FROM customers c
LEFT JOIN (
    SELECT customer_id, sum(open_amount) AS exposure
    FROM open_items
    WHERE CAST(snapshot_date AS INT) = {day}
    GROUP BY customer_id
) o ON o.customer_id = c.customer_id
LEFT JOIN (
    SELECT customer_id, sum(amount) AS sales
    FROM invoices
    WHERE CAST(invoice_date AS INT) <= {day} AND CAST(invoice_date AS INT) > {day} - 365
    GROUP BY customer_id
) s ON s.customer_id = c.customer_id
LEFT JOIN broken b ON b.customer_id = c.customer_id
WHERE CAST(c.snapshot_date AS INT) = {day}
ORDER BY c.customer_id
