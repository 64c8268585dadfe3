//! Conformance checks of leases and the cron leader's firing, for stores several
//! processes share (a shared memory store, PostgreSQL).

use std::time::Duration;

use super::{create, keyed, Harness};
use crate::cron::schedule::{ScheduleRecord, ScheduleSpec};
use crate::store::prelude::*;
use crate::store::{Firing, LeaseFence, NodeInfo, Owner, StoreError, WriteResult};
use crate::task::TaskState;

const TTL: Duration = Duration::from_secs(60);
/// So short that the lease has run out once the test has waited it out.
const GONE: Duration = Duration::from_micros(1);

/// Runs every lease check; panics on the first failure.
pub(crate) async fn run_leases<H: Harness>(h: &mut H) {
    a_lease_is_held_by_one_holder_and_renewed_only_by_it(h).await;
    an_expired_lease_goes_to_the_next_holder_with_the_next_epoch(h).await;
    a_released_lease_is_taken_at_once_and_the_old_holder_cannot_renew(h).await;
    schedules_are_versioned_and_put_if_compares_the_version(h).await;
    firing_writes_everything_under_the_lease_or_nothing(h).await;
}

async fn owner<S: Store>(s: &S, name: &str) -> Owner {
    let info = NodeInfo {
        name: name.into(),
        ..NodeInfo::default()
    };
    s.register(info).await.unwrap()
}

/// The free `cron` lease, taken by `holder`.
async fn taken<S: Store>(s: &S, holder: Owner) -> crate::store::Lease {
    let lease = s.acquire_lease("cron".into(), holder, TTL).await.unwrap();
    lease.expect("the lease is free")
}

async fn a_lease_is_held_by_one_holder_and_renewed_only_by_it<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    assert_eq!(s.lease("cron".into()).await.unwrap(), None, "never taken");
    let lease = s
        .acquire_lease("cron".into(), a.clone(), TTL)
        .await
        .unwrap();
    let lease = lease.expect("a free lease is taken");
    assert_eq!((&lease.holder, lease.epoch), (&a, 1));
    assert!(lease.remaining > TTL - Duration::from_secs(5), "{lease:?}");
    let taken = s
        .acquire_lease("cron".into(), b.clone(), TTL)
        .await
        .unwrap();
    assert_eq!(taken, None, "held in time: not taken");
    let again = s
        .acquire_lease("cron".into(), a.clone(), TTL)
        .await
        .unwrap();
    assert_eq!(again, None, "its holder renews, it does not acquire again");
    let renewed = s.renew_lease(lease.fence(), TTL).await.unwrap();
    assert_eq!(renewed.map(|l| (l.holder, l.epoch)), Some((a.clone(), 1)));
    let wrong_epoch = LeaseFence {
        epoch: 2,
        ..lease.fence()
    };
    assert_eq!(s.renew_lease(wrong_epoch, TTL).await.unwrap(), None);
    let wrong_holder = LeaseFence {
        holder: b,
        ..lease.fence()
    };
    assert_eq!(s.renew_lease(wrong_holder, TTL).await.unwrap(), None);
    let seen = s.lease("cron".into()).await.unwrap().expect("taken");
    assert_eq!((seen.holder, seen.epoch), (a, 1));
}

async fn an_expired_lease_goes_to_the_next_holder_with_the_next_epoch<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let first = s
        .acquire_lease("cron".into(), a.clone(), GONE)
        .await
        .unwrap();
    let first = first.expect("free");
    // The memory store answers in well under a microsecond, so the lease may still hold
    // on the next call: wait out its time (tokio's sleep rounds up to a millisecond).
    tokio::time::sleep(GONE).await;
    let seen = s.lease("cron".into()).await.unwrap().expect("taken");
    assert_eq!(seen.remaining, Duration::ZERO, "expired: no time left");
    assert_eq!(
        s.renew_lease(first.fence(), TTL).await.unwrap(),
        None,
        "an expired lease is not renewed"
    );
    let second = s
        .acquire_lease("cron".into(), b.clone(), TTL)
        .await
        .unwrap();
    let second = second.expect("an expired lease is taken");
    assert_eq!((second.holder, second.epoch), (b, 2), "the next epoch");
    let back = s.acquire_lease("cron".into(), a, TTL).await.unwrap();
    assert_eq!(back, None);
}

