//! The journal's index: what the console's message browser searches instead of reading the
//! journal. Written by the committer in the same commit as the entry it indexes, so it never
//! lags the journal; trimmed by journal retention with the segments it drops.
//!
//! Keys (`Keyspace::JournalIndex`) are `kind, value, \0, inverted seq (8 bytes BE)`, so a prefix
//! scan of one term yields its entries newest first, and "the next page" is a scan after the
//! last key shown. The term `*` (empty value) holds every entry's [`Summary`], which a browser
//! row shows; the other terms hold nothing and lead to it:
//!
//! | kind | value |
//! |---|---|
//! | `c` | channel |
//! | `s` | status |
//! | `k` | channel `\x1f` status |
//! | `t` | message type and event (`ADT^A08`) |
//! | `m` | message type alone (`ADT`) |
//! | `i` | control id (MSH-10) |
//! | `a` | sending application or facility, lowercased |
//! | `p` | a patient identifier the message carries (PID-3, MRG-1) or a patient it wrote |
//!
//! A search scans the most selective term it was given and checks the rest against each
//! summary, up to a budget of entries examined per page; a time range bounds the scan by
//! sequence number (arrival times rise with it).

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::CommitterHandle;
use super::journal::{JournalEntry, Status};
use crate::store::{Keyspace, Reader, Store, StoreError, Write, WriteSet};

/// Entries a search examines, at most, for one page; past it the page says where it stopped.
pub const SEARCH_BUDGET: usize = 20_000;

/// Index keys read from the store at a time.
const SCAN_CHUNK: usize = 512;

/// An error kept in a summary is cut to this many characters.
const ERROR_CHARS: usize = 240;

/// What a browser row shows of a journal entry, kept under the term `*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub seq: u64,
    pub channel: String,
    pub received_at: String,
    pub status: Status,
    pub message_type: String,
    pub control_id: String,
    pub sender: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    fn of(entry: &JournalEntry) -> Summary {
        Summary {
            seq: entry.seq,
            channel: entry.channel.clone(),
            received_at: entry.received_at.clone(),
            status: entry.status,
            message_type: entry.message_type.clone(),
            control_id: entry.control_id.clone(),
            sender: entry.sender.clone(),
            patients: entry.patients.clone(),
            identifiers: entry.identifiers.clone(),
            error: entry
                .error
                .as_ref()
                .map(|e| e.chars().take(ERROR_CHARS).collect()),
        }
    }

    /// Every term this entry is found under, `*` first.
    fn terms(&self) -> Vec<(u8, String)> {
        let mut terms = vec![
            (b'*', String::new()),
            (b'c', self.channel.clone()),
            (b's', self.status.name().to_string()),
            (b'k', format!("{}\x1f{}", self.channel, self.status.name())),
        ];
        if !self.message_type.is_empty() {
            terms.push((b't', self.message_type.clone()));
            let code = self.message_type.split('^').next().unwrap_or_default();
            terms.push((b'm', code.to_string()));
        }
        if !self.control_id.is_empty() {
            terms.push((b'i', self.control_id.clone()));
        }
        for part in self.sender.split('|').filter(|p| !p.is_empty()) {
            terms.push((b'a', part.to_lowercase()));
        }
        for patient in self.identifiers.iter().chain(&self.patients) {
            terms.push((b'p', patient.clone()));
        }
        terms.sort();
        terms.dedup();
        terms
    }
}

/// The index writes of a journal entry, to commit with it.
pub fn writes(entry: &JournalEntry) -> Vec<Write> {
    let summary = Summary::of(entry);
    let bytes = serde_json::to_vec(&summary).expect("a summary always serializes");
    let mut summary_bytes = Some(bytes);
    summary
        .terms()
        .into_iter()
        .map(|(kind, value)| {
            let value_bytes = if kind == b'*' {
                summary_bytes.take()
            } else {
                Some(vec![])
            };
            (
                Keyspace::JournalIndex,
                key(kind, &value, summary.seq),
                value_bytes,
            )
        })
        .collect()
}

