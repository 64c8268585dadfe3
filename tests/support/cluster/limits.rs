//! The rate checker: the most `started` events in any 10-second window, read from the
//! database after a run, for a cluster-wide limit's bound (the limit plus 10 %).

use taskmesh::testing::pg::TestDb;

/// The window the bound is measured over, in seconds.
pub const WINDOW_SECS: i64 = 10;

/// The most starts a limit of `per_second` allows in one window: the limit plus 10 %.
pub fn bound(per_second: i64) -> i64 {
    per_second * WINDOW_SECS * 11 / 10
}

/// The most `started` events of tasks in `queue` (every queue when `None`) in any
/// 10-second window sliding by 100 ms between the first and last start, skipping the
/// first `settle` seconds (shares are set at the first heartbeats); and how many
/// windows there were.
pub async fn busiest_window(db: &TestDb, queue: Option<&str>, settle: i64) -> (i64, i64) {
    let client = db.client().await;
    let sql = "WITH s AS (SELECT e.at FROM events e JOIN tasks t ON t.id = e.task \
                 WHERE e.type = 'started' AND ($2::text IS NULL OR t.queue = $2)), \
               b AS (SELECT min(at) + $1 * 1000000000::int8 AS lo, max(at) AS hi FROM s), \
               w AS (SELECT generate_series(b.lo, b.hi - $3 * 1000000000::int8, 100000000) AS t FROM b) \
               SELECT coalesce(max((SELECT count(*) FROM s WHERE s.at >= w.t AND s.at < w.t + $3 * 1000000000::int8)), 0), \
                      (SELECT count(*) FROM w) FROM w";
    let row = client
        .query_one(sql, &[&settle, &queue, &WINDOW_SECS])
        .await
        .expect("the events can be read");
    (row.get(0), row.get(1))
}
