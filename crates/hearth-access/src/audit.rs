//! The audit table: every access decision and login attempt, with its reason.
//!
//! Records are append-only through this API; [`AuditLog::prune_before`] is
//! the one way to remove them, for retention. Queries return the newest
//! records first and page with an id cursor, so a page stays stable while
//! new records arrive.

use std::net::IpAddr;
use std::sync::Arc;

use hearth_store::{Store, StoreError};
use rusqlite::params;
use rusqlite::types::Value;

/// Most records one query returns.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Records access decisions and runs queries over them.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<Store>,
}

/// One decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Time of the decision in Unix seconds.
    pub time: i64,
    /// did:key of the user, if one was authenticated.
    pub subject: Option<String>,
    /// did:key of the device, if the request named a known device.
    pub device: Option<String>,
    /// Attempted action, such as `play_item` or `login`.
    pub action: String,
    /// Target of the action, such as an item id.
    pub resource: String,
    /// Whether access was allowed.
    pub allowed: bool,
    /// Why, in words an admin can act on.
    pub reason: String,
    /// Address the request came from.
    pub source: IpAddr,
}

/// A stored [`AuditEvent`] with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id, increasing with insertion order.
    pub id: i64,
    /// The recorded event.
    pub event: AuditEvent,
}

/// Filters and paging of an audit query. Every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records of this user did:key.
    pub subject: Option<String>,
    /// Only allowed (`Some(true)`) or denied (`Some(false)`) records.
    pub allowed: Option<bool>,
    /// Only records at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only records before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only records with an id below this, for the next page.
    pub before_id: Option<i64>,
    /// Page size; 0 means 100, and values above [`MAX_PAGE_SIZE`] are capped.
    pub limit: u32,
}

/// One page of query results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// Value for [`AuditQuery::before_id`] to read the next page; `None`
    /// on the last page.
    pub next_before_id: Option<i64>,
}

impl AuditLog {
    /// Creates an audit log on `store`, whose access migrations must have run.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Appends `event` and returns its id.
    ///
    /// # Errors
    ///
    /// Returns [`AuditError`] when the database write fails. Callers deny the
    /// request in that case, since the decision could not be recorded.
    pub fn record(&self, event: &AuditEvent) -> Result<i64, AuditError> {
        let conn = self.store.get()?;
        conn.execute(
            "INSERT INTO audit (time, subject, device, action, resource, decision, reason, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                event.time,
                event.subject,
                event.device,
                event.action,
                event.resource,
                if event.allowed { "allow" } else { "deny" },
                event.reason,
                event.source.to_string(),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Deletes the records before `time` (Unix seconds) and returns how many.
    ///
    /// # Errors
    ///
    /// Returns [`AuditError`] when the database write fails.
    pub fn prune_before(&self, time: i64) -> Result<usize, AuditError> {
        let conn = self.store.get()?;
        Ok(conn.execute("DELETE FROM audit WHERE time < ?1", [time])?)
    }

    /// Returns the records that match `query`, newest first.
    ///
    /// # Errors
    ///
    /// Returns [`AuditError`] when the database read fails or a stored row
    /// is malformed.
    pub fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let limit = match query.limit {
            0 => 100,
            limit => limit.min(MAX_PAGE_SIZE),
        };

        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(subject) = &query.subject {
            conditions.push("subject = ?");
            values.push(Value::Text(subject.clone()));
        }
        if let Some(allowed) = query.allowed {
            conditions.push("decision = ?");
            values.push(Value::Text(
                if allowed { "allow" } else { "deny" }.to_owned(),
            ));
        }
        if let Some(since) = query.since {
            conditions.push("time >= ?");
            values.push(Value::Integer(since));
        }
        if let Some(until) = query.until {
            conditions.push("time < ?");
            values.push(Value::Integer(until));
        }
        if let Some(before_id) = query.before_id {
            conditions.push("id < ?");
            values.push(Value::Integer(before_id));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };

        // One extra row shows whether another page follows.
        values.push(Value::Integer(i64::from(limit) + 1));
        let sql = format!(
            "SELECT id, time, subject, device, action, resource, decision, reason, source
             FROM audit {filter} ORDER BY id DESC LIMIT ?"
        );

        let conn = self.store.get()?;
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(read_record(row)?);
        }

        let next_before_id = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|record| record.id)
        } else {
            None
        };
        Ok(AuditPage {
            records,
            next_before_id,
        })
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("database", &self.store.path())
            .finish()
    }
}

