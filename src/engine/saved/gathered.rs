//! The rows a per-object restore takes from a copy, kept on disk until
//! they are written: the busiest client of a large provider has hundreds
//! of thousands of rows (services, their parameters, payments), some with
//! large values. Memory holds only where each row is, by table and key,
//! so a restore's memory does not grow with the rows' bytes.

use std::collections::BTreeMap;

use anyhow::Result;

use super::super::spill::SpillFile;
use super::super::tsv::{self, Cell};

/// Bytes gathered in memory before they go to the file.
const BUFFER: usize = 1 << 20;

/// Which rows: the objects and their dependents (written by the
/// behavior), or what they need and the live database lacks (inserted
/// only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Own,
    Needed,
}

/// Where one row is in the file.
#[derive(Clone, Copy, Debug)]
struct RowAt {
    offset: u64,
    len: u64,
}

/// Rows by part, table and integer primary key, their text on disk.
pub struct Gathered {
    file: SpillFile,
    /// Rows not yet in the file; they go at its end.
    pending: Vec<u8>,
    written: u64,
    own: BTreeMap<String, BTreeMap<i64, RowAt>>,
    needed: BTreeMap<String, BTreeMap<i64, RowAt>>,
}

impl Gathered {
    pub fn new() -> Result<Self> {
        Ok(Gathered {
            file: SpillFile::new("object-restore")?,
            pending: Vec::new(),
            written: 0,
            own: BTreeMap::new(),
            needed: BTreeMap::new(),
        })
    }

    fn part(&self, part: Part) -> &BTreeMap<String, BTreeMap<i64, RowAt>> {
        match part {
            Part::Own => &self.own,
            Part::Needed => &self.needed,
        }
    }

    /// Keeps `row` of `table` under `key`; false (and nothing kept) if
    /// the part already holds that key.
    pub fn insert(&mut self, part: Part, table: &str, key: i64, row: &[Cell]) -> Result<bool> {
        let rows = match part {
            Part::Own => &mut self.own,
            Part::Needed => &mut self.needed,
        };
        let rows = match rows.get_mut(table) {
            Some(r) => r,
            None => rows.entry(table.to_string()).or_default(),
        };
        if rows.contains_key(&key) {
            return Ok(false);
        }
        let start = self.pending.len();
        tsv::push_cells(&mut self.pending, row);
        let at = RowAt {
            offset: self.written + start as u64,
            len: (self.pending.len() - start) as u64,
        };
        rows.insert(key, at);
        if self.pending.len() >= BUFFER {
            self.flush()?;
        }
        Ok(true)
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.file.append(&self.pending)?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    /// Does `part` hold row `key` of `table`?
    pub fn contains(&self, part: Part, table: &str, key: i64) -> bool {
        self.part(part)
            .get(table)
            .is_some_and(|rows| rows.contains_key(&key))
    }

    /// The tables with rows, in either part.
    pub fn tables(&self) -> impl Iterator<Item = &String> {
        self.own.keys().chain(self.needed.keys())
    }

    /// Rows in both parts.
    pub fn len(&self) -> usize {
        self.own
            .values()
            .chain(self.needed.values())
            .map(BTreeMap::len)
            .sum()
    }

    /// Hands each row of `part` of `table` to `each`, in key order, read
    /// back one at a time.
    pub fn each_row(
        &mut self,
        part: Part,
        table: &str,
        each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
    ) -> Result<()> {
        self.flush()?;
        let Some(rows) = self.part(part).get(table) else {
            return Ok(());
        };
        for at in rows.values() {
            let text = self.file.read(at.offset, at.len)?;
            let row = tsv::parse_rows(&text).pop().unwrap_or_default();
            each(row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_byte_for_byte_in_key_order() {
        let mut g = Gathered::new().unwrap();
        let odd: Vec<Cell> = vec![
            Some(b"a\tb\nc\\d".to_vec()),
            None,
            Some(Vec::new()),
            Some(vec![0, 255, b'N']),
        ];
        let big: Vec<Cell> = vec![Some(vec![b'x'; 3 * BUFFER]), Some(b"2".to_vec())];
        assert!(g.insert(Part::Own, "item", 7, &odd).unwrap());
        assert!(g.insert(Part::Own, "item", 3, &big).unwrap());
        assert!(!g.insert(Part::Own, "item", 7, &big).unwrap(), "kept once");
        assert!(g.insert(Part::Needed, "pricelist", 1, &odd).unwrap());
        assert!(g.contains(Part::Own, "item", 3));
        assert!(!g.contains(Part::Needed, "item", 3));
        assert_eq!(g.len(), 3);
        let mut seen = Vec::new();
        g.each_row(Part::Own, "item", &mut |row| {
            seen.push(row);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![big, odd.clone()]);
        let mut needed = Vec::new();
        g.each_row(Part::Needed, "pricelist", &mut |row| {
            needed.push(row);
            Ok(())
        })
        .unwrap();
        assert_eq!(needed, vec![odd]);
    }
}
