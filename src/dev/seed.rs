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

use super::rng::Rng;
use super::schema;
use crate::clock;
use crate::db::operations::OPERATION_TYPES;
use crate::db::{quote_ident, Db};

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
const EPOCH: i64 = 1_609_459_200;
const DAY: i64 = 86_400;

const FIRST: &[&str] = &[
    "Ivan",
    "Olga",
    "Sergey",
    "Anna",
    "Dmitry",
    "Maria",
    "John",
    "Emma",
    "Łukasz",
    "Søren",
    "Иван",
    "Ольга",
    "Сергей",
    "Анна",
    "Дмитрий",
    "Мария",
    "Jürgen",
    "Zoë",
];
const LAST: &[&str] = &[
    "Petrov",
    "Ivanova",
    "Smith",
    "Brown",
    "Kowalski",
    "Müller",
    "Петров",
    "Иванова",
    "Смирнов",
    "Кузнецова",
    "O'Brien",
    "Nørgaard",
];
const COMPANY: &[&str] = &[
    "ООО «Ромашка»",
    "Acme Ltd",
    "\"Quote\" Hosting",
    "Back\\slash LLC",
    "Tab\tSeparated Inc",
    "ИП Сидоров",
    "Blåbær AS",
    "Cloud 🚀 Start",
    "NULL",
    "",
];
const COUNTRIES: &[&str] = &["RU", "US", "DE", "KZ", "PL", "NO", "GB"];

/// (itemtype intname, display name, processing module ids, parameter names)
const TYPES: &[(&str, &str, &[u64], &[&str])] = &[
    (
        "vds",
        "Virtual server",
        &[1, 2],
        &["ostempl", "ip", "hostname", "ram", "cpu", "disk"],
    ),
    (
        "vhost",
        "Shared hosting",
        &[3],
        &["domain", "username", "ip", "diskquota"],
    ),
    (
        "domain",
        "Domain",
        &[4],
        &["domain", "ns1", "ns2", "auth_code"],
    ),
    (
        "dedic",
        "Dedicated server",
        &[5],
        &["hostname", "ip", "ipmi_ip", "config"],
    ),
    (
        "certificate",
        "SSL certificate",
        &[6],
        &["domain", "csr", "approver_email"],
    ),
];

/// (name, module, url)
const MODULES: &[(&str, &str, &str)] = &[
    ("VMmanager #1", "pmvmmanager6", "https://vm1.example.net/vm"),
    ("VMmanager #2", "pmvmmanager6", "https://vm2.example.net/vm"),
    (
        "ISPmanager hosting",
        "pmispmgr",
        "https://hosting.example.net/ispmgr",
    ),
    ("Registrar", "pmregistrar", "https://api.registrar.example"),
    ("Dedicated servers", "pmmanual", ""),
    ("SSL store", "pmcertificate", "https://ssl.example.com/api"),
];

/// Accumulates rows of one table and sends them as multi-row INSERTs of
/// about a megabyte.
struct Batch {
    table: &'static str,
    columns: &'static str,
    sql: String,
    rows: u64,
    total: u64,
}

const BATCH_BYTES: usize = 1 << 20;

impl Batch {
    fn new(table: &'static str, columns: &'static str) -> Self {
        Batch {
            table,
            columns,
            sql: String::new(),
            rows: 0,
            total: 0,
        }
    }

    fn add(&mut self, db: &mut Db, values: &[V]) -> Result<()> {
        if self.sql.is_empty() {
            self.sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                quote_ident(self.table),
                self.columns
            );
        } else {
            self.sql.push(',');
        }
        self.sql.push('(');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push(',');
            }
            v.write(&mut self.sql);
        }
        self.sql.push(')');
        self.rows += 1;
        if self.sql.len() >= BATCH_BYTES {
            self.flush(db)?;
        }
        Ok(())
    }

    fn flush(&mut self, db: &mut Db) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.sql);
        db.conn()
            .query_drop(sql)
            .with_context(|| format!("failed to insert into {}", self.table))?;
        self.total += self.rows;
        self.rows = 0;
        Ok(())
    }
}

/// A value for a generated row.
#[derive(Clone)]
enum V {
    Null,
    Int(i64),
    Text(String),
    /// A decimal, as text in cents/hundredths.
    Money(i64),
    Date(i64),
    DateTime(i64),
}

