-- What the work queues need of each customer at the snapshot {day} (days since
-- 1970-01-01): flags, collector, overdue (days_past_due > 0) and its disputed part,
-- exposure, the latest promise to pay on an open item, and the customer's currency (every
-- open item is in it: the row checks refuse an item in another currency). One row per
-- customer.
SELECT
    c.customer_id,
    c.segment,
    c.collector_id,
    c.high_profile,
    c.fraud_suspected,
    CAST(coalesce(sum(o.open_amount) FILTER (WHERE days_past_due(o.due_date, o.snapshot_date) > 0), 0) AS DECIMAL(38, 2)) AS overdue,
    CAST(coalesce(sum(o.open_amount) FILTER (WHERE days_past_due(o.due_date, o.snapshot_date) > 0 AND o.disputed), 0) AS DECIMAL(38, 2)) AS overdue_disputed,
    CAST(coalesce(sum(o.open_amount), 0) AS DECIMAL(38, 2)) AS exposure,
    max(CAST(o.promise_date AS INT)) AS promise_day,
    CAST(sum(o.promise_amount) AS DECIMAL(38, 2)) AS promise_amount,
    c.currency
FROM customers c
LEFT JOIN open_items o ON o.customer_id = c.customer_id AND o.snapshot_date = c.snapshot_date
WHERE CAST(c.snapshot_date AS INT) = {day}
GROUP BY c.customer_id, c.segment, c.collector_id, c.high_profile, c.fraud_suspected, c.currency
ORDER BY c.customer_id
