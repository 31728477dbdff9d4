//! A copy's saved objects cut into the catalog's sealed blocks
//! (`db::objects::Cutter`) before the catalog is written: hashing and
//! compressing a million objects takes a core for about a second, so a
//! dump does it on a thread of its own while it writes the key index and
//! commits the archive. The blocks wait in an unnamed temporary file, not
//! in memory; the catalog's transaction then only sends them.

use anyhow::{Context, Result};

use super::super::archive::object_spill::ObjectSpill;
use super::super::format::Listing;
use super::super::spill::SpillFile;
use super::objects::{file_rows, object_rows};
use crate::db::objects::{Cutter, IndexWriter, Sealed};
use crate::db::Db;

/// A block's catalog fields, its compressed text in one of the files.
struct Placed {
    hash: String,
    kind: String,
    range: Option<(i64, i64)>,
    objects: usize,
    file: usize,
    offset: u64,
    size: u64,
}

/// The sealed blocks of a copy's objects, in the catalog's order.
pub struct SealedBlocks {
    files: Vec<SpillFile>,
    blocks: Vec<Placed>,
}

/// What one thread sealed: its file, and each block with its kind's rank.
type Lane = (SpillFile, Vec<(usize, Placed)>);

/// Threads that cut and seal: kinds are cut apart (a block never spans
/// two), so each thread takes whole kinds.
const LANES: usize = 2;

impl SealedBlocks {
    /// Cuts and seals the objects `saved` holds (in its order: by kind,
    /// then id), kinds shared among [`LANES`] threads by size.
    pub fn of(saved: &ObjectSpill) -> Result<Self> {
        let mut ranks = saved.ranks();
        ranks.sort_by_key(|&(rank, size)| (std::cmp::Reverse(size), rank));
        let mut lanes: [(u64, Vec<usize>); LANES] = Default::default();
        for (rank, size) in ranks {
            let lane = lanes
                .iter_mut()
                .min_by_key(|(load, _)| *load)
                .expect("lanes");
            lane.0 += size;
            lane.1.push(rank);
        }
        let results: Vec<Result<Lane>> = std::thread::scope(|s| {
            let handles: Vec<_> = lanes
                .iter()
                .enumerate()
                .map(|(file, (_, ranks))| s.spawn(move || seal_lane(saved, ranks, file)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!("sealing the object index panicked"))
                    })
                })
                .collect()
        });
        let mut files = Vec::with_capacity(LANES);
        let mut blocks = Vec::new();
        for result in results {
            let (file, placed) = result?;
            files.push(file);
            blocks.extend(placed);
        }
        // Kind by kind; within a kind, in the order cut.
        blocks.sort_by_key(|(rank, _)| *rank);
        Ok(SealedBlocks {
            files,
            blocks: blocks.into_iter().map(|(_, p)| p).collect(),
        })
    }

    /// The blocks, read back one by one.
    pub fn iter(&self) -> impl Iterator<Item = Result<Sealed>> + '_ {
        self.blocks.iter().map(|p| {
            Ok(Sealed {
                hash: p.hash.clone(),
                kind: p.kind.clone(),
                range: p.range,
                objects: p.objects,
                data: self.files[p.file]
                    .read(p.offset, p.size)
                    .context("failed to read a block of the object index back")?,
            })
        })
    }
}

/// Cuts and seals the objects of kinds `ranks` into a file of their own
/// (the `file`th); returns each block with its kind's rank.
fn seal_lane(saved: &ObjectSpill, ranks: &[usize], file: usize) -> Result<Lane> {
    let mut spill = SpillFile::new("blocks")?;
    let mut placed = Vec::new();
    let mut sealed = Vec::new();
    for &rank in ranks {
        let mut cutter = Cutter::default();
        for row in object_rows(saved.objects_of(rank)?) {
            cutter.push(&row, &mut sealed)?;
            keep(&mut spill, &mut sealed, rank, file, &mut placed)?;
        }
        cutter.cut(&mut sealed)?;
        keep(&mut spill, &mut sealed, rank, file, &mut placed)?;
    }
    Ok((spill, placed))
}

/// Moves sealed blocks into the file.
fn keep(
    spill: &mut SpillFile,
    sealed: &mut Vec<Sealed>,
    rank: usize,
    file: usize,
    placed: &mut Vec<(usize, Placed)>,
) -> Result<()> {
    for b in sealed.drain(..) {
        let offset = spill.append(&b.data)?;
        placed.push((
            rank,
            Placed {
                hash: b.hash,
                kind: b.kind,
                range: b.range,
                objects: b.objects,
                file,
                offset,
                size: b.data.len() as u64,
            },
        ));
    }
    Ok(())
}

/// Indexes a good copy's objects for `backupdata`: its objects' blocks,
/// cut and sealed beforehand ([`SealedBlocks`]), then its saved files. A
/// failure there costs the copy nothing (it is logged, and a rescan
/// indexes again).
pub fn index_objects(db: &mut Db, id: u64, listing: &Listing, sealed: Result<SealedBlocks>) {
    let write = |db: &mut Db| -> Result<usize> {
        let sealed = sealed?;
        let mut writer = IndexWriter::begin(db, id)?;
        for block in sealed.iter() {
            writer.push_sealed(block?)?;
        }
        for row in file_rows(listing) {
            writer.push(&row)?;
        }
        writer.finish()
    };
    let started = std::time::Instant::now();
    match write(db) {
        Ok(n) => log::debug!(
            "copy {id}: {n} objects indexed in {} ms",
            started.elapsed().as_millis()
        ),
        Err(e) => log::warn!("copy {id}: its objects were not indexed: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::format::SavedObject;
    use super::*;
    use crate::engine::archive::objects::frame;

    /// Blocks are named by content and shared across copies, so cutting
    /// kinds on several threads must give exactly the blocks one cutter
    /// gives over every row in order.
    #[test]
    fn threads_cut_the_blocks_one_cutter_cuts() {
        let kinds = ["account", "user", "item", "payment"];
        let mut spill = ObjectSpill::new().unwrap();
        let mut all = Vec::new();
        // Kinds of very different sizes, frames arriving out of order.
        for (rank, (kind, n)) in kinds
            .iter()
            .zip([3_000i64, 500, 20_000, 9_000])
            .enumerate()
            .rev()
        {
            let objects: Vec<SavedObject> = (1..=n)
                .map(|id| SavedObject {
                    kind: kind.to_string(),
                    id,
                    name: format!("{kind} {id}\twith a tab"),
                    owner: (rank > 0).then_some(id % 97),
                })
                .collect();
            for part in objects.chunks(777).rev() {
                let (data, first, last) = frame(&mut part.to_vec()).unwrap();
                spill.add(rank, first, last, &data).unwrap();
            }
            all.push(objects);
        }
        all.reverse();
        spill.order().unwrap();

        let mut one = Cutter::default();
        let mut expected = Vec::new();
        for row in object_rows(all.into_iter().flatten()) {
            one.push(&row, &mut expected).unwrap();
        }
        one.cut(&mut expected).unwrap();

        let got: Vec<Sealed> = SealedBlocks::of(&spill)
            .unwrap()
            .iter()
            .collect::<Result<_>>()
            .unwrap();
        assert!(expected.len() > 20, "{} blocks", expected.len());
        assert_eq!(got, expected);
    }
}