impl V {
    fn s(text: impl Into<String>) -> V {
        V::Text(text.into())
    }

    fn write(&self, out: &mut String) {
        match self {
            V::Null => out.push_str("NULL"),
            V::Int(i) => out.push_str(&i.to_string()),
            V::Money(c) => {
                let sign = if *c < 0 { "-" } else { "" };
                out.push_str(&format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100));
            }
            V::Date(t) => {
                out.push('\'');
                out.push_str(&clock::utc_datetime(*t)[..10]);
                out.push('\'');
            }
            V::DateTime(t) => {
                out.push('\'');
                out.push_str(&clock::utc_datetime(*t));
                out.push('\'');
            }
            V::Text(s) => {
                // The session runs without NO_BACKSLASH_ESCAPES (set in run()).
                out.push('\'');
                for c in s.chars() {
                    match c {
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        '\0' => out.push_str("\\0"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\u{1a}' => out.push_str("\\Z"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
            }
        }
    }
}

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

    fn client(&mut self, db: &mut Db, id: u64) -> Result<()> {
        let id = id as i64;
        let registered = EPOCH + id * 600 + self.rng.range(0, 599) as i64;
        let name = if self.rng.chance(40) {
            self.rng.pick(COMPANY).to_string()
        } else {
            self.person()
        };
        let note = match self.rng.range(0, 9) {
            0..=5 => V::Null,
            6 => V::s(""),
            7 => V::s("NULL"),
            8 => {
                V::s("VIP client 🌟\tcall before suspending\nline 2 with \\ backslash and 'quotes'")
            }
            _ => V::s("Клиент просил счёт на юрлицо; см. тикет №".to_string() + &id.to_string()),
        };
        let country = V::s(*self.rng.pick(COUNTRIES));
        let balance = self.rng.range(0, 2_000_000) as i64 - 200_000;
        self.account.add(
            db,
            &[
                V::Int(id),
                V::s(name),
                V::Int(1),
                V::DateTime(registered),
                country,
                V::Money(balance),
                note,
            ],
        )?;

        let users = self.rng.range(1, 3);
        let mut first_user = 0;
        for u in 0..users {
            self.next.user += 1;
            let uid = self.next.user;
            if u == 0 {
                first_user = uid;
            }
            let realname = self.person();
            let email = if self.rng.chance(5) {
                V::Null
            } else {
                V::s(format!("user{uid}@example.com"))
            };
            let phone = if self.rng.chance(30) {
                V::Null
            } else {
                V::s(format!(
                    "+7 9{:02} {:03}-{:02}-{:02}",
                    uid % 100,
                    uid % 1000,
                    uid % 97,
                    uid % 89
                ))
            };
            let lang = if self.rng.chance(60) { "ru" } else { "en" };
            self.user.add(
                db,
                &[
                    V::Int(uid),
                    V::Int(id),
                    V::s(format!("client{id}_{u}")),
                    V::s(realname),
                    email,
                    phone,
                    V::s(lang),
                    V::Int(16),
                    V::s(if self.rng.chance(95) { "on" } else { "off" }),
                ],
            )?;
        }

        let services = self.rng.range(0, 7);
        for _ in 0..services {
            self.service(db, id, registered)?;
        }
        for _ in 0..self.rng.range(0, 12) {
            self.next.payment += 1;
            let pid = self.next.payment;
            let created = registered + self.rng.range(0, 700) as i64 * DAY / 2;
            let status = *self.rng.pick(&[4i64, 4, 4, 4, 1, 2, 9, 7]);
            let paid = if status == 4 {
                V::DateTime(created + 300)
            } else {
                V::Null
            };
            let info = if self.rng.chance(40) {
                V::Null
            } else {
                V::s(format!(
                    "Оплата по счёту №{pid}; card **** {:04}",
                    pid % 10_000
                ))
            };
            self.payment.add(
                db,
                &[
                    V::Int(pid),
                    V::Int(id),
                    V::Int(self.rng.range(1, 3) as i64),
                    V::s(format!("{:08}", pid)),
                    V::Money(self.rng.range(100, 5_000_000) as i64),
                    V::Int(1),
                    V::DateTime(created),
                    paid,
                    V::Int(status),
                    V::s(format!("ext-{:x}", self.rng.next_u64())),
                    info,
                ],
            )?;
        }
        for _ in 0..self.rng.range(2, 20) {
            self.next.journal += 1;
            let jid = self.next.journal;
            let func = *self.rng.pick(&[
                "auth",
                "service.edit",
                "payment.add",
                "ticket.edit",
                "user.edit",
                "vds.order.param",
            ]);
            let params = format!(
                "<doc><func>{func}</func><elid>{}</elid><sok>ok</sok><comment>{}</comment><agent>Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36</agent><session>{:016x}{:016x}</session></doc>",
                self.rng.range(1, 100_000),
                if self.rng.chance(50) { "изменение тарифа" } else { "plan change & renew" },
                self.rng.next_u64(),
                self.rng.next_u64()
            );
            let when = registered + self.rng.range(0, 1_000_000) as i64;
            self.journal.add(
                db,
                &[
                    V::Int(jid),
                    V::Int(id),
                    V::Int(first_user),
                    V::DateTime(when),
                    V::s(func),
                    V::s(format!("10.{}.{}.{}", jid % 250, id % 250, jid % 199)),
                    V::s(params),
                ],
            )?;
        }
        Ok(())
    }

    fn service(&mut self, db: &mut Db, account: i64, registered: i64) -> Result<()> {
        self.next.item += 1;
        let iid = self.next.item;
        let (pricelist, t) = *self.rng.pick(&self.pricelists.clone());
        let (intname, _, modules, params) = TYPES[t];
        let module = *self.rng.pick(modules) as i64;
        let created = registered + self.rng.range(0, 400) as i64 * DAY;
        let status = *self.rng.pick(&[2i64, 2, 2, 2, 2, 3, 1, 5]);
        let opened = if status == 1 {
            V::Null
        } else {
            V::Date(created + DAY)
        };
        let expires = if self.rng.chance(10) {
            V::Null
        } else {
            V::Date(created + 365 * DAY)
        };
        let name = match intname {
            "domain" | "vhost" | "certificate" => format!("site{iid}.example.ru"),
            _ => format!("srv{iid}.example.net"),
        };
        let remoteid = if self.rng.chance(30) {
            V::Null
        } else {
            V::s(format!("{:x}", self.rng.next_u64()))
        };
        self.item.add(
            db,
            &[
                V::Int(iid),
                V::Int(account),
                V::Int(pricelist as i64),
                V::s(name.clone()),
                V::Int(status),
                V::Date(created),
                opened,
                expires,
                V::Int(*self.rng.pick(&[1i64, 3, 12])),
                V::Int(1),
                V::Money(self.rng.range(9_900, 990_000) as i64),
                V::Int(module),
                remoteid,
            ],
        )?;
        for p in params {
            self.next.itemparam += 1;
            let value = match *p {
                "ip" | "ipmi_ip" => V::s(format!("185.{}.{}.{}", iid % 250, iid % 199, iid % 97 + 2)),
                "domain" | "hostname" => V::s(name.clone()),
                "ram" => V::s((1024 * self.rng.range(1, 32)).to_string()),
                "csr" => V::s("-----BEGIN CERTIFICATE REQUEST-----\nMIIC\\u0000fake\n-----END CERTIFICATE REQUEST-----"),
                _ if self.rng.chance(4) => V::Null,
                _ => V::s(format!("{p}-{:x}", self.rng.next_u64() % 0xFFFF_FFFF)),
            };
            self.itemparam.add(
                db,
                &[V::Int(self.next.itemparam), V::Int(iid), V::s(*p), value],
            )?;
        }
        if self.rng.chance(50) {
            self.itemcryptedparam.add(
                db,
                &[
                    V::Int(iid),
                    V::s("password"),
                    V::s(format!("cGFzc3dvcmQt{iid:08}")),
                ],
            )?;
        }
        for _ in 0..self.rng.range(0, 6) {
            self.next.expense += 1;
            self.expense.add(
                db,
                &[
                    V::Int(self.next.expense),
                    V::Int(account),
                    V::Int(iid),
                    V::Money(-(self.rng.range(100, 100_000) as i64)),
                    V::Int(1),
                    V::DateTime(created + self.rng.range(0, 300) as i64 * DAY),
                    V::s("Продление / renewal"),
                ],
            )?;
        }
        if self.rng.chance(8) {
            self.operation(db, iid, module, created)?;
        }
        Ok(())
    }

    /// A running operation in one of the states, with its attempts.
    fn operation(&mut self, db: &mut Db, item: i64, module: i64, created: i64) -> Result<()> {
        self.next.operation += 1;
        let oid = self.next.operation;
        let intname = *self.rng.pick(OPERATION_TYPES);
        let cdate = created + self.rng.range(0, 30) as i64 * DAY;
        let state = *self
            .rng
            .pick(&["wait", "wait", "error", "error", "error", "stopped", "run"]);
        let tries = match state {
            "wait" => 0,
            "stopped" => self.rng.range(1, 12),
            _ => self.rng.range(1, 10),
        } as i64;
        let manual = state == "stopped" || tries >= 10;
        let task = if manual && self.rng.chance(70) {
            self.next.task += 1;
            let tid = self.next.task;
            self.task.add(
                db,
                &[
                    V::Int(tid),
                    V::Int(item),
                    V::Int(oid),
                    V::s(intname),
                    V::Int(0),
                    V::DateTime(cdate + tries * 3600),
                    V::s("Automatic processing failed; please complete by hand"),
                ],
            )?;
            V::Int(tid)
        } else {
            V::Null
        };
        let failure = *self.rng.pick(&[
            (
                "connect",
                "processingmodule",
                "Could not connect to https://vm1.example.net: connection timed out",
            ),
            (
                "auth",
                "processingmodule",
                "Authentication failed for user 'billing'",
            ),
            ("exists", "user", "User 'client' already exists"),
            ("value", "ostempl", "Unknown OS template 'Debian 7'"),
        ]);
        let errorxml = if tries > 0 {
            V::s(format!(
                "<doc><error type=\"{}\" object=\"{}\"><param name=\"value\">{}</param></error></doc>",
                failure.0, failure.1, failure.2.replace('\'', "&apos;")
            ))
        } else {
            V::Null
        };
        let params = if self.rng.chance(50) {
            V::Null
        } else {
            V::s(format!(
                "<doc><item>{item}</item><intname>{intname}</intname></doc>"
            ))
        };
        self.runningoperation.add(
            db,
            &[
                V::Int(oid),
                V::Int(item),
                V::s(intname),
                V::Int(module),
                params,
                V::Int(tries),
                V::s(if manual { "on" } else { "off" }),
                V::DateTime(cdate),
                errorxml,
                task.clone(),
            ],
        )?;
        if state != "wait" || self.rng.chance(30) {
            let started = if state == "run" {
                V::DateTime(cdate + tries * 600)
            } else {
                V::Null
            };
            let runner = if state == "run" {
                V::s("billing-host:4242")
            } else {
                V::Null
            };
            let next_try = if state == "error" && !manual {
                V::DateTime(cdate + tries * 600 + 300 * (1 << tries.min(6)))
            } else {
                V::Null
            };
            let comment = if self.rng.chance(20) {
                V::s("Клиент предупреждён / client notified")
            } else {
                V::Null
            };
            let stored = if state == "error" && manual {
                "stopped"
            } else {
                state
            };
            self.opstate.add(
                db,
                &[
                    V::Int(oid),
                    V::s(stored),
                    next_try,
                    started,
                    runner,
                    comment,
                    V::DateTime(cdate + tries * 600),
                ],
            )?;
        }
        for a in 0..tries {
            self.next.attempt += 1;
            let command = format!("/usr/local/mgr5/processing/{} --command {intname} --item {item} --module {module} --runningoperation {oid}", MODULES[(module - 1) as usize].1);
            let stdout = format!("<doc><error type=\"{}\" object=\"{}\"><param name=\"value\">{}</param></error></doc>", failure.0, failure.1, failure.2);
            self.attempt.add(
                db,
                &[
                    V::Int(self.next.attempt),
                    V::Int(oid),
                    V::Int(item),
                    task.clone(),
                    V::s(intname),
                    V::DateTime(cdate + a * 600),
                    V::Int(self.rng.range(50, 30_000) as i64),
                    V::s(command),
                    V::s("exit status: 1"),
                    V::s("error"),
                    V::s(failure.0),
                    V::s(failure.1),
                    V::s(failure.2),
                    V::s(failure.2),
                    V::s(stdout),
                    V::s(""),
                ],
            )?;
        }
        Ok(())
    }
}
