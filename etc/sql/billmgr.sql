-- BILLmanager 6 tables that billmgr-ops reads and writes, as far as public
-- documentation and code show them (see docs/architecture.md, "The billing
-- schema"). Column names follow BILLmanager; types are realistic guesses.
-- The tests, the demo and the benchmarks run on this schema.
--
-- InnoDB, utf8mb4, foreign keys. Idempotent: every table is created only
-- when missing, so this file can be applied to a database again.

CREATE TABLE IF NOT EXISTS currency (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  iso CHAR(3) NOT NULL,
  code INT NOT NULL DEFAULT 0,
  active ENUM('on','off') NOT NULL DEFAULT 'on',
  UNIQUE KEY iso (iso)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS project (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  billurl VARCHAR(255) NOT NULL DEFAULT '',
  currency INT NOT NULL,
  active ENUM('on','off') NOT NULL DEFAULT 'on',
  CONSTRAINT project_currency FOREIGN KEY (currency) REFERENCES currency (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS account (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  project INT NOT NULL,
  registration_date DATETIME NOT NULL,
  country VARCHAR(2) NULL,
  balance DECIMAL(20,2) NOT NULL DEFAULT 0,
  note TEXT NULL,
  KEY name (name),
  KEY registration_date (registration_date),
  CONSTRAINT account_project FOREIGN KEY (project) REFERENCES project (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS user (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NOT NULL,
  name VARCHAR(64) NOT NULL,
  realname VARCHAR(255) NOT NULL DEFAULT '',
  email VARCHAR(255) NULL,
  phone VARCHAR(64) NULL,
  language VARCHAR(16) NOT NULL DEFAULT 'en',
  level INT NOT NULL DEFAULT 16,
  enabled ENUM('on','off') NOT NULL DEFAULT 'on',
  UNIQUE KEY name (name),
  KEY email (email),
  CONSTRAINT user_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS itemtype (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  intname VARCHAR(64) NOT NULL,
  name VARCHAR(255) NOT NULL,
  orderpriority INT NOT NULL DEFAULT 0,
  UNIQUE KEY intname (intname)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS processingmodule (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  module VARCHAR(64) NOT NULL,
  active ENUM('on','off') NOT NULL DEFAULT 'on',
  config TEXT NULL,
  KEY module (module)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS processingparam (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  processingmodule INT NOT NULL,
  intname VARCHAR(64) NOT NULL,
  value TEXT NULL,
  UNIQUE KEY module_param (processingmodule, intname),
  CONSTRAINT processingparam_module FOREIGN KEY (processingmodule) REFERENCES processingmodule (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS processingcryptedparam (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  processingmodule INT NOT NULL,
  intname VARCHAR(64) NOT NULL,
  value TEXT NULL,
  UNIQUE KEY module_param (processingmodule, intname),
  CONSTRAINT processingcryptedparam_module FOREIGN KEY (processingmodule) REFERENCES processingmodule (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS pricelist (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  intname VARCHAR(64) NOT NULL DEFAULT '',
  name VARCHAR(255) NOT NULL,
  itemtype INT NOT NULL,
  project INT NOT NULL,
  billtype INT NOT NULL DEFAULT 2,
  active ENUM('on','off') NOT NULL DEFAULT 'on',
  KEY itemtype (itemtype),
  CONSTRAINT pricelist_itemtype FOREIGN KEY (itemtype) REFERENCES itemtype (id),
  CONSTRAINT pricelist_project FOREIGN KEY (project) REFERENCES project (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS processingmodule2pricelist (
  pricelist INT NOT NULL,
  processingmodule INT NOT NULL,
  PRIMARY KEY (pricelist, processingmodule),
  CONSTRAINT pm2p_pricelist FOREIGN KEY (pricelist) REFERENCES pricelist (id) ON DELETE CASCADE,
  CONSTRAINT pm2p_module FOREIGN KEY (processingmodule) REFERENCES processingmodule (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS item (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NOT NULL,
  pricelist INT NOT NULL,
  parent INT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  status INT NOT NULL DEFAULT 1,
  createdate DATE NOT NULL,
  opendate DATE NULL,
  expiredate DATE NULL,
  period INT NOT NULL DEFAULT 1,
  currency INT NOT NULL,
  cost DECIMAL(20,4) NOT NULL DEFAULT 0,
  processingmodule INT NULL,
  remoteid VARCHAR(255) NULL,
  autosuspend ENUM('on','off') NOT NULL DEFAULT 'on',
  KEY account (account),
  KEY pricelist (pricelist),
  KEY status (status),
  KEY expiredate (expiredate),
  KEY processingmodule (processingmodule),
  CONSTRAINT item_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE CASCADE,
  CONSTRAINT item_pricelist FOREIGN KEY (pricelist) REFERENCES pricelist (id),
  CONSTRAINT item_parent FOREIGN KEY (parent) REFERENCES item (id) ON DELETE CASCADE,
  CONSTRAINT item_currency FOREIGN KEY (currency) REFERENCES currency (id),
  CONSTRAINT item_module FOREIGN KEY (processingmodule) REFERENCES processingmodule (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS itemparam (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item INT NOT NULL,
  intname VARCHAR(64) NOT NULL,
  value TEXT NULL,
  UNIQUE KEY item_param (item, intname),
  KEY intname (intname),
  CONSTRAINT itemparam_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS itemcryptedparam (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item INT NOT NULL,
  intname VARCHAR(64) NOT NULL,
  value TEXT NULL,
  UNIQUE KEY item_param (item, intname),
  CONSTRAINT itemcryptedparam_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS paymethod (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  module VARCHAR(64) NOT NULL,
  currency INT NOT NULL,
  active ENUM('on','off') NOT NULL DEFAULT 'on',
  CONSTRAINT paymethod_currency FOREIGN KEY (currency) REFERENCES currency (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- status: 1 new, 2 in pay, 4 paid, 7 fraud, 9 canceled.
CREATE TABLE IF NOT EXISTS payment (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NOT NULL,
  paymethod INT NOT NULL,
  number VARCHAR(64) NOT NULL,
  amount DECIMAL(20,2) NOT NULL,
  currency INT NOT NULL,
  createdate DATETIME NOT NULL,
  paydate DATETIME NULL,
  status INT NOT NULL DEFAULT 1,
  externalid VARCHAR(255) NULL,
  info TEXT NULL,
  KEY account (account),
  KEY createdate (createdate),
  KEY status (status),
  KEY number (number),
  CONSTRAINT payment_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE CASCADE,
  CONSTRAINT payment_paymethod FOREIGN KEY (paymethod) REFERENCES paymethod (id),
  CONSTRAINT payment_currency FOREIGN KEY (currency) REFERENCES currency (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS expense (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NOT NULL,
  item INT NULL,
  amount DECIMAL(20,4) NOT NULL,
  currency INT NOT NULL,
  createdate DATETIME NOT NULL,
  info VARCHAR(255) NOT NULL DEFAULT '',
  KEY account (account),
  KEY item (item),
  CONSTRAINT expense_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE CASCADE,
  CONSTRAINT expense_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE SET NULL,
  CONSTRAINT expense_currency FOREIGN KEY (currency) REFERENCES currency (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Staff tasks. status: 0 opened, 1 in work, 2 closed (the vendor's tsOpened,
-- tsInWork, tsClosed). runningoperation has no foreign key: a task outlives
-- the operation that opened it.
CREATE TABLE IF NOT EXISTS task (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item INT NULL,
  runningoperation INT NULL,
  type VARCHAR(64) NOT NULL DEFAULT '',
  status INT NOT NULL DEFAULT 0,
  createdate DATETIME NOT NULL,
  closedate DATETIME NULL,
  note TEXT NULL,
  KEY runningoperation (runningoperation),
  KEY item (item),
  CONSTRAINT task_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A pending service operation for a processing module. intname is the
-- module command (open, suspend, resume, close, setparam, prolong ...);
-- manual = on stops automatic restarts.
CREATE TABLE IF NOT EXISTS runningoperation (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item INT NOT NULL,
  intname VARCHAR(64) NOT NULL,
  processingmodule INT NULL,
  params TEXT NULL,
  trycount INT NOT NULL DEFAULT 0,
  manual ENUM('on','off') NOT NULL DEFAULT 'off',
  cdate DATETIME NOT NULL,
  errorxml MEDIUMTEXT NULL,
  task INT NULL,
  KEY item (item),
  KEY cdate (cdate),
  CONSTRAINT runningoperation_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE CASCADE,
  CONSTRAINT runningoperation_module FOREIGN KEY (processingmodule) REFERENCES processingmodule (id) ON DELETE SET NULL,
  CONSTRAINT runningoperation_task FOREIGN KEY (task) REFERENCES task (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The panel's action log: the bulkiest table of a real installation.
CREATE TABLE IF NOT EXISTS journal (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NULL,
  user INT NULL,
  createdate DATETIME NOT NULL,
  func VARCHAR(64) NOT NULL,
  ip VARCHAR(45) NOT NULL DEFAULT '',
  params MEDIUMTEXT NULL,
  KEY account (account),
  KEY createdate (createdate),
  CONSTRAINT journal_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE SET NULL,
  CONSTRAINT journal_user FOREIGN KEY (user) REFERENCES user (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
