-- The promises to pay made in the 12 months up to the snapshot {day} and whether each
-- was broken: its date plus {grace} days of grace passed and the promised invoice was not
-- paid in full by then (known at the snapshot: later payments do not mend it), as in the
-- model's broken_promises_12m. CTEs to put after WITH: promised, promised_paid,
-- promise_outcomes (customer_id, invoice_id, promise_day, promise_amount, broken).
promised AS (
    SELECT a.customer_id, a.invoice_id, CAST(a.promise_date AS INT) AS promise_day,
           a.promise_amount
    FROM activities a
    WHERE a.kind = 'promise' AND a.promise_date IS NOT NULL
      AND CAST(a.activity_date AS INT) <= {day}
      AND CAST(a.activity_date AS INT) > {day} - 365
),
promised_paid AS (
    SELECT i.invoice_id, p.last_day AS paid_day
    FROM invoices i
    JOIN (
        SELECT invoice_id, sum(amount) AS paid, max(CAST(payment_date AS INT)) AS last_day
        FROM payments
        WHERE CAST(payment_date AS INT) <= {day}
          AND invoice_id IN (SELECT invoice_id FROM promised)
        GROUP BY invoice_id
    ) p ON p.invoice_id = i.invoice_id
    WHERE p.paid >= i.amount
),
promise_outcomes AS (
    SELECT pr.customer_id, pr.invoice_id, pr.promise_day, pr.promise_amount,
           pr.promise_day + {grace} < {day}
               AND (f.paid_day IS NULL OR f.paid_day > pr.promise_day + {grace}) AS broken
    FROM promised pr
    LEFT JOIN promised_paid f ON f.invoice_id = pr.invoice_id
),
