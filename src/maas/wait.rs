//! Waiters: poll a machine until it reaches a status, recording a timeline
//! of the statuses seen and the events MAAS logged on the way.
//!
//! A timeout says what was last seen, so a failed run explains itself.

use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::client::{EventQuery, MaasClient, MaasError};
use super::types::{Event, Machine, NodeStatus};

/// One thing seen while waiting; `at_ms` counts from the start of the wait.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEntry {
    Status {
        at_ms: u64,
        status: i32,
        status_name: String,
        power_state: String,
    },
    Event {
        at_ms: u64,
        id: i64,
        level: String,
        event_type: String,
        description: String,
    },
}

/// Statuses and events of one machine, in the order seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub system_id: String,
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// The distinct statuses, in order (transitions only).
    pub fn statuses(&self) -> Vec<NodeStatus> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                TimelineEntry::Status { status, .. } => Some(NodeStatus(*status)),
                _ => None,
            })
            .collect()
    }

    /// Event types with descriptions, oldest first: "Node changed status: From 'New' to ...".
    pub fn events(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                TimelineEntry::Event {
                    event_type,
                    description,
                    ..
                } if description.is_empty() => Some(event_type.clone()),
                TimelineEntry::Event {
                    event_type,
                    description,
                    ..
                } => Some(format!("{event_type}: {description}")),
                _ => None,
            })
            .collect()
    }

    fn last_seen(&self, last_machine: Option<&Machine>, last_error: Option<&str>) -> String {
        let mut parts = Vec::new();
        match last_machine {
            Some(m) => {
                let msg = m
                    .status_message
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(", message {s:?}"));
                parts.push(format!(
                    "status {} (power {}{})",
                    m.status,
                    m.power_state.as_str(),
                    msg.unwrap_or_default()
                ))
            }
            None => parts.push("the machine was never read".to_string()),
        }
        let last_event = self.entries.iter().rev().find_map(|e| match e {
            TimelineEntry::Event {
                at_ms,
                event_type,
                description,
                ..
            } => Some(format!(
                "last event {event_type:?} {description:?} at +{:.1}s",
                *at_ms as f64 / 1000.0
            )),
            _ => None,
        });
        parts.push(last_event.unwrap_or_else(|| "no events".to_string()));
        if let Some(e) = last_error {
            parts.push(format!("last API error: {e}"));
        }
        parts.join("; ")
    }
}

/// A wait that did not end at the wanted status.
#[derive(Debug, Error)]
pub enum WaitError {
    #[error("machine {system_id} did not reach {want} within {timeout:?}; last seen: {last_seen}")]
    Timeout {
        system_id: String,
        want: NodeStatus,
        timeout: Duration,
        last_seen: String,
        timeline: Timeline,
    },
    #[error(
        "machine {system_id} reached {reached} while waiting for {want}; last seen: {last_seen}"
    )]
    Failed {
        system_id: String,
        want: NodeStatus,
        reached: NodeStatus,
        last_seen: String,
        timeline: Timeline,
    },
    #[error("while waiting for machine {system_id} to reach {want}: {source}")]
    Api {
        system_id: String,
        want: NodeStatus,
        #[source]
        source: Box<MaasError>,
    },
}

impl WaitError {
    pub fn timeline(&self) -> Option<&Timeline> {
        match self {
            WaitError::Timeout { timeline, .. } | WaitError::Failed { timeline, .. } => {
                Some(timeline)
            }
            WaitError::Api { .. } => None,
        }
    }
}

impl MaasClient {
    /// Poll until the machine has status `want`. Stops early when it lands in
    /// a failed status it was not asked for. Connection errors and 5xx while
    /// polling are tolerated until the deadline; a 4xx ends the wait.
    pub async fn wait_for_status(
        &self,
        system_id: &str,
        want: NodeStatus,
        timeout: Duration,
    ) -> Result<Timeline, WaitError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut timeline = Timeline {
            system_id: system_id.to_string(),
            entries: Vec::new(),
        };
        let mut last_machine: Option<Machine> = None;
        let mut last_event_id: Option<i64> = None;
        let mut last_error: Option<String> = None;
        let mut napper = self.napper();
        loop {
            let at_ms = start.elapsed().as_millis() as u64;
            // Events first, so a status change and the event that explains it
            // land in the timeline in the order they happened.
            match self
                .events(&EventQuery {
                    system_id: Some(system_id.to_string()),
                    level: Some("DEBUG".into()),
                    after: last_event_id,
                    limit: Some(1000),
                })
                .await
            {
                Ok(page) => {
                    let mut events: Vec<Event> = page.events;
                    events.sort_by_key(|e| e.id);
                    for e in events {
                        if last_event_id.is_some_and(|last| e.id <= last) {
                            continue;
                        }
                        last_event_id = Some(e.id);
                        timeline.entries.push(TimelineEntry::Event {
                            at_ms,
                            id: e.id,
                            level: e.level,
                            event_type: e.event_type,
                            description: e.description,
                        });
                    }
                }
                Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                    return Err(WaitError::Api {
                        system_id: system_id.into(),
                        want,
                        source: Box::new(e),
                    });
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            match self.machine(system_id).await {
                Ok(m) => {
                    let changed = last_machine
                        .as_ref()
                        .is_none_or(|old| old.status != m.status);
                    if changed {
                        timeline.entries.push(TimelineEntry::Status {
                            at_ms,
                            status: m.status.0,
                            status_name: m.status_name.clone(),
                            power_state: m.power_state.as_str().to_string(),
                        });
                    }
                    let status = m.status;
                    last_machine = Some(m);
                    if status == want {
                        return Ok(timeline);
                    }
                    if status.is_failed() && !want.is_failed() {
                        // Collect the events that explain the failure first.
                        let last_seen =
                            timeline.last_seen(last_machine.as_ref(), last_error.as_deref());
                        return Err(WaitError::Failed {
                            system_id: system_id.into(),
                            want,
                            reached: status,
                            last_seen,
                            timeline,
                        });
                    }
                }
                Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                    return Err(WaitError::Api {
                        system_id: system_id.into(),
                        want,
                        source: Box::new(e),
                    });
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            if Instant::now() >= deadline {
                let last_seen = timeline.last_seen(last_machine.as_ref(), last_error.as_deref());
                return Err(WaitError::Timeout {
                    system_id: system_id.into(),
                    want,
                    timeout,
                    last_seen,
                    timeline,
                });
            }
            let nap = self
                .poll_interval
                .min(deadline.saturating_duration_since(Instant::now()));
            napper.nap(nap).await;
        }
    }
}
