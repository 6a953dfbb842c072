-- arq's risk-model features (DOMAIN.md §4): one row per customer and snapshot date t,
-- for the snapshots t with {from_day} <= t <= {to_day} (days since 1970-01-01), computed
-- only from data dated on or before t. Run it yourself with
--   SELECT * FROM customer_features('2026-10-31')
-- or copy it: replace {from_day} and {to_day} by day numbers and each customers marker
-- (below) by TRUE.
--
-- A customers marker (`customers:COLUMN` in braces) limits a table to a range of customer
-- ids when the job computes a snapshot's features in slices (to bound memory); it is
-- TRUE otherwise.
--
-- Windows are counted in days back from t: "3 months" = (t - 91, t], "6 months" =
-- (t - 183, t], "12 months" = (t - 365, t]. Ratios are computed from exact integer and
-- decimal sums, so the same data always gives the same bits.
--
-- For one snapshot ({from_day} = {to_day}) arq replaces the CTEs that join base to a table
-- of events by per-customer aggregates with the same windows (ONE_SNAPSHOT in
-- models/src/features.rs): a window changed here is changed there too (the test
-- model::one_snapshot_features_equal_the_general_query compares the two).
WITH base AS (
    SELECT customer_id, snapshot_date, CAST(snapshot_date AS INT) AS t,
           segment, credit_limit, CAST(customer_since AS INT) AS since
    FROM customers
    WHERE CAST(snapshot_date AS INT) BETWEEN {from_day} AND {to_day}
      AND {customers:customer_id}
),
-- The open items at t (the snapshot t itself).
now_items AS (
    SELECT customer_id, CAST(snapshot_date AS INT) AS t,
           sum(open_amount) AS exposure,
           sum(open_amount) FILTER (WHERE days_past_due(due_date, snapshot_date) > 0) AS overdue,
           max(days_past_due(due_date, snapshot_date)) AS max_dpd,
           weighted_dpd(open_amount, greatest(days_past_due(due_date, snapshot_date), 0)) AS weighted_dpd,
           sum(open_amount) FILTER (WHERE days_past_due(due_date, snapshot_date) BETWEEN 61 AND 90) AS overdue_61_90,
           aging_bucket(min(due_date), snapshot_date) AS worst_bucket,
           count(*) AS open_items,
           count(*) FILTER (WHERE disputed) AS open_disputes
    FROM open_items
    WHERE CAST(snapshot_date AS INT) BETWEEN {from_day} AND {to_day}
      AND {customers:customer_id}
    GROUP BY customer_id, snapshot_date
),
-- Worst days past due of each customer in each snapshot of the last 12 months.
dpd_by_snapshot AS (
    SELECT customer_id, CAST(snapshot_date AS INT) AS s,
           max(days_past_due(due_date, snapshot_date)) AS max_dpd
    FROM open_items
    WHERE CAST(snapshot_date AS INT) BETWEEN {from_day} - 364 AND {to_day}
      AND {customers:customer_id}
    GROUP BY customer_id, snapshot_date
),
dpd_history AS (
    SELECT b.customer_id, b.t,
           max(h.max_dpd) FILTER (WHERE h.s > b.t - 91) AS max_dpd_3m,
           max(h.max_dpd) FILTER (WHERE h.s > b.t - 183) AS max_dpd_6m,
           max(h.max_dpd) AS max_dpd_12m
    FROM base b
    JOIN dpd_by_snapshot h ON h.customer_id = b.customer_id AND h.s <= b.t AND h.s > b.t - 365
    GROUP BY b.customer_id, b.t
),
-- The day each invoice was paid in full: the date of its last payment, once its
-- payments add up to the invoice amount. Payments are applied to open invoices only (an
-- overpayment is unapplied cash, not a payment of the invoice), so the last payment is
-- the one that settled it. Only payments up to the last snapshot asked for are read.
-- Grouped by customer too (an invoice has one customer): where the payments' files are
-- declared sorted by customer, the groups stream out customer by customer.
-- (A running sum per invoice gives the same day but, with one window partition per
-- invoice, cost 40 times as much: benches/README.md.)
paid_in_full AS (
    SELECT i.invoice_id, i.customer_id, i.due_date, b.last_day AS paid_day
    FROM invoices i
    JOIN (
        SELECT invoice_id, sum(amount) AS paid, max(CAST(payment_date AS INT)) AS last_day
        FROM payments
        WHERE CAST(payment_date AS INT) <= {to_day}
          AND {customers:customer_id}
        GROUP BY customer_id, invoice_id
    ) b ON b.invoice_id = i.invoice_id
    WHERE b.paid >= i.amount
      AND {customers:i.customer_id}
),
settled AS (
    SELECT customer_id, paid_day, paid_day - CAST(due_date AS INT) AS days_late
    FROM paid_in_full
    WHERE paid_day BETWEEN {from_day} - 364 AND {to_day}
),
payment_history AS (
    SELECT b.customer_id, b.t,
           count(*) FILTER (WHERE s.paid_day > b.t - 183) AS paid_6m,
           count(*) FILTER (WHERE s.paid_day > b.t - 183 AND s.days_late > 0) AS paid_late_6m,
           count(*) AS paid_12m,
           count(*) FILTER (WHERE s.days_late > 0) AS paid_late_12m,
           sum(s.days_late) FILTER (WHERE s.paid_day > b.t - 183) AS days_late_sum_6m,
           count(*) FILTER (WHERE s.paid_day > b.t - 91) AS paid_3m,
           sum(s.days_late) FILTER (WHERE s.paid_day > b.t - 91) AS days_late_sum_3m,
           count(*) FILTER (WHERE s.paid_day <= b.t - 91 AND s.paid_day > b.t - 183) AS paid_prev_3m,
           sum(s.days_late) FILTER (WHERE s.paid_day <= b.t - 91 AND s.paid_day > b.t - 183) AS days_late_sum_prev_3m
    FROM base b
    JOIN settled s ON s.customer_id = b.customer_id AND s.paid_day <= b.t AND s.paid_day > b.t - 365
    GROUP BY b.customer_id, b.t
),
last_payment AS (
    SELECT b.customer_id, b.t, max(CAST(p.payment_date AS INT)) AS last_paid_day
    FROM base b
    JOIN payments p ON p.customer_id = b.customer_id
         AND CAST(p.payment_date AS INT) <= b.t AND CAST(p.payment_date AS INT) > b.t - 365
    WHERE {customers:p.customer_id}
    GROUP BY b.customer_id, b.t
),
-- Promises to pay whose date plus 3 days of grace passed in the last 12 months; broken
-- when the invoice was not paid in full by then (known at t, whatever happened later).
-- When the promised invoices were paid in full follows the rule of paid_in_full, over
-- the promised invoices only (a few, not every invoice).
promised AS (
    SELECT a.customer_id, a.invoice_id, CAST(a.activity_date AS INT) AS made_day,
           CAST(a.promise_date AS INT) AS promise_day
    FROM activities a
    WHERE a.kind = 'promise' AND a.promise_date IS NOT NULL
      AND CAST(a.promise_date AS INT) + 3 <= {to_day}
      AND CAST(a.promise_date AS INT) + 3 > {from_day} - 365
      AND {customers:a.customer_id}
),
promised_paid AS (
    SELECT i.invoice_id, b.last_day AS paid_day
    FROM invoices i
    JOIN (
        SELECT invoice_id, sum(amount) AS paid, max(CAST(payment_date AS INT)) AS last_day
        FROM payments
        WHERE CAST(payment_date AS INT) <= {to_day}
          AND invoice_id IN (SELECT invoice_id FROM promised)
          AND {customers:customer_id}
        GROUP BY customer_id, invoice_id
    ) b ON b.invoice_id = i.invoice_id
    WHERE b.paid >= i.amount
      AND {customers:i.customer_id}
),
promises AS (
    SELECT b.customer_id, b.t,
           count(*) FILTER (WHERE f.paid_day IS NULL OR f.paid_day > a.promise_day + 3) AS broken_promises
    FROM base b
    JOIN promised a ON a.customer_id = b.customer_id
    LEFT JOIN promised_paid f ON f.invoice_id = a.invoice_id
    WHERE a.made_day <= b.t
      AND a.promise_day + 3 <= b.t
      AND a.promise_day + 3 > b.t - 365
    GROUP BY b.customer_id, b.t
),
contacts AS (
    SELECT b.customer_id, b.t, count(*) AS contacts_3m
    FROM base b
    JOIN activities a ON a.customer_id = b.customer_id
    WHERE a.kind IN ('call', 'email', 'letter')
      AND CAST(a.activity_date AS INT) <= b.t AND CAST(a.activity_date AS INT) > b.t - 91
      AND {customers:a.customer_id}
    GROUP BY b.customer_id, b.t
),
invoicing AS (
    SELECT b.customer_id, b.t, count(*) AS invoices_12m
    FROM base b
    JOIN invoices i ON i.customer_id = b.customer_id
    WHERE CAST(i.invoice_date AS INT) <= b.t AND CAST(i.invoice_date AS INT) > b.t - 365
      AND {customers:i.customer_id}
    GROUP BY b.customer_id, b.t
)
SELECT
    b.customer_id,
    b.snapshot_date,
    b.segment,
    -- Share of the open balance that is past due (0 without open items).
    CASE WHEN coalesce(n.exposure, 0) > 0
         THEN CAST(coalesce(n.overdue, 0) AS DOUBLE) / CAST(n.exposure AS DOUBLE)
         ELSE 0.0 END AS overdue_share,
    CAST(greatest(coalesce(n.max_dpd, 0), 0) AS DOUBLE) AS max_dpd,
    -- The aging bucket of the oldest open item (a text feature: the model learns a weight
    -- per bucket), and the share of the balance that turns 90+ within the next 30 days.
    coalesce(n.worst_bucket, 'no open items') AS worst_bucket,
    CASE WHEN coalesce(n.exposure, 0) > 0
         THEN CAST(coalesce(n.overdue_61_90, 0) AS DOUBLE) / CAST(n.exposure AS DOUBLE)
         ELSE 0.0 END AS share_61_90,
    coalesce(n.weighted_dpd, 0.0) AS weighted_dpd,
    CAST(greatest(coalesce(d.max_dpd_3m, 0), 0) AS DOUBLE) AS max_dpd_3m,
    CAST(greatest(coalesce(d.max_dpd_6m, 0), 0) AS DOUBLE) AS max_dpd_6m,
    CAST(greatest(coalesce(d.max_dpd_12m, 0), 0) AS DOUBLE) AS max_dpd_12m,
    CAST(coalesce(ph.paid_late_6m, 0) AS DOUBLE) AS paid_late_6m,
    -- NULL when nothing was paid in the window (imputed by the model, see the README).
    CAST(ph.paid_late_6m AS DOUBLE) / CAST(nullif(ph.paid_6m, 0) AS DOUBLE) AS paid_late_share_6m,
    CAST(coalesce(ph.paid_late_12m, 0) AS DOUBLE) AS paid_late_12m,
    CAST(ph.paid_late_12m AS DOUBLE) / CAST(nullif(ph.paid_12m, 0) AS DOUBLE) AS paid_late_share_12m,
    CAST(ph.days_late_sum_6m AS DOUBLE) / CAST(nullif(ph.paid_6m, 0) AS DOUBLE) AS avg_days_late_6m,
    -- Average days late in the last 3 months minus the 3 months before (> 0: paying later).
    CAST(ph.days_late_sum_3m AS DOUBLE) / CAST(nullif(ph.paid_3m, 0) AS DOUBLE)
        - CAST(ph.days_late_sum_prev_3m AS DOUBLE) / CAST(nullif(ph.paid_prev_3m, 0) AS DOUBLE) AS days_late_trend,
    CASE WHEN b.credit_limit > 0
         THEN CAST(coalesce(n.exposure, 0) AS DOUBLE) / CAST(b.credit_limit AS DOUBLE) END AS utilization,
    CAST(coalesce(pr.broken_promises, 0) AS DOUBLE) AS broken_promises_12m,
    CAST(coalesce(n.open_disputes, 0) AS DOUBLE) AS open_disputes,
    CAST(greatest(b.t - b.since, 0) AS DOUBLE) / 30.4375 AS tenure_months,
    CAST(coalesce(iv.invoices_12m, 0) AS DOUBLE) AS invoices_12m,
    CAST(coalesce(n.open_items, 0) AS DOUBLE) AS open_items,
    CAST(coalesce(c.contacts_3m, 0) AS DOUBLE) AS contacts_3m,
    -- Capped at 365: no payment in the last year.
    CAST(coalesce(b.t - lp.last_paid_day, 365) AS DOUBLE) AS days_since_last_payment
FROM base b
LEFT JOIN now_items n ON n.customer_id = b.customer_id AND n.t = b.t
LEFT JOIN dpd_history d ON d.customer_id = b.customer_id AND d.t = b.t
LEFT JOIN payment_history ph ON ph.customer_id = b.customer_id AND ph.t = b.t
LEFT JOIN last_payment lp ON lp.customer_id = b.customer_id AND lp.t = b.t
LEFT JOIN promises pr ON pr.customer_id = b.customer_id AND pr.t = b.t
LEFT JOIN contacts c ON c.customer_id = b.customer_id AND c.t = b.t
LEFT JOIN invoicing iv ON iv.customer_id = b.customer_id AND iv.t = b.t
ORDER BY b.snapshot_date, b.customer_id
