-- Aging report for the latest snapshot: open balance by currency, segment and aging
-- bucket (arq's aging_bucket: current, 1-30, 31-60, 61-90, 91-120, 121+ days past due at
-- the snapshot date), with each row's total. Money is never summed across currencies.
-- Run with: arq sql -f data/queries/aging.sql   (add --as-of DATE for an earlier snapshot)
WITH items AS (
    SELECT o.currency, c.segment, o.customer_id, o.open_amount,
           aging_bucket(o.due_date, o.snapshot_date) AS bucket
    FROM open_items_latest o
    JOIN customers_latest c ON c.customer_id = o.customer_id
)
SELECT
    currency,
    segment,
    coalesce(sum(open_amount) FILTER (WHERE bucket = 'current'), 0) AS "current",
    coalesce(sum(open_amount) FILTER (WHERE bucket = '1-30'), 0)    AS "1-30",
    coalesce(sum(open_amount) FILTER (WHERE bucket = '31-60'), 0)   AS "31-60",
    coalesce(sum(open_amount) FILTER (WHERE bucket = '61-90'), 0)   AS "61-90",
    coalesce(sum(open_amount) FILTER (WHERE bucket = '91-120'), 0)  AS "91-120",
    coalesce(sum(open_amount) FILTER (WHERE bucket = '121+'), 0)    AS "121+",
    sum(open_amount)                                                AS total_open,
    round(100 * sum(open_amount) FILTER (WHERE bucket <> 'current') / sum(open_amount), 1)
                                                                    AS pct_overdue,
    count(DISTINCT customer_id)                                     AS customers
FROM items
GROUP BY currency, segment
ORDER BY currency, segment;
