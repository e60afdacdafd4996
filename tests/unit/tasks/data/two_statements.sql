-- Two statements and a :name marker; the last one's rows are the task's output.
CREATE OR REPLACE TEMPORARY VIEW numbers AS
  SELECT id, CAST(id * 1.5 AS DECIMAL(10, 2)) AS price, 'a;b' AS text FROM range(10);

/* only ids at least :min_id; the ';' in comments and strings does not split */
SELECT id, price, text, :label AS label, DATE'2024-01-02' AS day
FROM numbers
WHERE id >= CAST(:min_id AS INT)
ORDER BY id;
