//! Events about machines (or, before enlistment, about a MAC).

use super::{Result, Store, maas_time};
use crate::maas::types::{Event, EventsPage};
use crate::targets::sim::events::EventKind;

/// MAAS event levels, lowest first.
pub const LEVELS: &[&str] = &["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

fn levels_at_or_above(min: &str) -> Vec<String> {
    let min = min.to_ascii_uppercase();
    let start = LEVELS.iter().position(|l| *l == min).unwrap_or(1);
    LEVELS[start..].iter().map(|s| s.to_string()).collect()
}

impl Store {
    /// Record an event about a machine (by system_id) or, for a PXE or TFTP
    /// request from an unknown node, about a MAC.
    pub async fn record_event(
        &self,
        system_id: Option<&str>,
        mac: Option<&str>,
        kind: &EventKind,
        description: &str,
    ) -> Result<i64> {
        self.one(
            "recording an event",
            "INSERT INTO events (machine_id, mac_address, event_type, level, description)
             VALUES ((SELECT id FROM machines WHERE system_id = $1), $2, $3, $4, $5) RETURNING id",
            &[
                &system_id,
                &mac,
                &kind.description,
                &kind.level,
                &description,
            ],
            |r| r.get(0),
        )
        .await
    }

    /// events/?op=query: newest first, filtered by node and minimum level.
    pub async fn events(
        &self,
        system_id: Option<&str>,
        min_level: &str,
        after: Option<i64>,
        limit: i64,
    ) -> Result<EventsPage> {
        let levels = levels_at_or_above(min_level);
        let events = self
            .rows(
                "querying events",
                &format!(
                    "SELECT e.id, m.system_id, m.hostname, e.level, {}, e.event_type, e.description, e.username
                     FROM events e LEFT JOIN machines m ON m.id = e.machine_id
                     WHERE ($1::text IS NULL OR m.system_id = $1) AND e.level = ANY($2)
                       AND ($3::bigint IS NULL OR e.id > $3)
                     ORDER BY e.id DESC LIMIT $4",
                    maas_time("e.created")
                ),
                &[&system_id, &levels, &after, &limit],
                |r| Event {
                    id: r.get(0),
                    node: r.get(1),
                    hostname: r.get::<_, Option<String>>(2).unwrap_or_default(),
                    level: r.get(3),
                    created: r.get(4),
                    event_type: r.get(5),
                    description: r.get(6),
                    username: r.get(7),
                },
            )
            .await?;
        Ok(EventsPage {
            count: events.len(),
            events,
            next_uri: String::new(),
            prev_uri: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_from_the_minimum() {
        assert_eq!(
            levels_at_or_above("warning"),
            vec!["WARNING", "ERROR", "CRITICAL"]
        );
        assert_eq!(levels_at_or_above("DEBUG").len(), 5);
    }
}
