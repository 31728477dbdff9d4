//! A log segment on a storage: its events in the server's own file format
//! (`<name>.seg`, `.seg.age` when encrypted) and its description
//! (`<name>.idx`, JSON): which server, from which position to which, the
//! first and last event's time, the size and SHA-256 of the events.
//!
//! A description read from a storage is hostile until [`SegmentInfo::check`]
//! passes: its size is bounded before it is parsed, its names are plain,
//! and its numbers agree with each other.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every segment's object name begins so (copies' names begin
/// `billmgr-2…`, and their listings end in `.json`: a rescan of copies
/// never takes a segment for one).
pub const PREFIX: &str = "billmgr-binlog-";

/// A description's largest size.
pub const MAX_INFO: u64 = 64 << 10;

/// A place in the server's binary log: a file and the byte where an event
/// begins.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl Position {
    /// Whether this place comes at or before `other` in the same server's
    /// log (files `<base>.<number>` compared by their number); `None`
    /// when the files are of different bases.
    pub fn at_or_before(&self, other: &Position) -> Option<bool> {
        let split = |f: &str| {
            let (base, n) = f.rsplit_once('.')?;
            Some((base.to_string(), n.parse::<u64>().ok()?))
        };
        let (a, b) = (split(&self.file)?, split(&other.file)?);
        (a.0 == b.0).then(|| (a.1, self.pos) <= (b.1, other.pos))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// A segment's description.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentInfo {
    pub format: u32,
    /// The server's identity (`@@server_uuid`, or MariaDB's server id
    /// and host name).
    pub server: String,
    /// Where its first event begins in the server's log.
    pub start: Position,
    /// Bytes before its first event: the magic and the format
    /// description. (The events after it are the server's from `start`
    /// on, in order, but not always every byte of its file: MariaDB sends
    /// a replica no `Annotate_rows` events unless asked in a way the
    /// client library does not offer; positions are read from the events'
    /// own `log_pos`.)
    pub head: u64,
    /// Where the event after its last one begins (the next segment's
    /// start when nothing was lost between them).
    pub next: Position,
    /// Its first and last event's time, UTC seconds.
    pub first_time: i64,
    pub last_time: i64,
    pub events: u64,
    /// Size and SHA-256 of the events as the server wrote them (the
    /// `.seg` file, decrypted).
    pub size: u64,
    pub sha256: String,
    /// Size of the object on the storage.
    pub stored_size: u64,
    /// The segment's key sealed with the passphrase (hex), when the
    /// segment is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A description that does not hold together.
#[derive(Debug, Error)]
#[error("the log segment description `{object}` is not valid: {why}")]
pub struct BadSegment {
    pub object: String,
    pub why: String,
}

/// A segment's name: server, file, position and first event's time, so
/// that two segments never share one (a server that starts its log anew
/// writes the same file names again, at other times).
pub fn name(server: &str, start: &Position, first_time: i64) -> String {
    format!(
        "{PREFIX}{}-{}-{:012}-{}",
        clean(server),
        clean(&start.file),
        start.pos,
        first_time.max(0)
    )
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

fn plain_file(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl SegmentInfo {
    pub fn name(&self) -> String {
        name(&self.server, &self.start, self.first_time)
    }

    /// Whether the log at `p` is inside this segment (or at its ends).
    pub fn holds(&self, p: &Position) -> bool {
        p.file == self.start.file
            && p.pos >= self.start.pos
            && (self.next.file != p.file || p.pos <= self.next.pos)
    }

    /// The events' object on a storage.
    pub fn object(&self) -> String {
        let name = self.name();
        if self.key.is_some() {
            format!("{name}.seg.age")
        } else {
            format!("{name}.seg")
        }
    }

    /// Parses a description read from `object`, and checks it.
    pub fn from_json(object: &str, bytes: &[u8]) -> Result<SegmentInfo, BadSegment> {
        let bad = |why: String| BadSegment {
            object: object.to_string(),
            why,
        };
        if bytes.len() as u64 > MAX_INFO {
            return Err(bad(format!("{} bytes", bytes.len())));
        }
        let info: SegmentInfo = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        info.check().map_err(bad)?;
        if format!("{}.idx", info.name()) != object {
            return Err(bad("its name does not match what it describes".into()));
        }
        Ok(info)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != 1 {
            return Err(format!("format {} is not known to this build", self.format));
        }
        if !plain_file(&self.start.file) || !plain_file(&self.next.file) {
            return Err("a log file name is not a plain name".into());
        }
        if self.server.is_empty() || self.server.len() > 200 {
            return Err("no server identity".into());
        }
        if self.start.pos < 4 || self.next.pos < 4 {
            return Err("a position before the log's first event".into());
        }
        if self.head < 4 + super::event::HEADER_LEN as u64 || self.head > self.size {
            return Err("its head is not a format description".into());
        }
        if self.start.file == self.next.file && self.next.pos <= self.start.pos {
            return Err("it ends before it begins".into());
        }
        if self.last_time < self.first_time || self.events == 0 {
            return Err("its times or its count of events do not agree".into());
        }
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&self.sha256) {
            return Err("its SHA-256 is not 64 hex digits".into());
        }
        if let Some(key) = &self.key {
            if key.len() > 8192 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("its sealed key is not hex".into());
            }
        }
        Ok(())
    }
}

/// Where the held log ends before the time asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// No segment holds this position (the copy's, or one after a break).
    NotHeld(Position),
    /// The log is held up to this position, whose last event is of `time`
    /// (a second that may go on in a segment not stored yet).
    EndsAt { next: Position, time: i64 },
}

