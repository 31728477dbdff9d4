//! `billmgr-ops dev seed`: fills the BILLmanager schema with realistic data.
//!
//! Deterministic: the same `--clients` and `--seed` give byte-identical
//! tables. Ids are explicit and dates derive from a fixed epoch, never from
//! the clock. The data is shaped like a hosting provider's: clients with
//! users, services of several types on several processing modules with their
//! parameters, payments, expenses, an action journal, and running operations
//! in every state with their attempt history. Text includes what breaks
//! naive dumps: Cyrillic, emoji, quotes, tabs, newlines, backslashes, NULL
//! next to empty strings and the string 'NULL'.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use mysql::prelude::Queryable;

mod batch;
mod data;
mod rows;

use super::rng::Rng;
use super::schema;
use crate::db::{quote_ident, Db};
use batch::Batch;
use data::*;

/// Options of `dev seed`.
#[derive(Args, Debug, Clone)]
pub struct SeedOptions {
    /// Number of clients; everything else scales with it (about 12 KB of
    /// data and indexes per client: 90,000 clients is roughly 1 GB).
    #[arg(long, default_value_t = 200)]
    pub clients: u64,
    /// Seed of the generator; the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Empty the BILLmanager tables (and the plugin's operation state) first.
    #[arg(long)]
    pub reset: bool,
}

/// 2021-01-01 00:00:00 UTC: every generated date is after it.
/// Runs the generator. `progress` hears phase `clients` with the percent
/// of clients written.
pub fn run(db: &mut Db, opts: &SeedOptions, progress: &mut dyn FnMut(&str, u32)) -> Result<Seeded> {
    let started = Instant::now();
    schema::apply(db)?;
    db.conn()
        .query_drop("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION', foreign_key_checks = 0, unique_checks = 0")
        .context("failed to prepare the session")?;
    let existing: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM account")?
        .unwrap_or(0);
    if existing > 0 {
        if !opts.reset {
            bail!("the database already has {existing} clients; add --reset to replace all billing data");
        }
        let mut tables = schema::tables();
        tables.extend([
            "billmgrops_operation".to_string(),
            "billmgrops_attempt".to_string(),
        ]);
        for t in tables.iter().rev() {
            db.conn()
                .query_drop(format!("TRUNCATE TABLE {}", quote_ident(t)))
                .with_context(|| format!("failed to empty {t}"))?;
        }
    }
    let mut g = Generator::new(opts.seed);
    g.reference_data(db)?;
    progress("clients", 0);
    let mut shown = 0;
    for client in 1..=opts.clients {
        g.client(db, client)?;
        let percent = (client * 100 / opts.clients.max(1)) as u32;
        if percent != shown {
            progress("clients", percent);
            shown = percent;
        }
    }
    g.flush(db)?;
    db.conn()
        .query_drop("SET foreign_key_checks = 1, unique_checks = 1")?;
    Ok(Seeded {
        seconds: started.elapsed().as_secs_f64(),
        rows: g.batches().iter().map(|b| (b.table, b.total)).collect(),
    })
}

