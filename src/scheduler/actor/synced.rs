//! The schedules on a store several processes share: the database holds them, any
//! process edits them, and every process's book is a copy it refreshes.
//!
//! - An edit reads the schedule from the store, changes it, and stores it only if its
//!   version is still the one read (compare and set), trying again a few times if
//!   another process wrote it meanwhile; so an edit never overwrites another edit or the
//!   leader's watermark.
//! - The book is refreshed from the store every [`REFRESH`] (and when this process
//!   becomes the leader), so the leader sees an edit made elsewhere within that time.

use std::collections::BTreeMap;
use std::time::Duration;

use super::SchedulerState;
use crate::scheduler::{ScheduleError, ScheduleRecord};
use crate::store::StoreError;

/// How often a process reads the schedules from a shared store.
pub(crate) const REFRESH: Duration = Duration::from_millis(500);

/// How many times an edit is tried when another process keeps writing the schedule.
const TRIES: usize = 5;

impl SchedulerState {
    /// True if the schedules live in a store several processes share.
    pub(super) fn synced(&self) -> bool {
        self.shared.journal.shared()
    }

    /// Replaces the book with the store's schedules. Recurrences are parsed again only
    /// for schedules whose expression or zone changed.
    pub(super) async fn refresh(&mut self) -> Result<(), ScheduleError> {
        let Some(store) = self.shared.journal.store() else {
            return Ok(());
        };
        let stored = store.schedules().await?;
        let book: BTreeMap<String, ScheduleRecord> = stored
            .into_iter()
            .map(|r| (r.spec.name.clone(), r))
            .collect();
        self.recurrences.retain(|name, _| book.contains_key(name));
        self.retry_at.retain(|name, _| book.contains_key(name));
        let old = std::mem::replace(&mut *self.cron().book.lock(), book.clone());
        for (name, r) in &book {
            let same = old.get(name).is_some_and(|o| o.spec == r.spec);
            if !same || !self.recurrences.contains_key(name) {
                self.parse(name, r);
            }
        }
        Ok(())
    }

    /// Applies `edit` to the stored schedule `name` (`None`: there is none) and stores
    /// the result if nobody wrote the schedule meanwhile; tries again otherwise.
    pub(super) async fn edit_synced(
        &mut self,
        name: &str,
        mut edit: impl FnMut(Option<ScheduleRecord>) -> Result<ScheduleRecord, ScheduleError>,
    ) -> Result<ScheduleRecord, ScheduleError> {
        let Some(store) = self.shared.journal.store() else {
            return Err(StoreError::Closed.into());
        };
        for _ in 0..TRIES {
            let current = store
                .schedules()
                .await?
                .into_iter()
                .find(|r| r.spec.name == name);
            let mut record = edit(current)?;
            if let Some(version) = store.put_schedule_if(record.clone()).await? {
                record.version = version;
                self.cron()
                    .book
                    .lock()
                    .insert(name.to_string(), record.clone());
                return Ok(record);
            }
        }
        Err(StoreError::Conflict {
            source: format!("schedule {name:?} kept changing; try again").into(),
        }
        .into())
    }
}
