//! The saved objects a dump sees (or a copy's tables yield), kept on disk
//! rather than in memory: a billing database can hold millions. Each
//! worker compresses the objects of a chunk into a frame
//! (`archive::objects`); the frames go to an unnamed temporary file as
//! they come, noting where each is. At the end the frames are put in
//! order (by kind, then id) and the catalog's index reads them back as
//! one stream. Frames come from key-ordered ranges, so they do not
//! overlap; ones that do (a kind's table ordered by another key) are
//! merged in memory, once.

use std::io::{self, Read};

use anyhow::Result;

use super::super::format::SavedObject;
use super::super::spill::{Section, SpillFile};
use super::objects::{self as entry, SavedObjects};

/// Where one frame is in the file.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// The kind's place in `saved::objects::kinds`.
    rank: usize,
    first: i64,
    last: i64,
    offset: u64,
    size: u64,
}

/// The frames of a dump, in an unnamed temporary file.
pub struct ObjectSpill {
    file: SpillFile,
    frames: Vec<Frame>,
}

impl ObjectSpill {
    pub fn new() -> Result<Self> {
        Ok(ObjectSpill {
            file: SpillFile::new("objects")?,
            frames: Vec::new(),
        })
    }

    /// Appends one frame of kind `rank` holding ids `first..=last`.
    pub fn add(&mut self, rank: usize, first: i64, last: i64, data: &[u8]) -> Result<()> {
        let offset = self.file.append(data)?;
        self.frames.push(Frame {
            rank,
            first,
            last,
            offset,
            size: data.len() as u64,
        });
        Ok(())
    }

    /// Puts the frames in the entry's order, merging those that overlap.
    pub fn order(&mut self) -> Result<()> {
        self.frames.sort_by_key(|f| (f.rank, f.first, f.last));
        let mut ordered: Vec<Frame> = Vec::with_capacity(self.frames.len());
        let mut group: Vec<Frame> = Vec::new();
        let frames = std::mem::take(&mut self.frames);
        for f in frames {
            let overlaps = group.first().is_some_and(|g| g.rank == f.rank)
                && group.iter().any(|x| f.first <= x.last);
            if !overlaps && !group.is_empty() {
                self.close_group(&mut group, &mut ordered)?;
            }
            group.push(f);
        }
        self.close_group(&mut group, &mut ordered)?;
        self.frames = ordered;
        Ok(())
    }

    /// A group of one frame stays; a group of overlapping frames becomes
    /// one frame, sorted, written at the end of the file.
    fn close_group(&mut self, group: &mut Vec<Frame>, ordered: &mut Vec<Frame>) -> Result<()> {
        match group.len() {
            0 => {}
            1 => ordered.push(group[0]),
            _ => {
                let mut all: Vec<SavedObject> = Vec::new();
                for f in group.iter() {
                    all.extend(entry::decode(self.section(f))?);
                }
                let (data, first, last) = entry::frame(&mut all)?;
                let rank = group[0].rank;
                self.add(rank, first, last, &data)?;
                ordered.push(self.frames.pop().expect("the frame just added"));
            }
        }
        group.clear();
        Ok(())
    }

    fn section(&self, f: &Frame) -> Section<'_> {
        self.file.section(f.offset, f.size)
    }

    /// The frames' bytes, in order.
    fn reader<'a>(&'a self, frames: &'a [Frame]) -> impl Read + 'a {
        Frames {
            spill: self,
            frames,
            next: 0,
            current: None,
        }
    }

    /// The kinds (by their place in `saved::objects::kinds`) the ordered
    /// frames hold, each with its compressed size.
    pub fn ranks(&self) -> Vec<(usize, u64)> {
        let mut out: Vec<(usize, u64)> = Vec::new();
        for f in &self.frames {
            match out.last_mut() {
                Some((rank, size)) if *rank == f.rank => *size += f.size,
                _ => out.push((f.rank, f.size)),
            }
        }
        out
    }

    /// The objects of one kind ([`Self::ranks`]), in the entry's order.
    pub fn objects_of(&self, rank: usize) -> Result<SavedObjects<'_>> {
        let start = self.frames.partition_point(|f| f.rank < rank);
        let end = self.frames.partition_point(|f| f.rank <= rank);
        entry::decode(self.reader(&self.frames[start..end]))
    }
}

/// The frames one after another.
struct Frames<'a> {
    spill: &'a ObjectSpill,
    frames: &'a [Frame],
    next: usize,
    current: Option<Section<'a>>,
}

impl Read for Frames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(s) = &mut self.current {
                let n = s.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            let Some(f) = self.frames.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            self.current = Some(self.spill.section(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(kind: &str, ids: &[i64]) -> Vec<SavedObject> {
        ids.iter()
            .map(|&id| SavedObject {
                kind: kind.into(),
                id,
                name: format!("n{id}"),
                owner: None,
            })
            .collect()
    }

    fn add(spill: &mut ObjectSpill, rank: usize, kind: &str, ids: &[i64]) {
        let (data, first, last) = entry::frame(&mut objects(kind, ids)).unwrap();
        spill.add(rank, first, last, &data).unwrap();
    }

    #[test]
    fn frames_come_back_by_kind_then_id_whatever_order_they_came_in() {
        let mut spill = ObjectSpill::new().unwrap();
        add(&mut spill, 1, "user", &[5, 6]);
        add(&mut spill, 0, "account", &[10, 11]);
        add(&mut spill, 0, "account", &[1, 2]);
        // Two frames that overlap (a table read in another key's order).
        add(&mut spill, 2, "item", &[3, 9]);
        add(&mut spill, 2, "item", &[4, 8]);
        spill.order().unwrap();
        assert_eq!(
            spill.ranks().iter().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let read: Vec<(String, i64)> = spill
            .ranks()
            .iter()
            .flat_map(|&(rank, _)| spill.objects_of(rank).unwrap())
            .map(|o| (o.kind, o.id))
            .collect();
        let expected: Vec<(String, i64)> = [
            ("account", 1),
            ("account", 2),
            ("account", 10),
            ("account", 11),
            ("user", 5),
            ("user", 6),
            ("item", 3),
            ("item", 4),
            ("item", 8),
            ("item", 9),
        ]
        .iter()
        .map(|(k, i)| (k.to_string(), *i))
        .collect();
        assert_eq!(read, expected);
    }
}