/// The segments that carry the log on from `from` without a break, in
/// order, far enough to replay it up to `until` (UTC seconds): to the one
/// with an event after `until`, or to the last one before a segment that
/// begins after it.
pub fn chain<'a>(
    segments: &'a [SegmentInfo],
    from: &Position,
    until: i64,
) -> Result<Vec<&'a SegmentInfo>, ChainBreak> {
    let mut by_start: std::collections::HashMap<&Position, &SegmentInfo> =
        std::collections::HashMap::new();
    for s in segments {
        by_start.entry(&s.start).or_insert(s);
    }
    // A segment may begin before `from` (the copy was taken while it was
    // being written): the one that holds it starts the chain.
    let first = by_start.get(from).copied().or_else(|| {
        segments
            .iter()
            .filter(|s| s.start.file == from.file && s.start.pos < from.pos)
            .filter(|s| s.next.file != from.file || s.next.pos > from.pos)
            .max_by_key(|s| s.start.pos)
    });
    let Some(mut at) = first else {
        return Err(ChainBreak::NotHeld(from.clone()));
    };
    let mut found = Vec::new();
    loop {
        found.push(at);
        // Past `until` within this segment: the replay stops in it. (At
        // `until` exactly, the next segment may hold more of that second.)
        if at.last_time > until {
            return Ok(found);
        }
        match by_start.get(&at.next) {
            Some(next) if next.first_time > until => return Ok(found),
            Some(next) => at = next,
            None => {
                return Err(ChainBreak::EndsAt {
                    next: at.next.clone(),
                    time: at.last_time,
                })
            }
        }
    }
}

