//! One client with everything a provider keeps about it: users, services
//! with parameters, payments, expenses, journal lines, and running
//! operations in every state with their attempt history.

use anyhow::Result;

use super::batch::V;
use super::data::*;
use super::Generator;
use crate::db::operations::OPERATION_TYPES;
use crate::db::Db;

impl Generator {
    pub(super) fn client(&mut self, db: &mut Db, id: u64) -> Result<()> {
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
