//! The objects entry (`objects.tsv.zst`): every object of the saved-data
//! kinds a copy holds (`engine::saved::objects`), one per line `kind, id,
//! name, owner` as LOAD DATA text, by kind (clients first) then id. The
//! text is zstd, written as one frame per data chunk it came from (a
//! zstd stream of several frames, which every zstd reader reads as one);
//! copies made from format 2 on have none (their objects are read from
//! the tables of those kinds: `saved::objects::of_copy`), nor do copies
//! made before the entry existed. A copy can hold millions of objects, so
//! they are read as a stream, never all at once.

use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result};

use super::super::format::{check, Entry, SavedObject};
use super::{sha256_hex, Copy};
use crate::engine::tsv;

/// The objects one after another, as the entry orders them.
pub type SavedObjects<'a> = Box<dyn Iterator<Item = SavedObject> + 'a>;

/// `objects` (one chunk's) sorted by id, as text, compressed: one frame
/// of the entry. Returns the frame and the first and last id.
pub fn frame(objects: &mut [SavedObject]) -> Result<(Vec<u8>, i64, i64)> {
    frame_with(objects, &mut zstd::bulk::Compressor::new(3)?)
}

/// [`frame`] compressed by `compressor`: the dump's workers pass their
/// chunks' own, one context per worker rather than one per frame.
pub fn frame_with(
    objects: &mut [SavedObject],
    compressor: &mut zstd::bulk::Compressor<'_>,
) -> Result<(Vec<u8>, i64, i64)> {
    objects.sort_by_key(|o| o.id);
    let mut text = Vec::with_capacity(objects.len() * 32);
    let mut number = itoa::Buffer::new();
    for o in objects.iter() {
        tsv::push_escaped(&mut text, o.kind.as_bytes());
        text.push(b'\t');
        text.extend_from_slice(number.format(o.id).as_bytes());
        text.push(b'\t');
        tsv::push_escaped(&mut text, o.name.as_bytes());
        text.push(b'\t');
        match o.owner {
            Some(owner) => text.extend_from_slice(number.format(owner).as_bytes()),
            None => text.extend_from_slice(b"\\N"),
        }
        text.push(b'\n');
    }
    let first = objects.first().map_or(0, |o| o.id);
    let last = objects.last().map_or(0, |o| o.id);
    Ok((compressor.compress(&text)?, first, last))
}

/// The objects of the entry's text, line by line; a malformed line is
/// passed over.
pub struct ObjectLines<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> ObjectLines<R> {
    pub fn new(reader: R) -> Self {
        ObjectLines {
            reader,
            line: Vec::new(),
        }
    }
}

/// One line of the entry as an object (fields split in place; only a
/// field with an escape is copied twice).
fn parse_line(line: &[u8]) -> Option<SavedObject> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields = line.split(|&b| b == b'\t');
    let mut next = || -> Option<Option<String>> {
        let field = fields.next()?;
        if field == b"\\N" {
            return Some(None);
        }
        let bytes = if field.contains(&b'\\') {
            tsv::unescape_field(field)
        } else {
            field.to_vec()
        };
        Some(Some(String::from_utf8(bytes).unwrap_or_else(|e| {
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        })))
    };
    let kind = next()??;
    let id = next()??.parse().ok()?;
    let name = next()?.unwrap_or_default();
    let owner = next()?.and_then(|o| o.parse().ok());
    if fields.next().is_some() {
        return None;
    }
    Some(SavedObject {
        kind,
        id,
        name,
        owner,
    })
}

impl<R: BufRead> Iterator for ObjectLines<R> {
    type Item = SavedObject;

    fn next(&mut self) -> Option<SavedObject> {
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {
                    if let Some(o) = parse_line(&self.line) {
                        return Some(o);
                    }
                }
                Err(e) => {
                    log::warn!("the object index ends early: {e}");
                    return None;
                }
            }
        }
    }
}

/// The objects of compressed entry data (already checked), streamed;
/// never more than [`check::MAX_OBJECTS`] bytes of text.
pub fn decode<'a, R: Read + 'a>(data: R) -> Result<SavedObjects<'a>> {
    let decoder =
        zstd::stream::read::Decoder::new(data).context("the object index does not decompress")?;
    Ok(Box::new(ObjectLines::new(BufReader::new(
        decoder.take(check::MAX_OBJECTS),
    ))))
}

/// The compressed objects entry of a copy that has one (one ranged
/// read, checked against the listing's SHA-256 before anything is taken
/// from it): its frames, to [`decode`].
pub fn read_entry(copy: &Copy<'_>, entry: &Entry) -> Result<Vec<u8>> {
    anyhow::ensure!(
        entry.size <= check::MAX_OBJECTS,
        "the copy's object index is too large"
    );
    let data = copy.read_range(entry.offset, entry.size)?;
    anyhow::ensure!(
        sha256_hex(&data) == entry.sha256,
        "the copy's object index is corrupt"
    );
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn object(id: i64, name: &str) -> SavedObject {
        SavedObject {
            kind: "account".into(),
            id,
            name: name.into(),
            owner: (id > 1).then_some(1),
        }
    }

    #[test]
    fn frames_read_back_as_one_stream_in_order() {
        let mut a = vec![object(3, "tab\there"), object(1, "new\nline")];
        let mut b = vec![object(7, "")];
        let (fa, first, last) = frame(&mut a).unwrap();
        assert_eq!((first, last), (1, 3));
        let (fb, _, _) = frame(&mut b).unwrap();
        let mut data = fa;
        data.extend_from_slice(&fb);
        data.extend_from_slice(&zstd::bulk::compress(b"malformed\n", 3).unwrap());
        let read: Vec<SavedObject> = decode(Cursor::new(data)).unwrap().collect();
        assert_eq!(read, [a[0].clone(), a[1].clone(), b[0].clone()]);
    }

    #[test]
    fn data_that_is_not_zstd_reads_as_nothing() {
        let read: Vec<SavedObject> = decode(Cursor::new(b"not zstd at all".to_vec()))
            .unwrap()
            .collect();
        assert!(read.is_empty());
    }
}