/// The segments that lead without a break to the newest one (by its last
/// event), newest first: what the log holds up to its end.
pub fn unbroken_to_newest(segments: &[SegmentInfo]) -> Vec<&SegmentInfo> {
    let by_next: std::collections::HashMap<&Position, &SegmentInfo> =
        segments.iter().map(|s| (&s.next, s)).collect();
    let Some(mut at) = segments.iter().max_by_key(|s| (s.last_time, s.first_time)) else {
        return Vec::new();
    };
    let mut found = vec![at];
    while let Some(before) = by_next.get(&at.start) {
        if found.len() > segments.len() {
            break;
        }
        at = before;
        found.push(at);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(file: &str, start: u64, next_file: &str, next: u64, t0: i64, t1: i64) -> SegmentInfo {
        SegmentInfo {
            format: 1,
            server: "uuid-1".into(),
            start: Position {
                file: file.into(),
                pos: start,
            },
            head: 30,
            next: Position {
                file: next_file.into(),
                pos: next,
            },
            first_time: t0,
            last_time: t1,
            events: 3,
            size: 100,
            sha256: "0".repeat(64),
            stored_size: 100,
            key: None,
        }
    }

    fn pos(file: &str, p: u64) -> Position {
        Position {
            file: file.into(),
            pos: p,
        }
    }

    #[test]
    fn a_chain_follows_positions_across_rotations_and_stops_at_a_break() {
        let segs = vec![
            seg("b.1", 4, "b.1", 900, 100, 160),
            seg("b.1", 900, "b.2", 4, 160, 220),
            seg("b.2", 4, "b.2", 500, 230, 300),
            seg("b.3", 4, "b.3", 800, 400, 500),
        ];
        // From inside the first segment to a time in the third.
        let got = chain(&segs, &pos("b.1", 500), 250).unwrap();
        assert_eq!(got.len(), 3);
        // A time before the next segment's first event needs no more.
        assert_eq!(chain(&segs, &pos("b.1", 4), 225).unwrap().len(), 2);
        // A segment that ends at the second asked for: the next one may
        // hold more of that second.
        assert_eq!(chain(&segs, &pos("b.1", 4), 160).unwrap().len(), 2);
        assert_eq!(chain(&segs, &pos("b.1", 4), 159).unwrap().len(), 1);
        // Past the third: the break between b.2:500 and b.3 stops it.
        assert_eq!(
            chain(&segs, &pos("b.1", 4), 450).unwrap_err(),
            ChainBreak::EndsAt {
                next: pos("b.2", 500),
                time: 300
            }
        );
        // A position nothing holds.
        assert_eq!(
            chain(&segs, &pos("b.0", 4), 450).unwrap_err(),
            ChainBreak::NotHeld(pos("b.0", 4))
        );
    }

    #[test]
    fn the_unbroken_end_of_the_log_is_found_from_its_newest_segment() {
        let segs = vec![
            seg("b.1", 4, "b.1", 900, 100, 160),
            seg("b.1", 900, "b.2", 4, 160, 220),
            seg("b.2", 4, "b.2", 500, 230, 300),
            seg("b.3", 4, "b.3", 800, 400, 500),
            seg("b.3", 800, "b.4", 4, 500, 560),
        ];
        let end = unbroken_to_newest(&segs);
        assert_eq!(end.len(), 2);
        assert!(end[1].holds(&pos("b.3", 600)) && !end[1].holds(&pos("b.2", 600)));
        assert!(segs[1].holds(&pos("b.1", 900)) && segs[1].holds(&pos("b.1", 2000)));
    }

    #[test]
    fn places_in_the_log_are_ordered_by_file_number_then_position() {
        assert_eq!(
            pos("b.000009", 900).at_or_before(&pos("b.000010", 4)),
            Some(true)
        );
        assert_eq!(
            pos("b.000010", 900).at_or_before(&pos("b.000010", 900)),
            Some(true)
        );
        assert_eq!(
            pos("b.000010", 901).at_or_before(&pos("b.000010", 900)),
            Some(false)
        );
        assert_eq!(pos("b.000010", 4).at_or_before(&pos("c.000010", 4)), None);
    }

    #[test]
    fn a_hostile_description_is_refused() {
        let good = seg("b.1", 4, "b.1", 900, 100, 160);
        let name = format!("{}.idx", good.name());
        let bytes = serde_json::to_vec(&good).unwrap();
        assert_eq!(SegmentInfo::from_json(&name, &bytes).unwrap(), good);
        let mut evil = good.clone();
        evil.start.file = "../../etc/passwd".into();
        let bytes = serde_json::to_vec(&evil).unwrap();
        assert!(SegmentInfo::from_json(&name, &bytes).is_err());
        let mut backwards = good.clone();
        backwards.next.pos = 3;
        let bytes = serde_json::to_vec(&backwards).unwrap();
        assert!(SegmentInfo::from_json(&name, &bytes).is_err());
        assert!(SegmentInfo::from_json("other.idx", &serde_json::to_vec(&good).unwrap()).is_err());
        assert!(SegmentInfo::from_json(&name, &vec![b' '; 70_000]).is_err());
    }
}
