-- arq's risk-model label (DOMAIN.md §4): for each customer and snapshot date t with
-- {from_day} <= t <= {to_day}, went_bad = true when the customer reaches 90+ days past due
-- on any open item, or has a balance written off as bad debt, within (t, t + 90 days].
--
-- Reaching 90+ DPD is read from the later snapshots: an item still open in a snapshot
-- s > t was open on every day before s, so it was at least 90 days past due within the
-- window when due_date + 90 <= min(s, t + 90). (With month-end snapshots, the snapshot
-- after t + 90 is what shows an item that turned 90 between the last snapshot in the
-- window and t + 90.) went_bad is NULL while t + 90 is after the newest snapshot: the
-- outcome is not known yet, and such rows are never used for training.
--
-- The snapshots read for t are those after t up to the first one on or after t + 90
-- ({scan_to} bounds them for the latest t, so the others are not scanned): an item
-- open in a later snapshot and due by t is open in that one too.
--
-- Nothing after the day {horizon} is read (snapshots, write-offs), and it counts as the
-- newest snapshot: `arq train --as-of` trains as if the warehouse ended there.
WITH base AS (
    SELECT customer_id, snapshot_date, CAST(snapshot_date AS INT) AS t
    FROM customers
    WHERE CAST(snapshot_date AS INT) BETWEEN {from_day} AND {to_day}
),
newest AS (
    SELECT least(max(CAST(snapshot_date AS INT)), {horizon}) AS last_day FROM customers
),
reached_90 AS (
    SELECT DISTINCT b.customer_id, b.t
    FROM base b
    JOIN open_items o ON o.customer_id = b.customer_id
    WHERE CAST(o.snapshot_date AS INT) > b.t
      AND CAST(o.snapshot_date AS INT) > {from_day}
      AND CAST(o.snapshot_date AS INT) <= {horizon}
      AND CAST(o.snapshot_date AS INT) <= {scan_to}
      AND CAST(o.due_date AS INT) + 90 <= least(CAST(o.snapshot_date AS INT), b.t + 90)
),
written_off AS (
    SELECT DISTINCT b.customer_id, b.t
    FROM base b
    JOIN write_offs w ON w.customer_id = b.customer_id
    WHERE w.reason = 'bad_debt'
      AND CAST(w.write_off_date AS INT) > b.t
      AND CAST(w.write_off_date AS INT) <= b.t + 90
      AND CAST(w.write_off_date AS INT) <= {horizon}
)
SELECT
    b.customer_id,
    b.snapshot_date,
    CASE WHEN b.t + 90 > l.last_day THEN NULL
         ELSE r.customer_id IS NOT NULL OR w.customer_id IS NOT NULL END AS went_bad
FROM base b
CROSS JOIN newest l
LEFT JOIN reached_90 r ON r.customer_id = b.customer_id AND r.t = b.t
LEFT JOIN written_off w ON w.customer_id = b.customer_id AND w.t = b.t
ORDER BY b.snapshot_date, b.customer_id
