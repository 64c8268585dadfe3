//! Leases in the `leases` table (logged: an epoch survives a crash of the server), all
//! times by the database's clock. Acquire is one upsert that takes an expired lease
//! with the next epoch; renew and release match holder, epoch and an unexpired lease.

use std::time::Duration;

use deadpool_postgres::Pool;
use futures::future::{BoxFuture, FutureExt};
use tokio_postgres::Row;

use super::errors::{conn, failed, pg_error, read_conn, Doing};
use super::rows::{micros, signed};

use super::PgStore;
use crate::store::{Lease, LeaseFence, Leases, Owner, StoreError};

/// The columns of a lease, its time left in microseconds (0 once expired).
const COLUMNS: &str = "name, holder_node, holder_incarnation, epoch, \
    greatest(0, (extract(epoch FROM expires_at - clock_timestamp()) * 1000000)::int8)";

/// The lease matches the fence `$1` (name), `$2`, `$3` (holder), `$4` (epoch) and has
/// time left. Also used, `FOR SHARE`, by a firing transaction.
pub(super) const HELD: &str = "name = $1 AND holder_node = $2 AND holder_incarnation = $3 \
    AND epoch = $4 AND expires_at > clock_timestamp()";

fn lease_of(row: &Row) -> Lease {
    let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
    Lease {
        name: row.get(0),
        holder: Owner::new(row.get::<_, String>(1), unsigned(row.get(2))),
        epoch: unsigned(row.get(3)),
        remaining: Duration::from_micros(unsigned(row.get(4))),
    }
}

async fn acquire(
    pool: &Pool,
    name: String,
    holder: Owner,
    ttl: Duration,
) -> Result<Option<Lease>, StoreError> {
    let what = "acquiring a lease";
    let c = conn(pool, what).await?;
    let sql = format!(
        "INSERT INTO leases AS l (name, holder_node, holder_incarnation, epoch, expires_at) \
         VALUES ($1, $2, $3, 1, clock_timestamp() + $4::int8 * interval '1 microsecond') \
         ON CONFLICT (name) DO UPDATE SET holder_node = excluded.holder_node, \
             holder_incarnation = excluded.holder_incarnation, epoch = l.epoch + 1, \
             expires_at = excluded.expires_at \
         WHERE l.expires_at <= clock_timestamp() \
         RETURNING {COLUMNS}"
    );
    let incarnation = signed(holder.incarnation);
    let row = c
        .query_opt(&sql, &[&name, &holder.node, &incarnation, &micros(ttl)])
        .await
        .map_err(failed(what))?;
    Ok(row.as_ref().map(lease_of))
}

async fn renew(pool: &Pool, fence: LeaseFence, ttl: Duration) -> Result<Option<Lease>, StoreError> {
    let what = "renewing a lease";
    let c = conn(pool, what).await?;
    let sql = format!(
        "UPDATE leases SET expires_at = clock_timestamp() + $5::int8 * interval '1 microsecond' \
         WHERE {HELD} RETURNING {COLUMNS}"
    );
    let (incarnation, epoch) = (signed(fence.holder.incarnation), signed(fence.epoch));
    let row = c
        .query_opt(
            &sql,
            &[
                &fence.name,
                &fence.holder.node,
                &incarnation,
                &epoch,
                &micros(ttl),
            ],
        )
        .await
        .map_err(failed(what))?;
    Ok(row.as_ref().map(lease_of))
}

async fn release(pool: &Pool, fence: LeaseFence) -> Result<bool, StoreError> {
    let what = "releasing a lease";
    let c = conn(pool, what).await?;
    let sql = format!("UPDATE leases SET expires_at = clock_timestamp() WHERE {HELD}");
    let (incarnation, epoch) = (signed(fence.holder.incarnation), signed(fence.epoch));
    let n = c
        .execute(
            &sql,
            &[&fence.name, &fence.holder.node, &incarnation, &epoch],
        )
        .await
        .map_err(failed(what))?;
    Ok(n > 0)
}

async fn read(pool: &Pool, name: String) -> Result<Option<Lease>, StoreError> {
    let what = "reading a lease";
    let c = read_conn(pool, what).await?;
    let sql = format!("SELECT {COLUMNS} FROM leases WHERE name = $1");
    let row = c
        .query_opt(&sql, &[&name])
        .await
        .map_err(|e| pg_error(Doing::Read(what), e))?;
    Ok(row.as_ref().map(lease_of))
}

impl Leases for PgStore {
    fn acquire_lease(
        &self,
        name: String,
        holder: Owner,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let pool = self.pool().clone();
        async move { acquire(&pool, name, holder, ttl).await }.boxed()
    }

    fn renew_lease(
        &self,
        fence: LeaseFence,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let pool = self.pool().clone();
        async move { renew(&pool, fence, ttl).await }.boxed()
    }

    fn release_lease(&self, fence: LeaseFence) -> BoxFuture<'static, Result<bool, StoreError>> {
        let pool = self.pool().clone();
        async move { release(&pool, fence).await }.boxed()
    }

    fn lease(&self, name: String) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let pool = self.pool().clone();
        async move { read(&pool, name).await }.boxed()
    }
}
