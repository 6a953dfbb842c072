-- What the credit policy needs of each customer at the snapshot {day} (days since
-- 1970-01-01): current limit, exposure (open balance), credit sales of the last 12 months
-- (t - 365, t], and whole months of history. One row per customer, by customer_id.
SELECT
    c.customer_id,
    c.snapshot_date,
    c.currency,
    c.credit_limit,
    CAST(coalesce(o.exposure, 0) AS DECIMAL(38, 2)) AS exposure,
    CAST(coalesce(s.sales, 0) AS DECIMAL(38, 2)) AS credit_sales_12m,
    CAST(floor(CAST(greatest({day} - CAST(c.customer_since AS INT), 0) AS DOUBLE) / 30.4375) AS INT) AS history_months
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
WHERE CAST(c.snapshot_date AS INT) = {day}
ORDER BY c.customer_id
