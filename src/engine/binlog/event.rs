//! One binary-log event as bytes: its 19-byte header read without trust,
//! and the event types the follower and the replay tell apart (MySQL's and
//! MariaDB's own). A segment is the file magic, a format description and
//! events, exactly as the server writes them, so `mysqlbinlog` and
//! `mariadb-binlog` read it.

use std::io::Read;

use thiserror::Error;

/// The magic that begins every binary-log file.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// The common header's length (binlog version 4).
pub const HEADER_LEN: usize = 19;

/// The largest event read from a segment: the server's own ceiling is
/// `max_allowed_packet` (1 GiB at most), and a bigger size in a header is
/// a forgery or damage, refused before any allocation.
pub const MAX_EVENT: u32 = 1 << 30;

/// Event types by their code, where the follower or the replay treat them
/// apart; everything else is carried through untouched.
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const WRITE_ROWS: u8 = 30;
    pub const UPDATE_ROWS: u8 = 31;
    pub const DELETE_ROWS: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    /// MariaDB's GTID event, which also opens a transaction (`BEGIN`).
    pub const MARIADB_GTID: u8 = 162;
}

/// A damaged or forged event: what is wrong and where.
#[derive(Debug, Error)]
#[error("binary log damaged at byte {offset}: {what}")]
pub struct BadEvent {
    pub offset: u64,
    pub what: String,
}

/// An event's common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// When the statement began, seconds since 1970 (UTC).
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    /// The whole event's size, header and checksum included.
    pub size: u32,
    /// Where the next event begins in the server's own file (0 for
    /// events the server makes up for a replica, such as the first
    /// rotate).
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            timestamp: u32_at(0),
            kind: b[4],
            server_id: u32_at(5),
            size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        }
    }
}

/// One event, whole: header, body and checksum, as the server sent it.
#[derive(Clone, Debug)]
pub struct RawEvent {
    pub header: Header,
    pub bytes: Vec<u8>,
}

impl RawEvent {
    /// An event from its bytes, checked to be one whole event.
    pub fn from_bytes(bytes: Vec<u8>, offset: u64) -> Result<RawEvent, BadEvent> {
        let head: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| BadEvent {
                offset,
                what: format!(
                    "an event of {} bytes is shorter than its header",
                    bytes.len()
                ),
            })?;
        let header = Header::parse(head);
        if header.size as usize != bytes.len() {
            return Err(BadEvent {
                offset,
                what: format!(
                    "the header says {} bytes, the event has {}",
                    header.size,
                    bytes.len()
                ),
            });
        }
        Ok(RawEvent { header, bytes })
    }

    /// Whether the event ends with the CRC32 of the rest (the server's
    /// `binlog_checksum`; the rotate a server makes up for a replica may
    /// have none).
    pub fn has_checksum(&self) -> bool {
        let Some(split) = self.bytes.len().checked_sub(4) else {
            return false;
        };
        let (data, sum) = self.bytes.split_at(split);
        split >= HEADER_LEN && crc32fast::hash(data).to_le_bytes() == sum
    }

    /// A rotate event's next file and position (the body is the position,
    /// 8 bytes, then the name, then the checksum when there is one).
    pub fn rotate_target(&self) -> Option<(String, u64)> {
        let body = self.bytes.get(HEADER_LEN..)?;
        let body = if self.has_checksum() {
            body.get(..body.len().checked_sub(4)?)?
        } else {
            body
        };
        let pos = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
        let name = std::str::from_utf8(body.get(8..)?).ok()?;
        Some((name.to_string(), pos))
    }
}

/// Reads the events of a segment: the magic, then whole events, each size
/// bounded before it is allocated.
pub struct Events<R> {
    input: R,
    offset: u64,
}

impl<R: Read> Events<R> {
    /// Checks the magic.
    pub fn new(mut input: R) -> Result<Events<R>, BadEvent> {
        let mut magic = [0u8; 4];
        input.read_exact(&mut magic).map_err(|e| BadEvent {
            offset: 0,
            what: format!("no binary-log magic ({e})"),
        })?;
        if magic != MAGIC {
            return Err(BadEvent {
                offset: 0,
                what: "not a binary log (its magic is wrong)".into(),
            });
        }
        Ok(Events { input, offset: 4 })
    }

    /// The next event; `None` at a clean end.
    pub fn next_event(&mut self) -> Result<Option<RawEvent>, BadEvent> {
        let mut head = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.input.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(
                        self.bad(format!("the log ends inside an event header ({got} bytes)"))
                    )
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.bad(format!("cannot read: {e}"))),
            }
        }
        let header = Header::parse(&head);
        if (header.size as usize) < HEADER_LEN || header.size > MAX_EVENT {
            return Err(self.bad(format!("an event size of {} bytes", header.size)));
        }
        let mut bytes = Vec::with_capacity(header.size as usize);
        bytes.extend_from_slice(&head);
        let body = u64::from(header.size) - HEADER_LEN as u64;
        let read = (&mut self.input)
            .take(body)
            .read_to_end(&mut bytes)
            .map_err(|e| self.bad(format!("cannot read: {e}")))?;
        if read as u64 != body {
            return Err(self.bad(format!(
                "the log ends inside an event ({read} of {body} bytes)"
            )));
        }
        self.offset += u64::from(header.size);
        Ok(Some(RawEvent { header, bytes }))
    }

    fn bad(&self, what: String) -> BadEvent {
        BadEvent {
            offset: self.offset,
            what,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len()) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&ts.to_le_bytes());
        b.push(kind);
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn events_are_read_whole_and_sizes_bounded() {
        let mut log = MAGIC.to_vec();
        log.extend(event(kind::QUERY, 5, b"abc"));
        log.extend(event(kind::XID, 6, &[0; 12]));
        let mut events = Events::new(&log[..]).unwrap();
        let first = events.next_event().unwrap().unwrap();
        assert_eq!(
            (first.header.kind, first.header.timestamp),
            (kind::QUERY, 5)
        );
        assert_eq!(first.bytes.len(), 22);
        assert_eq!(events.next_event().unwrap().unwrap().header.kind, kind::XID);
        assert!(events.next_event().unwrap().is_none());

        // Cut inside the second event: an error, not a short event.
        let cut = &log[..log.len() - 3];
        let mut events = Events::new(cut).unwrap();
        events.next_event().unwrap();
        assert!(events.next_event().is_err());

        // A forged size is refused before it is allocated.
        let mut forged = MAGIC.to_vec();
        let mut e = event(kind::QUERY, 1, b"");
        e[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        forged.extend(e);
        let err = Events::new(&forged[..]).unwrap().next_event().unwrap_err();
        assert!(err.what.contains("event size"), "{err}");
        assert!(Events::new(&b"\xfebix"[..]).is_err());
    }

    #[test]
    fn a_rotate_names_the_next_file() {
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend_from_slice(b"binlog.000002");
        let plain = RawEvent::from_bytes(event(kind::ROTATE, 0, &body), 0).unwrap();
        assert_eq!(plain.rotate_target(), Some(("binlog.000002".into(), 4)));
        // With its CRC32 after the name (the size in the header counts it).
        let mut bytes = event(kind::ROTATE, 0, &[body.clone(), vec![0; 4]].concat());
        let split = bytes.len() - 4;
        let sum = crc32fast::hash(&bytes[..split]).to_le_bytes();
        bytes[split..].copy_from_slice(&sum);
        let summed = RawEvent::from_bytes(bytes, 0).unwrap();
        assert!(summed.has_checksum() && !plain.has_checksum());
        assert_eq!(summed.rotate_target(), Some(("binlog.000002".into(), 4)));
    }
}
