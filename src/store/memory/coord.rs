//! The memory store's node registry and task sharing, for several systems in one process.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::{Inner, MemoryStore};
use crate::store::{
    Coordination, NodeInfo, NodeRecord, Notifier, Owner, Requested, StoreError, TaskRecord,
};
use crate::task::{TaskId, TaskState};

/// Registered incarnations, by owner, and the last incarnation number given.
#[derive(Default)]
pub(super) struct Registry {
    nodes: BTreeMap<Owner, Node>,
    last: u64,
}

struct Node {
    info: NodeInfo,
    started_at: SystemTime,
    heartbeat_at: SystemTime,
}

fn age(at: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(at).unwrap_or_default()
}

impl Registry {
    /// True if `owner` is registered, heartbeats within `dead_after`, and is its node's
    /// newest incarnation.
    fn alive(&self, owner: &Owner, dead_after: Duration, now: SystemTime) -> bool {
        let newest = self.nodes.keys().filter(|o| o.node == owner.node).max();
        self.nodes
            .get(owner)
            .is_some_and(|n| age(n.heartbeat_at, now) <= dead_after && newest == Some(owner))
    }
}

impl Inner {
    fn dead(&self, dead_after: Duration) -> Vec<Owner> {
        let now = SystemTime::now();
        let registered = self.nodes.nodes.keys().cloned();
        let holding = self.tasks.values().filter_map(|e| {
            let life = &e.record.life;
            life.owner.clone().filter(|_| !life.state.is_terminal())
        });
        let mut dead: Vec<Owner> = registered
            .chain(holding)
            .filter(|o| !self.nodes.alive(o, dead_after, now))
            .collect();
        dead.sort();
        dead.dedup();
        dead
    }

    fn held(&self, owner: &Owner) -> Vec<TaskRecord> {
        let mut held: Vec<&TaskRecord> = self
            .tasks
            .values()
            .map(|e| &e.record)
            .filter(|r| r.life.owner.as_ref() == Some(owner) && !r.life.state.is_terminal())
            .collect();
        held.sort_by_key(|r| {
            (
                r.life.state != TaskState::Running,
                r.task.created_at,
                r.task.id,
            )
        });
        held.into_iter().cloned().collect()
    }

    fn release(&mut self, owner: &Owner) -> u64 {
        let mut released = 0;
        for e in self.tasks.values_mut() {
            let life = &mut e.record.life;
            let waiting = !life.state.is_terminal() && life.state != TaskState::Running;
            if waiting && life.owner.as_ref() == Some(owner) {
                life.owner = None;
                released += 1;
            }
        }
        released
    }

    fn reserve(&mut self, owner: Owner, queues: &[String], limit: u32) -> Vec<TaskRecord> {
        let now = SystemTime::now();
        let mut due: Vec<&mut TaskRecord> = self
            .tasks
            .values_mut()
            .map(|e| &mut e.record)
            .filter(|r| {
                let life = &r.life;
                let due = match life.state {
                    TaskState::Pending => true,
                    TaskState::Scheduled | TaskState::Retrying => {
                        life.due_at.is_none_or(|at| at <= now)
                    }
                    _ => false,
                };
                due && life.owner.is_none() && queues.iter().any(|q| **q == *r.task.queue)
            })
            .collect();
        due.sort_by_key(|r| (std::cmp::Reverse(r.task.priority), r.life.due_at, r.task.id));
        due.into_iter()
            .take(limit as usize)
            .map(|r| {
                r.life.owner = Some(owner.clone());
                r.clone()
            })
            .collect()
    }

