-- What the work queues need of each customer at the snapshot {day} (days since
-- 1970-01-01), one row per customer, by customer_id:
-- - flags, collector, the customer's currency (every open item is in it: the row checks
--   refuse an item in another currency), overdue (days_past_due > 0) and its disputed
--   part, exposure, the number of overdue invoices, the latest open promise to pay;
-- - for the collector: name and contact (the optional contact columns are NULL in
--   warehouses without them), the last contact (date, kind, outcome), the promises of the
--   last 12 months and how many were broken, the last broken one, and since when the
--   oldest open dispute runs.
-- Promises and whether they were broken come from promises.sql.
WITH {promises}
promise_history AS (
    SELECT customer_id,
           count(*) AS promises_12m,
           count(*) FILTER (WHERE broken) AS broken_12m,
           max(promise_day) FILTER (WHERE broken) AS last_broken_day,
           -- The amount of the last broken promise (the larger one on a day with several).
           last_value(promise_amount ORDER BY promise_day, promise_amount) FILTER (WHERE broken) AS last_broken_amount
    FROM promise_outcomes
    GROUP BY customer_id
),
-- The last contact's kind and outcome picked together, as one struct: one ordered pick
-- instead of two, the same row (at 1 M customers the CTE alone 6.4-7.0 -> 4.8-5.1 s).
last_contact AS (
    SELECT customer_id,
           max(CAST(activity_date AS INT)) AS contact_day,
           last_value(named_struct('kind', kind, 'outcome', outcome)
                      ORDER BY activity_date, activity_id) AS contact
    FROM activities
    WHERE kind IN ('call', 'email', 'letter', 'promise', 'dispute')
      AND CAST(activity_date AS INT) <= {day}
    GROUP BY customer_id
),
-- Each disputed item's latest dispute, then the oldest of those per customer. The
-- disputes joined to the disputed items before they are grouped: at 1 M customers the
-- join's build side is the 150 K items instead of 2.2 M disputed invoices' latest dates
-- (alone: 1.35-1.8 s, 0.43 GB -> 1.1 s, 0.19 GB; an invoice is once in a snapshot, so
-- the days are the same).
open_disputes AS (
    SELECT customer_id, min(opened_day) AS dispute_day
    FROM (
        SELECT o.customer_id, o.invoice_id, max(CAST(a.activity_date AS INT)) AS opened_day
        FROM open_items o
        JOIN activities a ON a.invoice_id = o.invoice_id
        WHERE CAST(o.snapshot_date AS INT) = {day} AND o.disputed
          AND a.kind = 'dispute' AND CAST(a.activity_date AS INT) <= {day}
        GROUP BY o.customer_id, o.invoice_id
    )
    GROUP BY customer_id
),
items AS (
    SELECT o.customer_id,
           CAST(coalesce(sum(o.open_amount) FILTER (WHERE days_past_due(o.due_date, o.snapshot_date) > 0), 0) AS DECIMAL(38, 2)) AS overdue,
           CAST(coalesce(sum(o.open_amount) FILTER (WHERE days_past_due(o.due_date, o.snapshot_date) > 0 AND o.disputed), 0) AS DECIMAL(38, 2)) AS overdue_disputed,
           CAST(coalesce(sum(o.open_amount), 0) AS DECIMAL(38, 2)) AS exposure,
           max(CAST(o.promise_date AS INT)) AS promise_day,
           CAST(sum(o.promise_amount) AS DECIMAL(38, 2)) AS promise_amount,
           CAST(count(*) FILTER (WHERE days_past_due(o.due_date, o.snapshot_date) > 0) AS INT) AS overdue_items
    FROM open_items o
    WHERE CAST(o.snapshot_date AS INT) = {day}
    GROUP BY o.customer_id
)
SELECT
    c.customer_id,
    c.segment,
    c.collector_id,
    c.high_profile,
    c.fraud_suspected,
    coalesce(i.overdue, CAST(0 AS DECIMAL(38, 2))) AS overdue,
    coalesce(i.overdue_disputed, CAST(0 AS DECIMAL(38, 2))) AS overdue_disputed,
    coalesce(i.exposure, CAST(0 AS DECIMAL(38, 2))) AS exposure,
    i.promise_day,
    i.promise_amount,
    c.currency,
    c.name,
    c.contact_name,
    c.contact_phone,
    c.contact_email,
    coalesce(i.overdue_items, 0) AS overdue_items,
    lc.contact_day,
    lc.contact['kind'] AS contact_kind,
    lc.contact['outcome'] AS contact_outcome,
    CAST(coalesce(h.promises_12m, 0) AS INT) AS promises_12m,
    CAST(coalesce(h.broken_12m, 0) AS INT) AS broken_promises_12m,
    h.last_broken_day,
    CAST(h.last_broken_amount AS DECIMAL(38, 2)) AS last_broken_amount,
    od.dispute_day
FROM customers c
LEFT JOIN items i ON i.customer_id = c.customer_id
LEFT JOIN last_contact lc ON lc.customer_id = c.customer_id
LEFT JOIN promise_history h ON h.customer_id = c.customer_id
LEFT JOIN open_disputes od ON od.customer_id = c.customer_id
WHERE CAST(c.snapshot_date AS INT) = {day}
ORDER BY c.customer_id