/// The deletions that take entries out of the index, from their summaries (journal retention).
pub fn removals(summaries: &[Summary]) -> Vec<Write> {
    summaries
        .iter()
        .flat_map(|summary| {
            summary
                .terms()
                .into_iter()
                .map(|(kind, value)| (Keyspace::JournalIndex, key(kind, &value, summary.seq), None))
        })
        .collect()
}

/// Up to `limit` summaries of entries numbered below `below`, newest first: what retention
/// takes out of the index once the journal before `below` is gone.
pub fn older_than(store: &dyn Store, below: u64, limit: usize) -> Result<Vec<Summary>, StoreError> {
    let prefix = term_prefix(b'*', "");
    let after = key(b'*', "", below);
    let found = store.scan_prefix_after(Keyspace::JournalIndex, &prefix, &after, limit)?;
    Ok(found
        .iter()
        .filter_map(|(_, bytes)| serde_json::from_slice(bytes).ok())
        .collect())
}

/// The summary of entry `seq`, None when the index has none.
pub fn summary(reader: &dyn Reader, seq: u64) -> Result<Option<Summary>, StoreError> {
    Ok(reader
        .get(Keyspace::JournalIndex, &key(b'*', "", seq))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

fn term_prefix(kind: u8, value: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(value.len() + 2);
    prefix.push(kind);
    // A NUL would end the value early; nothing real has one, and it cannot be searched for.
    prefix.extend(value.bytes().filter(|&b| b != 0));
    prefix.push(0);
    prefix
}

fn key(kind: u8, value: &str, seq: u64) -> Vec<u8> {
    let mut key = term_prefix(kind, value);
    key.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
    key
}

fn seq_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::MAX - u64::from_be_bytes(tail))
}

/// Marks a store whose journal is indexed from its first entry (`Keyspace::Meta`).
pub(crate) const INDEXED: &[u8] = b"journal-indexed";

/// Entries indexed in one commit when catching up.
const BACKFILL_BATCH: usize = 1_000;

/// Indexes the entries a store journaled before it had this index (one from an earlier
/// version), a batch a commit, then marks it so it is done once. Later entries are indexed as
/// they are committed. An entry that does not read is left out.
pub async fn backfill(store: Arc<dyn Store>, committer: CommitterHandle) -> Result<usize, BackfillError> {
    let reader = store.clone();
    let (done, last) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((
            reader.get(Keyspace::Meta, INDEXED)?.is_some(),
            reader.journal_last_seq(),
        ))
    })
    .await??;
    if done {
        return Ok(0);
    }
    let (mut from, mut indexed) = (0, 0);
    while from <= last {
        let reader = store.clone();
        let entries = tokio::task::spawn_blocking(move || reader.journal(from, BACKFILL_BATCH)).await??;
        let Some((next, _)) = entries.last() else { break };
        from = next + 1;
        let ops: Vec<Write> = entries
            .iter()
            .filter(|(seq, _)| *seq <= last)
            .filter_map(|(_, bytes)| JournalEntry::from_bytes(bytes).ok())
            .flat_map(|entry| writes(&entry))
            .collect();
        indexed += ops
            .iter()
            .filter(|(_, key, _)| key.first() == Some(&b'*'))
            .count();
        committer
            .write(move |ctx| {
                ctx.tx.absorb(WriteSet { ops, journal: vec![] });
                Ok::<_, StoreError>(())
            })
            .await
            .ok_or(BackfillError::Stopping)??;
    }
    committer
        .write(|ctx| {
            ctx.tx.put(Keyspace::Meta, INDEXED.to_vec(), vec![]);
            Ok::<_, StoreError>(())
        })
        .await
        .ok_or(BackfillError::Stopping)??;
    Ok(indexed)
}

