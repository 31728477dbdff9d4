#!/usr/bin/env python3
"""A second billing database, made without billmgr-ops.

`billmgr-ops dev seed` is the data the plugin was tuned on. This generator
is written apart from it (Python, LOAD DATA through the mariadb client) and
makes another shape, closer to a large provider's:

- skewed clients: most have a service or two, a few have dozens;
- 1.43 M saved objects at scale 1 (67 k clients, 104 k users, 700 k
  services, 560 k payments), 5 M at scale 3.5;
- `itemlog`: ~2 KB rows of XML text with a small binary blob, about a
  third of the bytes;
- `attachment`: wide rows (16-200 KB blobs) in a few thousand rows, the
  shape that row-counted key ranges give to one worker;
- `setting` (a VARCHAR primary key), `stat_daily` (no primary key),
  a generated column, ENUM, JSON, DECIMAL, Cyrillic, emoji, tabs,
  newlines, backslashes, NUL bytes and NULL next to '' and 'NULL';
- a view, a function, a compound trigger.

With `--shape binary` (the third shape) `itemlog` has 200 k rows at scale
1 of about 2 KB, two thirds of them bytes: a BLOB of a module's saved
structure (compressible, with every byte LOAD DATA escapes) and a
VARBINARY of random payload (encrypted or compressed data, which does
not compress); the other tables are the wide shape's.

    bench/gen-wide.py --port P --database D [--scale 1.0] [--seed 7] [--shape wide|binary]

It runs against MariaDB and MySQL alike (the server must allow
`LOAD DATA LOCAL`; bench/copy.sh turns it on for the seed on MySQL).

The BILLmanager tables come from etc/sql/billmgr.sql; the rest is made
here. About 1 GB of data and indexes at scale 1.
"""

import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile

ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\0": "\\0", "\r": "\\r"})


def cell(v):
    if v is None:
        return "\\N"
    if isinstance(v, bytes):
        # The session reads the file as binary; bytes go through latin-1
        # one to one and are escaped like text.
        return v.decode("latin-1").translate(ESC)
    return str(v).translate(ESC)


