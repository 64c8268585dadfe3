//! The memory store's schedules, each with a version that grows with every write, and
//! the cron leader's firing under a lease.

use std::future::ready;

use futures::future::BoxFuture;

use super::{Inner, MemoryStore};
use crate::cron::schedule::ScheduleRecord;
use crate::store::{Fired, Firing, LeaseFence, ScheduleStore, StoreError};

impl Inner {
    /// Stores `record` with the next version; returns it.
    fn put_schedule(&mut self, mut record: ScheduleRecord) -> u64 {
        self.schedule_version += 1;
        record.version = self.schedule_version;
        self.schedules.insert(record.spec.name.clone(), record);
        self.schedule_version
    }

    /// Stores `record` if its name's stored version is `record.version` (zero: none).
    fn put_schedule_if(&mut self, record: ScheduleRecord) -> Option<u64> {
        let stored = self
            .schedules
            .get(&record.spec.name)
            .map_or(0, |r| r.version);
        (stored == record.version).then(|| self.put_schedule(record))
    }

    fn fire(&mut self, firing: Firing) -> Result<Fired, StoreError> {
        if !self.lease_held(&firing.lease) {
            let LeaseFence {
                name,
                holder,
                epoch,
            } = firing.lease;
            return Err(StoreError::LeaseLost {
                name,
                holder,
                epoch,
            });
        }
        let results = firing.writes.into_iter().map(|w| self.apply(w)).collect();
        let versions = firing
            .marks
            .into_iter()
            .map(|r| {
                // A schedule deleted since is not brought back.
                let present = self.schedules.contains_key(&r.spec.name);
                present.then(|| self.put_schedule_if(r)).flatten()
            })
            .collect();
        Ok(Fired { results, versions })
    }
}

impl ScheduleStore for MemoryStore {
    fn put_schedule(&self, record: ScheduleRecord) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with(|inner| {
            inner.put_schedule(record);
        })
    }

    fn put_schedules(
        &self,
        records: Vec<ScheduleRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with(|inner| {
            for r in records {
                inner.put_schedule(r);
            }
        })
    }

    fn delete_schedule(&self, name: String) -> BoxFuture<'static, Result<bool, StoreError>> {
        let removed = self.inner.lock().schedules.remove(&name).is_some();
        Box::pin(ready(Ok(removed)))
    }

    fn schedules(&self) -> BoxFuture<'static, Result<Vec<ScheduleRecord>, StoreError>> {
        let all = self.inner.lock().schedules.values().cloned().collect();
        Box::pin(ready(Ok(all)))
    }

    fn put_schedule_if(
        &self,
        record: ScheduleRecord,
    ) -> BoxFuture<'static, Result<Option<u64>, StoreError>> {
        self.with(|inner| inner.put_schedule_if(record))
    }

    fn fire_slots(&self, firing: Firing) -> BoxFuture<'static, Result<Fired, StoreError>> {
        let fired = self.inner.lock().fire(firing);
        Box::pin(ready(fired))
    }
}