/// Why the journal's earlier entries could not all be indexed (the next start tries again).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a blocking read failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the index could not be stored: {0}")]
    NotStored(#[from] super::NotStored),
    #[error("the engine is stopping")]
    Stopping,
}

/// A search of the journal: blank fields match everything.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub status: String,
    /// `ADT` or `ADT^A08`.
    #[serde(default, rename = "type")]
    pub message_type: String,
    #[serde(default)]
    pub control_id: String,
    /// A sending application or facility, any case.
    #[serde(default)]
    pub sender: String,
    /// A patient identifier the message carries, or the id of a patient it wrote.
    #[serde(default)]
    pub patient: String,
    /// Arrived at or after this time (RFC 3339, or the `YYYY-MM-DDTHH:MM` of a form), UTC.
    #[serde(default)]
    pub since: String,
    /// Arrived before this time.
    #[serde(default)]
    pub until: String,
    /// Only entries numbered below this one (the next page).
    #[serde(default)]
    pub before: Option<u64>,
}

/// One page of a search, newest first.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Summary>,
    /// Where the next page starts (`before`), None when there is no more.
    pub next_before: Option<u64>,
    /// Entries examined for this page.
    pub examined: usize,
    /// Whether the page stopped at the budget rather than filling up or running out.
    pub stopped_at_budget: bool,
}