/// What [`run`] wrote.
pub struct Seeded {
    pub seconds: f64,
    /// Rows per table.
    pub rows: Vec<(&'static str, u64)>,
}

struct Generator {
    rng: Rng,
    account: Batch,
    user: Batch,
    item: Batch,
    itemparam: Batch,
    itemcryptedparam: Batch,
    payment: Batch,
    expense: Batch,
    journal: Batch,
    task: Batch,
    runningoperation: Batch,
    opstate: Batch,
    attempt: Batch,
    next: NextIds,
    pricelists: Vec<(u64, usize)>,
}

#[derive(Default)]
struct NextIds {
    user: i64,
    item: i64,
    itemparam: i64,
    payment: i64,
    expense: i64,
    journal: i64,
    task: i64,
    operation: i64,
    attempt: i64,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: Rng::new(seed),
            account: Batch::new("account", "id, name, project, registration_date, country, balance, note"),
            user: Batch::new("user", "id, account, name, realname, email, phone, language, level, enabled"),
            item: Batch::new("item", "id, account, pricelist, name, status, createdate, opendate, expiredate, period, currency, cost, processingmodule, remoteid"),
            itemparam: Batch::new("itemparam", "id, item, intname, value"),
            itemcryptedparam: Batch::new("itemcryptedparam", "item, intname, value"),
            payment: Batch::new("payment", "id, account, paymethod, number, amount, currency, createdate, paydate, status, externalid, info"),
            expense: Batch::new("expense", "id, account, item, amount, currency, createdate, info"),
            journal: Batch::new("journal", "id, account, user, createdate, func, ip, params"),
            task: Batch::new("task", "id, item, runningoperation, type, status, createdate, note"),
            runningoperation: Batch::new("runningoperation", "id, item, intname, processingmodule, params, trycount, manual, cdate, errorxml, task"),
            opstate: Batch::new("billmgrops_operation", "runningoperation, status, next_try, started, runner, comment, updated"),
            attempt: Batch::new("billmgrops_attempt", "id, runningoperation, item, task, intname, createdate, duration_ms, command, exit_status, outcome, error_type, error_object, error_value, error_msg, stdout, stderr"),
            next: NextIds::default(),
            pricelists: Vec::new(),
        }
    }

    fn batches(&self) -> [&Batch; 12] {
        [
            &self.account,
            &self.user,
            &self.item,
            &self.itemparam,
            &self.itemcryptedparam,
            &self.payment,
            &self.expense,
            &self.journal,
            &self.task,
            &self.runningoperation,
            &self.opstate,
            &self.attempt,
        ]
    }

    fn flush(&mut self, db: &mut Db) -> Result<()> {
        for b in [
            &mut self.account,
            &mut self.user,
            &mut self.item,
            &mut self.itemparam,
            &mut self.itemcryptedparam,
            &mut self.payment,
            &mut self.expense,
            &mut self.journal,
            &mut self.task,
            &mut self.runningoperation,
            &mut self.opstate,
            &mut self.attempt,
        ] {
            b.flush(db)?;
        }
        Ok(())
    }

    /// Currencies, project, item types, modules, tariffs, payment methods.
    fn reference_data(&mut self, db: &mut Db) -> Result<()> {
        let c = db.conn();
        c.query_drop("INSERT INTO currency (id, name, iso, code) VALUES (1, 'Russian ruble', 'RUB', 643), (2, 'US dollar', 'USD', 840), (3, 'Euro', 'EUR', 978)")?;
        c.query_drop("INSERT INTO project (id, name, billurl, currency) VALUES (1, 'Example hosting', 'https://my.example.net/billmgr', 1)")?;
        c.query_drop("INSERT INTO paymethod (id, name, module, currency) VALUES (1, 'Bank card', 'pmyookassa', 1), (2, 'Bank transfer', 'pmbill', 1), (3, 'PayPal', 'pmpaypal', 2)")?;
        for (i, (name, module, url)) in MODULES.iter().enumerate() {
            let id = i as u64 + 1;
            c.exec_drop(
                "INSERT INTO processingmodule (id, name, module) VALUES (?, ?, ?)",
                (id, name, module),
            )?;
            if !url.is_empty() {
                c.exec_drop(
                    "INSERT INTO processingparam (processingmodule, intname, value) VALUES (?, 'url', ?), (?, 'username', 'billing')",
                    (id, url, id),
                )?;
                c.exec_drop(
                    "INSERT INTO processingcryptedparam (processingmodule, intname, value) VALUES (?, 'password', ?)",
                    (id, format!("c2VjcmV0LXtpZH0t{id:04}")),
                )?;
            }
        }
        let mut pricelist = 0u64;
        for (t, (intname, name, modules, _)) in TYPES.iter().enumerate() {
            let type_id = t as u64 + 1;
            c.exec_drop(
                "INSERT INTO itemtype (id, intname, name, orderpriority) VALUES (?, ?, ?, ?)",
                (type_id, intname, name, type_id * 10),
            )?;
            for tariff in ["Start", "Pro", "Business"] {
                pricelist += 1;
                c.exec_drop(
                    "INSERT INTO pricelist (id, intname, name, itemtype, project) VALUES (?, ?, ?, ?, 1)",
                    (pricelist, format!("{intname}_{}", tariff.to_lowercase()), format!("{name} {tariff}"), type_id),
                )?;
                for m in *modules {
                    c.exec_drop(
                        "INSERT INTO processingmodule2pricelist (pricelist, processingmodule) VALUES (?, ?)",
                        (pricelist, m),
                    )?;
                }
                self.pricelists.push((pricelist, t));
            }
        }
        Ok(())
    }

    fn person(&mut self) -> String {
        format!("{} {}", self.rng.pick(FIRST), self.rng.pick(LAST))
    }
}
