//! The context of one invocation: the configuration and a database
//! connection opened on first use.
//!
//! Opening lazily is what lets a panel function validate its whole request
//! before the database is touched: bad input never costs a connection.

use anyhow::Result;

use crate::config::Config;
use crate::db::Db;

pub struct Ctx<'a> {
    pub config: &'a Config,
    db: Option<Db>,
}

impl<'a> Ctx<'a> {
    pub fn new(config: &'a Config) -> Self {
        Ctx { config, db: None }
    }

    /// The database, connected and migrated on first use.
    ///
    /// # Errors
    /// [`crate::config::NoCredentials`] when no database is configured, [`crate::db::Unavailable`] when it cannot be reached.
    pub fn db(&mut self) -> Result<&mut Db> {
        if self.db.is_none() {
            let source = self.config.db_source()?;
            self.db = Some(Db::open(source, self.config.db_connect_timeout)?);
        }
        Ok(self.db.as_mut().expect("connected above"))
    }
}