class Loader:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir

    def client(self, *extra):
        return [
            "mariadb", "--protocol=tcp", "-h", self.args.host, "-P", str(self.args.port),
            "-u", self.args.user, "--local-infile=1", "--default-character-set=utf8mb4", *extra,
        ]

    def sql(self, text, database=True):
        args = self.client(self.args.database) if database else self.client()
        subprocess.run(args, input=text.encode(), check=True)

    def load(self, table, columns, rows, charset="binary"):
        path = os.path.join(self.workdir, f"{table}.tsv")
        n = 0
        with open(path, "w", encoding="latin-1", errors="strict", newline="\n") as f:
            for row in rows:
                f.write("\t".join(cell(v) for v in row))
                f.write("\n")
                n += 1
        self.sql(
            "SET foreign_key_checks=0, unique_checks=0, sql_mode='NO_AUTO_VALUE_ON_ZERO';\n"
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{table}` CHARACTER SET {charset} "
            f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({columns});\n"
        )
        os.unlink(path)
        print(f"  {table}: {n} rows", file=sys.stderr)
        return n


def text(s):
    """Unicode text as its UTF-8 bytes: the file is loaded `CHARACTER SET
    binary`, so the bytes reach the utf8mb4 columns as they are."""
    return None if s is None else s.encode("utf-8")


FIRST = ["Анна", "Иван", "Olga", "Piotr", "Zhanar", "Sven", "Grace", "Кирилл", "Amélie", "Jürgen", "O'Brien", "Łukasz"]
LAST = ["Смирнова", "Petrov", "Kowalski", "Nurlanov", "Larsen", "Hopper", "Дюма", "Müller", "d'Arc", "Nguyễn"]
WORDS = ["hosting", "vps", "domain", "ssl", "backup", "mail", "dns", "cdn", "сервер", "тариф", "🚀", "node", "pool"]


def binary_logs(rnd, n, nitems):
    """The binary shape's log: rows of about 2 KB, two thirds of it bytes.

    A short XML request; `state`, a BLOB of a module's saved structure
    (little-endian counters, zero padding, repeated tags: bytes that
    compress, and that hold every byte LOAD DATA escapes); `packet`, a
    VARBINARY of encrypted or compressed payload (random bytes, which do
    not); `digest`, a random hash.
    """
    tags = [b"VMST", b"DISK", b"NETI", b"CPU0", b"MEM_"]
    for i in range(1, n + 1):
        item = rnd.randint(1, nitems)
        params = "".join(f"<p{k}>{rnd.choice(WORDS)}{rnd.randint(0, 10**6)}</p{k}>" for k in range(rnd.randint(6, 14)))
        request = text(f"<request func=\"vm.edit\" item=\"{item}\">{params}</request>")
        state = bytearray()
        for k in range(rnd.randint(15, 45)):
            state += rnd.choice(tags)
            state += struct.pack("<IIQ", k, item, i * 4096 + k) + bytes(rnd.choice([0, 4, 12, 28]))
            state += bytes([rnd.randrange(256) for _ in range(4)])
        packet = os.urandom(rnd.choice([64, 256, 512, 768, 1024, 1024]))
        yield (i, item, f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 12:{i % 60:02d}:{i % 60:02d}", rnd.choice(["info", "info", "warning", "error"]),
               request, rnd.choice([None, text("<response><ok/></response>")]), os.urandom(32), bytes(state), packet)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="root")
    ap.add_argument("--database", required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shape", choices=["wide", "binary"], default="wide")
    ap.add_argument("--schema", default=os.path.join(os.path.dirname(__file__), "..", "etc", "sql", "billmgr.sql"))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    s = args.scale
    work = tempfile.mkdtemp(prefix="gen-wide-")
    db = Loader(args, work)
    db.sql(f"DROP DATABASE IF EXISTS `{args.database}`; CREATE DATABASE `{args.database}` CHARACTER SET utf8mb4;", database=False)
    db.sql(open(args.schema, encoding="utf-8").read())
    binary_columns = "\n  state BLOB NULL,\n  packet VARBINARY(2048) NULL," if args.shape == "binary" else ""
    db.sql(f"""
CREATE TABLE itemlog (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item INT NOT NULL,
  createdate DATETIME NOT NULL,
  level ENUM('info','warning','error') NOT NULL,
  request MEDIUMTEXT NOT NULL,
  response MEDIUMTEXT NULL,
  digest VARBINARY(64) NULL,{binary_columns}
  KEY item (item),
  CONSTRAINT itemlog_item FOREIGN KEY (item) REFERENCES item (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE attachment (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account INT NOT NULL,
  filename VARCHAR(255) NOT NULL,
  body LONGBLOB NOT NULL,
  size INT AS (LENGTH(body)) STORED,
  KEY account (account),
  CONSTRAINT attachment_account FOREIGN KEY (account) REFERENCES account (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE setting (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value JSON NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE stat_daily (
  day DATE NOT NULL,
  pricelist INT NOT NULL,
  opened INT NOT NULL,
  closed INT NOT NULL,
  revenue DECIMAL(20,2) NOT NULL,
  KEY day (day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
""")

    # Reference data.
    db.load("currency", "id, name, iso, code, active",
            [(1, text("Рубль"), "RUB", 643, "on"), (2, "Dollar", "USD", 840, "on"), (3, "Euro", "EUR", 978, "on"), (4, "Tenge", "KZT", 398, "off")])
    db.load("project", "id, name, billurl, currency", [(1, "Main", "https://my.example.com", 1), (2, text("Второй"), "", 2)])
    db.load("itemtype", "id, intname, name, orderpriority",
            [(i, w, text(w.title()), i) for i, w in enumerate(["vds", "domain", "ssl", "hosting", "backup", "dedicated", "mail", "dns"], 1)])
    modules = 24
    db.load("processingmodule", "id, name, module, active, config",
            [(i, f"Server {i}", rnd.choice(["pmvmmgr", "pmispmgr", "pmregru", "pmcertificate"]), "on",
              text(f"<config><host>node{i}.example.net</host><note>узел {i}</note></config>")) for i in range(1, modules + 1)])
    pricelists = 240
    db.load("pricelist", "id, intname, name, itemtype, project, billtype, active",
            [(i, f"tariff-{i}", text(f"Тариф {i} {rnd.choice(WORDS)}"), 1 + i % 8, 1 + i % 2, 2, "on") for i in range(1, pricelists + 1)])
    db.load("paymethod", "id, name, module, currency", [(i, f"Method {i}", f"pm{i}", 1 + i % 3) for i in range(1, 13)])

    clients = int(67_000 * s)
    db.load("account", "id, name, project, registration_date, country, balance, note",
            ((i, text(f"{rnd.choice(FIRST)} {rnd.choice(LAST)} #{i}"), 1 + i % 2,
              f"20{10 + i * 14 // clients:02d}-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00",
              rnd.choice(["RU", "KZ", "DE", None, ""]), f"{rnd.randint(-5000, 90000) / 100:.2f}",
              rnd.choice([None, "", "NULL", text("VIP\tклиент\nзвонить после 18:00 \\ 🙂"), text("x" * rnd.randint(50, 400))]))
             for i in range(1, clients + 1)))

    # Users: 104 k at scale 1 (most clients one, some several).
    users = []
    uid = 0
    for a in range(1, clients + 1):
        for _ in range(1 if rnd.random() < 0.7 else rnd.randint(2, 4)):
            uid += 1
            users.append((uid, a, f"u{uid}_{a}", text(f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"), f"user{uid}@example.org",
                          rnd.choice([None, "+7 900 000-00-00"]), rnd.choice(["ru", "en"]), 16, "on"))
    db.load("user", "id, account, name, realname, email, phone, language, level, enabled", users)
    nusers = len(users)
    del users

    # Services: skewed per client, 700 k at scale 1.
    target = int(700_000 * s)
    weights = [rnd.paretovariate(1.3) for _ in range(clients)]
    total_w = sum(weights)
    per_client = [max(1, int(w / total_w * target)) for w in weights]
    # Services are created over time: ids interleave clients, as in life.
    owners = [a for a, n in enumerate(per_client, 1) for _ in range(n)]
    rnd.shuffle(owners)
    nitems = len(owners)

    def items():
        for i, a in enumerate(owners, 1):
            parent = i - 1 if i > 1 and owners[i - 2] == a and rnd.random() < 0.3 else None
            yield (i, a, 1 + i % pricelists, parent, text(f"{rnd.choice(WORDS)}-{i}.example.com"), rnd.choice([1, 2, 2, 2, 3, 4, 5]),
                   f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}", f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}", f"2027-{1 + i % 12:02d}-01",
                   rnd.choice([1, 3, 12]), 1 + i % 3, f"{rnd.randint(100, 900000) / 100:.4f}", 1 + i % modules, f"r-{i:x}", "on")
    db.load("item", "id, account, pricelist, parent, name, status, createdate, opendate, expiredate, period, currency, cost, processingmodule, remoteid, autosuspend", items())

    def params():
        pid = 0
        for i in range(1, nitems + 1):
            for name in rnd.sample(["ip", "hostname", "ostemplate", "disk", "ram", "cpu", "panel", "password_hint"], rnd.randint(1, 4)):
                pid += 1
                yield (pid, i, name, text(rnd.choice([f"10.{i % 256}.{pid % 256}.1", f"host{i}.local", "Debian 12 \\ x86_64", "", None, "8192"])))
    db.load("itemparam", "id, item, intname, value", params())

    def logs():
        if args.shape == "binary":
            yield from binary_logs(rnd, int(200_000 * s), nitems)
            return
        n = int(170_000 * s)
        for i in range(1, n + 1):
            item = rnd.randint(1, nitems)
            body = "".join(f"<param name=\"p{k}\">{rnd.choice(WORDS)}{rnd.randint(0, 10**9)}</param>" for k in range(rnd.randint(20, 40)))
            yield (i, item, f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 12:{i % 60:02d}:{i % 60:02d}", rnd.choice(["info", "info", "warning", "error"]),
                   text(f"<?xml version=\"1.0\"?><request func=\"open\" item=\"{item}\">{body}</request>"),
                   rnd.choice([None, text("<response><ok/><msg>Готово ✓</msg></response>")]), os.urandom(rnd.randint(16, 64)))

    log_columns = "id, item, createdate, level, request, response, digest" + (", state, packet" if args.shape == "binary" else "")
    db.load("itemlog", log_columns, logs())

    pays = []
    target = int(560_000 * s)
    for i in range(1, target + 1):
        a = owners[rnd.randrange(nitems)]
        pays.append((i, a, 1 + i % 12, f"PAY-{i:08d}", f"{rnd.randint(100, 5_000_000) / 100:.2f}", 1 + i % 3,
                     f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00", rnd.choice([None, "2025-06-01 10:05:00"]), rnd.choice([1, 4, 4, 4, 9]),
                     rnd.choice([None, f"ext-{rnd.getrandbits(64):x}"]), rnd.choice([None, "", text("оплата по счёту №" + str(i))])))
    db.load("payment", "id, account, paymethod, number, amount, currency, createdate, paydate, status, externalid, info", pays)
    del pays

    def expenses():
        for i in range(1, int(900_000 * s) + 1):
            item = rnd.randint(1, nitems)
            yield (i, owners[item - 1], item, f"{rnd.randint(1, 100000) / 100:.4f}", 1, f"2026-{1 + i % 12:02d}-01 00:00:00", text(f"Списание за {rnd.choice(WORDS)}"))
    db.load("expense", "id, account, item, amount, currency, createdate, info", expenses())

    def journal():
        for i in range(1, int(600_000 * s) + 1):
            a = rnd.randint(1, clients)
            yield (i, a, None, f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 08:00:00", rnd.choice(["item.edit", "payment.add", "logon", "account.edit"]),
                   f"192.0.2.{i % 250}", text("func=item.edit&elid=" + str(i) + "&note=" + rnd.choice(WORDS) * rnd.randint(1, 20)))
    db.load("journal", "id, account, user, createdate, func, ip, params", journal())

    def attachments():
        for i in range(1, int(2_500 * s) + 1):
            size = rnd.choice([16, 32, 64, 64, 128, 200]) * 1024
            # Half compressible text, half random bytes: a scan, a log.
            body = os.urandom(size // 2) + (b"line of a log\t\\ \0\n" * (size // 36))
            yield (i, rnd.randint(1, clients), text(f"счёт-{i}.pdf"), body)
    db.load("attachment", "id, account, filename, body", attachments())

    db.load("setting", "name, value", [(f"key{i}", text(f'{{"n": {i}, "s": "значение {i}"}}') if i % 7 else None) for i in range(1, 500)],
            # MySQL takes JSON from text only, not from binary strings.
            charset="utf8mb4")
    db.load("stat_daily", "day, pricelist, opened, closed, revenue",
            ((f"2025-{1 + d // 28 % 12:02d}-{1 + d % 28:02d}", p, rnd.randint(0, 9), rnd.randint(0, 9), f"{rnd.randint(0, 10**6) / 100:.2f}")
             for d in range(300) for p in range(1, pricelists + 1)))

    db.sql("""
CREATE VIEW active_item AS SELECT id, account, name FROM item WHERE status = 2;
CREATE FUNCTION client_balance(a INT) RETURNS DECIMAL(20,2) READS SQL DATA
  RETURN (SELECT balance FROM account WHERE id = a);
CREATE VIEW rich_client AS SELECT id, name, client_balance(id) AS balance FROM account WHERE id < 100;
DELIMITER ;;
CREATE TRIGGER itemlog_guard BEFORE INSERT ON itemlog FOR EACH ROW
BEGIN
  IF NEW.level = 'error' AND NEW.response IS NULL THEN
    SET NEW.response = '<response><error/></response>';
  END IF;
END;;
DELIMITER ;
""")
    objects = clients + nusers + nitems + int(560_000 * s)
    print(f"done: {clients} clients, {nusers} users, {nitems} services, {objects} saved objects", file=sys.stderr)
    os.rmdir(work)


if __name__ == "__main__":
    main()