impl Query {
    /// The search's fields as a form names them (all but `before`), to carry the search into a
    /// link or a form.
    pub fn form_fields(&self) -> [(&'static str, &str); 8] {
        [
            ("channel", &self.channel),
            ("status", &self.status),
            ("type", &self.message_type),
            ("control_id", &self.control_id),
            ("sender", &self.sender),
            ("patient", &self.patient),
            ("since", &self.since),
            ("until", &self.until),
        ]
    }

    /// Blank or trimmed fields, the time bounds widened to full RFC 3339 for comparing.
    fn normalized(&self) -> Query {
        let time = |t: &str| {
            let t = t.trim();
            match t.len() {
                0 => String::new(),
                16 => format!("{t}:00.000Z"),
                19 => format!("{t}.000Z"),
                _ => t.to_string(),
            }
        };
        Query {
            channel: self.channel.trim().to_string(),
            status: self.status.trim().to_string(),
            message_type: self.message_type.trim().to_string(),
            control_id: self.control_id.trim().to_string(),
            sender: self.sender.trim().to_lowercase(),
            patient: self.patient.trim().to_string(),
            since: time(&self.since),
            until: time(&self.until),
            before: self.before,
        }
    }

    /// The term to scan: the one likely to match fewest entries.
    fn driver(&self) -> (u8, String) {
        if !self.control_id.is_empty() {
            (b'i', self.control_id.clone())
        } else if !self.patient.is_empty() {
            (b'p', self.patient.clone())
        } else if !self.sender.is_empty() {
            (b'a', self.sender.clone())
        } else if self.message_type.contains('^') {
            (b't', self.message_type.clone())
        } else if !self.channel.is_empty() && !self.status.is_empty() {
            (b'k', format!("{}\x1f{}", self.channel, self.status))
        } else if !self.message_type.is_empty() {
            (b'm', self.message_type.clone())
        } else if !self.channel.is_empty() {
            (b'c', self.channel.clone())
        } else if !self.status.is_empty() {
            (b's', self.status.clone())
        } else {
            (b'*', String::new())
        }
    }

    fn keeps(&self, row: &Summary) -> bool {
        let matches = |filter: &str, value: &str| filter.is_empty() || filter == value;
        matches(&self.channel, &row.channel)
            && matches(&self.status, row.status.name())
            && (self.message_type.is_empty()
                || row.message_type == self.message_type
                || row.message_type.split('^').next() == Some(self.message_type.as_str()))
            && matches(&self.control_id, &row.control_id)
            && (self.sender.is_empty()
                || row
                    .sender
                    .split('|')
                    .any(|part| part.to_lowercase() == self.sender))
            && (self.patient.is_empty()
                || row
                    .identifiers
                    .iter()
                    .chain(&row.patients)
                    .any(|p| *p == self.patient))
            && (self.until.is_empty() || row.received_at < self.until)
    }
}

/// One page of at most `page_size` entries matching `query`, newest first.
pub fn search(store: &dyn Store, query: &Query, page_size: usize) -> Result<Page, StoreError> {
    let query = query.normalized();
    let (kind, value) = query.driver();
    let prefix = term_prefix(kind, &value);
    let mut start = query.before.unwrap_or(u64::MAX);
    if !query.until.is_empty() {
        start = start.min(first_at_or_after(store, &query.until)?);
    }
    let mut after = match start {
        // Keys sort by inverted number: "after seq's key" is "numbered below seq".
        u64::MAX => prefix.clone(),
        below => key(kind, &value, below),
    };
    let mut page = Page::default();
    'scan: loop {
        let chunk = store.scan_prefix_after(Keyspace::JournalIndex, &prefix, &after, SCAN_CHUNK)?;
        let Some((last_key, _)) = chunk.last() else {
            break;
        };
        after = last_key.clone();
        let exhausted = chunk.len() < SCAN_CHUNK;
        for (key, bytes) in chunk {
            let Some(seq) = seq_of(&key) else { continue };
            let row = if kind == b'*' {
                serde_json::from_slice(&bytes).ok()
            } else {
                summary(store, seq)?
            };
            page.examined += 1;
            let Some(row) = row else { continue };
            if !query.since.is_empty() && row.received_at < query.since {
                // Arrival times rise with the number: everything further is older still.
                return Ok(page);
            }
            if query.keeps(&row) {
                page.rows.push(row);
                if page.rows.len() == page_size {
                    page.next_before = Some(seq);
                    break 'scan;
                }
            }
            if page.examined >= SEARCH_BUDGET {
                page.stopped_at_budget = true;
                page.next_before = Some(seq);
                break 'scan;
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}

/// The smallest entry number whose arrival is at or after `time` (one past the last entry when
/// none is): a binary search over the summaries, as arrival times rise with the number.
fn first_at_or_after(store: &dyn Store, time: &str) -> Result<u64, StoreError> {
    let (mut low, mut high) = (0u64, store.journal_last_seq() + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        // The newest entry numbered at or below `middle` (numbers may have gaps).
        let found = store.scan_prefix_after(
            Keyspace::JournalIndex,
            &term_prefix(b'*', ""),
            &key(b'*', "", middle.saturating_add(1)),
            1,
        )?;
        let arrived = found
            .first()
            .and_then(|(_, bytes)| serde_json::from_slice::<Summary>(bytes).ok())
            .map(|s| s.received_at);
        match arrived {
            Some(at) if at.as_str() >= time => high = middle,
            _ => low = middle + 1,
        }
    }
    Ok(low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Store, WriteSet};

    fn entry(seq: u64, channel: &str, status: Status, mrn: &str) -> JournalEntry {
        JournalEntry {
            seq,
            channel: channel.into(),
            received_at: format!("2026-12-01T10:{:02}:{:02}.000Z", seq / 60, seq % 60),
            peer: "127.0.0.1:1".into(),
            sender: "UCR|HIE".into(),
            control_id: format!("MSG{seq}"),
            message_type: if seq.is_multiple_of(2) {
                "ADT^A08"
            } else {
                "ORU^R01"
            }
            .into(),
            status,
            error: None,
            duplicate_of: None,
            patients: vec![],
            identifiers: vec![mrn.into()],
            changes: vec![],
            deliveries: vec![],
            replies: vec![],
            message: String::new(),
            message_bytes: None,
        }
    }

    fn store_of(entries: &[JournalEntry]) -> MemoryStore {
        let store = MemoryStore::new();
        for entry in entries {
            store
                .commit(WriteSet {
                    ops: writes(entry),
                    journal: vec![(entry.seq, entry.to_bytes())],
                })
                .unwrap();
        }
        store
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.rows.iter().map(|r| r.seq).collect()
    }

    fn many() -> Vec<JournalEntry> {
        (1..=300)
            .map(|seq: u64| {
                let channel = if seq.is_multiple_of(3) {
                    "ucr-oru"
                } else {
                    "ucr-adt"
                };
                let status = if seq.is_multiple_of(7) {
                    Status::Error
                } else {
                    Status::Applied
                };
                entry(seq, channel, status, &format!("MRN{}", seq % 10))
            })
            .collect()
    }

    /// The same search done the slow way: every entry, newest first, checked against the query.
    fn by_reading_everything(entries: &[JournalEntry], query: &Query) -> Vec<u64> {
        let query = query.normalized();
        entries
            .iter()
            .rev()
            .map(Summary::of)
            .filter(|s| query.keeps(s))
            .filter(|s| query.since.is_empty() || s.received_at >= query.since)
            .filter(|s| query.before.is_none_or(|b| s.seq < b))
            .map(|s| s.seq)
            .collect()
    }

    #[test]
    fn each_filter_finds_what_reading_every_entry_finds_newest_first() {
        let entries = many();
        let store = store_of(&entries);
        let queries = [
            Query::default(),
            Query {
                channel: "ucr-oru".into(),
                ..Query::default()
            },
            Query {
                status: "error".into(),
                ..Query::default()
            },
            Query {
                channel: "ucr-adt".into(),
                status: "error".into(),
                ..Query::default()
            },
            Query {
                message_type: "ADT".into(),
                ..Query::default()
            },
            Query {
                message_type: "ORU^R01".into(),
                status: "error".into(),
                ..Query::default()
            },
            Query {
                control_id: "MSG42".into(),
                ..Query::default()
            },
            Query {
                sender: " hie ".into(),
                channel: "ucr-oru".into(),
                ..Query::default()
            },
            Query {
                patient: "MRN3".into(),
                ..Query::default()
            },
            Query {
                patient: "MRN3".into(),
                since: "2026-12-01T10:02".into(),
                ..Query::default()
            },
            Query {
                until: "2026-12-01T10:01:30".into(),
                channel: "ucr-adt".into(),
                ..Query::default()
            },
            Query {
                before: Some(100),
                status: "error".into(),
                ..Query::default()
            },
            Query {
                control_id: "nothing".into(),
                ..Query::default()
            },
        ];
        for query in queries {
            let expected = by_reading_everything(&entries, &query);
            let mut found = vec![];
            let mut next = query.clone();
            loop {
                let page = search(&store, &next, 25).unwrap();
                assert!(page.rows.len() <= 25);
                found.extend(seqs(&page));
                match page.next_before {
                    Some(before) => next.before = Some(before),
                    None => break,
                }
            }
            assert_eq!(found, expected, "{query:?}");
        }
    }

    #[test]
    fn retention_takes_the_old_entries_out_of_every_term() {
        let entries = many();
        let store = store_of(&entries);
        let old = older_than(&store, 101, usize::MAX).unwrap();
        assert_eq!(old.len(), 100);
        assert_eq!(old[0].seq, 100, "newest of the old first");
        store
            .commit(WriteSet {
                ops: removals(&old),
                journal: vec![],
            })
            .unwrap();
        let everything = store
            .scan_prefix(Keyspace::JournalIndex, b"", usize::MAX)
            .unwrap();
        assert!(everything.iter().all(|(key, _)| seq_of(key).unwrap() > 100));
        let page = search(
            &store,
            &Query {
                patient: "MRN3".into(),
                ..Query::default()
            },
            1000,
        )
        .unwrap();
        assert_eq!(page.rows.len(), 20);
        assert!(summary(&store, 100).unwrap().is_none());
        assert_eq!(summary(&store, 101).unwrap().unwrap().control_id, "MSG101");
    }
}