fn read_record(row: &rusqlite::Row<'_>) -> Result<AuditRecord, AuditError> {
    let id: i64 = row.get(0)?;
    let decision: String = row.get(6)?;
    let source: String = row.get(8)?;
    let source = source.parse().map_err(|_| AuditError::CorruptRow {
        id,
        column: "source",
    })?;

    Ok(AuditRecord {
        id,
        event: AuditEvent {
            time: row.get(1)?,
            subject: row.get(2)?,
            device: row.get(3)?,
            action: row.get(4)?,
            resource: row.get(5)?,
            allowed: decision == "allow",
            reason: row.get(7)?,
            source,
        },
    })
}

/// Error from writing or reading the audit table.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// No database connection could be opened.
    #[error("failed to open the database for the audit log")]
    Store(#[from] StoreError),

    /// A query failed.
    #[error("audit log query failed")]
    Sqlite(#[from] rusqlite::Error),

    /// A stored row has a value this build cannot read.
    #[error("malformed audit record {id}: invalid {column}")]
    CorruptRow {
        /// Row id.
        id: i64,
        /// Column with the bad value.
        column: &'static str,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema;

    pub(crate) fn test_store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
        store.migrate(schema::DOMAIN, schema::MIGRATIONS).unwrap();
        (dir, store)
    }

    fn event(time: i64, subject: &str, allowed: bool) -> AuditEvent {
        AuditEvent {
            time,
            subject: Some(subject.to_owned()),
            device: Some("did:key:device".to_owned()),
            action: "play_item".to_owned(),
            resource: format!("item-{time}"),
            allowed,
            reason: if allowed {
                "allowed by rule 'adults'"
            } else {
                "denied"
            }
            .to_owned(),
            source: "192.168.1.20".parse().unwrap(),
        }
    }

    #[test]
    fn recorded_event_reads_back() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        let recorded = event(100, "alice", false);

        let id = log.record(&recorded).unwrap();
        let page = log.query(&AuditQuery::default()).unwrap();

        assert_eq!(
            page.records,
            vec![AuditRecord {
                id,
                event: recorded
            }]
        );
        assert_eq!(page.next_before_id, None);
    }

    #[test]
    fn query_filters_by_subject_decision_and_time() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        for time in 0..10 {
            log.record(&event(
                time,
                if time % 2 == 0 { "alice" } else { "bob" },
                time % 3 == 0,
            ))
            .unwrap();
        }

        let alice = log
            .query(&AuditQuery {
                subject: Some("alice".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(alice.records.len(), 5);
        assert!(
            alice
                .records
                .iter()
                .all(|r| r.event.subject.as_deref() == Some("alice"))
        );

        let denied = log
            .query(&AuditQuery {
                allowed: Some(false),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            denied
                .records
                .iter()
                .map(|r| r.event.time)
                .collect::<Vec<_>>(),
            [8, 7, 5, 4, 2, 1]
        );

        let window = log
            .query(&AuditQuery {
                since: Some(3),
                until: Some(6),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            window
                .records
                .iter()
                .map(|r| r.event.time)
                .collect::<Vec<_>>(),
            [5, 4, 3]
        );

        let combined = log
            .query(&AuditQuery {
                subject: Some("bob".into()),
                allowed: Some(true),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            combined
                .records
                .iter()
                .map(|r| r.event.time)
                .collect::<Vec<_>>(),
            [9, 3]
        );
    }

    #[test]
    fn pages_cover_every_record_once() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        for time in 0..25 {
            log.record(&event(time, "alice", true)).unwrap();
        }

        let mut seen = Vec::new();
        let mut query = AuditQuery {
            limit: 10,
            ..Default::default()
        };
        loop {
            let page = log.query(&query).unwrap();
            assert!(page.records.len() <= 10);
            seen.extend(page.records.iter().map(|r| r.event.time));
            match page.next_before_id {
                Some(id) => query.before_id = Some(id),
                None => break,
            }
        }

        assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
    }

    #[test]
    fn page_size_is_capped() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        log.record(&event(1, "alice", true)).unwrap();

        let page = log
            .query(&AuditQuery {
                limit: u32::MAX,
                ..Default::default()
            })
            .unwrap();

        assert_eq!(page.records.len(), 1);
    }

    #[test]
    fn subject_filter_is_not_sql() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        log.record(&event(1, "alice", true)).unwrap();

        let page = log
            .query(&AuditQuery {
                subject: Some("x' OR '1'='1".into()),
                ..Default::default()
            })
            .unwrap();

        assert!(page.records.is_empty());
    }

    #[test]
    fn prune_removes_only_older_records() {
        let (_dir, store) = test_store();
        let log = AuditLog::new(store);
        for time in 0..5 {
            log.record(&event(time, "alice", true)).unwrap();
        }

        assert_eq!(log.prune_before(3).unwrap(), 3);
        let left = log.query(&AuditQuery::default()).unwrap();
        assert_eq!(
            left.records
                .iter()
                .map(|r| r.event.time)
                .collect::<Vec<_>>(),
            [4, 3]
        );
    }
}