    fn reserve_ids(&mut self, owner: Owner, ids: &[TaskId]) -> Vec<TaskRecord> {
        let now = SystemTime::now();
        let mut taken = Vec::new();
        for id in ids {
            let Some(e) = self.tasks.get_mut(id) else {
                continue;
            };
            let life = &mut e.record.life;
            let due = match life.state {
                TaskState::Pending => true,
                TaskState::Scheduled | TaskState::Retrying => {
                    life.due_at.is_none_or(|at| at <= now)
                }
                _ => false,
            };
            let held = life.owner.as_ref() == Some(&owner);
            let waiting = matches!(
                life.state,
                TaskState::Pending | TaskState::Scheduled | TaskState::Retrying
            );
            if (due || (held && waiting)) && life.owner.as_ref().is_none_or(|o| *o == owner) {
                life.owner = Some(owner.clone());
                taken.push(e.record.clone());
            }
        }
        taken
    }

    fn requested(&self, owner: &Owner) -> Vec<Requested> {
        let held = self.tasks.values().map(|e| &e.record).filter(|r| {
            matches!(
                r.life.state,
                TaskState::Running
                    | TaskState::Pending
                    | TaskState::Scheduled
                    | TaskState::Retrying
            ) && r.life.owner.as_ref() == Some(owner)
        });
        held.filter_map(|r| {
            let intent = r.life.intent.clone()?;
            Some(Requested {
                task_id: r.task.id,
                attempt: r.life.attempt,
                intent,
                waiting: r.life.state != TaskState::Running,
            })
        })
        .collect()
    }
}

fn ready<T: Send + 'static>(
    value: Result<T, StoreError>,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(std::future::ready(value))
}

impl Notifier for MemoryStore {
    fn notify(&self, queues: Vec<String>) -> BoxFuture<'static, Result<(), StoreError>> {
        if let Some(hints) = &self.hints {
            for queue in queues {
                // No listener yet is not an error: nobody needs waking.
                let _ = hints.send(queue);
            }
        }
        ready(Ok(()))
    }

    fn listen(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.hints.as_ref().map(|h| h.subscribe())
    }
}

impl Coordination for MemoryStore {
    fn shared(&self) -> bool {
        self.shared
    }

    fn register(&self, info: NodeInfo) -> BoxFuture<'static, Result<Owner, StoreError>> {
        let mut inner = self.inner.lock();
        let reg = &mut inner.nodes;
        reg.last += 1;
        let owner = Owner::new(info.name.clone(), reg.last);
        let now = SystemTime::now();
        let node = Node {
            info,
            started_at: now,
            heartbeat_at: now,
        };
        reg.nodes.insert(owner.clone(), node);
        ready(Ok(owner))
    }

    fn heartbeat(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<Requested>, StoreError>> {
        let mut inner = self.inner.lock();
        let Some(node) = inner.nodes.nodes.get_mut(&owner) else {
            return ready(Err(StoreError::Fenced { owner }));
        };
        node.heartbeat_at = SystemTime::now();
        ready(Ok(inner.requested(&owner)))
    }

    fn nodes(&self) -> BoxFuture<'static, Result<Vec<NodeRecord>, StoreError>> {
        let now = SystemTime::now();
        let inner = self.inner.lock();
        let records = inner.nodes.nodes.iter().map(|(owner, n)| NodeRecord {
            owner: owner.clone(),
            info: n.info.clone(),
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
            heartbeat_age: age(n.heartbeat_at, now),
        });
        ready(Ok(records.collect()))
    }

    fn dead(&self, dead_after: Duration) -> BoxFuture<'static, Result<Vec<Owner>, StoreError>> {
        self.with(|inner| inner.dead(dead_after))
    }

    fn bury(
        &self,
        owner: Owner,
        dead_after: Duration,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        self.with(|inner| {
            let reg = &mut inner.nodes;
            if reg.alive(&owner, dead_after, SystemTime::now()) {
                return false;
            }
            reg.nodes.remove(&owner);
            true
        })
    }

    fn held(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.with(|inner| inner.held(&owner))
    }

    fn release(&self, owner: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with(|inner| inner.release(&owner))
    }

    fn reserve(
        &self,
        owner: Owner,
        queues: Vec<String>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.with(|inner| inner.reserve(owner, &queues, limit))
    }

    fn reserve_ids(
        &self,
        owner: Owner,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.with(|inner| inner.reserve_ids(owner, &ids))
    }
}
