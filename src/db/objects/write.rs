//! Writing a copy's index: its objects cut into blocks, the blocks the
//! catalog lacks sent, the copy's references replaced; and forgetting a
//! copy's index when the copy goes.

use std::collections::HashSet;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{key_order, Cutter, IndexRow, Sealed, BATCH_BLOCKS, BATCH_BYTES};
use crate::db::Db;

pub struct IndexWriter<'a> {
    tx: mysql::Transaction<'a>,
    backup: u64,
    cutter: Cutter,
    sealed: Vec<Sealed>,
    objects: usize,
}

impl<'a> IndexWriter<'a> {
    /// Starts replacing the index of copy `backup`.
    pub fn begin(db: &'a mut Db, backup: u64) -> Result<Self> {
        let mut tx = db
            .conn()
            .start_transaction(mysql::TxOpts::default())
            .context("failed to start a transaction")?;
        forget_in(&mut tx, backup)?;
        Ok(IndexWriter {
            tx,
            backup,
            cutter: Cutter::default(),
            sealed: Vec::new(),
            objects: 0,
        })
    }

    /// Adds one object ([`Cutter::push`]).
    pub fn push(&mut self, row: &IndexRow) -> Result<()> {
        self.cutter.push(row, &mut self.sealed)?;
        self.flush_full()
    }

    /// Adds a block cut and sealed beforehand (by a [`Cutter`] of its
    /// own: the rows pushed here start a block of their own after it).
    pub fn push_sealed(&mut self, block: Sealed) -> Result<()> {
        self.cutter.cut(&mut self.sealed)?;
        self.objects += block.objects;
        self.sealed.push(block);
        self.flush_full()
    }

    /// Sends the sealed blocks once there are a statement's worth.
    fn flush_full(&mut self) -> Result<()> {
        let bytes: usize = self.sealed.iter().map(|b| b.data.len()).sum();
        if self.sealed.len() >= BATCH_BLOCKS || bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores the sealed blocks the catalog lacks and refers the copy to
    /// all of them.
    fn flush(&mut self) -> Result<()> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; self.sealed.len()].join(", ");
        let hashes: Vec<mysql::Value> =
            self.sealed.iter().map(|b| b.hash.as_str().into()).collect();
        // A shared lock: a copy deleted meanwhile cannot take these blocks
        // away before this copy refers to them.
        let present: HashSet<String> = self
            .tx
            .exec::<String, _, _>(
                format!("SELECT hash FROM billmgrops_object_block WHERE hash IN ({marks}) LOCK IN SHARE MODE"),
                hashes.clone(),
            )
            .context("failed to read the object index")?
            .into_iter()
            .collect();
        let missing: Vec<&Sealed> = self
            .sealed
            .iter()
            .filter(|b| !present.contains(&b.hash))
            .collect();
        if !missing.is_empty() {
            let rows = vec!["(?, ?, ?, ?, ?, ?)"; missing.len()].join(", ");
            let mut params: Vec<mysql::Value> = Vec::with_capacity(missing.len() * 6);
            for b in &missing {
                params.extend([
                    b.hash.as_str().into(),
                    b.kind.as_str().into(),
                    b.range.map(|r| r.0).into(),
                    b.range.map(|r| r.1).into(),
                    (b.objects as u64).into(),
                    b.data.as_slice().into(),
                ]);
            }
            self.tx
                .exec_drop(
                    format!("INSERT IGNORE INTO billmgrops_object_block (hash, kind, lo, hi, objects, data) VALUES {rows}"),
                    params,
                )
                .context("failed to store the object index")?;
        }
        let refs = vec!["(?, ?)"; self.sealed.len()].join(", ");
        let mut params: Vec<mysql::Value> = Vec::with_capacity(hashes.len() * 2);
        for h in hashes {
            params.extend([self.backup.into(), h]);
        }
        self.tx
            .exec_drop(
                format!("INSERT IGNORE INTO billmgrops_copy_block (backup, block) VALUES {refs}"),
                params,
            )
            .context("failed to store the object index")?;
        self.sealed.clear();
        Ok(())
    }

    /// Commits; returns how many objects were indexed.
    pub fn finish(mut self) -> Result<usize> {
        self.cutter.cut(&mut self.sealed)?;
        self.flush()?;
        self.tx
            .commit()
            .context("failed to index the copy's objects")?;
        Ok(self.objects + self.cutter.objects())
    }
}

/// Takes copy `backup` out of the index, and the blocks no other copy
/// refers to.
fn forget_in(tx: &mut mysql::Transaction<'_>, backup: u64) -> Result<()> {
    let blocks: Vec<String> = tx
        .exec(
            "SELECT block FROM billmgrops_copy_block WHERE backup = ?",
            (backup,),
        )
        .context("failed to read the object index")?;
    tx.exec_drop(
        "DELETE FROM billmgrops_copy_block WHERE backup = ?",
        (backup,),
    )?;
    for batch in blocks.chunks(500) {
        let marks = vec!["?"; batch.len()].join(", ");
        tx.exec_drop(
            format!(
                "DELETE b FROM billmgrops_object_block b
                 WHERE b.hash IN ({marks})
                   AND NOT EXISTS (SELECT 1 FROM billmgrops_copy_block r WHERE r.block = b.hash)"
            ),
            batch.to_vec(),
        )
        .context("failed to prune the object index")?;
    }
    Ok(())
}

/// [`forget_in`] within the caller's transaction (deleting a copy).
pub fn forget(tx: &mut mysql::Transaction<'_>, backup: u64) -> Result<()> {
    forget_in(tx, backup)
}

/// Moves an index of the older shape (`billmgrops_object`, one row per
/// object per copy) into blocks, copy by copy, then drops it. Run once,
/// by the migration that made the blocks.
pub fn convert_rows(db: &mut Db) -> Result<()> {
    let exists: Option<String> = db
        .conn()
        .query_first(
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = DATABASE() AND table_name = 'billmgrops_object'",
        )
        .context("failed to look for the older object index")?;
    if exists.is_none() {
        return Ok(());
    }
    let copies: Vec<u64> = db
        .conn()
        .query("SELECT DISTINCT backup FROM billmgrops_object")
        .context("failed to read the older object index")?;
    for backup in copies {
        let mut rows: Vec<IndexRow> = db
            .conn()
            .exec_map(
                "SELECT kind, object_key, name, owner, owner_id FROM billmgrops_object WHERE backup = ?",
                (backup,),
                |(kind, key, name, owner, owner_id): (String, String, String, String, Option<i64>)| {
                    IndexRow {
                        kind,
                        key,
                        name,
                        owner: owner_id.map_or(owner, |id| id.to_string()),
                    }
                },
            )
            .context("failed to read the older object index")?;
        rows.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| key_order(&a.key, &b.key)));
        let mut writer = IndexWriter::begin(db, backup)?;
        for row in &rows {
            writer.push(row)?;
        }
        writer.finish()?;
    }
    db.conn()
        .query_drop("DROP TABLE IF EXISTS billmgrops_object")
        .context("failed to drop the older object index")
}