async fn a_released_lease_is_taken_at_once_and_the_old_holder_cannot_renew<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let lease = taken(&s, a).await;
    assert!(s.release_lease(lease.fence()).await.unwrap());
    assert!(
        !s.release_lease(lease.fence()).await.unwrap(),
        "released already"
    );
    let next = s.acquire_lease("cron".into(), b, TTL).await.unwrap();
    assert_eq!(next.map(|l| l.epoch), Some(2), "taken at once");
    assert_eq!(s.renew_lease(lease.fence(), TTL).await.unwrap(), None);
}

fn schedule(name: &str) -> ScheduleRecord {
    let at = chrono::DateTime::from_timestamp(1_735_689_600, 0).expect("2025");
    ScheduleRecord {
        spec: ScheduleSpec::new(name, "@daily", crate::task::NewTask::new("k", 1.into())),
        last_slot: None,
        last_task: None,
        created_at: at,
        updated_at: at,
        version: 0,
    }
}

async fn version_of<S: Store>(s: &S, name: &str) -> u64 {
    let all = s.schedules().await.unwrap();
    all.iter().find(|r| r.spec.name == name).unwrap().version
}

async fn schedules_are_versioned_and_put_if_compares_the_version<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let v1 = s.put_schedule_if(schedule("a")).await.unwrap();
    let v1 = v1.expect("inserted: there was none");
    assert!(v1 > 0);
    assert_eq!(version_of(&s, "a").await, v1);
    assert_eq!(
        s.put_schedule_if(schedule("a")).await.unwrap(),
        None,
        "version 0 inserts only"
    );
    let mut edit = schedule("a");
    edit.version = v1;
    edit.spec.paused = true;
    let v2 = s.put_schedule_if(edit.clone()).await.unwrap();
    let v2 = v2.expect("at its version: stored");
    assert!(v2 > v1, "versions grow");
    assert_eq!(
        s.put_schedule_if(edit).await.unwrap(),
        None,
        "a stale version is refused"
    );
    s.put_schedule(schedule("a")).await.unwrap();
    assert!(version_of(&s, "a").await > v2, "a plain put moves it too");
    let all = s.schedules().await.unwrap();
    assert!(!all[0].spec.paused, "the plain put replaced the record");
}

async fn firing_writes_everything_under_the_lease_or_nothing<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let lease = taken(&s, a).await;
    let v = s.put_schedule_if(schedule("s")).await.unwrap().unwrap();
    let gone = s.put_schedule_if(schedule("gone")).await.unwrap().unwrap();
    assert!(s.delete_schedule("gone".into()).await.unwrap());
    let slot = |n: u64| keyed(n, &format!("cron:s:{n}"), TaskState::Pending);
    let (one, two) = (slot(1), slot(2));
    let mut mark = schedule("s");
    mark.version = v;
    mark.last_slot = Some(mark.created_at);
    let mut deleted = schedule("gone");
    deleted.version = gone;
    let firing = Firing {
        lease: lease.fence(),
        writes: vec![create(&one)],
        marks: vec![mark.clone(), deleted],
    };
    let fired = s.fire_slots(firing).await.unwrap();
    assert_eq!(fired.results, vec![WriteResult::Done]);
    let v2 = fired.versions[0].expect("at its version: stored");
    assert_eq!(fired.versions[1], None, "a deleted schedule stays deleted");
    assert!(s.get(one.task.id).await.unwrap().is_some());
    let stored = s.schedules().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].version, stored[0].last_slot),
        (v2, mark.last_slot)
    );

    // The same slot again, with the version now stale: the key holds, the mark is left.
    let again = Firing {
        lease: lease.fence(),
        writes: vec![create(&keyed(3, "cron:s:1", TaskState::Pending))],
        marks: vec![mark.clone()],
    };
    let fired = s.fire_slots(again).await.unwrap();
    assert_eq!(fired.results, vec![WriteResult::Duplicate(one.task.id)]);
    assert_eq!(fired.versions, vec![None], "stale: left alone");

    // Under a lease that is no longer held: nothing at all.
    assert!(s.release_lease(lease.fence()).await.unwrap());
    taken(&s, b).await;
    let late = Firing {
        lease: lease.fence(),
        writes: vec![create(&two)],
        marks: vec![ScheduleRecord {
            version: v2,
            ..mark
        }],
    };
    let refused = s.fire_slots(late).await;
    assert!(
        matches!(&refused, Err(StoreError::LeaseLost { epoch: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(s.get(two.task.id).await.unwrap(), None, "no task");
    assert_eq!(version_of(&s, "s").await, v2, "no watermark");
}
